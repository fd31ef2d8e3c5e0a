"""The audit log: every state change is one event, hash-chained (审计日志).

Each row carries `hash = SHA-256(prev_hash || canonical content)`, where the content holds who
(actor and organisation), what (action, target), when, and digests of the state before and after.
A one-row table, `audit_chain_head`, holds the last sequence number and hash: appending updates it
first, which serialises appenders on PostgreSQL (row lock) and SQLite (write lock) alike, so the
chain stays linear with any number of processes, and a deleted tail is caught by `verify`.

Appending happens at commit, not when an event is recorded. `record` and `record_many` put the
event in the session's queue (`session.info`), with everything that does not depend on its place in
the chain already computed (digests, time, canonical content); a `before_commit` listener, set on
that session alone when it first records, takes the head's lock, numbers and chains the queued
events in the order they were recorded and inserts them, and the commit releases the lock. So the
head is locked only while a transaction commits: a 100,000-row upload no longer holds up every
audited look-up for the whole of its transaction, only while its commit inserts its own events.
An event's `at` is when it was recorded; its number is its place in commit order. A rollback drops
the queue (a savepoint's rollback
drops what was recorded inside it); reading the log through the session (`select(AuditEvent)`,
`search`, `verify`) first appends what the session has queued, so a transaction sees its own events.

Reads of plain personal identifiers are events too (action `pii.read`). Rows are never updated or
deleted by the platform; they are kept at least five years (DESIGN.md §2).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import JSON, BigInteger, Integer, String, Uuid, event, insert, select, text
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, SessionTransaction, mapped_column
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.util import find_tables

from fanchaoxin.core.db import Base, UTCDateTime, utcnow

if TYPE_CHECKING:
    import psycopg

GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class Actor:
    """Who did something: an API key (`key:<prefix>`), an operator at the CLI (`cli:<user>`), `system`."""

    name: str
    org_id: uuid.UUID | None = None


SYSTEM = Actor("system")


class AuditEvent(Base):
    __tablename__ = "audit_events"

    # Assigned from the chain head, not by the database, so that the sequence has no gaps.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(200), index=True)
    actor_org_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_type: Mapped[str] = mapped_column(String(64))
    target_id: Mapped[str] = mapped_column(String(200), index=True)
    before_digest: Mapped[str | None] = mapped_column(String(64))
    after_digest: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditChainHead(Base):
    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    hash: Mapped[str] = mapped_column(String(64))


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def digest(state: Any) -> str | None:
    """SHA-256 of a state snapshot; `None` when there is no such state (before a create, after a delete)."""
    if state is None:
        return None
    return hashlib.sha256(canonical_json(state).encode()).hexdigest()


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def event_content(
    *,
    seq: int,
    at: datetime,
    actor: str,
    actor_org_id: uuid.UUID | None,
    action: str,
    target_type: str,
    target_id: str,
    before_digest: str | None,
    after_digest: str | None,
    detail: dict[str, Any],
) -> str:
    """The chained text of one event (what `verify` recomputes): canonical JSON of its fields."""
    return canonical_json(
        {
            "seq": seq,
            "at": _iso(at),
            "actor": actor,
            "actor_org_id": str(actor_org_id) if actor_org_id else None,
            "action": action,
            "target_type": target_type,
            "target_id": target_id,
            "before": before_digest,
            "after": after_digest,
            "detail": detail,
        }
    )


def chain_hash(prev_hash: str, content: str) -> str:
    return hashlib.sha256((prev_hash + content).encode()).hexdigest()


def ensure_head(session: Session) -> None:
    if session.get(AuditChainHead, 1) is None:
        session.add(AuditChainHead(id=1, seq=0, hash=GENESIS_HASH))
        session.flush()


# --- the queue: events wait in their session until it commits ----------------------------------------

_QUEUE = "fcx_audit_queue"
_LOG_TABLES = frozenset({"audit_events", "audit_chain_head"})
_HOOKED = "fcx_audit_hooked"
_COPY_COLUMNS = (
    "id, prev_hash, hash, at, actor, actor_org_id, action, target_type, target_id, before_digest, "
    "after_digest, detail"
)
_COPY_CHUNK = 4 * 1024 * 1024  # characters handed to COPY at a time


def _j(value: str | None) -> str:
    return json.dumps(value, ensure_ascii=False)


def _copy_text(value: str | None) -> str:
    """One field in COPY's text format."""
    if value is None:
        return "\\N"
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


