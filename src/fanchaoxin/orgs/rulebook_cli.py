"""`fcx rulebook …`: an enterprise's rulebook (企业规则) — show it, set it from a file, list every
exclusion. The rules are orgs.rulebook's."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.table import Table

from fanchaoxin.core.cli import cli_actor, console, database, fail, problem_message
from fanchaoxin.core.errors import Problem
from fanchaoxin.orgs import rulebook, service

rulebook_app = typer.Typer(
    help="Each enterprise's rulebook: which measures its rules allow (企业规则).", no_args_is_help=True
)

_ORG = typer.Argument(help="Organisation id, USCC or exact name.")


def read_rules(path: Path) -> list[dict[str, Any]]:
    """Rules from a YAML file (a list of {measure, applicable, clause}, or {rules: [...]}) or a CSV file
    with the columns measure, applicable, clause. Rows are counted from 0 (`rules[0]`), as errors name
    them."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".csv":
        return [dict(row) for row in csv.DictReader(io.StringIO(text))]
    data = yaml.safe_load(text) or []
    if isinstance(data, dict) and "rules" in data:
        data = data["rules"]
    if not isinstance(data, list):
        fail(f"{path}: expected a list of rules (measure, applicable, clause)")
    return list(data)


def _print(session: Any, org: Any) -> None:
    rules = {r.measure: r for r in rulebook.rulebook_of(session, org)}
    table = Table(title=f"{org.name}: rulebook")
    for col in ("No.", "measure", "applicable", "clause"):
        table.add_column(col)
    for m in rulebook.measures():
        r = rules.get(m.code)
        state = "no rule (allowed)" if r is None else ("allowed" if r.applicable else "EXCLUDED")
        table.add_row(str(m.number), f"{m.code} {m.zh}", state, r.clause if r else "")
    console.print(table)


@rulebook_app.command("show")
def show(org: Annotated[str, _ORG]) -> None:
    """The enterprise's rulebook: each of the 13 measures allowed or excluded, with the clause."""
    try:
        with database().session() as session:
            _print(session, service.find_organisation(session, org))
    except Problem as exc:
        fail(problem_message(exc))


@rulebook_app.command("set")
def set_(
    org: Annotated[str, _ORG],
    file: Annotated[
        Path,
        typer.Option("--file", exists=True, dir_okay=False, help="YAML or CSV: measure, applicable, clause."),
    ],
) -> None:
    """Replace the enterprise's rulebook with the file's rules (audited; nothing is written on an error)."""
    rules = read_rules(file)
    try:
        with database().session() as session:
            organisation = service.find_organisation(session, org)
            rulebook.set_rulebook(session, cli_actor(), organisation, rules)
            _print(session, organisation)
    except Problem as exc:
        fail(problem_message(exc))


@rulebook_app.command("exclusions")
def exclusions() -> None:
    """Every measure an enterprise's rules exclude, and why."""
    with database().session() as session:
        rows = rulebook.exclusions(session)
    table = Table(title="Measures excluded by enterprises' rules")
    for col in ("enterprise", "No.", "measure", "clause"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["org_name"], str(r["number"] or ""), f"{r['measure']} {r['measure_zh']}", r["clause"])
    console.print(table)
    if not rows:
        console.print("No enterprise's rules exclude a measure.")
