"""`Idempotency-Key`: a repeated request returns the first answer and writes nothing.

The key is scoped to the calling organisation. The same key with a different request body is a
409 (a client bug that must not be papered over).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint, Uuid, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.types import JSON

from fanchaoxin.core.db import Base, UTCDateTime, new_id, utcnow
from fanchaoxin.core.errors import Conflict, ValidationProblem


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("owner_org_id", "key", name="uq_idempotency_records_owner_key"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    owner_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def request_hash(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\x00")
    return h.hexdigest()


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


def replay(session: Session, org_id: uuid.UUID, key: str | None, req_hash: str) -> IdempotencyRecord | None:
    """The stored answer for this key, or None when the request is new."""
    if key is None:
        return None
    rec = session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.owner_org_id == org_id, IdempotencyRecord.key == key
        )
    )
    if rec is not None and rec.request_hash != req_hash:
        raise Conflict(f"Idempotency-Key {key!r} was used before with a different request")
    return rec


def remember(
    session: Session,
    org_id: uuid.UUID,
    key: str | None,
    req_hash: str,
    status_code: int,
    body: dict[str, Any],
) -> None:
    """Store the answer in the same transaction as the change it reports.

    Two concurrent requests with one key: the unique constraint lets only one commit; the other
    fails here and the caller answers 409 (its retry then gets the stored answer).
    """
    if key is None:
        return
    session.add(
        IdempotencyRecord(
            owner_org_id=org_id, key=key, request_hash=req_hash, status_code=status_code, body=body
        )
    )
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(f"A request with Idempotency-Key {key!r} is being processed; retry it") from exc
