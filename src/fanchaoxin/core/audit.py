"""The audit log: every state change is one event, hash-chained (审计日志).

Each row carries `hash = H(prev_hash || canonical content)`, H the digest of the crypto profile the
event was appended under (SHA-256, or SM3 under `gm`: `core.crypto`), where the content holds who
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

Reads of plain personal identifiers are events too (action `pii.read`). Rows are never updated by the
platform. They are kept `FCX_AUDIT_RETENTION_YEARS` (at least five, DESIGN.md §2); then `prune` deletes a
prefix of the chain, after writing a signed checkpoint (`audit_checkpoints`: the last pruned event's
number and hash, how many events, their time range) that `verify` starts from: the first remaining
event must link to the checkpoint's hash, and the checkpoint's signature (the platform's
feed-signing key: Ed25519, or SM2 under `gm`) must verify.

A chain outlives a change of profile (`fcx crypto migrate`): `switch_profile` appends a
`crypto.profile_changed` event under the old profile and records a period (`core.crypto_record`) from
the next event on; `verify` hashes each event under the profile of its period, and checks that every
period after the first begins right after the event that announced it, so that editing the periods
table is caught like editing an event.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import JSON, BigInteger, Integer, String, Uuid, delete, event, func, insert, select, text
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, SessionTransaction, mapped_column
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.util import find_tables

from fanchaoxin.core import crypto_record
from fanchaoxin.core.crypto import CryptoError, Profile, active, profile, profile_of_public_key
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


class AuditCheckpoint(Base):
    """A signed checkpoint of a pruned prefix of the chain (审计链检查点): events 1..`last_seq` were
    deleted after their retention period; `last_hash` is the hash of event `last_seq`, which the first
    remaining event's `prev_hash` must equal. Each checkpoint covers the whole pruned prefix (it carries
    the earlier one's first time forward); `verify` starts from the latest."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    made_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), unique=True)
    last_hash: Mapped[str] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)
    key_id: Mapped[str] = mapped_column(String(64))
    # base64 of the signing key's public key: 32 bytes Ed25519 (44 characters) or a 65-byte SM2 point (88)
    public_key: Mapped[str] = mapped_column(String(128))
    # base64 of the signature: 64 bytes Ed25519, or DER SM2 (at most 72 bytes: 96 characters)
    signature: Mapped[str] = mapped_column(String(128))

    def content(self) -> bytes:
        """What is signed: canonical JSON of every field but the signature itself."""
        return checkpoint_content(
            last_seq=self.last_seq,
            last_hash=self.last_hash,
            count=self.count,
            first_at=self.first_at,
            last_at=self.last_at,
            made_at=self.made_at,
            key_id=self.key_id,
            public_key=self.public_key,
        )


CHECKPOINT_FORMAT = "fcx-audit-checkpoint/1"


def checkpoint_content(
    *,
    last_seq: int,
    last_hash: str,
    count: int,
    first_at: datetime,
    last_at: datetime,
    made_at: datetime,
    key_id: str,
    public_key: str,
) -> bytes:
    return canonical_json(
        {
            "format": CHECKPOINT_FORMAT,
            "last_seq": last_seq,
            "last_hash": last_hash,
            "count": count,
            "first_at": _iso(first_at),
            "last_at": _iso(last_at),
            "made_at": _iso(made_at),
            "key_id": key_id,
            "public_key": public_key,
        }
    ).encode()


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def digest(state: Any, p: Profile | None = None) -> str | None:
    """Hex digest (the profile's: SHA-256 | SM3) of a state snapshot; `None` when there is no such state
    (before a create, after a delete)."""
    if state is None:
        return None
    return (p or active()).hexdigest(canonical_json(state).encode())


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


def chain_hash(prev_hash: str, content: str, p: Profile | None = None) -> str:
    return (p or active()).hexdigest((prev_hash + content).encode())


def ensure_head(session: Session) -> None:
    if session.get(AuditChainHead, 1) is None:
        session.add(AuditChainHead(id=1, seq=0, hash=GENESIS_HASH))
        session.flush()


# --- the queue: events wait in their session until it commits ----------------------------------------

_QUEUE = "fcx_audit_queue"
# Set by `switch_profile`: the profile this session appends under from then on (the process's setting
# still names the old one until it restarts).
_PROFILE = "fcx_audit_profile"
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


def _profile(session: Session) -> Profile:
    name = session.info.get(_PROFILE)
    return profile(name) if name else active()


