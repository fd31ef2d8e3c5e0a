"""One budget per organisation for matching plain identifiers (明文标识匹配配额), and the enumeration alarm.

Platform decisions (``POST /v1/decisions``) and look-ups (``/v1/lookup``) match identifiers in plain
form; blinded evaluations (``/v1/sharing/evaluate``) match them unseen. All three draw on one budget per
organisation, counted in identifiers (a batch of 1,000 subjects with 2 identifiers each costs 2,000):

* plain identifiers per minute (sliding window) and per China day — defaults
  ``FCX_QUOTA_PLAIN_PER_MINUTE`` / ``FCX_QUOTA_PLAIN_PER_DAY``, overridden per organisation
  (``PUT /v1/organisations/{id}/quotas``, ``fcx org quota``);
* blinded evaluations per minute (``FCX_QUOTA_EVALUATIONS_PER_MINUTE`` or the organisation's own),
  besides the daily token bucket of ``sharing.evaluate`` that follows the declared users.

Over quota is a 429 with ``Retry-After`` (seconds until enough of the budget is back). Platform staff
(admin, reviewer, auditor) are not metered; their calls are still in the decision log.

The counters live in the process, so that a decision costs no database round trip: exact within one
process; the day's count is reconciled across processes through ``plain_usage`` at every decision-log
flush (``FCX_DECISION_LOG_FLUSH_SECONDS``), so with several workers it is exact to within one flush
interval. The minute window is per process: ``fcx serve`` runs one worker; with N workers an
organisation spread over all of them may match up to N times the per-minute quota.

Enumeration (穷举探测): the identifiers of an organisation that match nothing (misses) are grouped into
*families* — the value with one contiguous run of positions wildcarded (:data:`RUNS`: the 8 birth-date
digits of a resident ID, runs of 4 at every offset — the last 4 of a phone number, a sequence number and
its check digit …). A sweep over candidates that agree but for one run — every check-digit-consistent
birth date, consecutive numbers — lands in one family. When a family collects
``FCX_ENUMERATION_THRESHOLD`` distinct misses within ``FCX_ENUMERATION_WINDOW_SECONDS``, the
organisation's plain-identifier matching is suspended at once (the request that tripped it is refused
too, so the sweep learns nothing from it), a security alert is raised and audited
(``security.enumeration_suspected``; the family's shape only, never its digits), and matching resumes
only when a platform admin clears the alert. Families are kept per process (with N workers a sweep
spread over all of them trips within N times the threshold) and bounded (:data:`MAX_SINGLE_FAMILIES`,
:data:`MAX_MULTI_FAMILIES` per organisation): a one-member family is forgotten first, so burying a sweep
under random noise costs far more identifiers than the day's quota allows.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from fanchaoxin.core import audit
from fanchaoxin.core.audit import SYSTEM, Actor
from fanchaoxin.core.auth import Principal
from fanchaoxin.core.calendar import SHANGHAI
from fanchaoxin.core.db import Database
from fanchaoxin.core.errors import NotFound, Problem, TooManyRequests, ValidationProblem
from fanchaoxin.core.settings import Settings
from fanchaoxin.orgs.models import Organisation, PlainUsage, SecurityAlert

log = logging.getLogger(__name__)

MINUTE = 60
# Wildcarded runs of an enumeration family, per identifier type whose values live in a structured space
# a sweep can walk: (run length, the offsets it starts at, None for every offset). A run covers every
# sweep of its length or less inside it: runs of 4 at every offset catch the last digits of a phone
# number, a sequence number with its check digit, one field of a date. The 8 birth-date digits of a
# resident ID are wildcarded where they are only: 8 digits elsewhere would leave little more than an
# address code and a birth year fixed, which many honest customers share. A USCC is public registration
# data, and 8 wildcarded digits of 11 would put every phone number of one carrier prefix in one family.
# Personal identifiers only: a unit's USCC is public registration data (the public query answers for
# it), so sweeping codes learns nothing the public cannot. A phone's runs start after its ``+86``.
RUNS: dict[str, tuple[tuple[int, tuple[int, ...] | None], ...]] = {
    "resident_id": ((4, None), (8, (6,))),
    "phone": ((4, tuple(range(3, 11))),),
    "device": ((4, None),),
}
MAX_SINGLE_FAMILIES = 16_384
MAX_MULTI_FAMILIES = 4_096
ENUMERATION = "enumeration"

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Limits:
    plain_per_minute: int
    plain_per_day: int
    evaluations_per_minute: int


def default_limits(settings: Settings) -> Limits:
    return Limits(
        settings.quota_plain_per_minute, settings.quota_plain_per_day, settings.quota_evaluations_per_minute
    )


def limits_of(org: Organisation, settings: Settings) -> Limits:
    """The organisation's own quotas where set, else the platform's defaults."""
    d = default_limits(settings)
    return Limits(
        d.plain_per_minute if org.quota_plain_per_minute is None else org.quota_plain_per_minute,
        d.plain_per_day if org.quota_plain_per_day is None else org.quota_plain_per_day,
        d.evaluations_per_minute
        if org.quota_evaluations_per_minute is None
        else org.quota_evaluations_per_minute,
    )


class QuotaExceeded(TooManyRequests):
    slug = "quota-exceeded"
    title = "Quota of identifier matching used up"
    title_zh = "标识匹配配额已用完"


class MatchingSuspended(Problem):
    status = 403
    slug = "matching-suspended"
    title = "Identifier matching suspended pending platform review"
    title_zh = "疑似穷举查询，标识匹配已暂停，待平台复核"


def _suspended(alert_id: uuid.UUID) -> MatchingSuspended:
    return MatchingSuspended(
        "Identifier matching by your organisation is suspended: its recent unmatched identifiers look "
        "like a sweep through many similar values. The platform must review security alert "
        f"{alert_id} before matching resumes; contact the platform.",
        alert_id=str(alert_id),
    )


class _Window:
    """A sliding minute in one-second slots, with a running total: bounded memory, O(1) a request."""

    __slots__ = ("counts", "now", "total")

    def __init__(self) -> None:
        self.counts = [0] * MINUTE
        self.now = 0  # the newest second counted
        self.total = 0

    def _advance(self, sec: int) -> None:
        if sec <= self.now:
            return
        if sec - self.now >= MINUTE:
            self.counts = [0] * MINUTE
            self.total = 0
        else:
            counts = self.counts
            for s in range(self.now + 1, sec + 1):
                i = s % MINUTE
                self.total -= counts[i]
                counts[i] = 0
        self.now = sec

    def used(self, sec: int) -> int:
        self._advance(sec)
        return self.total

    def add(self, sec: int, n: int) -> None:
        self._advance(sec)
        self.counts[max(sec, self.now) % MINUTE] += n  # a clock that stepped back counts as now
        self.total += n

    def wait(self, sec: int, need: int, limit: int) -> int:
        """Seconds until ``need`` more fit under ``limit`` (the oldest seconds leave the window first)."""
        self._advance(sec)
        excess = self.total + need - limit
        freed = 0
        for age in range(MINUTE - 1, -1, -1):  # the slot counted ``age`` seconds ago
            freed += self.counts[(self.now - age) % MINUTE]
            if freed >= excess:
                return max(1, MINUTE - age)
        return MINUTE


@dataclass
class _Meter:
    limits: Limits
    day: date
    day_total: int = 0  # counted by every process up to the last reconciliation
    inflight: int = 0  # taken for the flush in progress
    pending: int = 0  # counted here since
    plain: _Window = field(default_factory=_Window)
    evaluations: _Window = field(default_factory=_Window)
    alert_id: uuid.UUID | None = None

    @property
    def day_used(self) -> int:
        return self.day_total + self.inflight + self.pending


@dataclass(frozen=True)
class Alarm:
    """A tripped enumeration family, to be written (alert row + audit event) by the next flush."""

    alert_id: uuid.UUID
    org_id: uuid.UUID
    at: datetime
    detail: dict[str, Any]


def family_shape(length: int, start: int, run: int) -> str:
    """The family's shape without its digits: ``#`` a fixed position, ``*`` a varying one."""
    return "#" * start + "*" * run + "#" * (length - start - run)


