"""Coordination figures (协同情况): per enterprise, the facts a consultation (定期会商) needs.

For every active enterprise, in a period (by default the calendar month of `today`, Beijing time):

- **instructions** addressed to it and issued in the period (`Instruction.issued_at`, as the statistics
  count them): apply instructions `issued`; `acknowledged_on_time` (acknowledged by the end of its
  `ack_due_on`, Beijing time); `executed`, `failed`, `not_applicable` (its reported outcome);
  `executed_on_time` (acknowledged on time *and* reported executed); `excluded_by_rules` (issued as "not
  applicable by its rules", a final status: never unexecuted, never overdue); `overdue` (either kind,
  still unacknowledged after its due day as of `today`, as `Instruction.overdue` says); and the
  **on-time rate** = executed on time ÷ (issued − excluded by its rules − not applicable), `None` when
  that is 0;
- **objections caused by its findings**: objections to entries it submitted (`Entry.owner_org_id`),
  `objections` filed in the period, `objections_decided` in the period and, of those,
  `upheld_against` it — decided `corrected` or `revoked` (an objection decided `upheld` upholds the
  entry, i.e. it is rejected). Filed and decided are counted as the monthly report counts them, so the
  rows add up to its objection totals (for the enterprises' entries);
- **action items** (督办事项) it owns: `action_items_open` as of `today` (created by then, not closed by
  then), and `action_items_overdue` (of those, due before `today`, as `ActionItem.overdue` says) — not
  bound to the period.

`today` is the day the figures are as of: the monthly report of a past month passes its last day, so a
report printed later says what was true then.

Three GROUP BY queries (instructions, objections, action items) and one for the enterprises.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from fanchaoxin.appeals.models import Objection
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.consultation.models import ActionItem
from fanchaoxin.core.db import is_postgres
from fanchaoxin.core.errors import ValidationProblem
from fanchaoxin.core.roles import OrgKind
from fanchaoxin.orgs import agreements
from fanchaoxin.orgs.models import Organisation
from fanchaoxin.sanctions.models import Instruction
from fanchaoxin.sanctions.service import EXCLUDED_BY_RULES
from fanchaoxin.stats.service import _count, _period, day_start, parse_month

UPHELD_AGAINST = ("corrected", "revoked")  # objection outcomes that correct or revoke the entry

_INSTRUCTION_FIGURES = (
    "issued", "acknowledged_on_time", "overdue", "executed", "executed_on_time", "failed", "not_applicable",
    "excluded_by_rules",
)  # fmt: skip
_OBJECTION_FIGURES = ("objections", "objections_decided", "upheld_against")
_ACTION_FIGURES = ("action_items_open", "action_items_overdue")


@dataclass(frozen=True)
class EnterpriseFigures:
    """One enterprise's row. `agreement`: its agreement standing's code (orgs.agreements.standing:
    `agreement.in_force`, `agreement.suspended`, `agreement.lapsed` …), `agreement_in_force` whether it
    takes part now."""

    org_id: uuid.UUID
    org_name: str
    org_name_en: str | None
    agreement: str
    agreement_in_force: bool
    issued: int = 0
    acknowledged_on_time: int = 0
    overdue: int = 0
    executed: int = 0
    executed_on_time: int = 0
    failed: int = 0
    not_applicable: int = 0
    excluded_by_rules: int = 0
    objections: int = 0
    objections_decided: int = 0
    upheld_against: int = 0
    action_items_open: int = 0
    action_items_overdue: int = 0

    @property
    def on_time_base(self) -> int:
        """What it could execute: issued, less those its rules exclude and those not applicable."""
        return max(self.issued - self.excluded_by_rules - self.not_applicable, 0)

    @property
    def on_time_rate(self) -> float | None:
        """Executed on time ÷ `on_time_base`; None when there was nothing it could execute."""
        base = self.on_time_base
        return round(self.executed_on_time / base, 4) if base else None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["org_id"] = str(self.org_id)
        out["on_time_base"] = self.on_time_base
        out["on_time_rate"] = self.on_time_rate
        return out


# --- the period -----------------------------------------------------------------------------------------


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def resolve_period(start: date | None, end: date | None, today: date) -> tuple[date, date]:
    """The period asked for: start to end; a missing end is the end of start's month, a missing start
    the first of end's month; neither: the calendar month of `today`. ValueError naming `end` when it is
    before `start`."""
    if start is None and end is None:
        return parse_month(month_of(today))
    if start is None:
        assert end is not None
        start = end.replace(day=1)
    if end is None:
        end = parse_month(month_of(start))[1]
    if end < start:
        raise ValueError(f"end: {end.isoformat()} is before start {start.isoformat()}")
    return start, end


def _invalid(field: str, message: str, code: str, **params: Any) -> ValidationProblem:
    return ValidationProblem.on_field(field, message, "value", code=code, params=params, where="query")


def _day(field: str, value: str | None) -> date | None:
    if value is None or not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError as exc:
        raise _invalid(
            field, f"expected a date YYYY-MM-DD, got {value!r}", "coordination.bad_date", got=value[:40]
        ) from exc


def period_from_query(
    today: date, *, month: str | None = None, start: str | None = None, end: str | None = None
) -> tuple[date, date]:
    """The period a page or the API was asked for (`month=2026-11`, or `start`/`end` days), checked:
    a 422 naming `month`, `start` or `end` otherwise. Nothing asked: the month of `today`."""
    month = (month or "").strip() or None
    lo, hi = _day("start", start), _day("end", end)
    if month is not None:
        if lo is not None or hi is not None:
            raise _invalid("month", "give a month or start/end, not both", "coordination.month_and_days")
        try:
            return parse_month(month)
        except ValueError as exc:
            raise _invalid(
                "month", f"expected YYYY-MM (e.g. 2026-10), got {month!r}", "coordination.bad_month",
                got=month[:40],
            ) from exc  # fmt: skip
    if lo is not None and hi is not None and hi < lo:
        raise _invalid(
            "end", f"{hi.isoformat()} is before start {lo.isoformat()}", "coordination.end_before_start",
            **{"from": lo.isoformat(), "until": hi.isoformat()},
        )  # fmt: skip
    return resolve_period(lo, hi, today)


# --- the rule: acknowledged on time ---------------------------------------------------------------------


def _beijing_date(session: Session, column: Any) -> Any:
    """The Beijing-time day of a UTC timestamp column, comparable with a Date column."""
    if is_postgres(session):
        return func.date(func.timezone("Asia/Shanghai", column))
    return func.date(column, "+8 hours")


def acknowledged_on_time_clause(session: Session) -> Any:
    """An instruction acknowledged by the end of its due day (Beijing time): the complement, once its
    due day has passed, of `Instruction.overdue`."""
    return and_(
        Instruction.acknowledged_at.is_not(None),
        _beijing_date(session, Instruction.acknowledged_at) <= Instruction.ack_due_on,
    )


def overdue_clause(as_of: date) -> Any:
    """Overdue as of a day: due before it and not acknowledged by its end (for today: unacknowledged, as
    `Instruction.overdue(today)` says) — the statistics' rule (`stats.service`) — leaving out those its
    rules exclude (a final status, never overdue)."""
    return and_(
        Instruction.ack_due_on < as_of,
        or_(
            Instruction.acknowledged_at.is_(None),
            Instruction.acknowledged_at >= day_start(as_of + timedelta(days=1)),
        ),
        func.coalesce(Instruction.outcome, "") != EXCLUDED_BY_RULES,
    )


def open_action_item_clause(as_of: date) -> Any:
    """Open at the end of a day: created by then and not closed by then (for today: status open)."""
    tomorrow = day_start(as_of + timedelta(days=1))
    return and_(
        ActionItem.created_at < tomorrow,
        or_(ActionItem.status == "open", ActionItem.closed_at >= tomorrow),
    )


# --- the figures ----------------------------------------------------------------------------------------


def _instruction_figures(
    session: Session, start: date, end: date, today: date, org_id: uuid.UUID | None
) -> dict[uuid.UUID, dict[str, int]]:
    apply = Instruction.kind == "apply"
    excluded = Instruction.outcome == EXCLUDED_BY_RULES
    # Those its rules exclude are final (acknowledged) at issue: never counted as acknowledged on time.
    on_time = and_(
        acknowledged_on_time_clause(session), func.coalesce(Instruction.outcome, "") != EXCLUDED_BY_RULES
    )
    executed = Instruction.outcome == "executed"
    stmt = (
        select(
            Instruction.owner_org_id,
            _count(apply).label("issued"),
            _count(and_(apply, on_time)).label("acknowledged_on_time"),
            _count(overdue_clause(today)).label("overdue"),
            _count(and_(apply, executed)).label("executed"),
            _count(and_(apply, executed, on_time)).label("executed_on_time"),
            _count(and_(apply, Instruction.outcome == "failed")).label("failed"),
            _count(and_(apply, Instruction.outcome == "not_applicable")).label("not_applicable"),
            _count(and_(apply, excluded)).label("excluded_by_rules"),
        )
        .where(*_period(Instruction.issued_at, start, end))
        .group_by(Instruction.owner_org_id)
    )
    if org_id is not None:
        stmt = stmt.where(Instruction.owner_org_id == org_id)
    return {
        r.owner_org_id: {k: int(getattr(r, k) or 0) for k in _INSTRUCTION_FIGURES}
        for r in session.execute(stmt)
    }


def _objection_figures(
    session: Session, start: date, end: date, org_id: uuid.UUID | None
) -> dict[uuid.UUID, dict[str, int]]:
    filed = and_(Objection.filed_on >= start, Objection.filed_on <= end)
    decided = and_(Objection.decided_on >= start, Objection.decided_on <= end)
    stmt = (
        select(
            Entry.owner_org_id,
            _count(filed).label("objections"),
            _count(decided).label("objections_decided"),
            _count(and_(decided, Objection.outcome.in_(UPHELD_AGAINST))).label("upheld_against"),
        )
        .select_from(Objection)
        .join(Entry, Entry.id == Objection.entry_id)
        .where(or_(filed, decided))
        .group_by(Entry.owner_org_id)
    )
    if org_id is not None:
        stmt = stmt.where(Entry.owner_org_id == org_id)
    return {
        r.owner_org_id: {k: int(getattr(r, k) or 0) for k in _OBJECTION_FIGURES}
        for r in session.execute(stmt)
    }


def _action_item_figures(
    session: Session, today: date, org_id: uuid.UUID | None
) -> dict[uuid.UUID, dict[str, int]]:
    open_ = open_action_item_clause(today)
    stmt = (
        select(
            ActionItem.owner_org_id,
            func.count().label("action_items_open"),
            _count(ActionItem.due_on < today).label("action_items_overdue"),
        )
        .where(open_)
        .group_by(ActionItem.owner_org_id)
    )
    if org_id is not None:
        stmt = stmt.where(ActionItem.owner_org_id == org_id)
    return {
        r.owner_org_id: {k: int(getattr(r, k) or 0) for k in _ACTION_FIGURES} for r in session.execute(stmt)
    }


def coordination_figures(
    session: Session,
    *,
    start: date | None,
    end: date | None,
    today: date,
    org_id: uuid.UUID | None = None,
) -> list[EnterpriseFigures]:
    """Every active enterprise's figures (module docstring), or only `org_id`'s; ordered by the worst
    on-time rate first (none last), then by name. `start`/`end` default to the month of `today`."""
    start, end = resolve_period(start, end, today)
    instructions = _instruction_figures(session, start, end, today, org_id)
    objections = _objection_figures(session, start, end, org_id)
    actions = _action_item_figures(session, today, org_id)
    orgs = select(Organisation).where(Organisation.kind == OrgKind.enterprise.value)
    if org_id is not None:
        orgs = orgs.where(Organisation.id == org_id)
    else:
        orgs = orgs.where(Organisation.active.is_(True))
    enterprises = list(session.scalars(orgs))
    standing = agreements.standings(session, enterprises, today)
    out = [
        EnterpriseFigures(
            org_id=org.id,
            org_name=org.name,
            org_name_en=org.name_en,
            agreement=standing[org.id].code,
            agreement_in_force=standing[org.id].in_force,
            **instructions.get(org.id, {}),
            **objections.get(org.id, {}),
            **actions.get(org.id, {}),
        )
        for org in enterprises
    ]
    return sorted(out, key=worst_first)


def worst_first(row: EnterpriseFigures) -> tuple[bool, float, int, str]:
    """Order: the lowest on-time rate first, enterprises with nothing to execute last; then the most
    overdue action items; then by name."""
    rate = row.on_time_rate
    return (rate is None, rate if rate is not None else 0.0, -row.action_items_overdue, row.org_name)


def totals(rows: list[EnterpriseFigures]) -> dict[str, Any]:
    """The sums of every count over the rows, and the on-time rate of the sums."""
    keys = (*_INSTRUCTION_FIGURES, *_OBJECTION_FIGURES, *_ACTION_FIGURES)
    out: dict[str, Any] = {k: sum(getattr(r, k) for r in rows) for k in keys}
    base = max(out["issued"] - out["excluded_by_rules"] - out["not_applicable"], 0)
    out["on_time_base"] = base
    out["on_time_rate"] = round(out["executed_on_time"] / base, 4) if base else None
    return out


def coordination(
    session: Session,
    *,
    today: date,
    start: date | None = None,
    end: date | None = None,
    org_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """The figures as one document (API, console, monthly report): period, rows, totals — as of the
    period's last day, or `today` while the period runs (a past month says what was true at its end)."""
    start, end = resolve_period(start, end, today)
    as_of = min(end, today)
    rows = coordination_figures(session, start=start, end=end, today=as_of, org_id=org_id)
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "as_of": as_of.isoformat(),
        "complete": today > end,
        "rows": [r.as_dict() for r in rows],
        "totals": totals(rows),
    }
