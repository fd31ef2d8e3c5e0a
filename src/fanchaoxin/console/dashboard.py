"""The platform's dashboard: entries by dimension and measures by enterprise over a date range (the last
30 days unless chosen, Beijing days), the due-process cases and the review queue as they stand, and the
time the figures were taken ("as of")."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from fanchaoxin.console.auth import CONSOLE_ROLES, page
from fanchaoxin.console.common import ADDRESSEES, console_router
from fanchaoxin.console.i18n import translator
from fanchaoxin.console.review import QUEUE_STATUSES
from fanchaoxin.console.web import PREFIX, locale_of, redirect, render
from fanchaoxin.core.auth import DB, Principal
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.db import utcnow
from fanchaoxin.stats import service as stats

router = console_router()

CHARTS = ("behaviour", "severity", "list", "basis", "month", "status")
DEFAULT_DAYS = 30


def date_range(raw_from: str, raw_to: str, today: date, locale: str) -> tuple[date, date, dict[str, str]]:
    """The range asked for, or the last 30 days; what was wrong with it, by field, in the reader's words."""
    _ = translator(locale)
    errors: dict[str, str] = {}
    start, end = today - timedelta(days=DEFAULT_DAYS - 1), today
    parsed: dict[str, date] = {}
    for name, raw in (("date_from", raw_from), ("date_to", raw_to)):
        if raw.strip():
            try:
                parsed[name] = date.fromisoformat(raw.strip())
            except ValueError:
                errors[name] = _("Enter a date as YYYY-MM-DD, e.g. 2026-12-01.")
    start = parsed.get("date_from", start)
    end = parsed.get("date_to", end)
    if end < start:
        errors["date_to"] = _("The end date is before the start date.")
        start, end = today - timedelta(days=DEFAULT_DAYS - 1), today
    return start, end, errors


@router.get("/")
def dashboard(
    request: Request,
    session: Session = DB,
    principal: Principal = page(*CONSOLE_ROLES),
    date_from: str = "",
    date_to: str = "",
) -> Response:
    if principal.role in ADDRESSEES:
        return redirect(request, f"{PREFIX}/org")
    as_of = utcnow()
    today = china_today()
    start, end, errors = date_range(date_from, date_to, today, locale_of(request))
    charts: dict[str, Any] = {d: stats.entries_by(session, d, start=start, end=end) for d in CHARTS}
    measures = stats.measures_by_enterprise(session, start=start, end=end, today=today)
    cases = stats.cases(session, today=today)
    # The queue is work waiting now, whenever it was submitted: not limited to the range.
    queue = sum(r["count"] for r in stats.entries_by(session, "status") if r["key"] in QUEUE_STATUSES)
    return render(
        request,
        "dashboard.html",
        charts=charts,
        measures=measures,
        cases=cases,
        queue=queue,
        start=start,
        end=end,
        as_of=as_of,
        errors=errors,
        typed={"date_from": date_from or start.isoformat(), "date_to": date_to or end.isoformat()},
    )