@dataclass(frozen=True, slots=True)
class _Queued:
    """An event waiting for the commit, prepared so that chaining it under the lock is cheap.

    `head` + str(seq) + `tail` is its `event_content` (canonical JSON sorts keys, and `seq` falls
    between `detail` and `target_id`), UTF-8 encoded. PostgreSQL: `copy` is the COPY text of every
    column after id, prev_hash and hash; elsewhere `row` holds the values.
    """

    head: bytes
    tail: bytes
    copy: str | None
    row: dict[str, Any] | None
    # The savepoint it was recorded in (None: the transaction itself): dropped if that rolls back.
    savepoint: SessionTransaction | None


def _queued(
    savepoint: SessionTransaction | None,
    postgres: bool,
    actor: Actor,
    at: datetime,
    action: str,
    target_type: str,
    target_id: str | uuid.UUID,
    before: Any,
    after: Any,
    detail: dict[str, Any] | None,
) -> _Queued:
    # Everything now, not at commit: the snapshots are the caller's objects and may change afterwards,
    # and the less work is left for the commit, the shorter the head stays locked.
    target = str(target_id)
    org = str(actor.org_id) if actor.org_id else None
    before_digest, after_digest = digest(before), digest(after)
    detail_json = canonical_json(detail or {})
    at_iso = _iso(at)
    head = (
        f'{{"action":{_j(action)},"actor":{_j(actor.name)},"actor_org_id":{_j(org)},'
        f'"after":{_j(after_digest)},"at":{_j(at_iso)},"before":{_j(before_digest)},'
        f'"detail":{detail_json},"seq":'
    )
    tail = f',"target_id":{_j(target)},"target_type":{_j(target_type)}}}'
    if postgres:
        fields = (at_iso, actor.name, org, action, target_type, target, before_digest, after_digest)
        copy = "\t".join(_copy_text(f) for f in fields) + "\t" + _copy_text(detail_json)
        return _Queued(head.encode(), tail.encode(), copy, None, savepoint)
    row = {
        "at": at,
        "actor": actor.name,
        "actor_org_id": actor.org_id,
        "action": action,
        "target_type": target_type,
        "target_id": target,
        "before_digest": before_digest,
        "after_digest": after_digest,
        # What was hashed, whatever the caller does with its dict later.
        "detail": json.loads(detail_json),
    }
    return _Queued(head.encode(), tail.encode(), None, row, savepoint)


def _enqueue(session: Session, events: list[_Queued]) -> None:
    if not session.info.get(_HOOKED):
        session.info[_HOOKED] = True
        # This session only: other sessions (and other processes' commits) are no business of ours.
        event.listen(session, "before_commit", _on_before_commit)
        event.listen(session, "after_soft_rollback", _on_rollback)
        event.listen(session, "after_transaction_end", _on_transaction_end)
        event.listen(session, "do_orm_execute", _on_orm_execute)
    session.info.setdefault(_QUEUE, []).extend(events)


def append_queued(session: Session) -> int:
    """Append the session's queued events to the chain now (the commit does it otherwise).

    Takes the chain head's lock, which this transaction then holds until it ends. Returns how many
    events were appended. Inside a savepoint it does nothing: what it wrote there would vanish with
    a rollback of the savepoint, events recorded before it included; the commit appends them.
    """
    if session.in_nested_transaction():
        return 0
    n = 0
    # A flush may itself record events (a listener): go on until the queue stays empty.
    while session.info.get(_QUEUE):
        # The change's own rows first, so that the head is the last lock this transaction takes.
        session.flush()
        queued: list[_Queued] = session.info[_QUEUE]
        session.info[_QUEUE] = []
        n += _append(session, queued)
    return n


