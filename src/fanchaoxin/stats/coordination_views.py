"""Routes of the coordination figures (协同情况): per enterprise, the facts a consultation needs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from sqlalchemy.orm import Session

from fanchaoxin.core.auth import DB, Principal, allow
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.errors import ValidationProblem
from fanchaoxin.core.permissions import STATS_MEASURE_READERS, own_figures_only
from fanchaoxin.stats import coordination as figures
from fanchaoxin.stats.export import columns_of, to_csv

router = APIRouter(prefix="/v1/stats", tags=["coordination"])

FORMATS = ("json", "csv")
COLUMNS = ("org_id", "org_name", "org_name_en", "agreement", "agreement_in_force", "issued",
           "acknowledged_on_time", "overdue", "executed", "executed_on_time", "failed", "not_applicable",
           "excluded_by_rules", "on_time_base", "on_time_rate", "objections", "objections_decided",
           "upheld_against", "action_items_open", "action_items_overdue")  # fmt: skip


@router.get(
    "/coordination",
    summary="Coordination figures per enterprise: instructions on time, objections, action items",
    description="For each active enterprise, in a month (`month=2026-11`) or between two days (`start`, "
    "`end`; by default the current month, Beijing time): instructions issued, acknowledged on time, "
    "overdue, executed (on time), failed, not applicable, excluded by its rules, and the on-time rate "
    "(executed on time ÷ (issued − excluded by its rules − not applicable)); objections to its entries "
    "filed, decided and upheld against it (the entry corrected or revoked); action items it owns open "
    "and overdue. Platform staff and departments see every enterprise; an enterprise its own row.",
)
def coordination(
    session: Session = DB,
    principal: Principal = allow(*STATS_MEASURE_READERS),
    month: str | None = Query(None, description="A month, YYYY-MM (Beijing time)."),
    start: str | None = Query(None, description="First day (YYYY-MM-DD), inclusive."),
    end: str | None = Query(None, description="Last day (YYYY-MM-DD), inclusive."),
    format: str = Query("json", description="json or csv (UTF-8 with BOM)"),
) -> Any:
    fmt = format.strip().lower()
    if fmt not in FORMATS:
        message = f"unknown format {format!r}; one of {', '.join(FORMATS)}"
        raise ValidationProblem(
            f"format: {message}",
            errors=[{"in": "query", "field": "format", "type": "value", "message": message}],
        )
    today = china_today()
    lo, hi = figures.period_from_query(today, month=month, start=start, end=end)
    # An enterprise sees its own row only; platform staff and departments (who take part in the
    # consultation and already see every addressee's instruction figures) see every enterprise.
    own = principal.org_id if own_figures_only(principal) else None
    body = figures.coordination(session, today=today, start=lo, end=hi, org_id=own)
    if fmt == "json":
        return body
    rows = body["rows"]
    name = f"fcx-stats-coordination-{body['from']}-{body['to']}"
    return Response(
        to_csv(rows, columns_of(rows, COLUMNS)),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )
