"""Tables of the transparency log (透明日志, #19): leaves, the head, signed checkpoints, witness
cosignatures and the immutable full tiles (migration 0027)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from fanchaoxin.core.db import Base, UTCDateTime, utcnow

_BigInt = BigInteger().with_variant(Integer, "sqlite")


class LogLeaf(Base):
    """Leaf ``idx`` of the log: its bytes (canonical JSON, no plain personal data) and leaf hash.

    Indices are gap-free and taken under ``tlog_head``'s row lock in the transaction of the change they
    record, so leaves commit in index order. ``feed_seq`` ties a feed event to its leaf (a node checks
    that event s is leaf i); ``audit_seq`` marks a commitment to the audit chain's head.
    """

    __tablename__ = "tlog_leaves"

    idx: Mapped[int] = mapped_column(_BigInt, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(16))  # feed | audit_head
    feed_seq: Mapped[int | None] = mapped_column(_BigInt, unique=True)
    audit_seq: Mapped[int | None] = mapped_column(_BigInt, index=True)
    entry_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    leaf: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LogHead(Base):
    """One row: the log's size. Its lock orders appenders, as ``feed_head`` does the feed's."""

    __tablename__ = "tlog_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    size: Mapped[int] = mapped_column(_BigInt)


class LogCheckpoint(Base):
    """A signed checkpoint as published (the C2SP signed note), with the key that signed it."""

    __tablename__ = "tlog_checkpoints"

    id: Mapped[int] = mapped_column(_BigInt, primary_key=True, autoincrement=True)
    size: Mapped[int] = mapped_column(_BigInt, index=True)
    root_hash: Mapped[str] = mapped_column(String(128))  # hex
    note: Mapped[str] = mapped_column(Text)
    vkey: Mapped[str] = mapped_column(String(300))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LogCosignature(Base):
    """A witness's cosignature of one checkpoint (tlog-cosignature), by an enrolled key of its org."""

    __tablename__ = "tlog_cosignatures"
    __table_args__ = (UniqueConstraint("checkpoint_id", "witness_key_id", name="uq_tlog_cosignatures_key"),)

    id: Mapped[int] = mapped_column(_BigInt, primary_key=True, autoincrement=True)
    checkpoint_id: Mapped[int] = mapped_column(ForeignKey("tlog_checkpoints.id"), index=True)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    witness_key_id: Mapped[str] = mapped_column(String(64))
    line: Mapped[str] = mapped_column(Text)
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LogTile(Base):
    """A full (immutable) tile or entry bundle, stored once complete, so the static tree can be served
    or exported without the process's tree."""

    __tablename__ = "tlog_tiles"

    path: Mapped[str] = mapped_column(String(200), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