@dataclass(frozen=True, slots=True)
class Family:
    """A run of ``run`` positions from ``start`` (0-based) wildcarded in values of one type and length."""

    type_: str
    length: int
    run: int
    start: int
    tag: str  # prefixes the fixed characters in the family's key

    @property
    def end(self) -> int:
        return self.start + self.run


FamilyKey = str  # tag + the value's fixed characters: in memory only, never stored or logged


class EnumerationDetector:
    """Miss families of every organisation (see the module doc)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Per organisation: one-member families (key -> (member, seen)) and families of two members or
        # more (key -> {member: seen}), each forgetting its least recently used first.
        self._single: dict[uuid.UUID, OrderedDict[FamilyKey, tuple[str, float]]] = {}
        self._multi: dict[uuid.UUID, OrderedDict[FamilyKey, dict[str, float]]] = {}
        self._plans: dict[tuple[str, int], tuple[Family, ...]] = {}

    def forget(self, org_id: uuid.UUID) -> None:
        self._single.pop(org_id, None)
        self._multi.pop(org_id, None)

    def _plan(self, type_: str, n: int) -> tuple[Family, ...]:
        plan = self._plans.get((type_, n))
        if plan is None:
            plan = self._plans[(type_, n)] = tuple(
                Family(type_, n, run, start, f"{type_}/{run}/{start}:")
                for run, starts in RUNS.get(type_, ())
                if run <= n - 4
                for start in (starts if starts is not None else range(n - run + 1))
                if start + run <= n
            )
        return plan

    def observe(self, org_id: uuid.UUID, type_: str, value: str, now: float) -> tuple[Family, int] | None:
        """Count one miss; the family and its distinct misses in the window once it reaches the
        threshold, else None."""
        plan = self._plan(type_, len(value))
        if not plan:
            return None
        single = self._single.get(org_id)
        if single is None:
            single = self._single[org_id] = OrderedDict()
            self._multi[org_id] = OrderedDict()
        multi = self._multi[org_id]
        threshold = self.settings.enumeration_threshold
        floor = now - self.settings.enumeration_window_seconds
        tripped = None
        for fam in plan:
            start, end = fam.start, fam.start + fam.run
            key = fam.tag + value[:start] + value[end:]
            member = value[start:end]
            members = multi.get(key)
            if members is not None:
                members[member] = now
                multi.move_to_end(key)
                if len(members) >= threshold and tripped is None:
                    for m in [m for m, seen in members.items() if seen < floor]:
                        del members[m]
                    if len(members) >= threshold:
                        tripped = (fam, len(members))
                continue
            one = single.pop(key, None)
            if one is None or one[0] == member or one[1] < floor:
                single[key] = (member, now)
                if len(single) > MAX_SINGLE_FAMILIES:
                    single.popitem(last=False)
                continue
            multi[key] = {one[0]: one[1], member: now}
            if len(multi) > MAX_MULTI_FAMILIES:
                multi.popitem(last=False)
        return tripped


class Budget:
    """The in-process meters of every organisation seen by this process (see the module doc)."""

    def __init__(self, settings: Settings, *, clock: Clock = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.detector = EnumerationDetector(settings)
        self._meters: dict[uuid.UUID, _Meter] = {}
        self._lock = threading.Lock()
        self._alarms: list[Alarm] = []
        self._unwritten: set[uuid.UUID] = set()

    @property
    def defaults(self) -> Limits:
        return default_limits(self.settings)

    def _today(self, now: float) -> date:
        return datetime.fromtimestamp(now, SHANGHAI).date()

    # --- what the database says (orgs seen, reconciliation) --------------------------------------------

    def knows(self, org_id: uuid.UUID) -> bool:
        return org_id in self._meters

    def known(self) -> list[uuid.UUID]:
        return list(self._meters)

    def today(self) -> date:
        return self._today(self.clock())

    def learn(
        self, org_id: uuid.UUID, limits: Limits, *, day: date, day_total: int, alert_id: uuid.UUID | None
    ) -> None:
        with self._lock:
            m = self._meters.get(org_id)
            if m is None:
                self._meters[org_id] = _Meter(limits, day, day_total=day_total, alert_id=alert_id)
                return
        self.refresh({org_id: limits}, {org_id: day_total} if m.day == day else {}, {}, day=day)
        if alert_id is not None:
            m.alert_id = alert_id

    def refresh(
        self,
        limits: dict[uuid.UUID, Limits],
        totals: dict[uuid.UUID, int],
        open_alerts: dict[uuid.UUID, uuid.UUID],
        *,
        day: date,
        alerts_known: bool = False,
    ) -> None:
        """Apply what a flush read back: quotas, the day's totals over every process and, when
        ``alerts_known``, the open enumeration alerts (an alert cleared elsewhere unblocks here)."""
        with self._lock:
            for org_id, m in self._meters.items():
                if org_id in limits:
                    m.limits = limits[org_id]
                if org_id in totals and m.day == day:
                    m.day_total = totals[org_id]
                if not alerts_known:
                    continue
                current = open_alerts.get(org_id)
                if current is not None:
                    m.alert_id = current
                elif m.alert_id is not None and m.alert_id not in self._unwritten:
                    m.alert_id = None
                    self.detector.forget(org_id)

    def take_usage(self) -> list[tuple[uuid.UUID, date, int]]:
        """The counts since the last flush, moved aside until :meth:`usage_written` or
        :meth:`usage_failed`."""
        with self._lock:
            out = []
            for org_id, m in self._meters.items():
                if m.pending:
                    out.append((org_id, m.day, m.pending))
                    m.inflight += m.pending
                    m.pending = 0
            return out

    def usage_written(self, usage: Iterable[tuple[uuid.UUID, date, int]]) -> None:
        with self._lock:
            for org_id, day, n in usage:
                m = self._meters.get(org_id)
                if m is not None and m.day == day:
                    m.inflight -= n
                    m.day_total += n  # until the read-back gives every process's total

    def usage_failed(self, usage: Iterable[tuple[uuid.UUID, date, int]]) -> None:
        with self._lock:
            for org_id, day, n in usage:
                m = self._meters.get(org_id)
                if m is not None and m.day == day:
                    m.inflight -= n
                    m.pending += n

    def has_news(self) -> bool:
        """Whether a flush has anything of the budget's to write (counts or raised alarms)."""
        with self._lock:
            return bool(self._alarms) or any(m.pending for m in self._meters.values())

    def take_alarms(self) -> list[Alarm]:
        with self._lock:
            out, self._alarms = self._alarms, []
            return out

    def alarms_written(self, alarms: Iterable[Alarm]) -> None:
        with self._lock:
            for a in alarms:
                self._unwritten.discard(a.alert_id)

    def alarms_failed(self, alarms: list[Alarm]) -> None:
        with self._lock:
            self._alarms = alarms + self._alarms

    def cleared(self, org_id: uuid.UUID, alert_id: uuid.UUID) -> None:
        """An admin cleared the alert (in this process): matching resumes, the families start afresh."""
        with self._lock:
            m = self._meters.get(org_id)
            if m is not None and m.alert_id == alert_id:
                m.alert_id = None
            self.detector.forget(org_id)

    def set_limits(self, org_id: uuid.UUID, limits: Limits) -> None:
        with self._lock:
            m = self._meters.get(org_id)
            if m is not None:
                m.limits = limits

    # --- the hot path -------------------------------------------------------------------------------

    def _meter(self, org_id: uuid.UUID, now: float) -> _Meter:
        m = self._meters.get(org_id)
        if m is None:  # not learnt (database away): the defaults until the next flush says more
            m = self._meters[org_id] = _Meter(self.defaults, self._today(now))
        today = self._today(now)
        if m.day != today:
            m.day, m.day_total, m.inflight, m.pending = today, 0, 0, 0
        return m

    def check_open(self, org_id: uuid.UUID) -> None:
        m = self._meters.get(org_id)
        if m is not None and m.alert_id is not None:
            raise _suspended(m.alert_id)

    def charge_plain(self, org_id: uuid.UUID, n: int) -> None:
        """Take ``n`` plain identifiers from the organisation's minute and day, or refuse (429, nothing
        taken); 403 while an enumeration alert is open."""
        now = self.clock()
        sec = int(now)
        with self._lock:
            m = self._meter(org_id, now)
            if m.alert_id is not None:
                raise _suspended(m.alert_id)
            lim = m.limits
            if m.day_used + n > lim.plain_per_day:
                tomorrow = datetime.combine(m.day + timedelta(days=1), datetime.min.time(), SHANGHAI)
                wait = max(1, math.ceil(tomorrow.timestamp() - now))
                raise QuotaExceeded(
                    f"Daily quota of plain identifiers used up: {max(0, lim.plain_per_day - m.day_used)} "
                    f"of {lim.plain_per_day} left today, {n} asked; retry in {wait} s (after midnight, "
                    "China time), or check identifiers on your enterprise node, which is not metered",
                    headers={"Retry-After": str(wait)},
                    quota_per_day=lim.plain_per_day,
                    remaining_today=max(0, lim.plain_per_day - m.day_used),
                )
            used = m.plain.used(sec)
            if used + n > lim.plain_per_minute:
                wait = m.plain.wait(sec, n, lim.plain_per_minute) if n <= lim.plain_per_minute else MINUTE
                raise QuotaExceeded(
                    f"Per-minute quota of plain identifiers used up: {max(0, lim.plain_per_minute - used)} "
                    f"of {lim.plain_per_minute} left this minute, {n} asked; retry in {wait} s",
                    headers={"Retry-After": str(wait)},
                    quota_per_minute=lim.plain_per_minute,
                    remaining_this_minute=max(0, lim.plain_per_minute - used),
                )
            m.plain.add(sec, n)
            m.pending += n

    def charge_evaluations(self, org_id: uuid.UUID, n: int, per_minute: int) -> None:
        """Take ``n`` blinded evaluations from the organisation's minute, or refuse (429)."""
        now = self.clock()
        sec = int(now)
        with self._lock:
            m = self._meter(org_id, now)
            used = m.evaluations.used(sec)
            if used + n > per_minute:
                wait = m.evaluations.wait(sec, n, per_minute) if n <= per_minute else MINUTE
                raise QuotaExceeded(
                    f"Per-minute quota of blinded evaluations used up: {max(0, per_minute - used)} of "
                    f"{per_minute} left this minute, {n} asked; retry in {wait} s",
                    headers={"Retry-After": str(wait)},
                    quota_per_minute=per_minute,
                    remaining_this_minute=max(0, per_minute - used),
                )
            m.evaluations.add(sec, n)

    def observe_misses(
        self, org_id: uuid.UUID, misses: Iterable[tuple[str, str]], *, key_prefix: str | None = None
    ) -> None:
        """Count identifiers (type, canonical value) that matched nothing; when a family trips the
        alarm, suspend the organisation and refuse this request (403)."""
        now = self.clock()
        with self._lock:
            for type_, value in misses:
                tripped = self.detector.observe(org_id, type_, value, now)
                if tripped is None:
                    continue
                fam, count = tripped
                alert_id = uuid.uuid4()
                alarm = Alarm(
                    alert_id,
                    org_id,
                    datetime.fromtimestamp(now, UTC),
                    {
                        "kind": ENUMERATION,
                        "identifier_type": fam.type_,
                        "shape": family_shape(fam.length, fam.start, fam.run),
                        "varying_positions": [fam.start + 1, fam.end],
                        "count": count,
                        "window_seconds": self.settings.enumeration_window_seconds,
                        "key_prefix": key_prefix,
                    },
                )
                self._meter(org_id, now).alert_id = alert_id
                self._alarms.append(alarm)
                self._unwritten.add(alert_id)
                self.detector.forget(org_id)
                raise _suspended(alert_id)

    def status(self, org_id: uuid.UUID) -> dict[str, Any]:
        now = self.clock()
        with self._lock:
            m = self._meters.get(org_id)
            if m is None:
                return {"this_minute": 0, "today": None, "evaluations_this_minute": 0}
            today = self._today(now)
            return {
                "this_minute": m.plain.used(int(now)),
                "today": m.day_used if m.day == today else 0,
                "evaluations_this_minute": m.evaluations.used(int(now)),
            }


