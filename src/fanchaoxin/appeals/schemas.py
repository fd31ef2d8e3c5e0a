"""Request and response bodies of due process (objections, credit repair, reports, corrections)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from fanchaoxin.blacklist.schemas import IdentifierIn, Role, Service
from fanchaoxin.core.catalogue import catalogues
from fanchaoxin.core.identifiers import IdentifierError, IdentifierType, normalise
from fanchaoxin.core.schemas import ResponseModel, StrictModel


def _email(v: str | None) -> str | None:
    if v is None:
        return None
    try:
        return normalise(IdentifierType.email, v)
    except IdentifierError as exc:
        raise ValueError(str(exc)) from exc


def _identifier(ident: IdentifierIn) -> IdentifierIn:
    try:
        ident.value = normalise(ident.type, ident.value)
    except IdentifierError as exc:
        raise ValueError(f"value: {exc}") from exc
    return ident


class SubjectProof(StrictModel):
    """The entry and one of its subject's identifiers: what the subject (or its agent) knows."""

    entry_id: uuid.UUID
    identifier: IdentifierIn = Field(
        description="One identifier of the listed subject (e.g. its USCC or resident ID); checked "
        "against the entry. A wrong one answers 404 exactly like an unknown entry."
    )
    contact_email: str = Field(max_length=254, description="Where decisions are sent.")

    @field_validator("identifier")
    @classmethod
    def _norm_identifier(cls, v: IdentifierIn) -> IdentifierIn:
        return _identifier(v)

    @field_validator("contact_email")
    @classmethod
    def _norm_email(cls, v: str) -> str:
        return _email(v) or v


class ObjectionIn(SubjectProof):
    grounds: str = Field(min_length=10, max_length=20000, description="Why the entry is wrong (异议理由).")


class CorrectionsIn(StrictModel):
    """Fields of an entry an objection may correct; the entry is re-graded afterwards."""

    severity: str | None = None
    behaviours: list[str] | None = Field(None, min_length=1)
    role: Role | None = None
    services: list[Service] | None = None
    facts: str | None = Field(None, min_length=1, max_length=20000)

    @field_validator("severity")
    @classmethod
    def _known_severity(cls, v: str | None) -> str | None:
        if v is not None and v not in catalogues().severities:
            raise ValueError(f"unknown severity {v!r}; one of {', '.join(catalogues().severities)}")
        return v

    @field_validator("behaviours")
    @classmethod
    def _known_behaviours(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return None
        known = catalogues().behaviours
        for i, code in enumerate(v):
            if code not in known:
                raise ValueError(f"[{i}]: unknown behaviour code {code!r}")
        if len(set(v)) != len(v):
            raise ValueError("a behaviour is listed twice")
        return sorted(v)

    @field_validator("services")
    @classmethod
    def _services_once(cls, v: list[Service] | None) -> list[Service] | None:
        if v is not None and len(set(v)) != len(v):
            raise ValueError("a service is listed twice")
        return sorted(v) if v is not None else None

    def changes(self) -> dict[str, Any]:
        """The corrected fields with their new values, as stored on the entry."""
        out: dict[str, Any] = {}
        if self.severity is not None:
            out["severity"] = self.severity
        if self.behaviours is not None:
            out["behaviours"] = list(self.behaviours)
        if self.role is not None:
            out["role"] = self.role.value
        if self.services is not None:
            out["services"] = [s.value for s in self.services]
        if self.facts is not None:
            out["facts"] = self.facts
        return out


class ForwardIn(StrictModel):
    note: str = Field("", max_length=5000, description="What the reporting organisation should check.")
    version: int | None = None


class AnswerIn(StrictModel):
    proposed_outcome: Literal["upheld", "corrected", "revoked"]
    answer: str = Field(min_length=1, max_length=20000)


class IdentityIn(StrictModel):
    identity_verification: str = Field(
        min_length=3, max_length=2000, description="How the objector's identity was verified."
    )


class ObjectionDecisionIn(StrictModel):
    outcome: Literal["upheld", "corrected", "revoked"]
    reason: str = Field(min_length=1, max_length=5000)
    public_reason: str | None = Field(
        None, max_length=2000, description="Reason printed on the public correction notice (revoked)."
    )
    identity_verification: str | None = Field(None, min_length=3, max_length=2000)
    corrections: CorrectionsIn | None = None
    version: int | None = None

    @model_validator(mode="after")
    def _corrections_fit(self) -> ObjectionDecisionIn:
        if self.outcome == "corrected" and (self.corrections is None or not self.corrections.changes()):
            raise ValueError("corrections: say which fields are corrected")
        if self.outcome != "corrected" and self.corrections is not None:
            raise ValueError(f"corrections: only a corrected outcome changes fields, not {self.outcome}")
        return self


class Attachment(ResponseModel):
    digest: str = Field(
        description="The file's content address: the hex digest of its bytes under the platform's "
        "crypto profile (`international` or `gm`, see docs/crypto.md); the download URL and ETag name it"
    )
    filename: str
    media_type: str
    size: int


class Deadlines(ResponseModel):
    filed_on: date
    dispute_due_on: date | None = None
    forward_due_on: date | None = None
    answer_due_on: date | None = None
    decide_due_on: date | None = None
    handle_due_on: date | None = None
    notice_ends_on: date | None = None  # a statement (陈述申辩): the last day of the notice period


class Filed(ResponseModel):
    """What the filer gets once: the tracking number and the secret to follow the case."""

    id: uuid.UUID
    tracking_number: str
    secret: str = Field(description="Shown once. With the tracking number, it opens the case's status page.")
    status: str
    deadlines: Deadlines


class ObjectionOut(ResponseModel):
    id: uuid.UUID
    tracking_number: str
    entry_id: uuid.UUID
    status: str
    channel: str
    identifier_type: str
    grounds: str
    contact_email: str | None
    identity_verification: str | None
    addressed_to_org_id: uuid.UUID | None
    deadlines: Deadlines
    disputed_at: datetime | None
    forwarded_on: date | None
    forward_note: str | None
    answer_outcome: str | None
    answer: str | None
    answered_at: datetime | None
    outcome: str | None
    decision_reason: str | None
    corrections: dict[str, Any] | None
    decided_at: datetime | None
    overdue: bool
    overdue_reasons: list[str]
    attachments: list[Attachment]
    version: int


class CaseStatusOut(ResponseModel):
    """What the objector, applicant or reporter sees: status and dates, never the other side's data."""

    tracking_number: str
    kind: str
    status: str
    filed_on: date
    deadlines: Deadlines
    outcome: str | None = None
    reason: str | None = None
    decided_at: datetime | None = None
    attachments: int = 0
    # A request for more material (补正, appeals.supplements) the filer is to answer while the case waits.
    material_requested: str | None = None
    material_due_on: date | None = None


class RepairIn(SubjectProof):
    commitment_accepted: bool = Field(description="The credit commitment (信用承诺) is made: must be true.")
    commitment_text: str = Field(min_length=10, max_length=5000, description="信用承诺 text.")
    rectification: str = Field(min_length=1, max_length=20000, description="What was put right (整改情况).")

    @field_validator("commitment_accepted")
    @classmethod
    def _accepted(cls, v: bool) -> bool:
        if v is not True:
            raise ValueError("the credit commitment must be accepted")
        return v


class RepairDecisionIn(StrictModel):
    outcome: Literal["approved", "rejected"]
    reason: str = Field(min_length=1, max_length=5000)
    identity_verification: str | None = Field(None, min_length=3, max_length=2000)
    version: int | None = None


class RepairOut(ResponseModel):
    id: uuid.UUID
    tracking_number: str
    entry_id: uuid.UUID
    status: str
    channel: str
    identifier_type: str
    commitment_text: str
    rectification: str
    contact_email: str | None
    identity_verification: str | None
    deadlines: Deadlines
    outcome: str | None
    decision_reason: str | None
    decided_at: datetime | None
    overdue: bool
    attachments: list[Attachment]
    version: int


class ReportedIn(StrictModel):
    identifiers: list[IdentifierIn] = Field(default_factory=list, max_length=20)
    name: str | None = Field(None, max_length=200)
    shop: str | None = Field(None, max_length=200, description="Shop name or URL.")
    account: str | None = Field(None, max_length=200, description="Account name on the platform.")
    platform: str | None = Field(None, max_length=200, description="Where it happened (platform name).")

    @field_validator("identifiers")
    @classmethod
    def _norm(cls, v: list[IdentifierIn]) -> list[IdentifierIn]:
        seen = set()
        for i, ident in enumerate(v):
            try:
                ident.value = normalise(ident.type, ident.value)
            except IdentifierError as exc:
                raise ValueError(f"[{i}].value: {exc}") from exc
            if (ident.type, ident.value) in seen:
                raise ValueError(f"[{i}]: listed twice")
            seen.add((ident.type, ident.value))
        return v

    @model_validator(mode="after")
    def _something(self) -> ReportedIn:
        if not (self.identifiers or self.name or self.shop or self.account):
            raise ValueError("identifiers: name at least an identifier, a name, a shop or an account")
        return self


class ReportIn(StrictModel):
    description: str = Field(min_length=10, max_length=20000)
    reported: ReportedIn
    behaviours: list[str] = Field(default_factory=list)
    enterprise_org_id: uuid.UUID | None = Field(
        None, description="The participating enterprise where it happened, if known."
    )
    contact_email: str | None = Field(None, max_length=254)

    @field_validator("behaviours")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        known = catalogues().behaviours
        for i, code in enumerate(v):
            if code not in known:
                raise ValueError(f"[{i}]: unknown behaviour code {code!r}")
        return sorted(set(v))

    @field_validator("contact_email")
    @classmethod
    def _norm_email(cls, v: str | None) -> str | None:
        return _email(v)


class TriageIn(StrictModel):
    action: Literal["route", "dismiss"]
    addressed_to_org_id: uuid.UUID | None = None
    note: str = Field("", max_length=5000)

    @model_validator(mode="after")
    def _target(self) -> TriageIn:
        if self.action == "route" and self.addressed_to_org_id is None:
            raise ValueError("addressed_to_org_id: name the enterprise or department that handles it")
        if self.action == "dismiss" and not self.note.strip():
            raise ValueError("note: say why the report is dismissed")
        return self


class ReportOutcomeIn(StrictModel):
    outcome: Literal["substantiated", "unsubstantiated", "forwarded"]
    note: str = Field(min_length=1, max_length=20000)
    entry_id: uuid.UUID | None = Field(None, description="The entry submitted on it (substantiated).")
    forwarded_to: str | None = Field(None, max_length=200, description="Authority it was forwarded to.")

    @model_validator(mode="after")
    def _fit(self) -> ReportOutcomeIn:
        if self.entry_id is not None and self.outcome != "substantiated":
            raise ValueError("entry_id: only a substantiated report links an entry")
        if self.outcome == "forwarded" and not self.forwarded_to:
            raise ValueError("forwarded_to: name the authority it was forwarded to")
        return self


class ReportOut(ResponseModel):
    id: uuid.UUID
    tracking_number: str
    status: str
    channel: str
    description: str
    behaviours: list[str]
    reported: dict[str, Any]
    contact_email: str | None
    reporting_org_id: uuid.UUID | None
    addressed_to_org_id: uuid.UUID | None
    deadlines: Deadlines
    triage_note: str | None
    outcome: str | None
    outcome_note: str | None
    forwarded_to: str | None
    linked_entry_id: uuid.UUID | None
    handled_at: datetime | None
    overdue: bool
    attachments: list[Attachment]
    version: int


class CorrectionOut(ResponseModel):
    id: uuid.UUID
    subject_kind: str
    subject_name: str
    revoked_on: date
    lifts_due_on: date
    reason: str
    text_zh: str
    text_en: str
