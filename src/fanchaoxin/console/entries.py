"""Entries: the list, one entry with its timeline, liable persons, instructions and objections, a
lifecycle step taken by a reviewer, and an evidence file's download."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Form, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from fanchaoxin.appeals import objections as appeal_objections
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
        entries=result.entries,
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
        actions=_entry_actions(entry, principal),
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
