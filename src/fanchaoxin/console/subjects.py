"""Subjects: one subject with its entries, merge proposals and merge history; merge, split and undo a
merge (through `workflows.subjects`, which moves the entries with the identifiers and announces them)."""

from __future__ import annotations

import uuid

from fastapi import Form, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from fanchaoxin.blacklist import service as registry
from fanchaoxin.console.auth import page
from fanchaoxin.console.common import REVIEWERS, SUBJECT_READERS, console_router
from fanchaoxin.console.problems import describe
from fanchaoxin.console.web import PREFIX, locale_of, redirect, render
from fanchaoxin.core import permissions
from fanchaoxin.core.auth import DB, Principal
from fanchaoxin.core.errors import Forbidden, Problem, ValidationProblem
from fanchaoxin.subjects import service as subjects
from fanchaoxin.subjects.views import subject_out
from fanchaoxin.workflows.subjects import merge_subjects, split_subject, undo_merge

router = console_router()


@router.get("/subjects/{subject_id}")
def subject_detail(
    request: Request,
    subject_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(*SUBJECT_READERS),
    reveal: bool = Query(False),
) -> Response:
    return _subject_page(request, session, principal, subject_id, reveal=reveal, errors=[])


def _subject_page(
    request: Request,
    session: Session,
    principal: Principal,
    subject_id: uuid.UUID,
    *,
    reveal: bool,
    errors: list[str],
    status_code: int = 200,
) -> Response:
    if reveal and not permissions.may_reveal(principal):
        raise Forbidden("Only a platform reviewer may see plain personal identifiers")
    subject = subjects.get_subject(session, subject_id)
    return render(
        request,
        "subject.html",
        status_code=status_code,
        subject=subject_out(session, subject, principal, reveal),
        raw=subject,
        entries=registry.list_entries(session, principal, subject_id=subject.id, limit=500).entries,
        proposals=subjects.open_proposals_of(session, subject.id),
        merges=subjects.merges_of(session, subject.id),
        may_edit=principal.role in REVIEWERS,
        may_reveal=permissions.may_reveal(principal),
        revealed=reveal,
        errors=errors,
    )


def _failed(
    request: Request, session: Session, principal: Principal, subject_id: uuid.UUID, exc: Problem
) -> Response:
    """The subject's page again with the problem named; nothing of the attempt is kept."""
    session.rollback()
    return _subject_page(
        request, session, principal, subject_id, reveal=False,
        errors=describe(exc, locale_of(request)).messages, status_code=exc.status,
    )  # fmt: skip


@router.post("/subjects/{subject_id}/merge")
def subject_merge(
    request: Request,
    subject_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(*REVIEWERS),
    other_id: str = Form(""),
    reason: str = Form(""),
) -> Response:
    """Merge `other_id` into this subject (this one survives)."""
    try:
        other = uuid.UUID(other_id.strip())
    except ValueError:
        return _subject_page(
            request, session, principal, subject_id, reveal=False, errors=["other_id: not a subject id"],
            status_code=422,
        )  # fmt: skip
    try:
        merge_subjects(session, principal.actor, subject_id, other, reason=reason)
    except Problem as exc:
        return _failed(request, session, principal, subject_id, exc)
    return redirect(request, f"{PREFIX}/subjects/{subject_id}")


@router.post("/subjects/{subject_id}/split")
def subject_split(
    request: Request,
    subject_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(*REVIEWERS),
    identifier_ids: list[str] = Form(default_factory=list),
    entry_ids: list[str] = Form(default_factory=list),
    name: str = Form(""),
    reason: str = Form(""),
) -> Response:
    try:
        if not identifier_ids:
            raise ValidationProblem(
                "Choose identifiers", errors=[{"field": "identifier_ids", "message": "choose at least one"}]
            )
        new = split_subject(
            session,
            principal.actor,
            subject_id,
            identifier_ids=[uuid.UUID(i) for i in identifier_ids],
            entry_ids=[uuid.UUID(i) for i in entry_ids],
            reason=reason,
            name=name.strip() or None,
        )
    except Problem as exc:
        return _failed(request, session, principal, subject_id, exc)
    return redirect(request, f"{PREFIX}/subjects/{new.id}")


@router.post("/merges/{merge_id}/undo")
def merge_undo(
    request: Request,
    merge_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(*REVIEWERS),
    reason: str = Form(""),
) -> Response:
    """Split a merged subject out again, with exactly the identifiers and entries it brought."""
    survivor = subjects.get_merge(session, merge_id).survivor_id
    try:
        undo_merge(session, principal.actor, merge_id, reason=reason)
    except Problem as exc:
        return _failed(request, session, principal, survivor, exc)
    return redirect(request, f"{PREFIX}/subjects/{survivor}")
