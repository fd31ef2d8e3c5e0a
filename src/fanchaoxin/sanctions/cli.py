"""`fcx policy …` and `fcx instructions …`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from fanchaoxin.core.cli import cli_actor, console, database, err
from fanchaoxin.core.errors import Problem
from fanchaoxin.sanctions.policy import PolicyError, grade, parse_policy
from fanchaoxin.sanctions.service import active_policy, load_policy

policy_app = typer.Typer(
    help="The grading policy (severity × behaviour × subject kind × role → measures).", no_args_is_help=True
)


@policy_app.command("check")
def check(file: Annotated[Path, typer.Argument(help="A policy YAML file.")]) -> None:
    """Validate a policy file; errors name the line and key. Exit 1 if invalid."""
    if not file.exists():
        err.print(f"[bold red]error:[/] {file}: no such file")
        raise typer.Exit(1)
    try:
        policy = parse_policy(file.read_text(encoding="utf-8"), file.name)
    except PolicyError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"[green]{file.name}: valid[/], version {policy.version}, {len(policy.rules)} rules")
    table = Table("severity", "unit organizer", "liable person")
    for sev in ("minor", "general", "serious"):
        unit = grade(
            policy,
            severity=sev,
            behaviours=["order_brushing"],
            subject_kind="unit",
            role="organizer",
            liable=False,
        )
        liable = grade(
            policy,
            severity=sev,
            behaviours=["order_brushing"],
            subject_kind="individual",
            role="organizer",
            liable=True,
        )
        table.add_row(sev, ", ".join(m.code for m in unit), ", ".join(m.code for m in liable))
    console.print(table)


@policy_app.command("load")
def load(file: Annotated[Path, typer.Argument(help="A policy YAML file with a new version.")]) -> None:
    """Validate and activate a new policy version (entries keep the version that graded them)."""
    try:
        with database().session() as s:
            row = load_policy(s, cli_actor(), file.read_text(encoding="utf-8"), file.name)
            console.print(f"Policy [bold]{row.version}[/] is now active")
    except (PolicyError, Problem) as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from exc


@policy_app.command("show")
def show() -> None:
    """Print the active policy's version and rules."""
    with database().session() as s:
        policy = active_policy(s)
    console.print(f"version [bold]{policy.version}[/] — {policy.description}")
    for i, rule in enumerate(policy.rules):
        when = {k: v for k, v in rule.when.model_dump().items() if v is not None}
        console.print(f"  rule {i}: when {when} → {', '.join(m.code for m in rule.measures)}")
