"""`fcx appeals …`: due process from the command line — the overdue list.

Wired in `fanchaoxin/cli.py` with `app.add_typer(appeals_app, name="appeals")`. `fcx appeals jobs`
flags entries disputed, a step of the entry too: it is the workflow's (`workflows.cli`), added to
this group there.
"""

from __future__ import annotations

import typer
from rich.table import Table

from fanchaoxin.appeals import objections, repair, reports
from fanchaoxin.core.auth import Principal
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.cli import console, database
from fanchaoxin.core.roles import Role

appeals_app = typer.Typer(
    help="Due process: objections (异议), credit repair (信用修复), reports (举报).", no_args_is_help=True
)


@appeals_app.command("overdue")
def overdue() -> None:
    """Cases past their deadline (PRC working days), oldest first."""
    today = china_today()
    staff = Principal(role=Role.platform_reviewer)
    table = Table("kind", "tracking number", "status", "due", "late for")
    with database().session() as s:
        for o in objections.list_objections(s, staff, overdue=True, limit=1000):
            due = o.answer_due_on if o.status == "forwarded" else o.decide_due_on
            reasons = ", ".join(objections.objection_overdue(o, today))
            table.add_row("objection", o.tracking_number, o.status, str(due), reasons)
        for a in repair.list_repairs(s, overdue=True, limit=1000):
            table.add_row("repair", a.tracking_number, a.status, str(a.decide_due_on), "decision")
        for r in reports.list_reports(s, staff, overdue=True, limit=1000):
            table.add_row("report", r.tracking_number, r.status, str(r.handle_due_on), "handling")
    console.print(table)
