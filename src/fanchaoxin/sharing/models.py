"""Tables of the sharing capability: the change feed (migration 0002), tag cache, quotas, snapshots,
webhooks, outbox (migration 0005)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fanchaoxin.core import vault
from fanchaoxin.core.db import Base, UTCDateTime, new_id, utcnow

_BigInt = BigInteger().with_variant(Integer, "sqlite")


class FeedEvent(Base):
    """The change feed: one event per publication, update, dispute flag, revocation, expiry or repair.

    Sequence numbers are gap-free and assigned in the transaction of the change (from `feed_head`),
    so a reader that has seen N has seen everything up to N. The record carries no plain personal
    identifier; it is the one source for sharing, department push, statistics and enterprise nodes.
    """

    __tablename__ = "feed_events"

    seq: Mapped[int] = mapped_column(_BigInt, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    event: Mapped[str] = mapped_column(String(32))
    entry_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("entries.id"), index=True)
    record: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The request that made the change (X-Request-ID, core.logs): the outbox sends it on and the node logs
    # it, so one request can be followed from the platform to the node (#23). None for a job's change.
    request_id: Mapped[str | None] = mapped_column(String(64))


class FeedHead(Base):
    __tablename__ = "feed_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(_BigInt)


class IdentifierTag(Base):
    """The tag of one canonical identifier under one OPRF key, computed once (snapshots reuse it).

    Keyed by the identifier's blind index (``SubjectIdentifier.value_index``), never its plain value."""

    __tablename__ = "sharing_identifier_tags"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    type: Mapped[str] = mapped_column(String(32), primary_key=True)
    # A profile change recomputes the blind indexes: the cached tags follow them (core.rekey).
    value_index: Mapped[str] = mapped_column(
        String(64), primary_key=True, info={vault.BLIND_INDEX: vault.RemappedIndex("identifier")}
    )
    tag: Mapped[str] = mapped_column(String(80))


class EvaluationQuota(Base):
    """An enterprise's token bucket of blinded evaluations (capacity: one day's quota)."""

    __tablename__ = "sharing_quotas"

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Snapshot(Base):
    """A built snapshot file (kept under the sharing dir); the newest is the one the manifest names."""

    __tablename__ = "sharing_snapshots"

    seq: Mapped[int] = mapped_column(_BigInt, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(Integer)
    # hex digest of the gzip file under the crypto profile it was built under (SHA-256 or SM3: 64 chars)
    digest: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(_BigInt)
    key_ids: Mapped[list[str]] = mapped_column(JSON)
    signing_key_id: Mapped[str] = mapped_column(String(32))
    filename: Mapped[str] = mapped_column(String(200))
    built_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Webhook(Base):
    """A receiver of feed events: an enterprise node (shared records) or a department (in full)."""

    __tablename__ = "sharing_webhooks"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    owner_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    url: Mapped[str] = mapped_column(String(500))
    # The HMAC key: needed in plain to sign each delivery; shown to the subscriber once.
    secret: Mapped[str] = mapped_column(String(128))
    audience: Mapped[str] = mapped_column(String(16))  # "enterprise" | "department"
    active: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "owner_org_id": str(self.owner_org_id),
            "url": self.url,
            "audience": self.audience,
            "active": self.active,
        }


class OutboxItem(Base):
    """One feed event to deliver to one webhook (transactional outbox: written with the event)."""

    __tablename__ = "sharing_outbox"
    __table_args__ = (UniqueConstraint("webhook_id", "seq", name="uq_sharing_outbox_webhook_id"),)

    id: Mapped[int] = mapped_column(_BigInt, primary_key=True, autoincrement=True)
    webhook_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sharing_webhooks.id"), index=True)
    seq: Mapped[int] = mapped_column(_BigInt, index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending | delivered | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dead_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    webhook: Mapped[Webhook] = relationship(lazy="joined")

    @property
    def event_id(self) -> str:
        """Stable across retries and replays, so receivers can dedupe."""
        return f"evt_{self.seq}"