# --- the database side ------------------------------------------------------------------------------


def open_alerts(session: Session, org_ids: Iterable[uuid.UUID] | None = None) -> dict[uuid.UUID, uuid.UUID]:
    """The open enumeration alert of each organisation (the oldest, if several)."""
    stmt = (
        select(SecurityAlert.org_id, SecurityAlert.id)
        .where(SecurityAlert.cleared_at.is_(None), SecurityAlert.kind == ENUMERATION)
        .order_by(SecurityAlert.raised_at.desc())
    )
    if org_ids is not None:
        stmt = stmt.where(SecurityAlert.org_id.in_(list(org_ids)))
    return {org_id: alert_id for org_id, alert_id in session.execute(stmt)}


def day_totals(session: Session, org_ids: Iterable[uuid.UUID], day: date) -> dict[uuid.UUID, int]:
    ids = list(org_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(PlainUsage.org_id, PlainUsage.identifiers).where(
            PlainUsage.org_id.in_(ids), PlainUsage.day == day
        )
    )
    return {org_id: n for org_id, n in rows}


def load(session: Session, budget: Budget, org_id: uuid.UUID, settings: Settings) -> None:
    """Teach the budget an organisation it has not seen: its quotas, today's count, an open alert."""
    org = session.get(Organisation, org_id)
    day = budget.today()
    limits = limits_of(org, settings) if org is not None else budget.defaults
    budget.learn(
        org_id,
        limits,
        day=day,
        day_total=day_totals(session, [org_id], day).get(org_id, 0),
        alert_id=open_alerts(session, [org_id]).get(org_id),
    )


