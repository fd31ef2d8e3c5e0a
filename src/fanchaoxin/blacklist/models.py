"""Tables of the blacklist registry."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    event,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fanchaoxin.core import vault
from fanchaoxin.core.db import Base, UTCDateTime, new_id, utcnow
from fanchaoxin.subjects.models import IDENTIFIER_INDEX, Subject

_BigInt = BigInteger().with_variant(Integer, "sqlite")


class Entry(Base):
    """One record of the 炒信 blacklist (炒信黑名单): a subject, what it did, on what basis, and its state."""

    __tablename__ = "entries"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    subject_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subjects.id"), index=True)
    # The reporting organisation owns the entry (tenancy); published entries are shared with all.
    owner_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    shared_with_all: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    behaviours: Mapped[list[str]] = mapped_column(JSON)
    role: Mapped[str] = mapped_column(String(32))
    services: Mapped[list[str]] = mapped_column(JSON, default=list)
    severity: Mapped[str] = mapped_column(String(16), index=True)
    basis: Mapped[str] = mapped_column(String(32), index=True)
    document_number: Mapped[str | None] = mapped_column(String(100))
    issuing_authority: Mapped[str | None] = mapped_column(String(200))
    document_date: Mapped[date | None] = mapped_column(Date)
    occurred_from: Mapped[date | None] = mapped_column(Date)
    occurred_to: Mapped[date | None] = mapped_column(Date)
    facts: Mapped[str] = mapped_column(Text)
    # A liable person's entry is linked to its unit's entry and follows it (published, ended with it).
    parent_entry_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("entries.id"), index=True)
    liable_role: Mapped[str | None] = mapped_column(String(32))
    batch_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    # Set at publication: the policy that graded the entry and the measures it got (with parameters).
    policy_version: Mapped[str | None] = mapped_column(String(50))
    measures: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    # The subject as the submitter sent it (kind, name, identifiers): what the submitter is shown of
    # its entry until publication, since the subject it was matched to may be another tenant's.
    # Encrypted: it holds a person's name and identifiers as sent.
    submitted_subject: Mapped[dict[str, Any] | None] = mapped_column(
        vault.EncryptedJSON("entries.submitted_subject")
    )
    # What entity resolution left to the reviewer (an identifier of another kind of subject, several
    # subjects named at once): shown at review, never to the submitter.
    resolution_conflicts: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    # How the subject is told (告知): e-mail, phone, postal address. Encrypted: it is personal data.
    subject_contact: Mapped[dict[str, Any] | None] = mapped_column(
        vault.EncryptedJSON("entries.subject_contact")
    )
    # What the 炒信 gained as the finding establishes it (brushed_orders, points_gained): measure 5.
    gains: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    submitted_by: Mapped[str] = mapped_column(String(200))
    notice_started_on: Mapped[date | None] = mapped_column(Date)
    notice_ends_on: Mapped[date | None] = mapped_column(Date)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    min_end_on: Mapped[date | None] = mapped_column(Date)
    max_end_on: Mapped[date | None] = mapped_column(Date, index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    end_reason: Mapped[str | None] = mapped_column(String(2000))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Optimistic locking: two reviewers acting at once — one wins, the other gets 409.
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__: ClassVar[dict[str, Any]] = {"version_id_col": version}

    subject: Mapped[Subject] = relationship(lazy="joined")
    transitions: Mapped[list[EntryTransition]] = relationship(
        back_populates="entry", order_by="EntryTransition.id", cascade="all, delete-orphan"
    )
    evidence: Mapped[list[Evidence]] = relationship(back_populates="entry", order_by="Evidence.created_at")

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "subject_id": str(self.subject_id),
            "status": self.status,
            "behaviours": self.behaviours,
            "role": self.role,
            "services": self.services,
            "severity": self.severity,
            "basis": self.basis,
            "document_number": self.document_number,
            "issuing_authority": self.issuing_authority,
            "facts": self.facts,
            "notice_ends_on": self.notice_ends_on.isoformat() if self.notice_ends_on else None,
            "published_at": self.published_at.isoformat() if self.published_at else None,
            "min_end_on": self.min_end_on.isoformat() if self.min_end_on else None,
            "max_end_on": self.max_end_on.isoformat() if self.max_end_on else None,
            "end_reason": self.end_reason,
        }


class EntryTransition(Base):
    """One step of an entry's lifecycle: the timeline shown on the entry."""

    __tablename__ = "entry_transitions"

    id: Mapped[int] = mapped_column(_BigInt, primary_key=True, autoincrement=True)
    entry_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("entries.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(200))
    actor_org_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    reason: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    entry: Mapped[Entry] = relationship(back_populates="transitions")


class ProposedIdentifier(Base):
    """An identifier a submission gives for a subject that already existed.

    It joins the subject only when a reviewer accepts it — at the entry's publication — and a reviewer
    may reject it before; until then no look-up, decision or feed knows it. `party` says whose it is in
    the submission: `subject`, or `liable_persons[i]` (then `subject_id` is that person).
    """

    __tablename__ = "proposed_identifiers"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    entry_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("entries.id"), index=True)
    subject_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subjects.id"), index=True)
    party: Mapped[str] = mapped_column(String(32))
    type: Mapped[str] = mapped_column(String(32))
    # Encrypted like the subject's identifiers; `value_index` is `vault.identifier_index` of it.
    value: Mapped[str] = mapped_column(vault.Encrypted("proposed_identifiers.value"))
    value_index: Mapped[str] = mapped_column(String(64), info={vault.BLIND_INDEX: IDENTIFIER_INDEX})
    # proposed | joined | rejected (by a reviewer) | taken (another subject had it by publication)
    status: Mapped[str] = mapped_column(String(16), default="proposed", index=True)
    reason: Mapped[str | None] = mapped_column(String(2000))
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


