"""Aggregate figures, computed in the database (GROUP BY) on SQLite and PostgreSQL alike.

Periods are whole days in Beijing time (Asia/Shanghai, where the platform's calendar lives): a
`start`/`end` date pair is turned into UTC bounds `[start 00:00 +08:00, end+1 00:00 +08:00)` so the
comparison runs on the stored UTC column. "Month" keys are Beijing-time months too.

The web console's dashboard and public statistics page call these functions directly; their names
and row shapes are a contract (extra keys may be added, none removed).

Two lists (两类名单, lists.yaml): the public statistics count the public 失信 list only and say so
(`public_summary`); the figures for staff count both, and show them apart (the `list` dimension, the
monthly report's `by_list` and `entries_by_list`).
"""

from __future__ import annotations

import re
import time as clock
import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from fanchaoxin.appeals.models import Objection, RepairApplication, Report
from fanchaoxin.appeals.objections import overdue_clause as objection_overdue_clause
from fanchaoxin.blacklist.lifecycle import IN_FORCE, Status
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.core.calendar import SHANGHAI, add_working_days, china_today
from fanchaoxin.core.catalogue import catalogues, list_of, public_bases
from fanchaoxin.core.db import is_postgres
from fanchaoxin.core.roles import OrgKind
from fanchaoxin.orgs import rulebook
from fanchaoxin.orgs.models import Organisation
from fanchaoxin.sanctions.models import Instruction
from fanchaoxin.sanctions.policy import measure_catalogue
from fanchaoxin.sanctions.service import EXCLUDED_BY_RULES
from fanchaoxin.subjects.models import Subject

DIMENSIONS = ("behaviour", "severity", "basis", "list", "month", "status", "subject_kind")
DUE_SOON_WORKING_DAYS = 2

ORG_KIND_LABELS = {"enterprise": ("参与企业", "Enterprise"), "department": ("政府部门", "Department")}
ENDED = (Status.expired.value, Status.revoked.value, Status.repaired.value)
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


# --- periods -------------------------------------------------------------------------------------------


def day_start(day: date) -> datetime:
    """00:00 Beijing time of `day`, in UTC (the stored columns are UTC)."""
    return datetime.combine(day, time(), SHANGHAI).astimezone(UTC)


def _period(column: Any, start: date | None, end: date | None) -> list[Any]:
    if start is not None and end is not None and end < start:
        raise ValueError(f"end: {end.isoformat()} is before start {start.isoformat()}")
    clauses = []
    if start is not None:
        clauses.append(column >= day_start(start))
    if end is not None:
        clauses.append(column < day_start(end + timedelta(days=1)))
    return clauses