Taken = tuple[list[tuple[uuid.UUID, date, int]], list[Alarm]]


def sync(session: Session, budget: Budget) -> Taken:
    """One flush's share, in the caller's transaction: add this process's counts to ``plain_usage`` and
    write the raised alarms (alert row + audit event). After the commit call :func:`written` (or
    :func:`failed` when it rolls back), then :func:`read_back`."""
    taken: Taken = (budget.take_usage(), budget.take_alarms())
    try:
        _add_usage(session, taken[0])
        for a in taken[1]:
            session.add(
                SecurityAlert(
                    id=a.alert_id, org_id=a.org_id, kind=ENUMERATION, raised_at=a.at, detail=a.detail
                )
            )
            audit.record(
                session, SYSTEM, "security.enumeration_suspected", "organisation", a.org_id, detail=a.detail
            )
        session.flush()
    except BaseException:
        failed(budget, taken)
        raise
    return taken


def written(budget: Budget, taken: Taken) -> None:
    budget.usage_written(taken[0])
    budget.alarms_written(taken[1])


def failed(budget: Budget, taken: Taken) -> None:
    budget.usage_failed(taken[0])
    budget.alarms_failed(taken[1])


def read_back(session: Session, budget: Budget, settings: Settings) -> None:
    """After a flush: every process's day totals, the quotas and the open alerts of known orgs."""
    ids = budget.known()
    if not ids:
        return
    day = budget.today()
    orgs = session.scalars(select(Organisation).where(Organisation.id.in_(ids))).all()
    budget.refresh(
        {o.id: limits_of(o, settings) for o in orgs},
        day_totals(session, ids, day),
        open_alerts(session, ids),
        day=day,
        alerts_known=True,
    )


