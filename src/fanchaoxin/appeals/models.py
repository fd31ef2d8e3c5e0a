"""Tables of due process: objections, credit repair applications, reports, attachments, corrections.

Each case has a tracking number and a secret (only its digest under the crypto profile is kept)
through which the objector, applicant or reporter follows it without an account. Deadlines are
stored on the case in dates (PRC working days, computed at filing, forwarding or routing).
`open_entry_id` is set while a case about an entry is open and cleared when it is decided: its unique
constraint lets only one open objection (or repair application) exist per entry, even when two are
filed at the same moment.

Personal data is encrypted at rest (core.vault): contact e-mails, how an identity was verified, what a
report names (its identifiers, name, shop, account), an attachment's file name and a correction
notice's subject name. Nothing looks a case up by these values (the public forms' rate limits count
per identifier in memory), so no blind index is kept. The free texts (grounds, facts, rectification,
descriptions, notes) stay plain: they are the filer's own account, not a structured identifier,
contact or name (what #14 puts under encryption).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from fanchaoxin.core.db import Base, UTCDateTime, new_id, utcnow
from fanchaoxin.core.vault import Encrypted, EncryptedJSON


class Objection(Base):
    """An objection (异议) to a published entry, by its subject or the subject's agent."""

    __tablename__ = "objections"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    tracking_number: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    entry_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("entries.id"), index=True)
    open_entry_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, unique=True)
    # Tenancy: the filer's organisation (a platform reviewer filing for the subject; none for the
    # public path) and, once forwarded, the reporting organisation that must answer.
    owner_org_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    addressed_to_org_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # open | forwarded | answered | decided
    channel: Mapped[str] = mapped_column(String(16))  # public | reviewer
    filed_by: Mapped[str] = mapped_column(String(200))
    # Which of the subject's identifiers the objector stated (the value itself is not kept here).
    identifier_type: Mapped[str] = mapped_column(String(32))
    grounds: Mapped[str] = mapped_column(Text)
    contact_email: Mapped[str] = mapped_column(Encrypted("objections.contact_email"))
    contact_phone: Mapped[str | None] = mapped_column(Encrypted("objections.contact_phone"))  # #17
    identity_verification: Mapped[str | None] = mapped_column(Encrypted("objections.identity_verification"))
    identity_verified_by: Mapped[str | None] = mapped_column(String(200))

    filed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    filed_on: Mapped[date] = mapped_column(Date)
    dispute_due_on: Mapped[date] = mapped_column(Date)
    disputed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    forward_due_on: Mapped[date] = mapped_column(Date)
    decide_due_on: Mapped[date] = mapped_column(Date, index=True)
    forwarded_on: Mapped[date | None] = mapped_column(Date)
    forward_note: Mapped[str | None] = mapped_column(Text)
    answer_due_on: Mapped[date | None] = mapped_column(Date)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_by: Mapped[str | None] = mapped_column(String(200))
    answer_outcome: Mapped[str | None] = mapped_column(String(16))
    answer: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_on: Mapped[date | None] = mapped_column(Date)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    outcome: Mapped[str | None] = mapped_column(String(16))  # upheld | corrected | revoked
    decision_reason: Mapped[str | None] = mapped_column(Text)
    corrections: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__: ClassVar[dict[str, Any]] = {"version_id_col": version}

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "tracking_number": self.tracking_number,
            "entry_id": str(self.entry_id),
            "status": self.status,
            "addressed_to_org_id": str(self.addressed_to_org_id) if self.addressed_to_org_id else None,
            "identity_verified": self.identity_verification is not None,
            "decide_due_on": self.decide_due_on.isoformat(),
            "answer_due_on": self.answer_due_on.isoformat() if self.answer_due_on else None,
            "answer_outcome": self.answer_outcome,
            "outcome": self.outcome,
            "decision_reason": self.decision_reason,
            "corrections": self.corrections,
        }


