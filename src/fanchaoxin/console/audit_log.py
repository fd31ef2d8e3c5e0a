"""The audit log for auditors: search by action, actor, target and dates (Beijing days), newest first,
100 at a time (htmx loads the next rows); every search is itself audited."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from fanchaoxin.console.auth import page
from fanchaoxin.console.common import AUDITORS, console_router
from fanchaoxin.console.web import render
from fanchaoxin.core import audit
from fanchaoxin.core.auth import DB, Principal
from fanchaoxin.core.schemas import INT64_MAX
from fanchaoxin.core.settings import get_settings

router = console_router()

PAGE = 100


def _pattern(text: str) -> str:
    """What the searcher typed, as a LIKE pattern: `*` matches any run of characters."""
    return text.strip().replace("*", "%")


def _day_bound(name: str, raw: str, *, end: bool, errors: list[str]) -> datetime | None:
    """The start of a day in the display time zone (of the day after, for the end of a range)."""
    if not raw.strip():
        return None
    try:
        day = date.fromisoformat(raw.strip())
    except ValueError:
        errors.append(f"{name}: YYYY-MM-DD")
        return None
    tz = ZoneInfo(get_settings().timezone_display)
    return datetime.combine(day + timedelta(days=1) if end else day, time(), tzinfo=tz)


@router.get("/audit")
def audit_search(
    request: Request,
    session: Session = DB,
    principal: Principal = page(*AUDITORS),
    action: str = "",
    actor: str = "",
    target_id: str = "",
    date_from: str = "",
    date_to: str = "",
    before: Annotated[int | None, Query(ge=1, le=INT64_MAX)] = None,
) -> Response:
    errors: list[str] = []
    since = _day_bound("date_from", date_from, end=False, errors=errors)
    until = _day_bound("date_to", date_to, end=True, errors=errors)
    rows = (
        []
        if errors
        else audit.search(
            session,
            action=_pattern(action),
            actor=_pattern(actor),
            target_id=target_id.strip(),
            since=since,
            until=until,
            before_id=before,
            limit=PAGE,
        )
    )
    audit.record_read(
        session, principal.actor, "audit.search", "audit_log", "-",
        detail={"action": action, "actor": actor, "target_id": target_id, "results": len(rows)},
    )  # fmt: skip
    more = rows[-1].id if len(rows) == PAGE else None
    template = "audit_rows.html" if request.headers.get("hx-request") else "audit.html"
    return render(
        request,
        template,
        rows=rows,
        errors=errors,
        q={
            "action": action,
            "actor": actor,
            "target_id": target_id,
            "date_from": date_from,
            "date_to": date_to,
        },
        more=more,
    )
