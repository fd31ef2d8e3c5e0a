"""`fcx appeals …`: due-process jobs and the overdue list, from the command line.

Wire it in `fanchaoxin/cli.py` with `app.add_typer(appeals_app, name="appeals")`.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

appeals_app = typer.Typer(
    help="Due process: objections (异议), credit repair (信用修复), reports (举报).", no_args_is_help=True
)
console = Console()


def _db():  # type: ignore[no-untyped-def]
    from fanchaoxin.cli import _database

    return _database()


@appeals_app.command("jobs")
def run_jobs() -> None:
    """Flag disputed the entries whose objection reached its flag date; count overdue cases."""
    from fanchaoxin.appeals.service import run_jobs as run

    with _db().session() as s:
        result = run(s)
    console.print(
        f"{result['today']}: {result['disputed']} entries flagged disputed; overdue: "
        f"{result['overdue_objections']} objections, {result['overdue_repairs']} repair applications, "
        f"{result['overdue_reports']} reports"
    )


@appeals_app.command("overdue")
def overdue() -> None:
    """Cases past their deadline (PRC working days), oldest first."""
    from fanchaoxin.appeals import service
    from fanchaoxin.core.auth import Principal
    from fanchaoxin.core.calendar import china_today
    from fanchaoxin.orgs.models import Role

    today = china_today()
    staff = Principal(role=Role.platform_reviewer)
    table = Table("kind", "tracking number", "status", "due", "late for")
    with _db().session() as s:
        for o in service.list_objections(s, staff, overdue=True, limit=1000):
            due = o.answer_due_on if o.status == "forwarded" else o.decide_due_on
            reasons = ", ".join(service.objection_overdue(o, today))
            table.add_row("objection", o.tracking_number, o.status, str(due), reasons)
        for a in service.list_repairs(s, overdue=True, limit=1000):
            table.add_row("repair", a.tracking_number, a.status, str(a.decide_due_on), "decision")
        for r in service.list_reports(s, staff, overdue=True, limit=1000):
            table.add_row("report", r.tracking_number, r.status, str(r.handle_due_on), "handling")
    console.print(table)