@event.listens_for(ProposedIdentifier, "before_insert")
def _index_proposed(_mapper: Any, _conn: Any, target: ProposedIdentifier) -> None:
    target.value_index = vault.identifier_index(target.type, target.value)


class EvidenceBlob(Base):
    """Evidence content, stored once per digest of the plain file (content-addressed, 内容寻址), encrypted.

    The address is the hex digest under the platform's crypto profile (64 characters under either);
    `blacklist.evidence_digest` computes, checks and changes it.
    """

    __tablename__ = "evidence_blobs"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    media_type: Mapped[str] = mapped_column(String(100))
    data: Mapped[bytes] = mapped_column(vault.EncryptedBytes("evidence_blobs.data"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Evidence(Base):
    """An evidence file attached to an entry."""

    __tablename__ = "evidence"
    __table_args__ = (UniqueConstraint("entry_id", "digest", name="uq_evidence_entry_digest"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    entry_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("entries.id"), index=True)
    digest: Mapped[str] = mapped_column(ForeignKey("evidence_blobs.digest"), index=True)
    # Encrypted: a file is often named after the person it is about (`张三身份证110105….jpg`).
    filename: Mapped[str] = mapped_column(vault.Encrypted("evidence.filename"))
    media_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    uploaded_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    entry: Mapped[Entry] = relationship(back_populates="evidence")


class UploadBatch(Base):
    """One bulk submission (批量报送): what was sent, what was accepted, the per-row error report."""

    __tablename__ = "upload_batches"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    owner_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    format: Mapped[str] = mapped_column(String(8))
    digest: Mapped[str] = mapped_column(String(64))  # of the file as sent, under the crypto profile
    total_rows: Mapped[int] = mapped_column(Integer)
    accepted: Mapped[int] = mapped_column(Integer)
    rejected_rows: Mapped[int] = mapped_column(Integer)
    all_or_nothing: Mapped[bool] = mapped_column(Boolean)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    submitted_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
