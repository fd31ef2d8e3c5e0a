"""Tables and vocabularies of organisations and API keys."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Integer, String, Uuid
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fanchaoxin.core import vault
from fanchaoxin.core.db import Base, UTCDateTime, new_id, utcnow


class Organisation(Base):
    """A participant: the platform, a department, or an enterprise that signed the sharing agreement."""

    __tablename__ = "organisations"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    name_en: Mapped[str | None] = mapped_column(String(200))
    uscc: Mapped[str | None] = mapped_column(String(18), unique=True)
    business_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    # A department's kind (department_kinds.yaml): what it acts on and which memoranda measures it is
    # instructed (sanctions.competence). None for others, and for a department made before kinds: such a
    # department receives nothing until it is given one.
    department_kind: Mapped[str | None] = mapped_column(String(32))
    # 信息共享协议 signing date as first registered (kept for the record); whether an enterprise takes part
    # now is its agreement's standing (orgs.agreements), not this date.
    agreement_signed_on: Mapped[date | None] = mapped_column(Date)
    # Where consultation notices and agreement reminders are e-mailed (联络邮箱).
    contact_email: Mapped[str | None] = mapped_column(String(320))
    # Basis of the enterprise's daily quota of blinded identifier evaluations (sharing capability).
    declared_users: Mapped[int | None] = mapped_column(Integer)
    # Per-organisation quotas of plain-identifier matching (orgs.budget); None: the platform default.
    quota_plain_per_minute: Mapped[int | None] = mapped_column(Integer)
    quota_plain_per_day: Mapped[int | None] = mapped_column(Integer)
    quota_evaluations_per_minute: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    keys: Mapped[list[ApiKey]] = relationship(back_populates="organisation", cascade="all, delete-orphan")

    # Tenancy (core.tenancy): an organisation is owned by itself (usable in queries too).
    @hybrid_property
    def owner_org_id(self) -> uuid.UUID:
        return self.id

    def snapshot(self) -> dict[str, object]:
        return {
            "id": str(self.id),
            "kind": self.kind,
            "name": self.name,
            "name_en": self.name_en,
            "uscc": self.uscc,
            "business_types": sorted(self.business_types or []),
            "department_kind": self.department_kind,
            "agreement_signed_on": self.agreement_signed_on.isoformat() if self.agreement_signed_on else None,
            "contact_email": self.contact_email,
            "declared_users": self.declared_users,
            "quota_plain_per_minute": self.quota_plain_per_minute,
            "quota_plain_per_day": self.quota_plain_per_day,
            "quota_evaluations_per_minute": self.quota_evaluations_per_minute,
            "active": self.active,
        }


class ApiKey(Base):
    """An API key. Only a SHA-256 of its secret is stored; the secret is shown once, at creation."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    owner_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    # Public part of the key, used to find the row; the secret part is compared in constant time.
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(200), default="")
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_reason: Mapped[str | None] = mapped_column(String(500))
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    organisation: Mapped[Organisation] = relationship(back_populates="keys")

    def status(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= now:
            return "expired"
        return "active"

    def snapshot(self) -> dict[str, object]:
        return {
            "id": str(self.id),
            "owner_org_id": str(self.owner_org_id),
            "role": self.role,
            "prefix": self.prefix,
            "label": self.label,
            "expires_at": self.expires_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "revoked_reason": self.revoked_reason,
        }


class DecisionLogRecord(Base):
    """One decision or look-up by an organisation (决策日志), as Open Policy Agent keeps them.

    Never the plain identifier: ``decision_log_identifiers`` holds keyed digests (``core.vault.
    identifier_index`` on the platform, ``tag:<hex>`` for a node's tag). Kept for
    ``FCX_AUDIT_RETENTION_YEARS`` and then pruned by the scheduler.
    """

    __tablename__ = "decision_log"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    key_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    channel: Mapped[str] = mapped_column(String(16))  # platform | node
    kind: Mapped[str] = mapped_column(String(16))  # decision | lookup | evaluation
    purpose: Mapped[str | None] = mapped_column(String(200))
    scene: Mapped[str | None] = mapped_column(String(64))
    verdict: Mapped[str | None] = mapped_column(String(16))
    entry_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The grading policy's version (``2026.1``: the policy file's own version string).
    policy_version: Mapped[str | None] = mapped_column(String(50))
    feed_seq: Mapped[int | None] = mapped_column(Integer)
    # How many identifiers were asked about: the digests below for a decision or look-up, the blinded
    # elements of an evaluation batch (whose identifiers the platform never sees).
    identifier_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Set for records relayed by a node: the node's own record id, so a re-sent batch is not counted twice.
    node_record_id: Mapped[str | None] = mapped_column(String(64), unique=True)


class DecisionLogIdentifier(Base):
    """A keyed digest of one identifier a decision-log record asked about ("who looked me up")."""

    __tablename__ = "decision_log_identifiers"

    record_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("decision_log.id", ondelete="CASCADE"), primary_key=True
    )
    # A change of crypto profile replaces each digest of an identifier the platform holds by the new
    # one; the digest of an identifier it never held cannot be recomputed (core.rekey.migrate_profile).
    digest: Mapped[str] = mapped_column(
        String(80), primary_key=True, index=True, info={vault.BLIND_INDEX: vault.RemappedIndex("identifier")}
    )


class PlainUsage(Base):
    """Plain identifiers an organisation had matched on one China day, summed over every API process.

    Each process counts in memory (orgs.budget) and adds its count here at every decision-log flush.
    """

    __tablename__ = "plain_usage"

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    identifiers: Mapped[int] = mapped_column(Integer, default=0)


class SecurityAlert(Base):
    """An alert the platform must review (安全告警), e.g. suspected enumeration of identifiers.

    While an enumeration alert is open, the organisation's plain-identifier matching is suspended.
    """

    __tablename__ = "security_alerts"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # enumeration
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The family's shape (masked: positions, never digits), the count and window: no personal data.
    detail: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cleared_by: Mapped[str | None] = mapped_column(String(200))
    clear_reason: Mapped[str | None] = mapped_column(String(500))
