"""The review queue: entries submitted, under review or in their notice period, and bulk steps on them."""

from __future__ import annotations

import uuid

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
from fanchaoxin.workflows.entries import take_step

router = console_router()

QUEUE_STATUSES = ("submitted", "under_review", "notice_period")
BULK_ACTIONS = (Action.start_review, Action.open_notice, Action.publish, Action.reject)


def _queue(session: Session, principal: Principal) -> list[Entry]:
    rows: list[Entry] = []
    for status in QUEUE_STATUSES:
        rows += registry.list_entries(session, principal, status=status, limit=500).entries
    return rows


@router.get("/review")
def review_queue(
    request: Request, session: Session = DB, principal: Principal = page(*REVIEWERS)
) -> Response:
    return render(
        request,
        "review.html",
        entries=_queue(session, principal),
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
        return render(
            request,
            "review.html",
            status_code=422,
            entries=_queue(session, principal),
            actions=BULK_ACTIONS,
            errors=errors,
            selected=set(entry_ids),
            done=None,
            done_action=None,
        )
    return redirect(request, f"{PREFIX}/review?done={len(entries)}&action={act.value if act else ''}")
