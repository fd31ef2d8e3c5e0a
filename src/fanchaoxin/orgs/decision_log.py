"""The decision log (决策日志): every decision, look-up and blinded evaluation by an organisation on the
platform is one record, as Open Policy Agent keeps its decision logs.

A record holds the organisation, the key, the purpose given, the scene, the verdict, the entry ids,
the policy version and the change-feed position — and for each identifier asked about its keyed digest
(``core.vault.identifier_index``), never the plain value. A blinded evaluation has no identifiers the
platform could see: its record holds the count only. Records are the basis of "who looked me up" and
of the auditors' view (``GET /v1/decision-log``), and are kept for ``FCX_AUDIT_RETENTION_YEARS``.

Writing them must not slow a decision down: a request hands its records to :class:`DecisionLogWriter`
(in memory), whose thread writes everything pending every ``FCX_DECISION_LOG_FLUSH_SECONDS`` in one
transaction (bulk INSERT), together with the budget's share (orgs.budget: the day's counts, raised
alarms) and any other :class:`FlushShare` (sharing.evaluate's daily evaluation buckets). The
application flushes at shutdown; tests call :meth:`DecisionLogWriter.flush`.

The queue is bounded (``max_pending`` records): when it is full — the database is away or slower than
the traffic — a request waits up to ``wait_seconds`` for room and is then refused with 503, rather than
answered without its record. A decision the platform gave out is therefore always in the log, except
for the records pending when the process dies (at most one flush interval's worth) and those still
queued when it is stopped while the database is unreachable (logged as an error, with their count).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from fanchaoxin.core.db import Database, utcnow
from fanchaoxin.core.errors import Problem
from fanchaoxin.core.settings import Settings
from fanchaoxin.orgs import budget as budgets
from fanchaoxin.orgs.models import DecisionLogIdentifier, DecisionLogRecord

log = logging.getLogger(__name__)

KINDS = ("decision", "lookup", "evaluation")
CHANNEL_PLATFORM = "platform"


@dataclass(slots=True)
class LogRecord:
    """One record as a request hands it over (the writer gives it its id when it writes it)."""

    org_id: uuid.UUID
    key_id: uuid.UUID | None
    kind: str
    digests: Sequence[str] = ()
    identifier_count: int = 0
    purpose: str | None = None
    scene: str | None = None
    verdict: str | None = None
    entry_ids: list[str] = field(default_factory=list)
    policy_version: str | None = None
    feed_seq: int | None = None
    at: datetime = field(default_factory=utcnow)


class DecisionLogBusy(Problem):
    status = 503
    slug = "decision-log-busy"
    title = "The decision log is behind: retry shortly"
    title_zh = "决策日志写入繁忙，请稍后重试"


PolicySource = Callable[[Session], str | None]


class FlushShare(Protocol):
    """Counts kept in the process that a flush writes in its own transaction (taken, then either
    written after the commit or given back after a rollback), and reads back after it: how a quota
    costs a request no database round trip yet holds across processes to within one flush."""

    def has_news(self) -> bool: ...

    def sync(self, session: Session) -> object: ...

    def written(self, taken: object) -> None: ...

    def failed(self, taken: object) -> None: ...

    def read_back(self, session: Session) -> None: ...


class DecisionLogWriter:
    """Records pending in memory and the thread that writes them (see the module doc)."""

    def __init__(
        self,
        database: Database,
        settings: Settings,
        budget: budgets.Budget | None = None,
        *,
        max_pending: int = 200_000,
        wait_seconds: float = 2.0,
        policy_source: PolicySource | None = None,
        shares: Sequence[FlushShare] = (),
    ) -> None:
        self.database = database
        self.shares = tuple(shares)
        self.settings = settings
        self.budget = budget
        self.interval = settings.decision_log_flush_seconds
        self.max_pending = max_pending
        self.wait_seconds = wait_seconds
        self.policy_source = policy_source
        # The active grading policy's version as of the last flush, stamped on decisions.
        self.policy_version: str | None = None
        self._pending: list[LogRecord] = []
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._flushing = threading.Lock()  # one flush at a time: the thread's or an explicit one
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False
        self._read_at = -math.inf

    # --- handing records over ---------------------------------------------------------------------

    def try_submit(self, records: Sequence[LogRecord]) -> bool:
        """Queue the records if there is room now (never waits); False if the queue is full."""
        self._ensure_running()
        with self._lock:
            if len(self._pending) + len(records) > self.max_pending and self._pending:
                return False
            self._pending.extend(records)
            return True

    def submit(self, records: Sequence[LogRecord]) -> None:
        """Queue the records, waiting up to ``wait_seconds`` for room; 503 if there is none."""
        self._ensure_running()
        with self._room:
            fits = self._room.wait_for(
                lambda: not self._pending or len(self._pending) + len(records) <= self.max_pending,
                timeout=self.wait_seconds,
            )
            if not fits:
                raise DecisionLogBusy(
                    "The decision log cannot keep up (the database may be away): nothing was decided; "
                    "retry in a few seconds",
                    headers={"Retry-After": "5"},
                )
            self._pending.extend(records)

    def pending(self) -> int:
        return len(self._pending)

    # --- the thread -------------------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            if self.policy_source is not None and self.policy_version is None:
                try:  # the first decisions carry the version too, not only those after a flush
                    with self.database.session() as session:
                        self.policy_version = self.policy_source(session)
                except Exception:
                    log.warning("decision log: policy version not read yet; the next flush reads it")
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, daemon=True, name="fcx-decision-log")
            self._thread.start()

    def _ensure_running(self) -> None:
        # Started by the application's lifespan; an application driven without one (some tests, scripts)
        # starts it on its first record, so that records are never left unwritten.
        if self._thread is None:
            self.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread and write what is pending (application shutdown)."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=timeout)
        self._thread = None
        try:
            self.flush()
        except Exception:
            log.exception("decision log: %d records could not be written at shutdown", self.pending())

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.flush(idle=True)
                if self._failing:
                    log.warning("decision log: writing again")
                self._failing = False
            except Exception:
                if not self._failing:
                    log.exception("decision log: flush failed; %d records kept, retrying", self.pending())
                self._failing = True

    # --- writing ----------------------------------------------------------------------------------

    def flush(self, *, idle: bool = False) -> int:
        """Write every record pending now (and the budget's share) in one transaction; the count.

        ``idle`` (the thread's periodic call): with nothing to write, read the other processes' use
        only every READ_BACK_SECONDS rather than at once."""
        with self._flushing:
            with self._lock:
                batch, self._pending = self._pending, []
            news = any(share.has_news() for share in self.shares)
            if not batch and not news and (self.budget is None or not self.budget.has_news()):
                # An idle process asks the database nothing but, now and then, the other processes' use.
                if not idle or time.monotonic() - self._read_at >= READ_BACK_SECONDS:
                    self._read_back()
                return 0
            written = 0
            taken = None
            shared: list[tuple[FlushShare, object]] = []
            try:
                with self.database.session() as session:
                    written = _write(session, batch)
                    if self.budget is not None:
                        taken = budgets.sync(session, self.budget)
                    for share in self.shares:
                        shared.append((share, share.sync(session)))
            except BaseException:
                if self.budget is not None and taken is not None:
                    budgets.failed(self.budget, taken)
                for share, share_taken in shared:
                    share.failed(share_taken)
                with self._lock:
                    self._pending[:0] = batch  # kept, in order, for the next flush
                raise
            finally:
                with self._room:
                    self._room.notify_all()
            if self.budget is not None and taken is not None:
                budgets.written(self.budget, taken)
            for share, share_taken in shared:
                share.written(share_taken)
            self._read_back()
            return written

    def _read_back(self) -> None:
        self._read_at = time.monotonic()
        if self.budget is None and self.policy_source is None and not self.shares:
            return
        with self.database.session() as session:
            if self.budget is not None:
                budgets.read_back(session, self.budget, self.settings)
            for share in self.shares:
                share.read_back(session)
            if self.policy_source is not None:
                self.policy_version = self.policy_source(session)


# How often an idle process reads the day's use of every process and the active policy version.
READ_BACK_SECONDS = 5.0

RECORD_COLUMNS = (
    "id", "at", "org_id", "key_id", "channel", "kind", "purpose", "scene", "verdict", "entry_ids",
    "policy_version", "feed_seq", "identifier_count",
)  # fmt: skip


def _write(session: Session, batch: list[LogRecord]) -> int:
    if not batch:
        return 0
    rows: list[tuple[Any, ...]] = []
    identifiers: list[tuple[uuid.UUID, str]] = []
    for r in batch:
        rid = uuid.uuid4()
        rows.append(
            (
                rid, r.at, r.org_id, r.key_id, CHANNEL_PLATFORM, r.kind, r.purpose, r.scene, r.verdict,
                r.entry_ids, r.policy_version, r.feed_seq, r.identifier_count,
            )
        )  # fmt: skip
        identifiers.extend((rid, d) for d in dict.fromkeys(r.digests))
    if session.get_bind().dialect.name == "postgresql":
        _copy(session, rows, identifiers)
    else:
        _executemany(session, DecisionLogRecord.__table__, RECORD_COLUMNS, rows)
        if identifiers:
            _executemany(session, DecisionLogIdentifier.__table__, ("record_id", "digest"), identifiers)
    return len(rows)


def _executemany(session: Session, table: Any, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    """SQLite: one executemany on the driver with the column types' own bind processing applied once
    per value — a Core insert spends most of its time building a parameter dict per row (about 80 µs a
    record, held under the interpreter lock the deciding requests need)."""
    conn = session.connection()
    dialect = conn.dialect
    processors = [table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns]
    data = [
        tuple(v if p is None or v is None else p(v) for p, v in zip(processors, row, strict=True))
        for row in rows
    ]
    marks = ", ".join("?" * len(columns))
    conn.exec_driver_sql(f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})", data)


def _copy(session: Session, rows: list[tuple[Any, ...]], identifiers: list[tuple[uuid.UUID, str]]) -> None:
    """PostgreSQL: COPY in the session's transaction, a few microseconds a row where an INSERT's bind
    processing costs tens (the decision route's budget allows no more)."""
    conn = session.connection().connection.driver_connection
    entry_ids = RECORD_COLUMNS.index("entry_ids")
    with conn.cursor() as cur:  # type: ignore[union-attr]
        with cur.copy(f"COPY decision_log ({', '.join(RECORD_COLUMNS)}) FROM STDIN") as cp:
            for row in rows:
                cp.write_row((*row[:entry_ids], json.dumps(row[entry_ids]), *row[entry_ids + 1 :]))
        if identifiers:
            with cur.copy("COPY decision_log_identifiers (record_id, digest) FROM STDIN") as cp:
                for ident in identifiers:
                    cp.write_row(ident)


# --- reading (platform auditors) --------------------------------------------------------------------


@dataclass
class Page:
    records: list[dict[str, Any]]
    next_after: uuid.UUID | None


def read(
    session: Session,
    *,
    org_id: uuid.UUID | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    kind: str | None = None,
    limit: int = 100,
    after: uuid.UUID | None = None,
) -> Page:
    """Records oldest first (time, then id), with their digests; ``after``: the last id of the page
    before."""
    stmt = select(DecisionLogRecord)
    if org_id is not None:
        stmt = stmt.where(DecisionLogRecord.org_id == org_id)
    if since is not None:
        stmt = stmt.where(DecisionLogRecord.at >= since)
    if until is not None:
        stmt = stmt.where(DecisionLogRecord.at < until)
    if kind is not None:
        stmt = stmt.where(DecisionLogRecord.kind == kind)
    if after is not None:
        last = session.get(DecisionLogRecord, after)
        if last is not None:
            stmt = stmt.where(
                or_(
                    DecisionLogRecord.at > last.at,
                    and_(DecisionLogRecord.at == last.at, DecisionLogRecord.id > last.id),
                )
            )
    rows = list(session.scalars(stmt.order_by(DecisionLogRecord.at, DecisionLogRecord.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    digests: dict[uuid.UUID, list[str]] = {r.id: [] for r in rows}
    if rows:
        for rid, digest in session.execute(
            select(DecisionLogIdentifier.record_id, DecisionLogIdentifier.digest)
            .where(DecisionLogIdentifier.record_id.in_(list(digests)))
            .order_by(DecisionLogIdentifier.digest)
        ):
            digests[rid].append(digest)
    return Page([record_out(r, digests[r.id]) for r in rows], rows[-1].id if more else None)


def record_out(r: DecisionLogRecord, digests: Iterable[str]) -> dict[str, Any]:
    return {
        "id": str(r.id),
        "at": r.at.isoformat(),
        "org_id": str(r.org_id),
        "key_id": str(r.key_id) if r.key_id else None,
        "channel": r.channel,
        "kind": r.kind,
        "purpose": r.purpose,
        "scene": r.scene,
        "verdict": r.verdict,
        "entry_ids": list(r.entry_ids or []),
        "policy_version": r.policy_version,
        "feed_seq": r.feed_seq,
        "node_record_id": r.node_record_id,
        "identifier_count": r.identifier_count,
        "digests": list(digests),
    }
