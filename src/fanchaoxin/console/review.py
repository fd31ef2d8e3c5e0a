"""The review queue: entries submitted, under review or in their notice period, with the identifiers each
would add to a known subject and what resolution left to the reviewer, and bulk steps on them."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Form, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import Action, next_status
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.console.auth import page
from fanchaoxin.console.common import REVIEWERS, console_router, listed_name
from fanchaoxin.console.i18n import N_
from fanchaoxin.console.web import PREFIX, redirect, render
from fanchaoxin.core.auth import DB, Principal
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.errors import NotFound, Problem
from fanchaoxin.core.identifiers import mask
from fanchaoxin.subjects import service as subjects
from fanchaoxin.workflows.entries import take_step

router = console_router()

QUEUE_STATUSES = ("submitted", "under_review", "notice_period")
BULK_ACTIONS = (Action.start_review, Action.open_notice, Action.publish, Action.reject)


def _queue(session: Session, principal: Principal) -> list[Entry]:
    rows: list[Entry] = []
    for status in QUEUE_STATUSES:
        rows += registry.list_entries(session, principal, status=status, limit=500).entries
    return rows


def _offered(session: Session, rows: list[Entry]) -> dict[uuid.UUID, list[dict[str, str]]]:
    """The identifiers each entry still proposes, masked where they are a natural person's."""
    kinds = {e.id: e.subject.kind for e in rows}
    out: dict[uuid.UUID, list[dict[str, str]]] = {}
    for entry_id, proposals in registry.proposed_of(session, list(kinds)).items():
        out[entry_id] = [
            {
                "type": p.type,
                "value": mask(p.type, p.value)
                if subjects.is_personal(kinds[entry_id] if p.party == "subject" else "individual")
                else p.value,
            }
            for p in proposals
            if p.status == "proposed"
        ]
    return out


def _page(request: Request, session: Session, principal: Principal, **ctx: Any) -> Response:
    entries = _queue(session, principal)
    return render(request, "review.html", entries=entries, offered=_offered(session, entries), **ctx)


@router.get("/review")
def review_queue(
    request: Request, session: Session = DB, principal: Principal = page(*REVIEWERS)
) -> Response:
    return _page(
        request,
        session,
        principal,
        actions=BULK_ACTIONS,
        errors=[],
        done=request.query_params.get("done"),
        done_action=request.query_params.get("action"),
    )


@router.post("/review/bulk")
def review_bulk(
    request: Request,
    session: Session = DB,
    principal: Principal = page(*REVIEWERS),
    action: str = Form(""),
    reason: str = Form(""),
    entry_ids: list[str] = Form(default_factory=list),
) -> Response:
    """All selected entries take the step, or none does (each one named in the errors)."""
    errors: list[str] = []
    try:
        act = Action(action)
        if act not in BULK_ACTIONS:
            raise ValueError(action)
    except ValueError:
        act = None
        errors.append(N_("Choose an action."))
    if not entry_ids:
        errors.append(N_("Select at least one entry."))
    entries: list[Entry] = []
    today = china_today()
    for raw in entry_ids:
        try:
            entry = registry.get_entry(session, uuid.UUID(raw), principal)
        except (ValueError, NotFound):
            errors.append(f"{raw}: not found")
            continue
        entries.append(entry)
        if act is not None:
            try:
                next_status(registry.facts_of(entry), act, today=today, reason=reason)
            except Problem as exc:
                errors.append(f"{listed_name(entry.subject)} ({entry.id}): {exc.detail}")
    if not errors:
        try:
            for entry in entries:
                assert act is not None
                take_step(session, principal.actor, entry, act, reason=reason, today=today)
        except Problem as exc:
            session.rollback()
            errors.append(exc.detail)
    if errors:
        session.rollback()
        return _page(
            request,
            session,
            principal,
            status_code=422,
            actions=BULK_ACTIONS,
            errors=errors,
            selected=set(entry_ids),
            done=None,
            done_action=None,
        )
    return redirect(request, f"{PREFIX}/review?done={len(entries)}&action={act.value if act else ''}")
