"""Request and response bodies of the notice before listing (告知书) and statements (陈述申辩)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import Field, field_validator

from fanchaoxin.appeals.schemas import Attachment, _email, _identifier
from fanchaoxin.blacklist.schemas import IdentifierIn, NoticeSummaryOut
from fanchaoxin.core.schemas import ResponseModel, StrictModel


class StatementIn(StrictModel):
    """A statement and defence (陈述申辩) on a notice, by the subject or its agent."""

    notice_number: str = Field(
        min_length=1, max_length=32, description="The notice's number (告知书编号), e.g. GZ20261205-7K3M9Q2P."
    )
    identifier: IdentifierIn = Field(
        description="One identifier of the subject the notice is about; a wrong one answers 404 exactly "
        "like an unknown notice."
    )
    text: str = Field(min_length=5, max_length=20000, description="The statement and defence (陈述申辩意见).")
    contact_email: str | None = Field(None, max_length=254, description="Where the answer is sent.")

    @field_validator("identifier")
    @classmethod
    def _norm_identifier(cls, v: IdentifierIn) -> IdentifierIn:
        return _identifier(v)

    @field_validator("contact_email")
    @classmethod
    def _norm_email(cls, v: str | None) -> str | None:
        return _email(v.strip() or None) if v is not None else None


class StatementOut(ResponseModel):
    """A statement as the reviewer sees it, with its evidence files and its answer."""

    id: uuid.UUID
    tracking_number: str
    entry_id: uuid.UUID
    status: str = Field(description="received | answered")
    channel: str
    identifier_type: str
    text: str
    contact_email: str | None
    filed_at: datetime
    filed_on: date
    notice_ends_on: date
    answer: str | None
    answered_at: datetime | None
    answered_by: str | None
    outcome: str | None = Field(description="published | rejected: what followed the answer")
    attachments: list[Attachment]
    version: int


class EntryStatementsOut(ResponseModel):
    """What the reviewer reads before deciding on an entry in its notice period (the liable persons the
    submission names are on the entry itself: `GET /v1/entries/{id}`)."""

    entry_id: uuid.UUID
    entry_status: str
    notice: NoticeSummaryOut | None
    notice_html: str | None = Field(description="The notice as HTML (GET it; reviewers only).")
    notice_pdf: str | None = Field(description="The notice as a printable PDF (the letter).")
    statements: list[StatementOut]
    unanswered: int = Field(description="Statements still to answer: publishing needs an answer to each.")


class LetterPostedIn(StrictModel):
    """The printed notice was posted (挂号信): when, and the postal reference that proves it."""

    posted_on: date
    reference: str = Field(min_length=1, max_length=100, description="The registered letter's number.")
