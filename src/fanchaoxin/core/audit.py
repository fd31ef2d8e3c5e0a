"""The audit log: every state change is one event, hash-chained (审计日志).

Each row carries `hash = SHA-256(prev_hash || canonical content)`, where the content holds who
(actor and organisation), what (action, target), when, and digests of the state before and after.
A one-row table, `audit_chain_head`, holds the last sequence number and hash: appending updates it
first, which serialises appenders on PostgreSQL (row lock) and SQLite (write lock) alike, so the
chain stays linear with any number of processes, and a deleted tail is caught by `verify`.

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
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, String, Uuid, insert, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from fanchaoxin.core.db import Base, UTCDateTime, bulk_insert, utcnow

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
) -> AuditEvent:
    """Append one event to the chain, in the caller's transaction (it commits or rolls back with the change).

    `before`/`after` are state snapshots; only their digests are chained, so personal data in them
    never lands in the log. `detail` must hold no plain personal identifiers.
    """
    # Flush the change first so that the row lock below is the last lock this transaction takes.
    session.flush()
    # Take the chain head's lock; on PostgreSQL a concurrent appender waits here until we commit.
    row = session.execute(
        text("UPDATE audit_chain_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
    ).one_or_none()
    if row is None:
        ensure_head(session)
        row = session.execute(
            text("UPDATE audit_chain_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
        ).one()
    seq, prev_hash = int(row[0]), str(row[1])
    at = utcnow()
    detail = detail or {}
    before_digest, after_digest = digest(before), digest(after)
    content = event_content(
        seq=seq,
        at=at,
        actor=actor.name,
        actor_org_id=actor.org_id,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        before_digest=before_digest,
        after_digest=after_digest,
        detail=detail,
    )
    new_hash = chain_hash(prev_hash, content)
    values = {
        "id": seq,
        "at": at,
        "actor": actor.name,
        "actor_org_id": actor.org_id,
        "action": action,
        "target_type": target_type,
        "target_id": str(target_id),
        "before_digest": before_digest,
        "after_digest": after_digest,
        "detail": detail,
        "prev_hash": prev_hash,
        "hash": new_hash,
    }
    session.execute(insert(AuditEvent).values(**values))
    session.execute(text("UPDATE audit_chain_head SET hash = :h WHERE id = 1"), {"h": new_hash})
    event = AuditEvent(**values)
    return event


def record_many(session: Session, actor: Actor, events: list[dict[str, Any]]) -> int:
    """Append many events under one lock (bulk submissions): same chain, one round trip per chunk.

    Each item has `action`, `target_type`, `target_id` and optionally `before`, `after`, `detail`.
    """
    if not events:
        return 0
    session.flush()
    row = session.execute(
        text("UPDATE audit_chain_head SET seq = seq + :n WHERE id = 1 RETURNING seq, hash"),
        {"n": len(events)},
    ).one()
    last_seq, prev_hash = int(row[0]), str(row[1])
    seq = last_seq - len(events)
    at = utcnow()
    rows = []
    for ev in events:
        seq += 1
        detail = ev.get("detail") or {}
        before_digest, after_digest = digest(ev.get("before")), digest(ev.get("after"))
        content = event_content(
            seq=seq,
            at=at,
            actor=actor.name,
            actor_org_id=actor.org_id,
            action=ev["action"],
            target_type=ev["target_type"],
            target_id=str(ev["target_id"]),
            before_digest=before_digest,
            after_digest=after_digest,
            detail=detail,
        )
        new_hash = chain_hash(prev_hash, content)
        rows.append(
            {
                "id": seq,
                "at": at,
                "actor": actor.name,
                "actor_org_id": actor.org_id,
                "action": ev["action"],
                "target_type": ev["target_type"],
                "target_id": str(ev["target_id"]),
                "before_digest": before_digest,
                "after_digest": after_digest,
                "detail": detail,
                "prev_hash": prev_hash,
                "hash": new_hash,
            }
        )
        prev_hash = new_hash
    bulk_insert(session, AuditEvent.__table__, rows)
    session.execute(text("UPDATE audit_chain_head SET hash = :h WHERE id = 1"), {"h": prev_hash})
    return len(rows)


def record_read(
    session: Session,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: str | uuid.UUID,
    *,
    detail: dict[str, Any],
) -> AuditEvent:
    """Audit a read (a lookup, a query). Same chain; on PostgreSQL the commit does not wait for the disk.

    A read changes nothing, so the one thing a crash in the next few hundred milliseconds could cost is
    the newest read events — never a state change, and never the chain's consistency (the lost events
    are simply absent, the head row goes with them). That keeps audited lookups fast enough for an
    enterprise node to call on every registration.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL synchronous_commit TO OFF"))
    return record(session, actor, action, target_type, target_id, detail=detail)


def record_pii_read(
    session: Session,
    actor: Actor,
    target_type: str,
    target_id: str | uuid.UUID,
    *,
    purpose: str,
    fields: list[str],
) -> AuditEvent:
    """A read of plain personal identifiers (居民身份证号, 手机号 …) is an audited event."""
    return record(
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
