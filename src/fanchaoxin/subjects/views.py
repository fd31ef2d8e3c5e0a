"""Routes for reviewers: subjects, merge proposals, merges and splits."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, Query
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from fanchaoxin.core import audit
from fanchaoxin.core.auth import DB, Principal, allow
from fanchaoxin.core.db import utcnow
from fanchaoxin.core.errors import Conflict, Forbidden, NotFound
from fanchaoxin.core.identifiers import mask_person_name
from fanchaoxin.core.permissions import REVIEWERS, SUBJECT_READERS, may_reveal
from fanchaoxin.core.schemas import ResponseModel, StrictModel
from fanchaoxin.subjects import service
from fanchaoxin.subjects.models import MergeProposal, Subject

router = APIRouter(prefix="/v1", tags=["subjects"])


class SubjectDetailOut(ResponseModel):
    id: uuid.UUID
    kind: str
    name: str
    merged_into_id: uuid.UUID | None
    identifiers: list[dict[str, str]]
    identifier_ids: list[uuid.UUID]
    created_at: datetime


def subject_out(session: Session, s: Subject, principal: Principal, reveal: bool) -> SubjectDetailOut:
    personal = service.is_personal(s.kind)
    if reveal and personal:
        audit.record_pii_read(
            session, principal.actor, "subject", s.id, purpose="subject review", fields=["identifiers"]
        )
    return SubjectDetailOut(
        id=s.id,
        kind=s.kind,
        name=s.name if (reveal or not personal) else mask_person_name(s.name),
        merged_into_id=s.merged_into_id,
        identifiers=service.identifiers_out(s, reveal=reveal),
        identifier_ids=[i.id for i in s.identifiers],
        created_at=s.created_at,
    )


@router.get("/subjects/{subject_id}", response_model=SubjectDetailOut)
def get_subject(
    subject_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = allow(*SUBJECT_READERS),
    reveal: bool = Query(False, description="Plain personal identifiers (reviewers only; audited)."),
) -> SubjectDetailOut:
    if reveal and not may_reveal(principal):
        raise Forbidden("Only a platform reviewer may see plain personal identifiers")
    return subject_out(session, service.get_subject(session, subject_id), principal, reveal)


class ProposalOut(ResponseModel):
    id: uuid.UUID
    subject_id: uuid.UUID
    candidate_id: uuid.UUID
    score: float
    reason: str
    status: str
    created_at: datetime


@router.get("/merge-proposals", response_model=list[ProposalOut], summary="Possible duplicates for review")
def list_proposals(
    session: Session = DB,
    _: Principal = allow(*REVIEWERS),
    status: str = Query("open"),
    limit: int = Query(100, ge=1, le=1000),
) -> list[ProposalOut]:
    rows = session.scalars(
        select(MergeProposal)
        .where(MergeProposal.status == status)
        .order_by(MergeProposal.score.desc())
        .limit(limit)
    )
    return [ProposalOut.model_validate(p) for p in rows]


class ReasonIn(StrictModel):
    reason: str = Field(min_length=1, max_length=2000)


@router.post("/merge-proposals/{proposal_id}/dismiss", response_model=ProposalOut)
def dismiss_proposal(
    proposal_id: uuid.UUID, body: ReasonIn, session: Session = DB, principal: Principal = allow(*REVIEWERS)
) -> ProposalOut:
    p = session.get(MergeProposal, proposal_id)
    if p is None:
        raise NotFound(f"No merge proposal {proposal_id}")
    if p.status != "open":
        raise Conflict(f"The proposal is already {p.status}")
    p.status, p.decided_by, p.decided_at = "dismissed", principal.actor.name, utcnow()
    audit.record(
        session,
        principal.actor,
        "merge_proposal.dismiss",
        "merge_proposal",
        p.id,
        detail={"reason": body.reason},
    )
    return ProposalOut.model_validate(p)


class MergeIn(StrictModel):
    survivor_id: uuid.UUID
    merged_id: uuid.UUID
    reason: str = Field(min_length=1, max_length=2000)


class MergeOut(ResponseModel):
    id: uuid.UUID
    survivor_id: uuid.UUID
    merged_id: uuid.UUID
    moved_identifier_ids: list[str]
    moved_entry_ids: list[str]
    reason: str
    actor: str
    at: datetime
    undone_at: datetime | None


class SplitIn(StrictModel):
    identifier_ids: list[uuid.UUID] = Field(min_length=1)
    entry_ids: list[uuid.UUID] = Field(default_factory=list)
    name: str | None = Field(None, max_length=200)
    reason: str = Field(min_length=1, max_length=2000)
