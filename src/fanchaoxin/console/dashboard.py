"""The platform's dashboard: entries by dimension, measures by enterprise, due-process cases, the queue."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from fanchaoxin.console.auth import CONSOLE_ROLES, page
from fanchaoxin.console.common import ADDRESSEES, console_router
from fanchaoxin.console.review import QUEUE_STATUSES
from fanchaoxin.console.web import PREFIX, redirect, render
from fanchaoxin.core.auth import DB, Principal
from fanchaoxin.core.calendar import china_today
from fanchaoxin.stats import service as stats

router = console_router()

CHARTS = ("behaviour", "severity", "list", "basis", "month", "status")


@router.get("/")
def dashboard(
    request: Request, session: Session = DB, principal: Principal = page(*CONSOLE_ROLES)
) -> Response:
    if principal.role in ADDRESSEES:
        return redirect(request, f"{PREFIX}/org")
    today = china_today()
    charts = {dimension: stats.entries_by(session, dimension) for dimension in CHARTS}
    measures = stats.measures_by_enterprise(session, today=today)
    cases = stats.cases(session, today=today)
    queue = sum(row["count"] for row in charts["status"] if row["key"] in QUEUE_STATUSES)
    return render(request, "dashboard.html", charts=charts, measures=measures, cases=cases, queue=queue)
