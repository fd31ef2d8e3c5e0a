"""The review queue: entries submitted, under review or in their notice period, with the identifiers each
would add to a known subject and what resolution left to the reviewer, and bulk steps on them.

Before an entry in its notice period is decided, the reviewer opens its decision page: the notice before
listing (告知书, HTML and PDF) and how it was delivered — a letter to print when there was no e-mail or
phone, or the delivery failed —, every statement the subject filed (陈述申辩) with its evidence, the liable
persons the submission names, and the form that publishes the entry (an answer to each statement
required) or rejects it (the statement convinced; the reason answers the statements left blank)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from fanchaoxin.appeals import attachments, notices, statements
from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import Action, Status, next_status
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.blacklist.views import entry_out
from fanchaoxin.console.auth import page
from fanchaoxin.console.commitments import breaches_for_entry
from fanchaoxin.console.common import REVIEWERS, console_router, listed_name, problem_errors
from fanchaoxin.console.i18n import N_
from fanchaoxin.console.web import PREFIX, redirect, render, secure_headers
from fanchaoxin.core import audit, permissions
from fanchaoxin.core.auth import DB, Principal
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.errors import NotFound, Problem
from fanchaoxin.core.identifiers import mask
from fanchaoxin.orgs import service as org_service
from fanchaoxin.subjects import service as subjects
from fanchaoxin.workflows.entries import take_step

router = console_router()

QUEUE_STATUSES = ("submitted", "under_review", "notice_period")
BULK_ACTIONS = (Action.start_review, Action.open_notice, Action.publish, Action.reject)
DECISIONS = (Action.publish, Action.reject)


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
    ids = [e.id for e in entries]
    in_notice = [e.id for e in entries if e.status == Status.notice_period.value]
    return render(
        request,
        "review.html",
        entries=entries,
        offered=_offered(session, entries),
        unanswered=statements.unanswered_counts(session, ids),
        notices={i: notices.summary_of(session, i) for i in in_notice},
        **ctx,
    )


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


# --- one entry before the decision: notice, statements, liable persons ------------------------------------


def _decision_page(
    request: Request,
    session: Session,
    principal: Principal,
    entry: Entry,
    *,
    reveal: bool = False,
    errors: list[str] | None = None,
    form: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    rows = statements.statements_of(session, entry.id)
    return render(
        request,
        "review_entry.html",
        status_code=status_code,
        entry=entry_out(session, entry, principal, reveal=reveal, detail=True),
        notice=notices.summary_of(session, entry.id),
        commitment_breaches=breaches_for_entry(session, entry),
        statements=rows,
        files={s.id: attachments.attachments_of(session, "statement", s.id) for s in rows},
        org_names=org_service.organisation_names(session),
        may_decide=entry.status in (Status.under_review.value, Status.notice_period.value),
        may_reveal=permissions.may_reveal(principal),
        revealed=reveal,
        today=china_today(),
        errors=errors or [],
        form=form or {},
    )


@router.get("/review/{entry_id}")
def review_entry(
    request: Request,
    entry_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(*REVIEWERS),
    reveal: bool = Query(False),
) -> Response:
    """The entry as the reviewer decides on it: notice, delivery, statements, liable persons."""
    entry = registry.get_entry(session, entry_id, principal)
    return _decision_page(request, session, principal, entry, reveal=reveal)


@router.post("/review/{entry_id}/decide")
def review_decide(
    request: Request,
    entry_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(*REVIEWERS),
    action: str = Form(""),
    reason: str = Form(""),
    version: int | None = Form(None),
    statement_id: list[str] = Form(default_factory=list),
    answer: list[str] = Form(default_factory=list),
) -> Response:
    """Publish (an answer to every statement) or reject (the reason answers those left blank)."""
    form = {"action": action, "reason": reason, "answers": dict(zip(statement_id, answer, strict=False))}
    act = next((a for a in DECISIONS if a.value == action), None)
    errors: list[str] = [] if act is not None else [N_("Choose an action.")]
    answers: dict[uuid.UUID, str] = {}
    # One hidden statement id and one answer box per statement, in the page's order.
    for raw, text in zip(statement_id, answer, strict=False):
        try:
            key = uuid.UUID(raw)
        except ValueError:
            errors.append(f"statement_id: {raw!r} is not a statement id")
            continue
        if text.strip():
            answers[key] = text
    if not errors and act is not None:
        try:
            entry = registry.get_entry_for_update(session, entry_id)
            take_step(
                session, principal.actor, entry, act, reason=reason, expected_version=version, answers=answers
            )
        except Problem as exc:
            session.rollback()
            errors = problem_errors(exc)
        else:
            return redirect(request, f"{PREFIX}/entries/{entry_id}?done={act.value}")
    entry = registry.get_entry(session, entry_id, principal)
    return _decision_page(request, session, principal, entry, errors=errors, form=form, status_code=422)


@router.post("/review/{entry_id}/letter-posted")
def review_letter_posted(
    request: Request,
    entry_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(*REVIEWERS),
    posted_on: str = Form(""),
    reference: str = Form(""),
) -> Response:
    """The reviewer posted the printed notice: the date and the registered letter's number."""
    entry = registry.get_entry(session, entry_id, principal)
    try:
        day = date.fromisoformat(posted_on)
    except ValueError:
        errors = [N_("Give the date the letter was posted.")]
    else:
        try:
            notices.record_letter_posted(
                session, principal.actor, entry.id, posted_on=day, reference=reference, today=china_today()
            )
        except Problem as exc:
            session.rollback()
            errors = problem_errors(exc)
        else:
            return redirect(request, f"{PREFIX}/review/{entry_id}")
    return _decision_page(request, session, principal, entry, errors=errors, status_code=422)


def _notice_for(session: Session, principal: Principal, entry_id: uuid.UUID, fmt: str) -> Any:
    entry = registry.get_entry(session, entry_id, principal)
    notice = notices.get_notice(session, entry.id)
    audit.record_read(session, principal.actor, "notice.read", "notice", notice.id, detail={"format": fmt})
    return notice


@router.get("/review/{entry_id}/notice")
def review_notice(
    request: Request, entry_id: uuid.UUID, session: Session = DB, principal: Principal = page(*REVIEWERS)
) -> Response:
    """The notice as the subject got it (printable)."""
    notice = _notice_for(session, principal, entry_id, "html")
    return secure_headers(request, HTMLResponse(notices.render_html(notice.content)))


@router.get("/review/{entry_id}/notice.pdf")
def review_notice_pdf(
    request: Request, entry_id: uuid.UUID, session: Session = DB, principal: Principal = page(*REVIEWERS)
) -> Response:
    """The notice as a PDF: the letter to post when it could not be sent."""
    notice = _notice_for(session, principal, entry_id, "pdf")
    response = Response(
        notices.render_pdf(notice.content),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{notice.number}.pdf"'},
    )
    return secure_headers(request, response)


@router.get("/review/statements/{statement_id}/files/{sha256}")
def review_statement_file(
    request: Request,
    statement_id: uuid.UUID,
    sha256: str,
    session: Session = DB,
    principal: Principal = page(*REVIEWERS),
) -> Response:
    """A statement's evidence file (audited)."""
    statement = statements.get_statement(session, statement_id)
    att, blob = attachments.attachment_blob(session, "statement", statement.id, sha256)
    audit.record(
        session, principal.actor, "attachment.read", "statement", statement.id, detail={"sha256": sha256}
    )
    response = Response(
        blob.data,
        media_type=att.media_type,
        headers={"Content-Disposition": f'attachment; filename="{att.sha256}"'},
    )
    return secure_headers(request, response)