def _append(session: Session, queued: list[_Queued]) -> int:
    if not queued:
        return 0
    bump = text("UPDATE audit_chain_head SET seq = seq + :n WHERE id = 1 RETURNING seq, hash")
    # The head's lock: on PostgreSQL a concurrent committer waits here until this transaction ends.
    row = session.execute(bump, {"n": len(queued)}).one_or_none()
    if row is None:
        ensure_head(session)
        row = session.execute(bump, {"n": len(queued)}).one()
    last_seq, prev_hash = int(row[0]), str(row[1])
    seq = last_seq - len(queued)
    sha256 = hashlib.sha256
    if queued[0].copy is not None:
        dbapi = cast("psycopg.Connection[Any]", session.connection().connection.dbapi_connection)
        with dbapi.cursor() as cur, cur.copy(f"COPY audit_events ({_COPY_COLUMNS}) FROM STDIN") as copy:
            lines: list[str] = []
            size = 0
            for q in queued:
                seq += 1
                h = sha256(prev_hash.encode())
                h.update(q.head)
                h.update(str(seq).encode())
                h.update(q.tail)
                new_hash = h.hexdigest()
                line = f"{seq}\t{prev_hash}\t{new_hash}\t{q.copy}\n"
                lines.append(line)
                size += len(line)
                if size >= _COPY_CHUNK:
                    copy.write("".join(lines))
                    lines, size = [], 0
                prev_hash = new_hash
            if lines:
                copy.write("".join(lines))
    else:
        rows = []
        for q in queued:
            seq += 1
            h = sha256(prev_hash.encode())
            h.update(q.head)
            h.update(str(seq).encode())
            h.update(q.tail)
            new_hash = h.hexdigest()
            rows.append({**(q.row or {}), "id": seq, "prev_hash": prev_hash, "hash": new_hash})
            prev_hash = new_hash
        session.execute(insert(AuditEvent), rows)
    session.execute(text("UPDATE audit_chain_head SET hash = :h WHERE id = 1"), {"h": prev_hash})
    return len(queued)


def _on_before_commit(session: Session) -> None:
    append_queued(session)


def _on_rollback(session: Session, previous: SessionTransaction) -> None:
    queue: list[_Queued] | None = session.info.get(_QUEUE)
    if not queue:
        return
    if not previous.nested:
        queue.clear()
        return

    def inside(sp: SessionTransaction | None) -> bool:
        while sp is not None:
            if sp is previous:
                return True
            sp = sp.parent
        return False

    queue[:] = [q for q in queue if not inside(q.savepoint)]


def _on_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    # The outermost transaction is over (committed, rolled back or closed): nothing may carry over.
    if transaction.parent is None:
        session.info.pop(_QUEUE, None)


def _on_orm_execute(state: ORMExecuteState) -> None:
    # A transaction that reads the log sees its own events: append them before the query runs.
    if not state.session.info.get(_QUEUE) or not state.is_select:
        return
    if any(m.class_ in (AuditEvent, AuditChainHead) for m in state.all_mappers):
        append_queued(state.session)
        return
    # `select(func.count()).select_from(AuditEvent)` names no mapper: look at the tables it reads.
    stmt = state.statement
    if isinstance(stmt, ClauseElement) and any(
        getattr(t, "name", None) in _LOG_TABLES for t in find_tables(stmt, check_columns=True)
    ):
        append_queued(state.session)


