"""Enterprise node status (节点状态上报), as Open Policy Agent agents report theirs (#16).

Every node reports, at a fixed interval, where it stands: its feed position and the feed's age, the
policy version of what it applies, how many users it has enrolled, how many identifiers it evaluated
live since its last report, the errors since then (sync and relay failures), its version and its
receipt-signing key id if it has one. A node is named by the ``node_id`` it made at its first report and
keeps in its own store; one row per (organisation, node) holds the last report.

The platform compares the node's feed position with its own feed head (the lag, ``feed_head`` is passed
in: this slice does not read the feed) and a scheduler pass flags a node silent for longer than
``FCX_NODE_SILENT_ALERT_SECONDS`` (节点失联告警): ``silent_since`` is set and a security alert of kind
``node_silent`` is raised for the platform's staff (the same list as the enumeration alerts; it suspends
nothing). The next report from the node clears both.

Reports are telemetry, not state changes of the register: a report is not audited, its effects are (a
node first seen, a node flagged silent, a silent node back).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import Field
from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Integer, String, UniqueConstraint, Uuid, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from fanchaoxin.core import audit
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.db import Base, UTCDateTime, new_id
from fanchaoxin.core.schemas import StrictModel
from fanchaoxin.orgs.models import Organisation, SecurityAlert

NODE_SILENT = "node_silent"  # SecurityAlert.kind
NODE_ID_PATTERN = r"^[A-Za-z0-9_-]{8,64}$"
_BigInt = BigInteger().with_variant(Integer, "sqlite")
_MAX_INT = 2**63 - 1


class NodeStatus(Base):
    """The last status report of one enterprise node (节点状态)."""

    __tablename__ = "node_status"
    __table_args__ = (UniqueConstraint("org_id", "node_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    node_id: Mapped[str] = mapped_column(String(64))
    # The enterprise_node API key the last report came with.
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    node_version: Mapped[str] = mapped_column(String(64))
    node_key_id: Mapped[str | None] = mapped_column(String(64))  # the node's receipt-signing key, if any
    feed_seq: Mapped[int] = mapped_column(_BigInt)
    feed_age_seconds: Mapped[float | None] = mapped_column(Float)  # None: never synced
    policy_version: Mapped[str | None] = mapped_column(String(64))
    enrolled: Mapped[int] = mapped_column(_BigInt)
    live_tags: Mapped[int] = mapped_column(_BigInt)  # live evaluations since the report before
    errors: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)  # since the report before
    interval_seconds: Mapped[float] = mapped_column(Float)  # the node's reporting interval
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Set by the scheduler pass that found the node silent; cleared by its next report.
    silent_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Where the node stands with the transparency log (#19): its alarm when it refused a checkpoint.
    log: Mapped[dict[str, Any] | None] = mapped_column(JSON)


# --- the report -------------------------------------------------------------------------------------------


class NodeErrorsIn(StrictModel):
    sync_failures: int = Field(0, ge=0, le=_MAX_INT, description="Failed syncs since the last report.")
    relay_failures: int = Field(
        0, ge=0, le=_MAX_INT, description="Failed relays (feedback, decision log) since the last report."
    )


class NodeLogIn(StrictModel):
    """The node's check of the transparency log (透明日志), as its last sync left it."""

    alarm: str | None = Field(
        None, max_length=1000, description="Why the node refused the log's checkpoint; null when it verified."
    )
    events_waiting: int = Field(0, ge=0, le=_MAX_INT, description="Applied events no checkpoint covers yet.")
    size: int | None = Field(None, ge=0, le=_MAX_INT, description="Size of the last checkpoint it accepted.")
    checked_up_to_feed_seq: int | None = Field(None, ge=0, le=_MAX_INT)