def parse_month(month: str) -> tuple[date, date]:
    """ "2026-10" → (1 October, 31 October); anything else is a ValueError naming `month`."""
    m = _MONTH.match(month.strip()) if isinstance(month, str) else None
    if m is None:
        raise ValueError(f"month: expected YYYY-MM (e.g. 2026-10), got {month!r}")
    first = date(int(m.group(1)), int(m.group(2)), 1)
    return first, (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def _previous_month(first: date) -> str:
    prev = first - timedelta(days=1)
    return f"{prev.year:04d}-{prev.month:02d}"


def _month_key(session: Session, column: Any) -> Any:
    """YYYY-MM of a UTC timestamp column, in Beijing time."""
    if is_postgres(session):
        return func.to_char(func.timezone("Asia/Shanghai", column), "YYYY-MM")
    return func.strftime("%Y-%m", column, "+8 hours")


def _behaviour_values(session: Session) -> Any:
    """The entry's behaviours (a JSON list) as rows, one per behaviour."""
    if is_postgres(session):
        return func.json_array_elements_text(Entry.behaviours).table_valued("value", joins_implicitly=True)
    return func.json_each(Entry.behaviours).table_valued("value", joins_implicitly=True)


def _count(expr: Any) -> Any:
    return func.coalesce(func.sum(case((expr, 1), else_=0)), 0)


# A dimension's labels come from its catalogue (zh, en); months are their own label.
_VOCABULARY = {
    "behaviour": "behaviour",
    "severity": "severity",
    "basis": "basis",
    "list": "list",
    "status": "entry_status",
    "subject_kind": "subject_kind",
}


def _label(dimension: str, key: str) -> tuple[str, str]:
    vocabulary = _VOCABULARY.get(dimension)
    return catalogues().names(vocabulary, key) if vocabulary else (key, key)


def _list_column() -> Any:
    """The list (lists.yaml code) of an entry, from its basis: `public` or `shared`."""
    return case({b: list_of(b) for b in catalogues().bases}, value=Entry.basis, else_=Entry.basis)


def describe_list(code: str) -> dict[str, str]:
    """A list's code, names and meaning, for a page or an export that says which list it counts."""
    item = catalogues().lists[code]
    return {
        "code": item.code,
        "label_zh": item.zh,
        "label_en": item.en,
        "meaning_zh": item.meaning_zh,
        "meaning_en": item.meaning_en,
    }


def public_list() -> str:
    """The code of the public 失信 list, the one the public statistics count."""
    return next(code for code, item in catalogues().lists.items() if item.public)


# --- entries --------------------------------------------------------------------------------------------


def entries_by(
    session: Session,
    dimension: str,
    *,
    start: date | None = None,
    end: date | None = None,
    published_only: bool = False,
    statuses: Iterable[str] | None = None,
    bases: Iterable[str] | None = None,
) -> list[dict[str, Any]]:
    """Entries counted by one dimension: `[{"key", "count", "label_zh", "label_en"}]`, sorted by key.

    The period is on the submission time, or on the publication time with `published_only` (then only
    entries that were published, whatever happened to them since, are counted). An entry with several
    behaviours counts once under each. `statuses` restricts to entries now in those statuses, `bases`
    to entries on those bases (`public_bases()`: the public list).
    """
    if dimension not in DIMENSIONS:
        raise ValueError(f"dimension: unknown dimension {dimension!r}; one of {', '.join(DIMENSIONS)}")
    when = Entry.published_at if published_only else Entry.submitted_at
    where = _period(when, start, end)
    if published_only:
        where.append(Entry.published_at.is_not(None))
    if statuses is not None:
        where.append(Entry.status.in_(list(statuses)))
    if bases is not None:
        where.append(Entry.basis.in_(sorted(bases)))

    if dimension == "behaviour":
        values = _behaviour_values(session)
        key: Any = values.c.value
        stmt = select(key, func.count()).select_from(Entry, values)
    elif dimension == "subject_kind":
        key = Subject.kind
        stmt = select(key, func.count()).select_from(Entry).join(Subject, Subject.id == Entry.subject_id)
    elif dimension == "month":
        key = _month_key(session, when)
        stmt = select(key, func.count()).select_from(Entry)
    elif dimension == "list":
        key = _list_column()
        stmt = select(key, func.count()).select_from(Entry)
    else:
        key = {"severity": Entry.severity, "basis": Entry.basis, "status": Entry.status}[dimension]
        stmt = select(key, func.count()).select_from(Entry)
    rows = session.execute(stmt.where(*where).group_by(key)).all()
    out = []
    for k, n in sorted(((str(k), int(n)) for k, n in rows if k is not None), key=lambda r: r[0]):
        zh, en = _label(dimension, k)
        out.append({"key": k, "count": n, "label_zh": zh, "label_en": en})
    return out


def bases_of_list(code: str) -> frozenset[str]:
    """The bases whose entries form the list `code` (lists.yaml)."""
    return frozenset(b for b in catalogues().bases if list_of(b) == code)


def _entry_totals(
    session: Session, start: date, end: date, *, bases: Iterable[str] | None = None
) -> dict[str, int]:
    """Entries submitted, published, ended (by how) in a period, and in force at its end: one scan.
    `bases`: entries on those bases only (one list)."""
    lo, hi = day_start(start), day_start(end + timedelta(days=1))
    ended_in = and_(Entry.ended_at >= lo, Entry.ended_at < hi)
    on_bases = [Entry.basis.in_(sorted(bases))] if bases is not None else []
    row = session.execute(
        select(
            _count(and_(Entry.submitted_at >= lo, Entry.submitted_at < hi)).label("submitted"),
            _count(and_(Entry.published_at >= lo, Entry.published_at < hi)).label("published"),
            *[
                _count(and_(ended_in, Entry.status == st)).label(st)
                for st in ("revoked", "expired", "repaired", "rejected")
            ],
            _count(and_(Entry.published_at < hi, or_(Entry.ended_at.is_(None), Entry.ended_at >= hi))).label(
                "in_force_at_end"
            ),
        ).where(*on_bases)
    ).one()
    ended = {st: getattr(row, st) for st in ("revoked", "expired", "repaired", "rejected")}
    submitted, published, in_force_at_end = row.submitted, row.published, row.in_force_at_end
    revoked_after_objection = session.scalar(
        select(func.count(func.distinct(Entry.id)))
        .select_from(Entry)
        .join(Objection, Objection.entry_id == Entry.id)
        .where(
            Entry.status == Status.revoked.value,
            Entry.ended_at >= lo,
            Entry.ended_at < hi,
            Objection.outcome == "revoked",
            *on_bases,
        )
    )
    return {
        "submitted": int(submitted or 0),
        "published": int(published or 0),
        "revoked": int(ended.get(Status.revoked.value, 0)),
        "revoked_after_objection": int(revoked_after_objection or 0),
        "expired": int(ended.get(Status.expired.value, 0)),
        "repaired": int(ended.get(Status.repaired.value, 0)),
        "rejected": int(ended.get(Status.rejected.value, 0)),
        "in_force_at_end": int(in_force_at_end or 0),
    }


# --- joint punishment -----------------------------------------------------------------------------------


def _instruction_columns(as_of: date) -> list[Any]:
    apply = Instruction.kind == "apply"
    # Issued as not applicable by the addressee's rules (依其规则不适用): counted on their own, never as
    # unacknowledged, unexecuted or overdue (they are final, acknowledged at issue).
    ruled_out = and_(apply, Instruction.outcome == EXCLUDED_BY_RULES)
    to_do = and_(apply, func.coalesce(Instruction.outcome, "") != EXCLUDED_BY_RULES)
    # Late by `as_of`: due before that day and not acknowledged by its end (for today: not acknowledged).
    late = and_(
        Instruction.ack_due_on < as_of,
        or_(
            Instruction.acknowledged_at.is_(None),
            Instruction.acknowledged_at >= day_start(as_of + timedelta(days=1)),
        ),
    )
    return [
        _count(apply).label("issued"),
        _count(and_(to_do, Instruction.acknowledged_at.is_not(None))).label("acknowledged"),
        _count(and_(apply, Instruction.outcome == "executed")).label("executed"),
        _count(and_(apply, Instruction.outcome == "not_applicable")).label("not_applicable"),
        _count(and_(apply, Instruction.outcome == "failed")).label("failed"),
        _count(ruled_out).label("excluded_by_rules"),
        _count(late).label("overdue"),
        _count(Instruction.kind == "lift").label("lifts"),
        _count(and_(Instruction.kind == "lift", Instruction.acknowledged_at.is_not(None))).label(
            "lifts_acknowledged"
        ),
    ]


_FIGURES = (
    "issued", "acknowledged", "executed", "not_applicable", "failed", "excluded_by_rules", "overdue",
    "lifts", "lifts_acknowledged",
)  # fmt: skip


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _feedback_rate(out: dict[str, Any]) -> float:
    """Apply instructions with a reported outcome / those to report on (issued, less those not applicable
    by the addressee's rules, which ask for no feedback)."""
    reported = out["executed"] + out["not_applicable"] + out["failed"]
    return _rate(reported, out["issued"] - out["excluded_by_rules"])


def _figures(row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {k: int(getattr(row, k) or 0) for k in _FIGURES}
    out["feedback_rate"] = _feedback_rate(out)
    return out


def _empty_figures() -> dict[str, Any]:
    return {**dict.fromkeys(_FIGURES, 0), "feedback_rate": 0.0}


def measures_by_enterprise(
    session: Session,
    *,
    start: date | None = None,
    end: date | None = None,
    today: date | None = None,
    org_id: uuid.UUID | None = None,
) -> list[dict[str, Any]]:
    """Instructions per addressee (enterprises and departments), issued in the period.

    `issued`, `acknowledged`, `executed`, `not_applicable`, `failed` count apply instructions;
    `excluded_by_rules` those issued as not applicable by the addressee's rules (orgs.rulebook: in
    `issued`, never in `acknowledged` nor `overdue`); `lifts` counts lift instructions; `overdue` counts
    either kind unacknowledged past its due date as of `today`; `feedback_rate` = apply instructions with
    a reported outcome / (issued - excluded_by_rules). Every active
    enterprise and department has a row, with zeros when it got nothing. `org_id`: that one only.
    """
    today = today or china_today()
    stmt = (
        select(Instruction.owner_org_id, *_instruction_columns(today))
        .where(*_period(Instruction.issued_at, start, end))
        .group_by(Instruction.owner_org_id)
    )
    if org_id is not None:
        stmt = stmt.where(Instruction.owner_org_id == org_id)
    figures = {r.owner_org_id: _figures(r) for r in session.execute(stmt)}
    orgs = select(Organisation).where(
        Organisation.kind.in_([OrgKind.enterprise.value, OrgKind.department.value])
    )
    if org_id is not None:
        orgs = orgs.where(Organisation.id == org_id)
    else:
        orgs = orgs.where(or_(Organisation.active.is_(True), Organisation.id.in_(list(figures))))
    out = []
    for org in session.scalars(orgs):
        kind_zh, kind_en = ORG_KIND_LABELS.get(org.kind, (org.kind, org.kind))
        out.append(
            {
                "org_id": str(org.id),
                "org_name": org.name,
                "org_name_en": org.name_en,
                "kind": org.kind,
                "kind_zh": kind_zh,
                "kind_en": kind_en,
                **figures.get(org.id, _empty_figures()),
            }
        )
    out.sort(key=lambda r: (r["kind"] != "enterprise", r["org_name"]))
    return out


def measures_by_code(
    session: Session,
    *,
    start: date | None = None,
    end: date | None = None,
    today: date | None = None,
    org_id: uuid.UUID | None = None,
) -> list[dict[str, Any]]:
    """Instructions per measure: the 13 measures in catalogue order, then the department measures.

    Same counting as `measures_by_enterprise`; `org_id` restricts to one addressee's instructions.
    """
    today = today or china_today()
    stmt = (
        select(Instruction.measure, *_instruction_columns(today))
        .where(*_period(Instruction.issued_at, start, end))
        .group_by(Instruction.measure)
    )
    if org_id is not None:
        stmt = stmt.where(Instruction.owner_org_id == org_id)
    figures = {r.measure: _figures(r) for r in session.execute(stmt)}
    cat = measure_catalogue()
    out = []
    for m in sorted(cat.measures.values(), key=lambda m: m.number):
        row = figures.pop(m.code, _empty_figures())
        out.append(
            {
                "code": m.code,
                "number": m.number,
                "name_zh": m.zh,
                "name_en": m.en,
                "department_measure": False,
            }
            | row
        )
    for d in cat.department_measures.values():
        row = figures.pop(d.code, _empty_figures())
        out.append(
            {"code": d.code, "number": None, "name_zh": d.zh, "name_en": d.en, "department_measure": True}
            | row
        )
    for code, row in sorted(figures.items()):  # a measure since dropped from the catalogue
        out.append(
            {"code": code, "number": None, "name_zh": code, "name_en": code, "department_measure": False}
            | row
        )
    return out


def _measure_totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out = {k: sum(r[k] for r in rows) for k in _FIGURES}
    out["feedback_rate"] = _feedback_rate(out)
    return out


# --- due process ----------------------------------------------------------------------------------------


def _case_block(session: Session, model: Any, open_: Any, overdue: Any, due_soon: Any) -> dict[str, Any]:
    row = session.execute(
        select(_count(open_).label("open"), _count(overdue).label("overdue"), _count(due_soon).label("soon"))
    ).one()
    by_status = dict(session.execute(select(model.status, func.count()).group_by(model.status)).all())
    return {
        "open": int(row.open),
        "due_soon": int(row.soon),
        "overdue": int(row.overdue),
        "by_status": {str(k): int(v) for k, v in sorted(by_status.items())},
    }


def cases(session: Session, *, today: date | None = None) -> dict[str, Any]:
    """Objections, reports and repair applications: open, due soon (within 2 PRC working days), overdue."""
    today = today or china_today()
    soon = add_working_days(today, DUE_SOON_WORKING_DAYS)

    o_open = Objection.status != "decided"
    o_late = objection_overdue_clause(today)
    o_soon = and_(
        o_open,
        ~o_late,
        or_(
            Objection.decide_due_on <= soon,
            and_(Objection.status == "forwarded", Objection.answer_due_on <= soon),
            and_(Objection.disputed_at.is_(None), Objection.dispute_due_on <= soon),
        ),
    )
    objections = _case_block(session, Objection, o_open, o_late, o_soon)

    r_open = Report.status.in_(("received", "routed"))
    r_late = and_(Report.status == "routed", Report.handle_due_on < today)
    r_soon = and_(Report.status == "routed", Report.handle_due_on >= today, Report.handle_due_on <= soon)
    reports = _case_block(session, Report, r_open, r_late, r_soon)

    a_open = RepairApplication.status != "decided"
    a_late = and_(a_open, RepairApplication.decide_due_on < today)
    a_soon = and_(a_open, RepairApplication.decide_due_on >= today, RepairApplication.decide_due_on <= soon)
    repairs = _case_block(session, RepairApplication, a_open, a_late, a_soon)
    return {
        "today": today.isoformat(),
        "due_soon_until": soon.isoformat(),
        "objections": objections,
        "reports": reports,
        "repairs": repairs,
    }


def _on_time(session: Session, done_at: Any, due_on: Any, where: list[Any]) -> tuple[int, int]:
    """(done, done by the due date) for cases finished in a period; Beijing dates compared in Python."""
    done = on_time = 0
    for at, due in session.execute(select(done_at, due_on).where(*where)):
        done += 1
        if due is None or at.astimezone(SHANGHAI).date() <= due:
            on_time += 1
    return done, on_time


def _case_totals(session: Session, start: date, end: date) -> dict[str, dict[str, Any]]:
    lo, hi = day_start(start), day_start(end + timedelta(days=1))
    o = session.execute(
        select(
            _count(and_(Objection.filed_on >= start, Objection.filed_on <= end)).label("filed"),
            _count(and_(Objection.decided_on >= start, Objection.decided_on <= end)).label("decided"),
            _count(
                and_(
                    Objection.decided_on >= start,
                    Objection.decided_on <= end,
                    Objection.decided_on <= Objection.decide_due_on,
                )
            ).label("on_time"),
            *[
                _count(
                    and_(Objection.decided_on >= start, Objection.decided_on <= end, Objection.outcome == x)
                ).label(x)
                for x in ("upheld", "corrected", "revoked")
            ],
        )
    ).one()
    r_filed = session.scalar(
        select(func.count()).select_from(Report).where(Report.filed_on >= start, Report.filed_on <= end)
    )
    # Handled by the organisation it was routed to (with a deadline); dismissals at triage have none.
    r_closed = [Report.handled_at >= lo, Report.handled_at < hi]
    r_outcomes = dict(
        session.execute(
            select(Report.outcome, func.count())
            .where(*r_closed, Report.status == "handled")
            .group_by(Report.outcome)
        ).all()
    )
    r_dismissed = session.scalar(
        select(func.count()).select_from(Report).where(*r_closed, Report.status == "dismissed")
    )
    r_done, r_on_time = _on_time(
        session, Report.handled_at, Report.handle_due_on, [*r_closed, Report.status == "handled"]
    )
    a_filed = session.scalar(
        select(func.count())
        .select_from(RepairApplication)
        .where(RepairApplication.filed_on >= start, RepairApplication.filed_on <= end)
    )
    a_outcomes = dict(
        session.execute(
            select(RepairApplication.outcome, func.count())
            .where(RepairApplication.decided_at >= lo, RepairApplication.decided_at < hi)
            .group_by(RepairApplication.outcome)
        ).all()
    )
    a_done, a_on_time = _on_time(
        session,
        RepairApplication.decided_at,
        RepairApplication.decide_due_on,
        [RepairApplication.decided_at >= lo, RepairApplication.decided_at < hi],
    )
    return {
        "objections": {
            "filed": int(o.filed),
            "decided": int(o.decided),
            "on_time": int(o.on_time),
            "late": int(o.decided) - int(o.on_time),
            "on_time_rate": _rate(int(o.on_time), int(o.decided)),
            "upheld": int(o.upheld),
            "corrected": int(o.corrected),
            "revoked": int(o.revoked),
        },
        "reports": {
            "filed": int(r_filed or 0),
            "handled": r_done,
            "on_time": r_on_time,
            "late": r_done - r_on_time,
            "on_time_rate": _rate(r_on_time, r_done),
            **{k: int(r_outcomes.get(k, 0)) for k in ("substantiated", "unsubstantiated", "forwarded")},
            "dismissed": int(r_dismissed or 0),
        },
        "repairs": {
            "filed": int(a_filed or 0),
            "decided": a_done,
            "on_time": a_on_time,
            "late": a_done - a_on_time,
            "on_time_rate": _rate(a_on_time, a_done),
            **{k: int(a_outcomes.get(k, 0)) for k in ("approved", "rejected")},
        },
    }


# --- the public page ------------------------------------------------------------------------------------


def public_summary(session: Session, *, today: date | None = None) -> dict[str, Any]:
    """Aggregates safe for the public statistics page: counts only, no name, identifier or organisation.

    Only the public 失信 list is counted (an entry on a basis of `public_bases()`), and the result says
    so (`list`): the market-shared list of the participating enterprises is never on a public page,
    not even as a number.
    """
    today = today or china_today()
    in_force = [s.value for s in IN_FORCE]
    bases = public_bases()
    on_list = Entry.basis.in_(sorted(bases))

    def strip(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"key": r["key"], "label_zh": r["label_zh"], "label_en": r["label_en"], "count": r["count"]}
                for r in rows]  # fmt: skip

    month_start = day_start(today.replace(day=1))
    year_start = day_start(today.replace(month=1, day=1))
    tomorrow = day_start(today + timedelta(days=1))
    published_in = and_(Entry.published_at < tomorrow)
    ended_this_year = and_(Entry.ended_at >= year_start, Entry.ended_at < tomorrow)
    repaired, expired = Entry.status == Status.repaired.value, Entry.status == Status.expired.value
    row = session.execute(  # one scan for the counts
        select(
            _count(and_(published_in, Entry.published_at >= month_start)).label("month"),
            _count(and_(published_in, Entry.published_at >= year_start)).label("year"),
            _count(and_(repaired, ended_this_year)).label("repaired_year"),
            _count(repaired).label("repaired"),
            _count(and_(expired, ended_this_year)).label("expired_year"),
            _count(expired).label("expired"),
        ).where(on_list)
    ).one()
    by_severity = strip(entries_by(session, "severity", statuses=in_force, bases=bases))

    def revoked_after_objection(first: date | None) -> int:
        where = [Objection.outcome == "revoked", on_list]
        if first is not None:
            where.append(Objection.decided_on >= first)
        return int(
            session.scalar(
                select(func.count(func.distinct(Objection.entry_id)))
                .join(Entry, Entry.id == Objection.entry_id)
                .where(*where)
            )
            or 0
        )

    return {
        "as_of": today.isoformat(),
        "list": describe_list(public_list()),
        "in_force": {
            "total": sum(r["count"] for r in by_severity),
            "by_behaviour": strip(entries_by(session, "behaviour", statuses=in_force, bases=bases)),
            "by_subject_kind": strip(entries_by(session, "subject_kind", statuses=in_force, bases=bases)),
            "by_severity": by_severity,
        },
        "published": {"this_month": int(row.month), "this_year": int(row.year)},
        "revoked_after_objection": {
            "this_year": revoked_after_objection(today.replace(month=1, day=1)),
            "total": revoked_after_objection(None),
        },
        "repaired": {"this_year": int(row.repaired_year), "total": int(row.repaired)},
        "expired": {"this_year": int(row.expired_year), "total": int(row.expired)},
    }


# --- the monthly report ---------------------------------------------------------------------------------


def _with_previous(current: list[dict[str, Any]], previous: list[dict[str, Any]]) -> list[dict[str, Any]]:
    before = {r["key"]: r["count"] for r in previous}
    keys = {r["key"] for r in current}
    rows = [{**r, "previous": before.get(r["key"], 0)} for r in current]
    for r in previous:
        if r["key"] not in keys:
            rows.append({**r, "count": 0, "previous": r["count"]})
    return sorted(rows, key=lambda r: r["key"])


def monthly(session: Session, month: str, *, today: date | None = None) -> dict[str, Any]:
    """Everything the periodic report on punishment results needs for one month ("2026-10").

    Entries published, revoked, expired and repaired in the month, entries published by behaviour,
    severity, basis and subject kind, instructions by addressee and by measure (overdue as of the
    month's last day, or today for the current month; `excluded_by_rules` apart, see
    `measures_by_enterprise`), objections, reports and repair applications with how many met their
    deadlines — each with the previous month's figure beside it; `rulebook_exclusions`: the measures
    each enterprise's rules exclude, with the clause (orgs.rulebook.exclusions).
    """
    today = today or china_today()
    first, last = parse_month(month)
    previous = _previous_month(first)
    p_first, p_last = parse_month(previous)
    as_of, p_as_of = min(last, today), min(p_last, today)

    dims = {}
    for dim in ("behaviour", "severity", "basis", "list", "subject_kind"):
        cur = entries_by(session, dim, start=first, end=last, published_only=True)
        prev = entries_by(session, dim, start=p_first, end=p_last, published_only=True)
        dims[dim] = _with_previous(cur, prev)

    by_org = measures_by_enterprise(session, start=first, end=last, today=as_of)
    by_code = measures_by_code(session, start=first, end=last, today=as_of)
    p_by_code = measures_by_code(session, start=p_first, end=p_last, today=p_as_of)
    return {
        "month": f"{first.year:04d}-{first.month:02d}",
        "previous_month": previous,
        "from": first.isoformat(),
        "to": last.isoformat(),
        "as_of": as_of.isoformat(),
        "complete": today > last,
        "generated_on": today.isoformat(),
        "entries": _entry_totals(session, first, last),
        "previous_entries": _entry_totals(session, p_first, p_last),
        # The two lists apart (两类名单): the public 失信 list and the market-shared list.
        "entries_by_list": [
            {
                **describe_list(code),
                "entries": _entry_totals(session, first, last, bases=bases_of_list(code)),
                "previous_entries": _entry_totals(session, p_first, p_last, bases=bases_of_list(code)),
            }
            for code in catalogues().lists
        ],
        "by_behaviour": dims["behaviour"],
        "by_severity": dims["severity"],
        "by_basis": dims["basis"],
        "by_list": dims["list"],
        "by_subject_kind": dims["subject_kind"],
        "measures_by_enterprise": by_org,
        "measures_by_code": by_code,
        "measures": _measure_totals(by_code),
        "previous_measures": _measure_totals(p_by_code),
        # Which enterprises' rules exclude which measures, and why (orgs.rulebook), as of now.
        "rulebook_exclusions": rulebook.exclusions(session),
        "cases": _case_totals(session, first, last),
        "previous_cases": _case_totals(session, p_first, p_last),
    }


# Anyone may ask for the public figures without a key (GET /v1/stats/public, the console's public
# statistics page): they are computed at most once a minute per process, so that anonymous traffic
# cannot make the database scan the registry on every request.
PUBLIC_CACHE_SECONDS = 60.0


def public_summary_cached(state: Any, session: Session) -> dict[str, Any]:
    """`public_summary`, reused for PUBLIC_CACHE_SECONDS within the same day; `state` holds the cache
    (the application's `app.state`)."""
    now = clock.monotonic()
    cached = getattr(state, "stats_public_cache", None)
    if (
        cached is not None
        and now - cached[0] < PUBLIC_CACHE_SECONDS
        and cached[1]["as_of"] == str(china_today())
    ):
        return cached[1]
    data = public_summary(session)
    state.stats_public_cache = (now, data)
    return data
