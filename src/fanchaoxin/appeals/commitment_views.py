"""Routes of credit commitments (信用承诺) made for repair (appeals.commitments).

Who sees what:
- a commitment for an entry of the public 失信 list: anyone, during its term (`/v1/public/commitments`);
- a commitment for an entry of the shared list (an enterprise finding, a minor case): participating
  enterprises and platform staff only, during its term (`/v1/commitments`); every other key holder sees
  the public list there;
- the commitments a submission breaches, with their full text: reviewers
  (`/v1/entries/{id}/commitment-breaches`).

What is published names a natural person masked and masks every identifier in the text; whether a
commitment was flagged as breached is never published (the flag rests on a submission not yet decided).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from fanchaoxin.appeals import commitments
from fanchaoxin.appeals.commitment_models import CreditCommitment
from fanchaoxin.appeals.models import RepairApplication
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.core import permissions
from fanchaoxin.core.auth import DB, Principal, allow, allow_public
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.errors import NotFound
from fanchaoxin.core.schemas import INT64_MAX, ResponseModel
from fanchaoxin.subjects.models import Subject

router = APIRouter(prefix="/v1", tags=["due process"])


class PublishedCommitmentOut(ResponseModel):
    """A credit commitment as published with the repair (no entry id, no breach flag)."""

    id: uuid.UUID
    list_kind: Literal["public", "shared"]
    subject_kind: str
    subject_name: str
    basis: str
    document_number: str | None
    issuing_authority: str | None
    repaired_on: date
    term_ends_on: date
    text: str


class PublishedCommitmentPage(ResponseModel):
    commitments: list[PublishedCommitmentOut]


class CommitmentBreachOut(ResponseModel):
    """A commitment a submission breaches, as its reviewer sees it: the full text, the repair, the flag."""

    id: uuid.UUID
    subject_id: uuid.UUID
    subject_kind: str
    subject_name: str
    repaired_entry_id: uuid.UUID
    repair_application_id: uuid.UUID
    repair_tracking_number: str
    text: str
    made_on: date
    term_ends_on: date
    status: str
    breached_by_entry_id: uuid.UUID | None
    breach_flagged_at: datetime | None


class CommitmentBreachPage(ResponseModel):
    entry_id: uuid.UUID
    breaches: list[CommitmentBreachOut]


def published_out(commitment: CreditCommitment, entry: Entry) -> PublishedCommitmentOut:
    subject = entry.subject
    return PublishedCommitmentOut(
        id=commitment.id,
        list_kind=commitments.list_of(entry),  # type: ignore[arg-type]
        subject_kind=subject.kind,
        subject_name=commitments.published_name(subject),
        basis=entry.basis,
        document_number=entry.document_number,
        issuing_authority=entry.issuing_authority,
        repaired_on=commitment.made_on,
        term_ends_on=commitment.term_ends_on,
        text=commitments.published_text(commitment, subject),
    )


def breach_out(session: Session, commitment: CreditCommitment) -> CommitmentBreachOut:
    subject = session.get(Subject, commitment.subject_id)
    app = session.get(RepairApplication, commitment.repair_application_id)
    assert subject is not None and app is not None  # foreign keys
    return CommitmentBreachOut(
        id=commitment.id,
        subject_id=subject.id,
        subject_kind=subject.kind,
        subject_name=commitments.published_name(subject),
        repaired_entry_id=commitment.entry_id,
        repair_application_id=app.id,
        repair_tracking_number=app.tracking_number,
        text=commitment.text,
        made_on=commitment.made_on,
        term_ends_on=commitment.term_ends_on,
        status=commitment.status,
        breached_by_entry_id=commitment.breached_by_entry_id,
        breach_flagged_at=commitment.breach_flagged_at,
    )


def _page(session: Session, lists: set[str], limit: int, offset: int) -> PublishedCommitmentPage:
    rows = commitments.published(session, lists=lists, today=china_today(), limit=limit, offset=offset)
    return PublishedCommitmentPage(commitments=[published_out(c, e) for c, e in rows])


@router.get(
    "/public/commitments",
    response_model=PublishedCommitmentPage,
    tags=["public"],
    summary="Credit commitments (信用承诺) published with repairs of public-list entries: no login",
)
def list_public_commitments(
    session: Session = DB,
    _: Principal = allow_public(),
    limit: int = Query(100, ge=1, le=500),
    offset: int = Query(0, ge=0, le=100_000),
) -> PublishedCommitmentPage:
    return _page(session, {commitments.PUBLIC_LIST}, limit, offset)


@router.get(
    "/commitments",
    response_model=PublishedCommitmentPage,
    summary="Credit commitments within their term: the shared list's to participating enterprises too",
)
def list_commitments(
    session: Session = DB,
    principal: Principal = allow(*permissions.STAFF),
    list_kind: Literal["public", "shared"] | None = Query(None, description="One list only."),
    limit: int = Query(100, ge=1, le=500),
    offset: int = Query(0, ge=0, le=INT64_MAX),
) -> PublishedCommitmentPage:
    lists = {commitments.PUBLIC_LIST}
    if commitments.participates(session, principal, china_today()):
        lists.add(commitments.SHARED_LIST)
    if list_kind is not None:
        lists &= {list_kind}
    return _page(session, lists, limit, offset)


@router.get(
    "/entries/{entry_id}/commitment-breaches",
    response_model=CommitmentBreachPage,
    summary="Credit commitments this submission breaches (its subject's, within their term)",
)
def entry_commitment_breaches(
    entry_id: uuid.UUID, session: Session = DB, _: Principal = allow(*permissions.REVIEWERS)
) -> CommitmentBreachPage:
    entry = session.get(Entry, entry_id)
    if entry is None:
        raise NotFound(f"No entry with id {entry_id}")
    return CommitmentBreachPage(
        entry_id=entry.id, breaches=[breach_out(session, c) for c in commitments.breaches_of(session, entry)]
    )