class RepairApplication(Base):
    """A credit repair application (信用修复申请): after the minimum period, with a credit commitment."""

    __tablename__ = "repair_applications"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    tracking_number: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    entry_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("entries.id"), index=True)
    open_entry_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, unique=True)
    owner_org_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # open | decided
    channel: Mapped[str] = mapped_column(String(16))
    filed_by: Mapped[str] = mapped_column(String(200))
    identifier_type: Mapped[str] = mapped_column(String(32))
    commitment_accepted: Mapped[bool] = mapped_column(Boolean)
    commitment_text: Mapped[str] = mapped_column(Text)  # 信用承诺, published with the approval
    rectification: Mapped[str] = mapped_column(Text)  # what was put right (整改情况)
    contact_email: Mapped[str] = mapped_column(Encrypted("repair_applications.contact_email"))
    contact_phone: Mapped[str | None] = mapped_column(Encrypted("repair_applications.contact_phone"))  # #17
    identity_verification: Mapped[str | None] = mapped_column(
        Encrypted("repair_applications.identity_verification")
    )
    filed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    filed_on: Mapped[date] = mapped_column(Date)
    decide_due_on: Mapped[date] = mapped_column(Date, index=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    outcome: Mapped[str | None] = mapped_column(String(16))  # approved | rejected
    decision_reason: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__: ClassVar[dict[str, Any]] = {"version_id_col": version}

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "tracking_number": self.tracking_number,
            "entry_id": str(self.entry_id),
            "status": self.status,
            "decide_due_on": self.decide_due_on.isoformat(),
            "outcome": self.outcome,
            "decision_reason": self.decision_reason,
        }


class Report(Base):
    """A report of 炒信 (举报) by anyone (public form) or by an organisation."""

    __tablename__ = "reports"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    tracking_number: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    # Tenancy: the reporting organisation (none for the public form) and, once triaged, the recipient.
    owner_org_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    addressed_to_org_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # received | routed | handled | dismissed
    channel: Mapped[str] = mapped_column(String(16))  # public | organisation
    filed_by: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    behaviours: Mapped[list[str]] = mapped_column(JSON, default=list)
    # {"identifiers": [{"type", "value"}], "name", "shop", "account", "platform"} — canonical values.
    reported: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON("reports.reported"))
    contact_email: Mapped[str | None] = mapped_column(Encrypted("reports.contact_email"))
    contact_phone: Mapped[str | None] = mapped_column(Encrypted("reports.contact_phone"))  # #17
    filed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    filed_on: Mapped[date] = mapped_column(Date)
    routed_on: Mapped[date | None] = mapped_column(Date)
    routed_by: Mapped[str | None] = mapped_column(String(200))
    triage_note: Mapped[str | None] = mapped_column(Text)
    handle_due_on: Mapped[date | None] = mapped_column(Date, index=True)
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    handled_by: Mapped[str | None] = mapped_column(String(200))
    outcome: Mapped[str | None] = mapped_column(String(16))  # substantiated | unsubstantiated | forwarded
    outcome_note: Mapped[str | None] = mapped_column(Text)
    forwarded_to: Mapped[str | None] = mapped_column(String(200))
    linked_entry_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("entries.id"), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__: ClassVar[dict[str, Any]] = {"version_id_col": version}

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "tracking_number": self.tracking_number,
            "status": self.status,
            "addressed_to_org_id": str(self.addressed_to_org_id) if self.addressed_to_org_id else None,
            "handle_due_on": self.handle_due_on.isoformat() if self.handle_due_on else None,
            "outcome": self.outcome,
            "linked_entry_id": str(self.linked_entry_id) if self.linked_entry_id else None,
        }


class CaseAttachment(Base):
    """A file attached to an objection, repair application or report; content in `evidence_blobs`."""

    __tablename__ = "case_attachments"
    __table_args__ = (
        UniqueConstraint("case_type", "case_id", "digest", name="uq_case_attachments_case_type"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    case_type: Mapped[str] = mapped_column(String(16))  # objection | repair | report
    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    digest: Mapped[str] = mapped_column(ForeignKey("evidence_blobs.digest"), index=True)
    filename: Mapped[str] = mapped_column(Encrypted("case_attachments.filename"))
    media_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    uploaded_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CorrectionNotice(Base):
    """A public correction notice (更正公告) after a revocation: restores the subject's reputation.

    The public text names no entry and shows the subject's name masked as for display elsewhere
    (natural persons 张*三; a unit's registered name is public registration data).
    """

    __tablename__ = "correction_notices"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    entry_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("entries.id"), unique=True)
    objection_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("objections.id"), index=True)
    subject_kind: Mapped[str] = mapped_column(String(32))
    # Masked for a natural person (张*三) and public once published, yet sealed: the masked name beside
    # the entry is still personal data, and one rule for the column is simpler than one per kind.
    subject_name: Mapped[str] = mapped_column(Encrypted("correction_notices.subject_name"))
    reason: Mapped[str] = mapped_column(Text)
    revoked_on: Mapped[date] = mapped_column(Date, index=True)
    lifts_due_on: Mapped[date] = mapped_column(Date)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_by: Mapped[str] = mapped_column(String(200))
