"""Entries: the list, one entry with its timeline, liable persons, instructions and objections, the
identifiers its submission proposes (a reviewer may reject one before publication), a lifecycle step
taken by a reviewer, and an evidence file's download."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import Form, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from fanchaoxin.appeals import notices
from fanchaoxin.appeals import objections as appeal_objections
from fanchaoxin.appeals import statements as appeal_statements
from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import TRANSITIONS, Action, Status
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.blacklist.views import entry_out
from fanchaoxin.console.auth import page
from fanchaoxin.console.common import (
    ADDRESSEES,
    EVIDENCE_READERS,
    READERS,
    REVIEWERS,
    console_router,
    listed_name,
)
from fanchaoxin.console.i18n import N_
from fanchaoxin.console.web import PREFIX, redirect, render
from fanchaoxin.core import audit, permissions
from fanchaoxin.core.auth import DB, Principal
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.errors import Forbidden, NotFound, ValidationProblem
from fanchaoxin.orgs import service as org_service
from fanchaoxin.sanctions import service as sanctions
from fanchaoxin.subjects import service as subjects
from fanchaoxin.workflows.entries import take_step

router = console_router()

# Steps a reviewer does not take from the entry page: entries expire by themselves, and an objection
# (not a reviewer) marks one disputed.
MANUAL_ONLY = frozenset({Action.expire, Action.dispute})
# Until publication a reviewer may still keep a proposed identifier from joining the subject.
BEFORE_PUBLICATION = frozenset(
    {Status.submitted.value, Status.under_review.value, Status.notice_period.value}
)

PROPOSAL_STATUS = {
    "proposed": N_("Joins the subject at publication"),
    "joined": N_("Joined the subject"),
    "rejected": N_("Rejected by a reviewer"),
    "taken": N_("Not joined: another subject had it by then"),
}
CONFLICT_KIND = {
    "identifier_kind_conflict": N_("The identifier belongs to a subject of another kind"),
    "several_subjects": N_("The identifiers name several subjects"),
}


@dataclass
class _SentSubject:
    """The subject as its submitter sent it: kind and name are all a list shows."""

    kind: str
    name: str


@dataclass
class _Listed:
    """An entry as a list shows it, with the subject the caller may see (`registry.shows_as_submitted`)."""

    id: uuid.UUID
    subject: Any
    behaviours: list[str]
    severity: str
    status: str
    submitted_at: datetime


def _listed(entry: Entry, principal: Principal) -> _Listed:
    subject: Any = entry.subject
    if registry.shows_as_submitted(entry, principal) and entry.submitted_subject:
        subject = _SentSubject(entry.submitted_subject["kind"], entry.submitted_subject["name"])
    return _Listed(entry.id, subject, entry.behaviours, entry.severity, entry.status, entry.submitted_at)


@router.get("/entries")
def entries_list(
    request: Request,
    session: Session = DB,
    principal: Principal = page(*READERS),
    status: str | None = None,
    severity: str | None = None,
    behaviour: str | None = None,
) -> Response:
    result = registry.list_entries(
        session,
        principal,
        status=status or None,
        severity=severity or None,
        behaviour=behaviour or None,
        limit=200,
    )
    return render(
        request,
        "entries.html",
        entries=[_listed(e, principal) for e in result.entries],
        status=status or "",
        severity=severity or "",
        behaviour=behaviour or "",
        statuses=[s.value for s in Status],
    )


def _entry_actions(entry: Entry, principal: Principal) -> list[str]:
    if principal.role not in REVIEWERS:
        return []
    return [a.value for (s, a) in TRANSITIONS if s.value == entry.status and a not in MANUAL_ONLY]


def _linked(session: Session, entry: Entry, *, reveal: bool) -> list[dict[str, Any]]:
    return [
        {
            "id": e.id,
            "liable_role": e.liable_role,
            "status": e.status,
            "name": listed_name(e.subject, reveal=reveal),
            "identifiers": subjects.identifiers_out(e.subject, reveal=reveal),
        }
        for e in registry.linked_entries(session, entry)
    ]


@router.get("/entries/{entry_id}")
def entry_detail(
    request: Request,
    entry_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(*READERS),
    reveal: bool = Query(False),
) -> Response:
    entry = registry.get_entry(session, entry_id, principal)
    out = entry_out(session, entry, principal, reveal=reveal, detail=True)
    instructions = sanctions.list_instructions(session, principal, entry_id=entry.id, limit=500).instructions
    objections = []
    if principal.role in REVIEWERS or principal.role in ADDRESSEES:
        objections = appeal_objections.list_objections(session, principal, entry_id=entry.id)
    return render(
        request,
        "entry.html",
        entry=out,
        raw=entry,
        linked=_linked(session, entry, reveal=reveal),
        instructions=instructions,
        org_names=org_service.organisation_names(session),
        objections=objections,
        # The notice before listing and the statements (#15): the reviewer's, never an organisation's.
        notice=notices.summary_of(session, entry.id) if principal.role in REVIEWERS else None,
        statements=appeal_statements.statements_of(session, entry.id) if principal.role in REVIEWERS else [],
        actions=_entry_actions(entry, principal),
        may_reject=principal.role in REVIEWERS and entry.status in BEFORE_PUBLICATION,
        proposal_status=PROPOSAL_STATUS,
        conflict_kinds=CONFLICT_KIND,
        may_reveal=permissions.may_reveal(principal),
        revealed=reveal,
        today=china_today(),
        errors=[],
    )


@router.post("/entries/{entry_id}/transition")
def entry_transition(
    request: Request,
    entry_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(*REVIEWERS),
    action: str = Form(""),
    reason: str = Form(""),
    version: int | None = Form(None),
) -> Response:
    try:
        act = Action(action)
    except ValueError as exc:
        raise ValidationProblem(
            f"Unknown action {action!r}",
            errors=[{"field": "action", "message": "one of " + ", ".join(Action)}],
        ) from exc
    if act == Action.expire:
        raise Forbidden("Entries expire by themselves at their maximum period (fcx jobs run)")
    entry = registry.get_entry_for_update(session, entry_id)
    take_step(session, principal.actor, entry, act, reason=reason, expected_version=version)
    return redirect(request, f"{PREFIX}/entries/{entry_id}")


@router.post("/entries/{entry_id}/proposed-identifiers/{proposal_id}/reject")
def proposed_identifier_reject(
    request: Request,
    entry_id: uuid.UUID,
    proposal_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(*REVIEWERS),
    reason: str = Form(""),
    version: int | None = Form(None),
) -> Response:
    entry = registry.get_entry_for_update(session, entry_id)
    registry.reject_proposed(
        session, principal.actor, entry, proposal_id, reason=reason, expected_version=version
    )
    return redirect(request, f"{PREFIX}/entries/{entry_id}#proposed")


@router.get("/entries/{entry_id}/evidence/{sha256}")
def entry_evidence(
    request: Request,
    entry_id: uuid.UUID,
    sha256: str,
    session: Session = DB,
    principal: Principal = page(*EVIDENCE_READERS),
) -> Response:
    """An evidence file, for the platform and the organisation that reported the entry (audited)."""
    entry = registry.get_entry(session, entry_id, principal)
    if not (principal.is_platform or entry.owner_org_id == principal.org_id):
        raise NotFound(f"No entry with id {entry_id}")
    ev, blob = registry.get_evidence_blob(session, entry, sha256)
    audit.record(session, principal.actor, "evidence.read", "entry", entry.id, detail={"sha256": sha256})
    return Response(
        blob.data,
        media_type=blob.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{ev.sha256}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
