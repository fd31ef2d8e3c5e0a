"""Tables of taking part in the joint action: agreement texts, signatures, an enterprise's standing,
and each enterprise's rulebook (action plan 一(三), 二(二))."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, ClassVar

from sqlalchemy import Boolean, Date, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint, Uuid
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, deferred, mapped_column

from fanchaoxin.core.db import Base, UTCDateTime, new_id, utcnow


class AgreementVersion(Base):
    """One published text of the anti-炒信 information-sharing agreement (反炒信信息共享协议).

    The latest published version is the current one; only it can be signed. `resign_by`: those whose
    agreement is of an earlier version stay in force until this day, then lapse until they sign it."""

    __tablename__ = "agreement_versions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    version: Mapped[str] = mapped_column(String(20), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    text_zh: Mapped[str] = mapped_column(Text)
    summary_en: Mapped[str] = mapped_column(Text)
    published_on: Mapped[date] = mapped_column(Date, index=True)
    resign_by: Mapped[date | None] = mapped_column(Date)
    published_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Participation(Base):
    """An enterprise's standing in the joint action (参与状态): applied, active, suspended or withdrawn.

    Active with a signature of a version still in force is what `orgs.agreements.standing` calls an
    agreement in force; the platform suspends (a data breach, an abuse of queries), the enterprise
    withdraws."""

    __tablename__ = "participations"

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # applied | active | suspended | withdrawn
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    applied_by: Mapped[str] = mapped_column(String(200))
    suspended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    suspended_by: Mapped[str | None] = mapped_column(String(200))
    suspension_reason: Mapped[str | None] = mapped_column(String(1000))
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawal_reason: Mapped[str | None] = mapped_column(String(1000))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__: ClassVar[dict[str, Any]] = {"version_id_col": version}

    # Tenancy (core.tenancy): an enterprise owns its standing.
    @hybrid_property
    def owner_org_id(self) -> uuid.UUID:
        return self.org_id


class AgreementSignature(Base):
    """An enterprise's signature of one agreement version (签署记录): the signed PDF (kept, and its
    SHA-256), who signed and on what day."""

    __tablename__ = "agreement_signatures"
    __table_args__ = (
        UniqueConstraint("owner_org_id", "version_id", name="uq_agreement_signatures_org_version"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    owner_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    version_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agreement_versions.id"), index=True)
    signatory: Mapped[str] = mapped_column(String(200))
    signatory_title: Mapped[str | None] = mapped_column(String(200))
    signed_on: Mapped[date] = mapped_column(Date)
    pdf_sha256: Mapped[str] = mapped_column(String(64))
    pdf_size: Mapped[int] = mapped_column(Integer)
    pdf_filename: Mapped[str] = mapped_column(String(200))
    pdf: Mapped[bytes] = deferred(mapped_column(LargeBinary, nullable=False))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    recorded_by: Mapped[str] = mapped_column(String(200))


class MeasureRule(Base):
    """Whether an enterprise's user agreement and platform rules let it apply one of the 13 measures
    (企业规则), with the clause that says so or that rules it out. A measure without a rule is taken
    as allowed (an enterprise that has declared nothing is instructed as before)."""

    __tablename__ = "measure_rules"

    owner_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    measure: Mapped[str] = mapped_column(String(64), primary_key=True)
    applicable: Mapped[bool] = mapped_column(Boolean)
    clause: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str] = mapped_column(String(200))