def record(
    session: Session,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: str | uuid.UUID,
    *,
    before: Any = None,
    after: Any = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Record one event in the caller's transaction: it is appended to the chain when that commits,
    and vanishes if it rolls back.

    `before`/`after` are state snapshots; only their digests are chained, so personal data in them
    never lands in the log. `detail` must hold no plain personal identifiers.
    """
    postgres = session.get_bind().dialect.name == "postgresql"
    savepoint = session.get_nested_transaction()
    at = utcnow()
    _enqueue(
        session,
        [_queued(savepoint, postgres, actor, at, action, target_type, target_id, before, after, detail)],
    )


def record_many(session: Session, actor: Actor, events: list[dict[str, Any]]) -> int:
    """Record many events at once (bulk submissions): one time stamp, appended together at commit.

    Each item has `action`, `target_type`, `target_id` and optionally `before`, `after`, `detail`.
    """
    if not events:
        return 0
    at = utcnow()
    postgres = session.get_bind().dialect.name == "postgresql"
    savepoint = session.get_nested_transaction()
    _enqueue(
        session,
        [
            _queued(
                savepoint,
                postgres,
                actor,
                at,
                ev["action"],
                ev["target_type"],
                ev["target_id"],
                ev.get("before"),
                ev.get("after"),
                ev.get("detail"),
            )
            for ev in events
        ],
    )
    return len(events)


def record_read(
    session: Session,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: str | uuid.UUID,
    *,
    detail: dict[str, Any],
) -> None:
    """Audit a read (a lookup, a query). Same chain; on PostgreSQL the commit does not wait for the disk.

    A read changes nothing, so the one thing a crash in the next few hundred milliseconds could cost is
    the newest read events — never a state change, and never the chain's consistency (the lost events
    are simply absent, the head row goes with them). That keeps audited lookups fast enough for an
    enterprise node to call on every registration.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL synchronous_commit TO OFF"))
    record(session, actor, action, target_type, target_id, detail=detail)


def record_pii_read(
    session: Session,
    actor: Actor,
    target_type: str,
    target_id: str | uuid.UUID,
    *,
    purpose: str,
    fields: list[str],
) -> None:
    """A read of plain personal identifiers (居民身份证号, 手机号 …) is an audited event."""
    record(
        session,
        actor,
        "pii.read",
        target_type,
        target_id,
        detail={"purpose": purpose, "fields": sorted(fields)},
    )


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    broken_at: int | None = None
    reason: str | None = None


def verify(session: Session, *, batch: int = 5000) -> VerifyResult:
    """Walk the chain from the first event and name the first broken link."""
    append_queued(session)
    expected_prev = GENESIS_HASH
    expected_seq = 1
    checked = 0
    for ev in _iter_events(session, batch):
        if ev.id != expected_seq:
            return VerifyResult(False, checked, expected_seq, f"event {expected_seq} is missing")
        if ev.prev_hash != expected_prev:
            return VerifyResult(False, checked, ev.id, f"event {ev.id} does not link to event {ev.id - 1}")
        content = event_content(
            seq=ev.id,
            at=ev.at,
            actor=ev.actor,
            actor_org_id=ev.actor_org_id,
            action=ev.action,
            target_type=ev.target_type,
            target_id=ev.target_id,
            before_digest=ev.before_digest,
            after_digest=ev.after_digest,
            detail=ev.detail or {},
        )
        if chain_hash(ev.prev_hash, content) != ev.hash:
            return VerifyResult(False, checked, ev.id, f"event {ev.id} was altered (its hash does not match)")
        expected_prev = ev.hash
        expected_seq += 1
        checked += 1
    head = session.get(AuditChainHead, 1)
    last_seq = expected_seq - 1
    if head is not None and (head.seq != last_seq or head.hash != expected_prev):
        return VerifyResult(
            False, checked, last_seq + 1, f"chain head says {head.seq} events but {last_seq} are present"
        )
    return VerifyResult(True, checked)


def _iter_events(session: Session, batch: int) -> Iterator[AuditEvent]:
    last = 0
    while True:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.id > last).order_by(AuditEvent.id).limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].id
        session.expunge_all()


def search(
    session: Session,
    *,
    action: str = "",
    actor: str = "",
    target_id: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[AuditEvent]:
    """Audit events, newest first. `action` and `actor` are LIKE patterns (`%` any run); `since` is
    inclusive and `until` exclusive; `before_id` pages on (events older than that one)."""
    stmt = select(AuditEvent)
    if action:
        stmt = stmt.where(AuditEvent.action.like(action))
    if actor:
        stmt = stmt.where(AuditEvent.actor.like(actor))
    if target_id:
        stmt = stmt.where(AuditEvent.target_id == target_id)
    if since is not None:
        stmt = stmt.where(AuditEvent.at >= since)
    if until is not None:
        stmt = stmt.where(AuditEvent.at < until)
    if before_id:
        stmt = stmt.where(AuditEvent.id < before_id)
    return list(session.scalars(stmt.order_by(AuditEvent.id.desc()).limit(limit)))