def _add_usage(session: Session, usage: list[tuple[uuid.UUID, date, int]]) -> None:
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    table = PlainUsage.__table__
    for org_id, day, n in usage:
        stmt = insert(table).values(org_id=org_id, day=day, identifiers=n)
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=[table.c.org_id, table.c.day],
                set_={"identifiers": table.c.identifiers + stmt.excluded.identifiers},
            )
        )


# --- administration -----------------------------------------------------------------------------------


QUOTA_FIELDS = ("quota_plain_per_minute", "quota_plain_per_day", "quota_evaluations_per_minute")


def set_quotas(
    session: Session, actor: Actor, org: Organisation, values: dict[str, int | None]
) -> Organisation:
    """Set (or, with None, reset to the default) an organisation's quotas; a negative one is refused
    by name and nothing is changed."""
    errors = []
    for name, value in values.items():
        if name not in QUOTA_FIELDS:
            raise ValueError(name)
        if value is not None and value < 0:
            errors.append(
                {
                    "in": "body",
                    "field": name.removeprefix("quota_"),
                    "type": "greater_than_equal",
                    "message": "must be 0 or more",
                }
            )
    if errors:
        raise ValidationProblem(
            "Quotas must be 0 or more: " + ", ".join(e["field"] for e in errors), errors=errors
        )
    before = org.snapshot()
    for name, value in values.items():
        setattr(org, name, value)
    session.flush()
    audit.record(
        session, actor, "orgs.quotas.set", "organisation", org.id, before=before, after=org.snapshot()
    )
    return org