class NodeStatusIn(StrictModel):
    """``POST /v1/nodes/status``: one node's report."""

    node_id: str = Field(
        pattern=NODE_ID_PATTERN, description="The id the node made at its first report (kept in its store)."
    )
    node_version: str = Field(min_length=1, max_length=64)
    node_key_id: str | None = Field(None, min_length=1, max_length=64)
    feed_seq: int = Field(ge=0, le=_MAX_INT, description="The node's feed head.")
    feed_age_seconds: float | None = Field(
        None, ge=0, le=10 * 366 * 86400, description="Seconds since its last verified sync; null: never."
    )
    policy_version: str | None = Field(None, min_length=1, max_length=64)
    enrolled: int = Field(ge=0, le=_MAX_INT, description="Enrolled identifiers (tags).")
    live_tags: int = Field(0, ge=0, le=_MAX_INT, description="Live evaluations since the last report.")
    errors: NodeErrorsIn = Field(default_factory=NodeErrorsIn)
    interval_seconds: float = Field(gt=0, le=86400, description="Seconds between the node's reports.")
    log: NodeLogIn | None = None


def record_report(
    session: Session,
    actor: Actor,
    org_id: uuid.UUID,
    api_key_id: uuid.UUID | None,
    report: NodeStatusIn,
    now: datetime,
) -> NodeStatus:
    """Keep the node's report (its row is made at its first report); a node flagged silent is back."""
    row = session.scalar(
        select(NodeStatus).where(NodeStatus.org_id == org_id, NodeStatus.node_id == report.node_id)
    )
    first = row is None
    if row is None:
        row = NodeStatus(org_id=org_id, node_id=report.node_id, first_seen_at=now)
        session.add(row)
    was_silent = row.silent_since
    row.api_key_id = api_key_id
    row.node_version = report.node_version
    row.node_key_id = report.node_key_id
    row.feed_seq = report.feed_seq
    row.feed_age_seconds = report.feed_age_seconds
    row.policy_version = report.policy_version
    row.enrolled = report.enrolled
    row.live_tags = report.live_tags
    row.errors = report.errors.model_dump()
    row.interval_seconds = report.interval_seconds
    row.log = report.log.model_dump() if report.log is not None else None
    row.reported_at = now
    row.silent_since = None
    session.flush()
    if first:
        audit.record(
            session, actor, "node.first_seen", "organisation", org_id,
            detail={"node_id": report.node_id, "node_version": report.node_version},
        )  # fmt: skip
    if was_silent is not None:
        cleared = _clear_silent_alerts(session, org_id, report.node_id, now)
        audit.record(
            session, actor, "node.back", "organisation", org_id,
            detail={"node_id": report.node_id, "silent_since": was_silent.isoformat(), "alerts": cleared},
        )  # fmt: skip
    return row


def _clear_silent_alerts(session: Session, org_id: uuid.UUID, node_id: str, now: datetime) -> list[str]:
    alerts = session.scalars(
        select(SecurityAlert).where(
            SecurityAlert.org_id == org_id,
            SecurityAlert.kind == NODE_SILENT,
            SecurityAlert.cleared_at.is_(None),
        )
    ).all()
    cleared = []
    for alert in alerts:
        if (alert.detail or {}).get("node_id") == node_id:
            alert.cleared_at = now
            alert.cleared_by = "system:node_status"
            alert.clear_reason = "the node reported again"
            cleared.append(str(alert.id))
    return cleared


# --- silence ----------------------------------------------------------------------------------------------


def mark_silent(session: Session, actor: Actor, *, now: datetime, threshold_seconds: int) -> int:
    """The scheduler pass: flag each node whose last report is older than the threshold and not flagged
    yet, and raise a ``node_silent`` security alert for it. Returns how many were flagged."""
    cutoff = now - timedelta(seconds=threshold_seconds)
    rows = session.scalars(
        select(NodeStatus).where(NodeStatus.silent_since.is_(None), NodeStatus.reported_at < cutoff)
    ).all()
    for row in rows:
        row.silent_since = now
        detail = {
            "node_id": row.node_id,
            "last_report_at": row.reported_at.isoformat(),
            "threshold_seconds": threshold_seconds,
        }
        session.add(SecurityAlert(org_id=row.org_id, kind=NODE_SILENT, raised_at=now, detail=detail))
        audit.record(session, actor, "node.silent", "organisation", row.org_id, detail=detail)
    session.flush()
    return len(rows)


