"""Console page: the coordination figures (协同情况) of a month, per enterprise — what a consultation
(定期会商) needs on one page. Platform staff and departments see every enterprise, worst on-time rate
first; an enterprise's operator sees its own row."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from fanchaoxin.console import problems
from fanchaoxin.console.auth import CONSOLE_ROLES, page
from fanchaoxin.console.common import PLATFORM, console_router
from fanchaoxin.console.web import locale_of, render
from fanchaoxin.core.auth import DB, Principal
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.errors import ValidationProblem
from fanchaoxin.core.permissions import STATS_MEASURE_READERS, own_figures_only
from fanchaoxin.stats import coordination as figures

router = console_router()

ROLES = STATS_MEASURE_READERS & CONSOLE_ROLES
SORTS = ("rate", "name", "overdue", "objections")


def _sorted(rows: list[dict[str, Any]], sort: str) -> list[dict[str, Any]]:
    if sort == "name":
        return sorted(rows, key=lambda r: r["org_name"])
    if sort == "overdue":
        return sorted(rows, key=lambda r: (-r["action_items_overdue"], -r["overdue"], r["org_name"]))
    if sort == "objections":
        return sorted(rows, key=lambda r: (-r["upheld_against"], -r["objections"], r["org_name"]))
    return rows  # the service's order: the worst on-time rate first


@router.get("/coordination")
def coordination_page(
    request: Request,
    session: Session = DB,
    principal: Principal = page(*ROLES),
    month: str = "",
    sort: str = "rate",
) -> Response:
    today = china_today()
    errors: dict[str, str] = {}
    try:
        start, end = figures.period_from_query(today, month=month or None)
    except ValidationProblem as exc:
        errors = problems.describe(exc, locale_of(request)).by_field
        start, end = figures.period_from_query(today)
    own = principal.org_id if own_figures_only(principal) else None
    data = figures.coordination(session, today=today, start=start, end=end, org_id=own)
    sort = sort if sort in SORTS else "rate"
    standing = {r["org_id"]: problems.message(r["agreement"], {}, locale_of(request)) for r in data["rows"]}
    return render(
        request,
        "coordination.html",
        data=data,
        rows=_sorted(data["rows"], sort),
        standing=standing,
        sort=sort,
        sorts=SORTS,
        month=figures.month_of(start),
        typed_month=month if errors else figures.month_of(start),
        errors=errors,
        org_links=principal.role in PLATFORM,
        own_only=own is not None,
    )
