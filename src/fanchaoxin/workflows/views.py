"""Routes that start a use case spanning slices: an entry's lifecycle step, merging and splitting
subjects. The handlers only read the request and call the workflow."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from fanchaoxin.appeals import notices
from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.blacklist.schemas import EntryOut, TransitionIn
from fanchaoxin.blacklist.views import entry_out
from fanchaoxin.core.auth import DbSession, Principal, allow
from fanchaoxin.core.errors import Forbidden, ValidationProblem
from fanchaoxin.core.permissions import REVIEWERS
from fanchaoxin.subjects.views import MergeIn, MergeOut, ReasonIn, SplitIn, SubjectDetailOut, subject_out
from fanchaoxin.workflows import subjects as subject_flows
from fanchaoxin.workflows.entries import take_step

router = APIRouter(prefix="/v1")


@router.post(
    "/entries/{entry_id}/transitions",
    response_model=EntryOut,
    tags=["entries"],
    summary="Take one lifecycle step",
)
def transition_entry(
    entry_id: uuid.UUID, body: TransitionIn, session: DbSession, principal: Principal = allow(*REVIEWERS)
) -> EntryOut:
    try:
        action = Action(body.action)
    except ValueError as exc:
        raise ValidationProblem(
            f"Unknown action {body.action!r}",
            errors=[
                {"in": "body", "field": "action", "type": "enum", "message": "one of " + ", ".join(Action)}
            ],
        ) from exc
    if action in (Action.expire,):
        raise Forbidden("Entries expire by themselves at their maximum period (fcx jobs run)")
    entry = registry.get_entry_for_update(session, entry_id)
    take_step(
        session,
        principal.actor,
        entry,
        action,
        reason=body.reason,
        expected_version=body.version,
        answers=body.answers,
    )
    out = entry_out(session, entry, principal, detail=True)
    # The reviewer learns at once how the notice went out (or that a letter must be posted).
    out.notice = notices.summary_of(session, entry.id)
    return out


@router.post(
    "/subjects/merge",
    response_model=MergeOut,
    tags=["subjects"],
    summary="Merge a subject into another (reversible)",
)
def merge_subjects(body: MergeIn, session: DbSession, principal: Principal = allow(*REVIEWERS)) -> MergeOut:
    return MergeOut.model_validate(
        subject_flows.merge_subjects(
            session, principal.actor, body.survivor_id, body.merged_id, reason=body.reason
        )
    )


@router.post(
    "/merges/{merge_id}/undo",
    response_model=MergeOut,
    tags=["subjects"],
    summary="Undo a merge (split the subject out again)",
)
def undo_merge(
    merge_id: uuid.UUID, body: ReasonIn, session: DbSession, principal: Principal = allow(*REVIEWERS)
) -> MergeOut:
    return MergeOut.model_validate(
        subject_flows.undo_merge(session, principal.actor, merge_id, reason=body.reason)
    )


@router.post(
    "/subjects/{subject_id}/split",
    response_model=SubjectDetailOut,
    tags=["subjects"],
    summary="Split identifiers off",
)
def split_subject(
    subject_id: uuid.UUID, body: SplitIn, session: DbSession, principal: Principal = allow(*REVIEWERS)
) -> SubjectDetailOut:
    new = subject_flows.split_subject(
        session,
        principal.actor,
        subject_id,
        identifier_ids=body.identifier_ids,
        entry_ids=body.entry_ids,
        reason=body.reason,
        name=body.name,
    )
    return subject_out(session, new, principal, reveal=False)
