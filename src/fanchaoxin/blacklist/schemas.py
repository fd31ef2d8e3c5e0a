"""Request and response bodies of the blacklist registry (炒信黑名单).

`LiableRole` lives with subjects (a link between a unit and a person) and is re-exported here.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator, model_validator

from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.catalogue import (
    Basis,  # the enum lives with its catalogue (bases.yaml)
    catalogues,
)
from fanchaoxin.core.identifiers import IdentifierError, IdentifierType, normalise
from fanchaoxin.core.schemas import ResponseModel, StrictModel
from fanchaoxin.subjects.models import LiableRole


class Role(StrEnum):
    """The subject's part in the 炒信."""

    organizer = "organizer"  # 组织者
    participant = "participant"  # 参与者
    facilitator = "facilitator"  # 帮助者: provides accounts, data, technology, logistics, funds, spreading


class Service(StrEnum):
    """Services a facilitator provided (action plan: 提供账号、数据、技术、物流、资金、信息发布等服务)."""

    account = "account"
    data = "data"
    technical = "technical"
    logistics = "logistics"
    funding = "funding"
    information_spreading = "information_spreading"


class IdentifierIn(StrictModel):
    type: IdentifierType
    value: str = Field(min_length=1, max_length=200)


class SubjectIn(StrictModel):
    kind: str = Field(description="Subject kind code (catalogue subject_kinds).")
    name: str = Field(min_length=1, max_length=200)
    identifiers: list[IdentifierIn] = Field(min_length=1, max_length=20)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, v: str) -> str:
        if v not in catalogues().subject_kinds:
            raise ValueError(f"unknown subject kind {v!r}; one of {', '.join(catalogues().subject_kinds)}")
        return v

    @model_validator(mode="after")
    def _identifiers_fit_kind(self) -> SubjectIn:
        """Normalise every identifier and check this kind of subject can have it (errors name the index)."""
        allowed = catalogues().subject_kinds[self.kind].identifiers
        seen: set[tuple[str, str]] = set()
        for i, ident in enumerate(self.identifiers):
            if ident.type not in allowed:
                raise ValueError(
                    f"identifiers[{i}]: a subject of kind {self.kind} cannot have "
                    f"a {ident.type.value} identifier "
                    f"(allowed: {', '.join(t.value for t in allowed)})"
                )
            try:
                ident.value = normalise(ident.type, ident.value)
            except IdentifierError as exc:
                raise ValueError(f"identifiers[{i}].value: {exc}") from exc
            key = (ident.type.value, ident.value)
            if key in seen:
                raise ValueError(f"identifiers[{i}]: duplicate {ident.type.value} identifier")
            seen.add(key)
        return self


class LiablePersonIn(StrictModel):
    role: LiableRole
    name: str = Field(min_length=1, max_length=100)
    identifiers: list[IdentifierIn] = Field(min_length=1, max_length=10)

    @model_validator(mode="after")
    def _normalise(self) -> LiablePersonIn:
        SubjectIn(kind="individual", name=self.name, identifiers=self.identifiers)
        return self


class ContactIn(StrictModel):
    """How the subject is told (告知): the notice goes by e-mail, by SMS, or as a printed letter.

    Kept encrypted with the entry; never shared, never shown to anyone but an authorised reviewer.
    """

    email: str | None = Field(None, max_length=254)
    phone: str | None = Field(None, max_length=40)
    postal_address: str | None = Field(None, max_length=500, description="For a printed letter.")
    addressee: str | None = Field(None, max_length=200, description="Who the letter is addressed to.")

    @model_validator(mode="after")
    def _normalise(self) -> ContactIn:
        for name, itype in (("email", IdentifierType.email), ("phone", IdentifierType.phone)):
            value = getattr(self, name)
            if value is None or not value.strip():
                setattr(self, name, None)
                continue
            try:
                setattr(self, name, normalise(itype, value))
            except IdentifierError as exc:
                raise ValueError(f"{name}: {exc}") from exc
        for name in ("postal_address", "addressee"):
            value = getattr(self, name)
            setattr(self, name, value.strip() or None if value is not None else None)
        return self

    def is_empty(self) -> bool:
        return not (self.email or self.phone or self.postal_address)


class GainsIn(StrictModel):
    """What the 炒信 gained, as the finding establishes it: measure 5 deducts these points (扣除信用积分)."""

    brushed_orders: int | None = Field(None, ge=0, le=100_000_000, description="Fake orders found.")
    points_gained: int | None = Field(
        None, ge=0, le=100_000_000, description="Credit points the fake orders or reviews earned."
    )


