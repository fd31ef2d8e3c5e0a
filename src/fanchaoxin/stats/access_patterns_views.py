"""``GET /v1/decision-log/patterns``: unusual patterns of checks per organisation (admin, auditor)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from fastapi import APIRouter, Query
from pydantic import Field
from sqlalchemy.orm import Session

from fanchaoxin.core import audit, permissions
from fanchaoxin.core.auth import DB, Principal, allow
from fanchaoxin.core.calendar import SHANGHAI, china_today
from fanchaoxin.core.errors import ValidationProblem
from fanchaoxin.core.schemas import ResponseModel
from fanchaoxin.stats import access_patterns

router = APIRouter(prefix="/v1/decision-log", tags=["decision log"])

DEFAULT_DAYS = 30


class FlagOut(ResponseModel):
    code: str = Field(
        description="no_purpose | subjects_above_users | subjects_without_users | enumeration_alarm"
    )
    reason_zh: str
    reason_en: str


class PatternOut(ResponseModel):
    org_id: str
    name: str
    name_en: str | None
    kind: str
    declared_users: int | None
    checks: int
    by_channel: dict[str, int]
    distinct_digests: int = Field(description="Distinct identifier digests checked (≥ distinct people).")
    no_purpose_share: float
    hit_rate: float = Field(description="Share of checks that matched an entry.")
    digests_per_user: float | None = Field(description="Distinct digests per declared user.")
    enumeration_alarms: int
    flagged: bool
    flags: list[FlagOut]


class PatternsOut(ResponseModel):
    since: date
    until: date
    organisations: list[PatternOut] = Field(description="Flagged organisations first, then by checks.")


def _day(name: str, value: str | None) -> date | None:
    if value is None or not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValidationProblem(
            f"{name}: expected a date YYYY-MM-DD, got {value!r}",
            errors=[{"in": "query", "field": name, "type": "date", "message": "expected YYYY-MM-DD"}],
        ) from None


def window(since: str | None, until: str | None, today: date | None = None) -> tuple[date, date]:
    """Whole days in Beijing time, both inclusive; by default the last 30 days up to today."""
    hi = _day("until", until) or (today or china_today())
    lo = _day("since", since) or hi - timedelta(days=DEFAULT_DAYS - 1)
    if hi < lo:
        raise ValidationProblem(
            f"until: {hi.isoformat()} is before since {lo.isoformat()}",
            errors=[{"in": "query", "field": "until", "type": "range", "message": "before since"}],
        )
    return lo, hi


def bounds(lo: date, hi: date) -> tuple[datetime, datetime]:
    start = datetime.combine(lo, time(), SHANGHAI).astimezone(UTC)
    end = datetime.combine(hi + timedelta(days=1), time(), SHANGHAI).astimezone(UTC)
    return start, end


@router.get(
    "/patterns",
    response_model=PatternsOut,
    summary="Unusual patterns of checks per organisation: no purpose, many subjects per user, alarms",
)
def decision_log_patterns(
    session: Session = DB,
    principal: Principal = allow(*permissions.AUDIT_READERS),
    since: str | None = Query(
        None, description="First day, YYYY-MM-DD (Beijing); default 29 days before until."
    ),
    until: str | None = Query(None, description="Last day, YYYY-MM-DD (Beijing), inclusive; default today."),
) -> PatternsOut:
    lo, hi = window(since, until)
    start, end = bounds(lo, hi)
    found = access_patterns.patterns(session, start, end)
    flagged = sum(bool(p.flags) for p in found)
    audit.record_read(
        session, principal.actor, "decision_log.patterns", "decision_log", "-",
        detail={"since": lo.isoformat(), "until": hi.isoformat(), "flagged": flagged},
    )  # fmt: skip
    return PatternsOut(
        since=lo, until=hi, organisations=[PatternOut.model_validate(p.as_dict()) for p in found]
    )