# --- what the platform shows ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeView:
    """A node as the console and ``GET /v1/nodes`` show it."""

    org_id: uuid.UUID
    org_name: str
    node_id: str
    node_version: str
    node_key_id: str | None
    feed_seq: int
    lag: int  # events the node is behind the platform's feed head
    feed_age_seconds: float | None
    policy_version: str | None
    enrolled: int
    live_tags: int
    live_tags_per_minute: float
    errors: dict[str, int]
    interval_seconds: float
    reported_at: datetime
    first_seen_at: datetime
    seconds_since_report: float
    silent: bool
    silent_since: datetime | None
    log: dict[str, Any] | None = None

    @property
    def log_alarm(self) -> str | None:
        return (self.log or {}).get("alarm")

    def out(self) -> dict[str, Any]:
        return {
            "org_id": str(self.org_id),
            "org_name": self.org_name,
            "node_id": self.node_id,
            "node_version": self.node_version,
            "node_key_id": self.node_key_id,
            "feed_seq": self.feed_seq,
            "lag": self.lag,
            "feed_age_seconds": self.feed_age_seconds,
            "policy_version": self.policy_version,
            "enrolled": self.enrolled,
            "live_tags": self.live_tags,
            "live_tags_per_minute": self.live_tags_per_minute,
            "errors": self.errors,
            "interval_seconds": self.interval_seconds,
            "reported_at": self.reported_at.isoformat(),
            "first_seen_at": self.first_seen_at.isoformat(),
            "seconds_since_report": self.seconds_since_report,
            "silent": self.silent,
            "silent_since": self.silent_since.isoformat() if self.silent_since else None,
            "log": self.log,
        }


def list_nodes(
    session: Session,
    *,
    org_id: uuid.UUID | None,
    feed_head: int,
    now: datetime,
    threshold_seconds: int,
) -> list[NodeView]:
    """The nodes of one organisation (or of all, for the platform's staff), most behind first. A node is
    silent once flagged by the scheduler, or as soon as its last report is older than the threshold."""
    stmt = select(NodeStatus, Organisation.name).join(Organisation, Organisation.id == NodeStatus.org_id)
    if org_id is not None:
        stmt = stmt.where(NodeStatus.org_id == org_id)
    views = []
    for row, org_name in session.execute(stmt):
        since = max(0.0, (now - row.reported_at).total_seconds())
        views.append(
            NodeView(
                org_id=row.org_id,
                org_name=org_name,
                node_id=row.node_id,
                node_version=row.node_version,
                node_key_id=row.node_key_id,
                feed_seq=row.feed_seq,
                lag=max(0, feed_head - row.feed_seq),
                feed_age_seconds=row.feed_age_seconds,
                policy_version=row.policy_version,
                enrolled=row.enrolled,
                live_tags=row.live_tags,
                live_tags_per_minute=round(row.live_tags * 60.0 / row.interval_seconds, 2),
                errors=dict(row.errors or {}),
                interval_seconds=row.interval_seconds,
                reported_at=row.reported_at,
                first_seen_at=row.first_seen_at,
                seconds_since_report=round(since, 1),
                silent=row.silent_since is not None or since > threshold_seconds,
                silent_since=row.silent_since,
                log=row.log,
            )
        )
    # A node that refused the log's checkpoint first: a split view or rewritten history to look into.
    views.sort(key=lambda v: (v.log_alarm is None, not v.silent, -v.lag, v.org_name, v.node_id))
    return views
