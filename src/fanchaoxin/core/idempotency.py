"""`Idempotency-Key`: a repeated request returns the first answer and writes nothing.

The key is scoped to the calling organisation. The same key with a different request body is a
409 (a client bug that must not be papered over).

Concurrent requests with one key: `replay` claims the key before any work is done, by inserting a
pending row in the request's own transaction (`INSERT … ON CONFLICT DO NOTHING`). A second request
with the key waits on that row — PostgreSQL's unique index, SQLite's write lock — until the first
commits, then reads and replays its answer; when the first rolls back, the second does the work
itself. If the wait runs out (lock timeout, busy timeout), the answer is 409 "in progress" with a
Retry-After, never a 500. `remember` fills in the claimed row with the answer.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint, Uuid, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Mapped, Session, mapped_column

from fanchaoxin.core.crypto import active
from fanchaoxin.core.db import Base, UTCDateTime, new_id, utcnow
from fanchaoxin.core.errors import Conflict, ValidationProblem
from fanchaoxin.core.vault import EncryptedJSON

# status_code of a claimed row whose request has not answered yet (only ever visible to its own
# transaction: the row is filled in before that transaction commits).
PENDING = 0
RETRY_AFTER_SECONDS = 2
_CLAIMS = "fcx_idempotency_claims"


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("owner_org_id", "key", name="uq_idempotency_records_owner_key"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    owner_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    # What the request answered: it can name a person (a filing's contact, a submitted subject).
    body: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON("idempotency_records.body"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RequestInProgress(Conflict):
    """Another request with the same key has not finished; retrying later gets its answer."""

    slug = "idempotency-in-progress"
    title = "A request with this Idempotency-Key is still being processed"
    title_zh = "相同幂等键的请求正在处理中，请稍后重试"

    def __init__(self, key: str) -> None:
        super().__init__(
            f"A request with Idempotency-Key {key!r} is still being processed; retry it later to get "
            "its answer",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )


class KeyReused(Conflict):
    slug = "idempotency-key-reused"
    title = "Idempotency-Key already used for a different request"
    title_zh = "幂等键已用于另一个不同的请求"

    def __init__(self, key: str) -> None:
        super().__init__(f"Idempotency-Key {key!r} was used before with a different request")


def request_hash(*parts: bytes | str) -> str:
    """The fingerprint of a request under the active profile's digest. A record made before a change of
    crypto profile no longer matches its retry (answered as a reused key): the change is made with the
    platform stopped, after the records' window has passed or with the table emptied."""
    h = active().hasher()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\x00")
    return bytes(h.finalize()).hex()


def check_key(key: str | None) -> str | None:
    if key is None:
        return None
    key = key.strip()
    if not 1 <= len(key) <= 200:
        raise ValidationProblem(
            "Idempotency-Key must be 1 to 200 characters",
            errors=[
                {
                    "in": "header",
                    "field": "Idempotency-Key",
                    "type": "length",
                    "message": "1 to 200 characters",
                }
            ],
        )
    return key


def _stored(session: Session, org_id: uuid.UUID, key: str) -> IdempotencyRecord | None:
    return session.scalar(
        select(IdempotencyRecord)
        .where(IdempotencyRecord.owner_org_id == org_id, IdempotencyRecord.key == key)
        .execution_options(populate_existing=True)
    )


def _answer(rec: IdempotencyRecord, key: str, req_hash: str) -> IdempotencyRecord:
    if rec.request_hash != req_hash:
        raise KeyReused(key)
    if rec.status_code == PENDING:
        raise RequestInProgress(key)
    return rec


def _is_wait_timeout(exc: OperationalError) -> bool:
    """A lock or busy wait that ran out (not a lost connection, which is someone else's 503)."""
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate is not None:
        return sqlstate in ("55P03", "57014")  # lock_not_available, query_canceled (statement timeout)
    return getattr(orig, "sqlite_errorname", "") in ("SQLITE_BUSY", "SQLITE_LOCKED") or "locked" in str(orig)


def replay(session: Session, org_id: uuid.UUID, key: str | None, req_hash: str) -> IdempotencyRecord | None:
    """The stored answer for this key, or None when the request is new (the key is then claimed).

    Call it before any other write of the request, and `remember` the answer before the commit.
    """
    if key is None:
        return None
    rec = _stored(session, org_id, key)
    if rec is not None:
        return _answer(rec, key, req_hash)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    row_id = new_id()
    stmt = (
        insert(IdempotencyRecord)
        .values(
            id=row_id,
            owner_org_id=org_id,
            key=key,
            request_hash=req_hash,
            status_code=PENDING,
            body={},
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["owner_org_id", "key"])
        .returning(IdempotencyRecord.id)
    )
    try:
        # Waits here while another transaction holds an uncommitted claim on the key.
        claimed = session.execute(stmt).scalar_one_or_none()
    except OperationalError as exc:
        if _is_wait_timeout(exc):
            raise RequestInProgress(key) from exc
        raise
    if claimed is not None:
        session.info.setdefault(_CLAIMS, {})[(org_id, key)] = claimed
        return None
    # The other request committed first: its answer is ours.
    rec = _stored(session, org_id, key)
    if rec is None:  # pragma: no cover - a committed claim cannot vanish (records are never deleted)
        raise RequestInProgress(key)
    return _answer(rec, key, req_hash)


def remember(
    session: Session,
    org_id: uuid.UUID,
    key: str | None,
    req_hash: str,
    status_code: int,
    body: dict[str, Any],
) -> None:
    """Store the answer in the same transaction as the change it reports.

    Normally fills in the row `replay` claimed. Without a claim (a caller that skipped `replay`) the
    row is inserted here, and a concurrent request that stored the key first makes this one a 409
    "in progress" instead of a database error.
    """
    if key is None:
        return
    claim = session.info.get(_CLAIMS, {}).pop((org_id, key), None)
    if claim is not None:
        filled = session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.id == claim)
            .values(status_code=status_code, body=body)
        )
        if cast("CursorResult[Any]", filled).rowcount == 1:
            return
    session.add(
        IdempotencyRecord(
            owner_org_id=org_id, key=key, request_hash=req_hash, status_code=status_code, body=body
        )
    )
    try:
        session.flush()
    except IntegrityError as exc:
        raise RequestInProgress(key) from exc
    except OperationalError as exc:
        if _is_wait_timeout(exc):
            raise RequestInProgress(key) from exc
        raise
