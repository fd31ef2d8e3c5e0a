"""Decision-log records relayed by enterprise nodes (决策日志, channel ``node``).

A node answers its enterprise's decisions from its own copy of the feed and keeps a record of each; its
sync loop sends them here in batches (``POST /v1/decision-log/node``, the node's own key). Each record
becomes one :class:`~fanchaoxin.orgs.models.DecisionLogRecord` of the sending organisation, with the
node's record id in ``node_record_id`` (unique): a batch sent again after a lost answer inserts nothing
twice. The identifiers arrive as the node holds them — tags, never a plain value — and are kept as the
digests ``"tag:<tag>"``, which is how "who looked me up" finds them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, field_validator
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from fanchaoxin.core import audit
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.db import new_id
from fanchaoxin.core.schemas import StrictModel
from fanchaoxin.orgs.models import DecisionLogIdentifier, DecisionLogRecord

BATCH_MAX = 1_000
TAG_PATTERN = r"^[A-Za-z0-9_-]{1,32}:[A-Za-z0-9_-]{43}$"  # sharing.oprf.tag: key id ":" 32 bytes, base64url
TAG_DIGEST_PREFIX = "tag:"


class NodeRecordIn(StrictModel):
    """One decision the node answered, as it keeps it."""

    id: str = Field(min_length=1, max_length=64, description="The node's record id (unique per node).")
    at: datetime = Field(description="When the node answered (with a time zone).")
    purpose: str | None = Field(None, min_length=1, max_length=200)
    scene: str = Field(min_length=1, max_length=64)
    verdict: str = Field(min_length=1, max_length=16)
    entry_ids: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=1000
    )
    feed_seq: int | None = Field(None, ge=0, le=2**63 - 1)
    tags: list[Annotated[str, Field(pattern=TAG_PATTERN)]] = Field(
        default_factory=list,
        max_length=80,
        description="The identifiers' tags as the node holds them (never a plain value).",
    )
    identifiers: int | None = Field(None, ge=0, le=1000, description="How many identifiers were asked about.")
    absent: int = Field(0, ge=0, le=1000, description="Identifiers the node holds no tag for: a count.")

    @field_validator("at")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("give the time with its zone (UTC: a trailing Z or +00:00)")
        return v


class NodeBatchIn(StrictModel):
    records: list[NodeRecordIn] = Field(max_length=BATCH_MAX)
    dropped: int = Field(
        0,
        ge=0,
        le=2**62,
        description="Records the node deleted unsent (store full), since last told.",
    )


@dataclass
class Ingested:
    received: int
    stored: int  # new records; received - stored were already here (a re-sent batch)


def _insert(session: Session) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def ingest(
    session: Session, actor: Actor, org_id: uuid.UUID, key_id: uuid.UUID | None, batch: NodeBatchIn
) -> Ingested:
    """Store a node's batch for its organisation; records already stored (same node record id) are
    left as they are."""
    rows = [
        {
            "id": new_id(),
            "at": r.at,
            "org_id": org_id,
            "key_id": key_id,
            "channel": "node",
            "kind": "decision",
            "purpose": r.purpose,
            "scene": r.scene,
            "verdict": r.verdict,
            "entry_ids": r.entry_ids,
            "policy_version": None,
            "feed_seq": r.feed_seq,
            "node_record_id": r.id,
            "identifier_count": r.identifiers if r.identifiers is not None else len(set(r.tags)) + r.absent,
        }
        for r in batch.records
    ]
    stored: set[uuid.UUID] = set()
    if rows:
        stmt = (
            _insert(session)(DecisionLogRecord)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["node_record_id"])
            .returning(DecisionLogRecord.id)
        )
        stored = set(session.scalars(stmt))
        digests = [
            {"record_id": row["id"], "digest": TAG_DIGEST_PREFIX + tag}
            for row, record in zip(rows, batch.records, strict=True)
            if row["id"] in stored
            for tag in dict.fromkeys(record.tags)
        ]
        if digests:
            session.execute(_insert(session)(DecisionLogIdentifier).on_conflict_do_nothing(), digests)
    if batch.dropped:
        audit.record(
            session, actor, "decision_log.node_dropped", "organisation", org_id,
            detail={"dropped": batch.dropped},
        )  # fmt: skip
    return Ingested(received=len(rows), stored=len(stored))


def stored_ids(session: Session, node_record_ids: list[str]) -> set[str]:
    """Which of these node record ids the platform holds (tests, support)."""
    found = session.scalars(
        select(DecisionLogRecord.node_record_id).where(DecisionLogRecord.node_record_id.in_(node_record_ids))
    )
    return {f for f in found if f is not None}
