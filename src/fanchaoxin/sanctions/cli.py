"""`fcx policy …` and `fcx instructions …`."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.catalogue import catalogues
from fanchaoxin.core.cli import cli_actor, console, database, err
from fanchaoxin.core.errors import Problem
from fanchaoxin.sanctions.basic_list import checked_policy
from fanchaoxin.sanctions.impact import PolicyImpact, policy_impact
from fanchaoxin.sanctions.policy import PolicyError, grade
from fanchaoxin.sanctions.service import active_policy, load_policy

policy_app = typer.Typer(
    help="The grading policy (severity × behaviour × subject kind × role → measures).", no_args_is_help=True
)


@policy_app.command("check")
def check(
    file: Annotated[Path, typer.Argument(help="A policy YAML file.")],
    details: Annotated[
        bool,
        typer.Option(
            "--details", help="Name the entries: per organisation and measure, and each one regraded."
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run/--no-dry-run",
            help="Show what grading the entries in force under it would change (reads the database).",
        ),
    ] = True,
) -> None:
    """Validate a policy file and show, before `fcx policy load`, what it would change (a dry run).

    Refused (exit 1), naming the line, the key and the rule it breaks: a policy that is not valid, or
    that grants a measure beyond the 基础清单 (basic_list.yaml: the plan's severities, the bases and the
    kinds of subject each measure is for). Nothing is written.
    """
    if not file.exists():
        err.print(f"[bold red]error:[/] {file}: no such file")
        raise typer.Exit(1)
    text = file.read_text(encoding="utf-8")
    try:
        policy = checked_policy(text, file.name)
    except PolicyError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(1) from exc
    console.print(
        f"[green]{file.name}: valid[/], version {policy.version}, {len(policy.rules)} rules, "
        "within the 基础清单"
    )
    table = Table("severity", "unit organizer", "liable person")
    for sev in catalogues().severities:
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
    if not dry_run:
        return
    try:
        with database().session() as s:
            impact = policy_impact(s, policy, china_today())
            s.rollback()  # a dry run: nothing is written
    except SQLAlchemyError as exc:
        err.print(
            f"[yellow]dry run skipped:[/] the database cannot be read ({type(exc).__name__}); "
            "check FCX_DATABASE_URL and `fcx db upgrade`, or pass --no-dry-run"
        )
        return
    _print_impact(impact, details=details)


def _counts(by_measure: dict[str, list[uuid.UUID]]) -> str:
    return ", ".join(f"{m} {len(ids)}" for m, ids in sorted(by_measure.items())) or "-"


def _print_impact(impact: PolicyImpact, *, details: bool) -> None:
    console.print(
        f"\nDry run, {impact.today.isoformat()}: the {impact.entries_in_force} entries in force graded "
        f"under {impact.version} instead of as they are (active policy {impact.active_version}). Entries "
        "keep the version that graded them; a correction grades one again under the active policy."
    )
    if not impact.regraded:
        console.print("No entry in force would be graded differently; no instruction would change.")
        return
    console.print(f"{len(impact.regraded)} entries would be graded differently.")
    if not impact.organisations:
        console.print("No organisation's instructions would change.")
    # One line per organisation (and per measure with --details): easy to read, and to grep.
    for org in impact.organisations:
        console.print(
            f"[bold]{escape(org.name)}[/] ({org.kind}, {org.org_id}): {len(org.entries)} entries; "
            f"newly applied: {_counts(org.applied)}; lifted: {_counts(org.lifted)}",
            soft_wrap=True,
        )
        if details:
            for what, by_measure in (("apply", org.applied), ("lift", org.lifted)):
                for measure, ids in sorted(by_measure.items()):
                    console.print(f"  {what} {measure}: {', '.join(str(i) for i in ids)}", soft_wrap=True)
    if not details:
        console.print("--details names the entries.")
        return
    console.print("[bold]Entries graded differently[/] (before → after; * kept with other parameters)")
    for r in impact.regraded:
        after = [f"{c}*" if c in r.changed else c for c in r.after]
        console.print(
            f"  {r.entry_id}: {', '.join(r.before) or '-'} → {', '.join(after) or '-'}", soft_wrap=True
        )


@policy_app.command("load")
def load(file: Annotated[Path, typer.Argument(help="A policy YAML file with a new version.")]) -> None:
    """Validate and activate a new policy version (entries keep the version that graded them)."""
    try:
        with database().session() as s:
            row = load_policy(s, cli_actor(), file.read_text(encoding="utf-8"), file.name)
            console.print(f"Policy [bold]{row.version}[/] is now active")
    except (PolicyError, Problem) as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
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
