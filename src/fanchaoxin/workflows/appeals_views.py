"""Routes of due process that start a workflow: filing, forwarding and deciding an objection, and
deciding a credit repair (each may step the entry too). Same paths, roles, bodies and answers as the
other routes of due process (`appeals.views`), whose helpers they use; the handlers only read the
request and call `workflows.appeals`."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, status
from sqlalchemy.orm import Session

from fanchaoxin.appeals import cases
from fanchaoxin.appeals.models import RepairApplication
from fanchaoxin.appeals.progress import objection_deadlines
from fanchaoxin.appeals.schemas import (
    Filed,
    ForwardIn,
    ObjectionDecisionIn,
    ObjectionIn,
    ObjectionOut,
    RepairDecisionIn,
    RepairOut,
)
from fanchaoxin.appeals.views import (
    REVIEWERS,
    filed,
    objection_for,
    objection_out,
    rate_limit,
    repair_out,
)
from fanchaoxin.core.auth import DB, Principal, allow, allow_public
from fanchaoxin.workflows import appeals as flows

router = APIRouter(prefix="/v1", tags=["due process"])


@router.post(
    "/objections",
    response_model=Filed,
    status_code=status.HTTP_201_CREATED,
    summary="File an objection (异议) to a published entry: the entry is marked disputed at once",
    description="By the subject or its agent, without a key (rate-limited) or through a platform reviewer. "
    "The caller proves it speaks for the subject by stating one of the subject's identifiers; a wrong "
    "one answers 404 exactly like an unknown entry. Attach files afterwards with "
    "`POST /v1/attachments/objections/{tracking_number}`.",
)
def file_objection(
    body: ObjectionIn, request: Request, session: Session = DB, principal: Principal = allow_public()
) -> Filed:
    rate_limit(request, principal, [f"entry:{body.entry_id}"])
    reviewer = principal.role in REVIEWERS
    filing = flows.file_objection(
        session,
        principal.actor,
        entry_id=body.entry_id,
        identifier_type=body.identifier.type.value,
        identifier_value=body.identifier.value,
        grounds=body.grounds,
        contact_email=body.contact_email,
        channel="reviewer" if reviewer else "public",
        owner_org_id=principal.org_id if reviewer else None,
    )
    return filed(filing.case, filing.secret, objection_deadlines(filing.case))


@router.post(
    "/objections/{objection_id}/forward",
    response_model=ObjectionOut,
    summary="Forward to the reporting organisation for verification (within 2 working days)",
)
def forward_objection(
    objection_id: uuid.UUID, body: ForwardIn, session: Session = DB, principal: Principal = allow(*REVIEWERS)
) -> ObjectionOut:
    obj = objection_for(session, objection_id, principal)
    flows.forward_objection(session, principal.actor, obj, note=body.note, expected_version=body.version)
    return objection_out(session, obj, principal)


@router.post(
    "/objections/{objection_id}/decision",
    response_model=ObjectionOut,
    summary="Decide an objection: upheld, corrected (re-graded) or revoked (lifted everywhere, notice)",
)
def decide_objection(
    objection_id: uuid.UUID,
    body: ObjectionDecisionIn,
    session: Session = DB,
    principal: Principal = allow(*REVIEWERS),
) -> ObjectionOut:
    obj = objection_for(session, objection_id, principal)
    flows.decide_objection_as_asked(session, principal.actor, obj, body)
    return objection_out(session, obj, principal)


@router.post(
    "/repairs/{repair_id}/decision",
    response_model=RepairOut,
    summary="Decide a credit repair application: approval ends the entry and lifts every measure",
)
def decide_repair(
    repair_id: uuid.UUID,
    body: RepairDecisionIn,
    session: Session = DB,
    principal: Principal = allow(*REVIEWERS),
) -> RepairOut:
    app: RepairApplication = cases.get_case(session, RepairApplication, repair_id, principal, "application")
    flows.decide_repair(
        session,
        principal.actor,
        app,
        outcome=body.outcome,
        reason=body.reason,
        identity_verification=body.identity_verification,
        expected_version=body.version,
    )
    return repair_out(session, app)