def _queued(
    p: Profile,
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
    before_digest, after_digest = digest(before, p), digest(after, p)
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
    # One profile look-up per batch; the digest of one joined buffer is cheaper than an incremental
    # hasher per event (SHA-256 and SM3 alike)
    dig = _profile(session).digest
    if queued[0].copy is not None:
        dbapi = cast("psycopg.Connection[Any]", session.connection().connection.dbapi_connection)
        with dbapi.cursor() as cur, cur.copy(f"COPY audit_events ({_COPY_COLUMNS}) FROM STDIN") as copy:
            lines: list[str] = []
            size = 0
            for q in queued:
                seq += 1
                new_hash = dig(b"".join((prev_hash.encode(), q.head, str(seq).encode(), q.tail))).hex()
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
            new_hash = dig(b"".join((prev_hash.encode(), q.head, str(seq).encode(), q.tail))).hex()
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
        [
            _queued(
                _profile(session),
                savepoint,
                postgres,
                actor,
                at,
                action,
                target_type,
                target_id,
                before,
                after,
                detail,
            )
        ],
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
    p = _profile(session)
    _enqueue(
        session,
        [
            _queued(
                p,
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
    pruned: int = 0  # events before the checkpoint the walk started from (deleted after retention)


def latest_checkpoint(session: Session) -> AuditCheckpoint | None:
    return session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.last_seq.desc()).limit(1)).first()


def checkpoint_problem(cp: AuditCheckpoint, trusted_keys: Mapping[str, bytes] | None) -> str | None:
    """Why a checkpoint cannot be believed, or None. `trusted_keys` (key id → raw public key: 32-byte
    Ed25519 or 65-byte SM2 point) are the platform's signing keys; without them the key stored with the
    checkpoint is used, which catches a changed checkpoint but not one re-signed with another key.
    The signature is checked under the profile its key belongs to, so a checkpoint signed before a
    change of profile still verifies."""
    name = f"audit checkpoint {cp.id} (events 1-{cp.last_seq} pruned)"
    try:
        stored = base64.b64decode(cp.public_key, validate=True)
        signature = base64.b64decode(cp.signature, validate=True)
    except ValueError:
        return f"{name} is not readable (bad base64)"
    if trusted_keys is not None:
        trusted = trusted_keys.get(cp.key_id)
        if trusted is None or trusted != stored:
            return f"{name} is signed by key {cp.key_id!r}, which is not the platform's signing key"
    try:
        profile_of_public_key(stored).verify(stored, cp.content(), signature)
    except CryptoError:
        return f"{name} was altered (its signature does not verify)"
    if cp.count != cp.last_seq:
        return f"{name} counts {cp.count} events, not {cp.last_seq}"
    return None


def verify(
    session: Session, *, batch: int = 5000, trusted_keys: Mapping[str, bytes] | None = None
) -> VerifyResult:
    """Walk the chain from the first event, or from the latest pruning checkpoint, and name the first
    broken link (a checkpoint that does not verify is named too)."""
    append_queued(session)
    expected_prev, expected_seq, pruned = GENESIS_HASH, 1, 0
    cp = latest_checkpoint(session)
    if cp is not None:
        problem = checkpoint_problem(cp, trusted_keys)
        if problem is not None:
            return VerifyResult(False, 0, cp.last_seq, problem, cp.last_seq)
        expected_prev, expected_seq, pruned = cp.last_hash, cp.last_seq + 1, cp.last_seq
    recorded = crypto_record.periods(session) or [crypto_record.Period(active(), 1)]
    # Each period after the first must begin right after the event that announced it.
    announced = {p.since_seq - 1: p for p in recorded[1:]}
    first_kept = expected_seq
    checked = 0
    bounds = [p.since_seq for p in recorded[1:]]
    p = crypto_record.profile_at(recorded, expected_seq)
    next_bound = next((b for b in bounds if b > expected_seq), None)
    for ev in _iter_events(session, batch, after=expected_seq - 1):
        if next_bound is not None and ev.id >= next_bound:
            p = crypto_record.profile_at(recorded, ev.id)
            next_bound = next((b for b in bounds if b > ev.id), None)
        if ev.id != expected_seq:
            return VerifyResult(False, checked, expected_seq, f"event {expected_seq} is missing", pruned)
        if ev.prev_hash != expected_prev:
            to = (
                f"audit checkpoint {cp.id}"
                if cp is not None and ev.id == cp.last_seq + 1
                else f"event {ev.id - 1}"
            )
            return VerifyResult(False, checked, ev.id, f"event {ev.id} does not link to {to}", pruned)
        if not _intact(ev, p):
            reason = f"event {ev.id} was altered (its hash does not match under {p.hash_algorithm})"
            return VerifyResult(False, checked, ev.id, reason, pruned)
        problem = _period_problem(ev, announced)
        if problem is not None:
            return VerifyResult(False, checked, ev.id, problem, pruned)
        expected_prev = ev.hash
        expected_seq += 1
        checked += 1
    last_seq = expected_seq - 1
    for seq, period in announced.items():
        if seq < 1:
            reason = f"the crypto profile record has a second period from event {seq + 1}, before any event"
            return VerifyResult(False, checked, 1, reason, pruned)
        # An announcement pruned away is vouched for by the signed checkpoint.
        if seq >= first_kept and seq > last_seq:
            reason = (
                f"the crypto profile record says {period.profile.name!r} from event {seq + 1} on, "
                "but no event announced that change (the periods table was edited?)"
            )
            return VerifyResult(False, checked, seq, reason, pruned)
    head = session.get(AuditChainHead, 1)
    if head is not None and (head.seq != last_seq or head.hash != expected_prev):
        return VerifyResult(
            False,
            checked,
            last_seq + 1,
            f"chain head says {head.seq} events but {last_seq} are present",
            pruned,
        )
    return VerifyResult(True, checked, pruned=pruned)


def _period_problem(ev: AuditEvent, announced: Mapping[int, crypto_record.Period]) -> str | None:
    period = announced.get(ev.id)
    changed = ev.action == PROFILE_CHANGED
    if period is None and not changed:
        return None
    if period is None:
        return (
            f"event {ev.id} changed the crypto profile to {(ev.detail or {}).get('to')!r}, but the "
            "profile record has no period from the next event on (the periods table was edited?)"
        )
    if not changed or (ev.detail or {}).get("to") != period.profile.name:
        return (
            f"the crypto profile record says {period.profile.name!r} from event {ev.id + 1} on, but "
            f"event {ev.id} does not announce that change (the periods table was edited?)"
        )
    return None


def _intact(ev: AuditEvent, p: Profile | None = None) -> bool:
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
    return chain_hash(ev.prev_hash, content, p) == ev.hash


PROFILE_CHANGED = "crypto.profile_changed"


def switch_profile(session: Session, to: str, actor: Actor, *, current: str | None = None) -> int:
    """Change the profile the chain is hashed under (the migration command, 密码配置变更).

    Appends a ``crypto.profile_changed`` event (detail: from, to) hashed under the profile in force,
    then records a period of ``to`` from the next event on; this session appends under ``to`` from
    then on. Returns the sequence number of the announcing event. ``current``: what the chain is hashed
    under now, for a database whose record holds no period (default: the platform's setting). Runs in
    the caller's transaction (the chain head stays locked until it ends).
    """
    new = profile(to)
    append_queued(session)
    recorded = crypto_record.periods(session)
    old = recorded[-1].profile if recorded else (profile(current) if current else _profile(session))
    if old.name == new.name:
        raise ValueError(f"the audit chain is already hashed under the {to!r} crypto profile")
    session.info[_PROFILE] = old.name
    record(session, actor, PROFILE_CHANGED, "crypto_profile", to, detail={"from": old.name, "to": to})
    append_queued(session)
    head = session.get(AuditChainHead, 1)
    assert head is not None
    session.refresh(head)
    seq = int(head.seq)
    if not recorded:
        # A database from before the record: say what the chain so far was hashed under
        crypto_record.start_period(session, old.name, since_seq=1)
    crypto_record.start_period(session, to, since_seq=seq + 1)
    session.flush()
    session.info[_PROFILE] = to
    return seq


# --- retention: pruning a prefix behind a signed checkpoint ------------------------------------------


class PruneRefused(RuntimeError):
    """The prefix to prune does not verify: nothing is deleted or signed (the message names the event)."""


@dataclass(frozen=True)
class PruneResult:
    pruned: int  # events deleted by this run
    checkpoint: AuditCheckpoint | None  # the new checkpoint, None when nothing was old enough


def prune(
    session: Session,
    *,
    before: datetime,
    sign: Callable[[bytes], bytes],
    key: Callable[[], tuple[str, bytes]],
    now: datetime,
    max_events: int = 200_000,
    batch: int = 5000,
) -> PruneResult:
    """Delete the oldest events recorded before `before` (a prefix of the chain: it stops at the first
    newer event), at most `max_events` per run, behind a new checkpoint signed with `sign`.

    The prefix is verified first; a broken one raises :class:`PruneRefused` and nothing changes.
    `key` gives the signing key's id and raw public key (a key of the active crypto profile), `sign`
    the signature of the checkpoint's content under it (a ``core.crypto`` signing key's ``sign``);
    both are called only when there is something to prune. The signature is checked before anything
    is deleted: a key of the other profile or a signer that does not match its key refuses.
    Runs in the caller's transaction: the checkpoint and the deletions commit together.
    """
    append_queued(session)
    if session.get_bind().dialect.name == "postgresql":
        # One pruner at a time (every API worker runs the scheduler); appenders are not held up.
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext('fcx_audit_prune'))"))
    previous = latest_checkpoint(session)
    start_seq = previous.last_seq if previous is not None else 0
    newer = session.scalar(
        select(func.min(AuditEvent.id)).where(AuditEvent.id > start_seq, AuditEvent.at >= before)
    )
    if newer is None:
        newer = (session.scalar(select(func.max(AuditEvent.id))) or start_seq) + 1
    last_seq = min(newer - 1, start_seq + max_events)
    if last_seq <= start_seq:
        return PruneResult(0, None)
    expected_prev = previous.last_hash if previous is not None else GENESIS_HASH
    expected_seq = start_seq + 1
    first_at = previous.first_at if previous is not None else None
    last_at: datetime | None = None
    # The caller's session may hold its own changes: events are expunged one by one, nothing else.
    recorded = crypto_record.periods(session) or [crypto_record.Period(active(), 1)]
    for ev in _iter_events(session, batch, after=start_seq, upto=last_seq, expunge_all=False):
        p = crypto_record.profile_at(recorded, ev.id)
        if ev.id != expected_seq or ev.prev_hash != expected_prev or not _intact(ev, p):
            raise PruneRefused(
                f"audit events are not pruned: the chain is broken at event {expected_seq} "
                "(run `fcx audit verify`)"
            )
        first_at = first_at or ev.at
        expected_prev, expected_seq, last_at = ev.hash, ev.id + 1, ev.at
    if expected_seq != last_seq + 1 or first_at is None or last_at is None:
        raise PruneRefused(f"audit events are not pruned: event {expected_seq} is missing")
    key_id, public_key = key()
    public = base64.b64encode(public_key).decode()
    cp = AuditCheckpoint(
        made_at=now,
        last_seq=last_seq,
        last_hash=expected_prev,
        count=last_seq,
        first_at=first_at,
        last_at=last_at,
        key_id=key_id,
        public_key=public,
    )
    signature = sign(cp.content())
    platform = active()
    try:
        if profile_of_public_key(public_key) is not platform:
            raise CryptoError(f"it is not a key of the platform's {platform.name!r} crypto profile")
        platform.verify(public_key, cp.content(), signature)
    except CryptoError as exc:
        raise PruneRefused(
            f"audit events are not pruned: the checkpoint's signing key {key_id!r} cannot sign it ({exc})"
        ) from None
    cp.signature = base64.b64encode(signature).decode()
    session.add(cp)
    session.flush()
    for lo in range(start_seq, last_seq, batch):
        session.execute(
            delete(AuditEvent).where(AuditEvent.id > lo, AuditEvent.id <= min(lo + batch, last_seq)),
            execution_options={"synchronize_session": False},
        )
    return PruneResult(last_seq - start_seq, cp)


def _iter_events(
    session: Session, batch: int, *, after: int = 0, upto: int | None = None, expunge_all: bool = True
) -> Iterator[AuditEvent]:
    """Events in order, `batch` rows at a time. `expunge_all` empties the session after each batch (a
    read-only walk); otherwise each event is expunged once the caller has moved past it."""
    last = after
    while True:
        stmt = select(AuditEvent).where(AuditEvent.id > last)
        if upto is not None:
            stmt = stmt.where(AuditEvent.id <= upto)
        rows = session.scalars(stmt.order_by(AuditEvent.id).limit(batch)).all()
        if not rows:
            return
        for row in rows:
            yield row
            if not expunge_all:
                session.expunge(row)
        last = rows[-1].id
        if expunge_all:
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