class EntryIn(StrictModel):
    """One 炒信 blacklist record as submitted by an enterprise or a department."""

    subject: SubjectIn
    behaviours: list[str] = Field(min_length=1, description="Behaviour codes (catalogue behaviours).")
    role: Role
    services: list[Service] = Field(default_factory=list)
    severity: str = Field(description="minor | general | serious")
    basis: Basis
    document_number: str | None = Field(
        None, max_length=100, description="文书编号; required unless enterprise_finding."
    )
    issuing_authority: str | None = Field(None, max_length=200)
    document_date: date | None = None
    occurred_from: date | None = None
    occurred_to: date | None = None
    facts: str = Field(min_length=1, max_length=20000)
    liable_persons: list[LiablePersonIn] = Field(default_factory=list, max_length=20)
    contact: ContactIn | None = Field(
        None, description="The subject's contact for the notice (告知书); without one a letter is printed."
    )
    gains: GainsIn | None = Field(None, description="Fake orders and points the finding establishes.")

    @field_validator("behaviours")
    @classmethod
    def _known_behaviours(cls, v: list[str]) -> list[str]:
        known = catalogues().behaviours
        for i, code in enumerate(v):
            if code not in known:
                raise ValueError(f"[{i}]: unknown behaviour code {code!r}; one of {', '.join(known)}")
        if len(set(v)) != len(v):
            raise ValueError("a behaviour is listed twice")
        return sorted(v)

    @field_validator("services")
    @classmethod
    def _services_once(cls, v: list[Service]) -> list[Service]:
        if len(set(v)) != len(v):
            raise ValueError("a service is listed twice")
        return sorted(v)

    @field_validator("severity")
    @classmethod
    def _known_severity(cls, v: str) -> str:
        if v not in catalogues().severities:
            raise ValueError(f"unknown severity {v!r}; one of {', '.join(catalogues().severities)}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> EntryIn:
        today = china_today()
        if self.basis != Basis.enterprise_finding:
            if not self.document_number:
                raise ValueError(f"document_number: required for basis {self.basis.value}")
            if not self.issuing_authority:
                raise ValueError(f"issuing_authority: required for basis {self.basis.value}")
        for name in ("document_date", "occurred_from", "occurred_to"):
            value = getattr(self, name)
            if value is not None and value > today:
                raise ValueError(f"{name}: {value.isoformat()} is in the future")
        if self.occurred_from and self.occurred_to and self.occurred_to < self.occurred_from:
            raise ValueError("occurred_to: before occurred_from")
        if self.services and self.role != Role.facilitator:
            raise ValueError("services: only a facilitator provides services")
        if self.liable_persons and not catalogues().subject_kinds[self.subject.kind].liable_persons:
            raise ValueError(
                "liable_persons: only a unit has a legal representative, principal or responsible persons"
            )
        return self


class TransitionIn(StrictModel):
    action: str = Field(description="start_review | reject | open_notice | publish | revoke | …")
    reason: str = Field("", max_length=2000)
    version: int = Field(description="The entry's version as last read (optimistic locking).")
    answers: dict[uuid.UUID, str] = Field(
        default_factory=dict,
        description="publish: the reviewer's answer to each statement (陈述申辩) the subject filed, by id.",
    )


class IdentifierOut(ResponseModel):
    type: IdentifierType
    value: str = Field(description="Masked for personal subjects unless revealed to an authorised reviewer.")


class SubjectOut(ResponseModel):
    id: uuid.UUID | None = Field(
        description="The platform's subject; none while the entry is shown as its submitter sent it."
    )
    kind: str
    name: str
    identifiers: list[IdentifierOut]


class RejectIdentifierIn(StrictModel):
    reason: str = Field(min_length=1, max_length=2000, description="Why the identifier is not the subject's.")
    version: int | None = Field(None, description="The entry's version as last read (optimistic locking).")


class ProposedIdentifierOut(ResponseModel):
    """An identifier the submission gives a subject that already existed; it joins at publication."""

    id: uuid.UUID
    party: str = Field(description="subject, or liable_persons[i]")
    subject_id: uuid.UUID
    type: IdentifierType
    value: str = Field(description="Masked for personal subjects unless revealed to an authorised reviewer.")
    status: str = Field(description="proposed | joined | rejected | taken (another subject had it by then)")
    reason: str | None
    decided_by: str | None
    decided_at: datetime | None


class TransitionOut(ResponseModel):
    from_status: str | None
    to_status: str
    action: str
    actor: str
    reason: str
    at: datetime


class LiablePersonOut(ResponseModel):
    """A person the submission names to be listed with the unit (法定代表人, 主要负责人, 直接责任人)."""

    role: LiableRole
    subject_id: uuid.UUID
    name: str = Field(description="Masked unless revealed to an authorised reviewer.")
    identifiers: list[IdentifierOut]


class NoticeSummaryOut(ResponseModel):
    """The notice before listing (告知书) of an entry and how it was delivered (appeals.notices)."""

    number: str
    issued_on: date
    ends_on: date = Field(description="The last day a statement (陈述申辩) may be filed, inclusive.")
    channel: str = Field(description="email | sms | letter")
    delivered_to: str | None = Field(description="Masked.")
    delivery_status: str = Field(description="queued | sent | failed | letter_required | letter_posted")
    delivery_note: str | None = None
    delivered_at: datetime | None = None
    letter_required: bool = Field(
        description="No e-mail or phone, or the delivery failed: a reviewer prints the letter (the PDF) and "
        "posts it."
    )


class EntryOut(ResponseModel):
    id: uuid.UUID
    status: str
    version: int
    subject: SubjectOut
    behaviours: list[str]
    role: str
    services: list[str]
    severity: str
    basis: str
    document_number: str | None
    issuing_authority: str | None
    document_date: date | None
    occurred_from: date | None
    occurred_to: date | None
    facts: str | None
    reporting_org_id: uuid.UUID
    parent_entry_id: uuid.UUID | None
    liable_role: str | None
    submitted_at: datetime
    notice_ends_on: date | None
    published_at: datetime | None
    min_end_on: date | None
    max_end_on: date | None
    ended_at: datetime | None
    end_reason: str | None
    linked_entry_ids: list[uuid.UUID] = Field(default_factory=list)
    timeline: list[TransitionOut] | None = None
    evidence: list[dict[str, Any]] | None = None
    # For the platform only: what the submission would add to a known subject, and what it contradicts.
    proposed_identifiers: list[ProposedIdentifierOut] | None = None
    resolution_conflicts: list[dict[str, Any]] | None = None
    # For reviewers, before publication too: the liable persons the submission names (#15).
    liable_persons: list[LiablePersonOut] | None = None
    # In the answer of a lifecycle step, for reviewers: the entry's notice and its delivery (#15).
    notice: NoticeSummaryOut | None = None