def get_alert(session: Session, alert_id: uuid.UUID) -> SecurityAlert:
    alert = session.get(SecurityAlert, alert_id)
    if alert is None:
        raise NotFound(f"No security alert {alert_id}")
    return alert


def list_alerts(session: Session, *, include_cleared: bool = False, limit: int = 100) -> list[SecurityAlert]:
    stmt = select(SecurityAlert).order_by(SecurityAlert.raised_at.desc()).limit(limit)
    if not include_cleared:
        stmt = stmt.where(SecurityAlert.cleared_at.is_(None))
    return list(session.scalars(stmt))


def clear_alert(
    session: Session, actor: Actor, alert: SecurityAlert, reason: str, now: datetime
) -> SecurityAlert:
    """A platform admin reviewed the alert: close it (audited); the organisation may match again
    (in every process within one decision-log flush)."""
    if alert.cleared_at is None:
        alert.cleared_at = now
        alert.cleared_by = actor.name
        alert.clear_reason = reason
        session.flush()
        audit.record(
            session,
            actor,
            "security.alert.cleared",
            "organisation",
            alert.org_id,
            detail={"alert_id": str(alert.id), "kind": alert.kind, "reason": reason},
        )
    return alert


def alert_out(alert: SecurityAlert) -> dict[str, Any]:
    return {
        "id": str(alert.id),
        "org_id": str(alert.org_id),
        "kind": alert.kind,
        "raised_at": alert.raised_at.isoformat(),
        "detail": alert.detail,
        "cleared_at": alert.cleared_at.isoformat() if alert.cleared_at else None,
        "cleared_by": alert.cleared_by,
        "clear_reason": alert.clear_reason,
    }


def count_open(session: Session, org_id: uuid.UUID) -> int:
    return len(
        session.scalars(
            select(SecurityAlert.id).where(SecurityAlert.org_id == org_id, SecurityAlert.cleared_at.is_(None))
        ).all()
    )


def metered(principal: Principal) -> bool:
    """Whether the caller's matching draws on its organisation's budget: every organisation's keys but
    the platform staff's (whose calls are still in the decision log)."""
    return principal.org_id is not None and not principal.is_platform


def learn_if_new(budget: Budget, database: Database, org_id: uuid.UUID, settings: Settings) -> None:
    """Teach the budget an organisation on its first call in this process (one small read). With the
    database away it starts from the defaults, and the next decision-log flush corrects it."""
    if budget.knows(org_id):
        return
    try:
        with database.session() as session:
            load(session, budget, org_id, settings)
    except Exception:
        log.warning("budget: quotas of organisation %s not read; the defaults apply for now", org_id)
