"""Entries: the list (search by name, entry number or USCC, status and submission dates, pages of 50,
CSV export), one entry's case view (`console.review.case_page`), a lifecycle step with its confirmation,
a proposed identifier rejected before publication, and an evidence file (downloaded, or shown inline in
the case view's preview)."""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import Form, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from fanchaoxin.appeals import notices, statements
from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import Action, Status
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.console import labels
from fanchaoxin.console.auth import page
from fanchaoxin.console.common import (
    EVIDENCE_READERS,
    READERS,
    REVIEWERS,
    console_router,
    listed_name,
    open_search,
    seal_search,
)
from fanchaoxin.console.i18n import N_, translator
from fanchaoxin.console.review import (
    DESTRUCTIVE,
    DONE,
    case_page,
    framable,
    possible_steps,
    problem_lines,
    step_effects,
)
from fanchaoxin.console.web import PREFIX, locale_of, redirect, render, secure_headers
from fanchaoxin.core import audit, permissions
from fanchaoxin.core.auth import DB, Principal
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.errors import NotFound, Problem
from fanchaoxin.workflows.entries import take_step

router = console_router()

PAGE_SIZE = 50
EXPORT_LIMIT = 10_000
INLINE_TYPES = frozenset({"application/pdf", "image/png", "image/jpeg", "image/gif"})


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
    basis: str
    status: str
    submitted_at: datetime
    published_at: datetime | None
    document_number: str | None


def _listed(entry: Entry, principal: Principal) -> _Listed:
    subject: Any = entry.subject
    if registry.shows_as_submitted(entry, principal) and entry.submitted_subject:
        subject = _SentSubject(entry.submitted_subject["kind"], entry.submitted_subject["name"])
    return _Listed(
        entry.id,
        subject,
        entry.behaviours,
        entry.severity,
        entry.basis,
        entry.status,
        entry.submitted_at,
        entry.published_at,
        entry.document_number,
    )


@dataclass
class _Filters:
    q: str
    status: str
    date_from: str
    date_to: str
    page: int
    errors: dict[str, str]
    search: registry.EntrySearch


def _filters(
    session: Session,
    principal: Principal,
    locale: str,
    q: str,
    status: str,
    date_from: str,
    date_to: str,
    page_no: str,
) -> _Filters:
    """The list's filters as given, checked: a bad one is named and left out of the search."""
    _ = translator(locale)
    errors: dict[str, str] = {}
    # Searching by name or code is the platform's: an organisation's own entries show what it sent.
    q = q.strip()[:200] if principal.is_platform else ""
    if status and status not in {s.value for s in Status}:
        errors["status"] = _(N_("Choose an entry status from the list."))
        status = ""
    days: dict[str, date | None] = {}
    for name, value in (("date_from", date_from), ("date_to", date_to)):
        try:
            days[name] = date.fromisoformat(value) if value else None
        except ValueError:
            errors[name] = _(N_("Give the submission date as YYYY-MM-DD."))
            days[name] = None
    if days["date_from"] and days["date_to"] and days["date_from"] > days["date_to"]:
        errors["date_to"] = _(N_("The end date is before the start date."))
        days["date_to"] = None
    try:
        number = max(1, int(page_no or "1"))
    except ValueError:
        number = 1
    # A notice's number (GZ…) names its entry; other codes are matched by the registry's search.
    found = notices.by_number(session, q) if q[:2].upper() == notices.NOTICE_PREFIX else None
    search = registry.EntrySearch(
        text=q,
        entry_ids=(found.entry_id,) if found is not None else (),
        status=status or None,
        submitted_from=days["date_from"],
        submitted_to=days["date_to"],
    )
    return _Filters(q, status, date_from, date_to, number, errors, search)


def _term(principal: Principal, q: str, qs: str) -> str:
    """The search term: sealed (``qs``, common.seal_search) or, from a form or an old link, plain."""
    if qs and principal.org_id is not None:
        return open_search(qs, principal.org_id) or ""
    return q


def _kept(principal: Principal, q: str, status: str, date_from: str, date_to: str) -> dict[str, str]:
    """The list's address parameters, the search term sealed."""
    sealed = seal_search(q, principal.org_id) if q and principal.org_id is not None else ""
    params = {"qs": sealed, "status": status, "from": date_from, "to": date_to}
    return {k: v for k, v in params.items() if v}


@router.post("/entries")
async def entries_search(
    request: Request, session: Session = DB, principal: Principal = page(*READERS)
) -> Response:
    """The search form is sent by POST: the list is then shown at its address with the term sealed."""
    form = await request.form()
    got = {k: str(form.get(k) or "").strip()[:200] for k in ("q", "status", "from", "to")}
    kept = _kept(principal, got["q"], got["status"], got["from"], got["to"])
    return redirect(request, f"{PREFIX}/entries" + ("?" + urlencode(kept) if kept else ""))


@router.get("/entries")
def entries_list(
    request: Request,
    session: Session = DB,
    principal: Principal = page(*READERS),
    q: str = "",
    qs: str = "",
    status: str = "",
    date_from: str = Query("", alias="from"),
    date_to: str = Query("", alias="to"),
    page_no: str = Query("1", alias="page"),
) -> Response:
    locale = locale_of(request)
    if q:  # a plain term in the address (an old link): seal it, and forget this address
        kept = _kept(principal, q.strip()[:200], status, date_from, date_to)
        return redirect(request, f"{PREFIX}/entries?" + urlencode({**kept, "page": page_no}))
    f = _filters(session, principal, locale, _term(principal, q, qs), status, date_from, date_to, page_no)
    rows, total = registry.search_entries(
        session, principal, f.search, offset=(f.page - 1) * PAGE_SIZE, limit=PAGE_SIZE
    )
    pages = max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE)
    kept = _kept(principal, f.q, f.status, f.date_from, f.date_to)

    def page_url(n: int) -> str:
        return f"{PREFIX}/entries?" + urlencode({**kept, "page": n})

    return render(
        request,
        "entries.html",
        status_code=422 if f.errors else 200,
        entries=[_listed(e, principal) for e in rows],
        total=total,
        page_no=f.page,
        pages=pages,
        prev_url=page_url(f.page - 1) if f.page > 1 else None,
        next_url=page_url(f.page + 1) if f.page < pages else None,
        export_url=f"{PREFIX}/entries.csv" + ("?" + urlencode(kept) if kept else ""),
        q=f.q,
        status=f.status,
        date_from=f.date_from,
        date_to=f.date_to,
        searchable=principal.is_platform,
        statuses=[s.value for s in Status],
        errors=f.errors,
        done=DONE.get(request.query_params.get("done") or ""),
    )


@router.get("/entries.csv")
def entries_export(
    request: Request,
    session: Session = DB,
    principal: Principal = page(*READERS),
    q: str = "",
    qs: str = "",
    status: str = "",
    date_from: str = Query("", alias="from"),
    date_to: str = Query("", alias="to"),
) -> Response:
    """The list as filtered, as CSV (UTF-8 with a BOM, for spreadsheet programs); names masked as shown."""
    locale = locale_of(request)
    _ = translator(locale)
    f = _filters(session, principal, locale, _term(principal, q, qs), status, date_from, date_to, "1")
    rows, total = registry.search_entries(session, principal, f.search, limit=EXPORT_LIMIT)
    out = io.StringIO()
    out.write("\ufeff")
    w = csv.writer(out)
    w.writerow(
        [
            _(N_("Entry number (id)")),
            _(N_("Subject")),
            _(N_("Subject kind")),
            _(N_("Behaviours")),
            _(N_("Severity")),
            _(N_("Basis")),
            _(N_("Document number")),
            _(N_("Status")),
            _(N_("Submitted")),
            _(N_("Published")),
        ]
    )
    for e in (_listed(r, principal) for r in rows):
        # A natural person's name is masked here as on the page (a sent subject's too).
        name = listed_name(e.subject)
        w.writerow(
            [
                str(e.id),
                name,
                labels.label("subject_kind", e.subject.kind, locale),
                "、".join(labels.label("behaviour", b, locale) for b in e.behaviours),
                labels.label("severity", e.severity, locale),
                labels.label("basis", e.basis, locale),
                e.document_number or "",
                labels.label("entry_status", e.status, locale),
                e.submitted_at.isoformat(),
                e.published_at.isoformat() if e.published_at else "",
            ]
        )
    audit.record_read(
        session, principal.actor, "entries.export", "entry", "-",
        detail={"rows": len(rows), "matching": total, "status": f.status or None},
    )  # fmt: skip
    response = Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="entries-{china_today().isoformat()}.csv"'},
    )
    return secure_headers(request, response)


@router.get("/entries/{entry_id}")
def entry_detail(
    request: Request,
    entry_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(*READERS),
    reveal: bool = Query(False),
) -> Response:
    entry = registry.get_entry(session, entry_id, principal)
    return case_page(request, session, principal, entry, reveal=reveal)


def _confirm_page(
    request: Request,
    session: Session,
    principal: Principal,
    entry: Entry,
    action: Action,
    *,
    errors: list[str] | None = None,
    reason: str = "",
    status_code: int = 200,
) -> Response:
    locale = locale_of(request)
    return render(
        request,
        "case_confirm.html",
        status_code=status_code,
        entry=entry,
        action=action.value,
        effects=step_effects(session, entry, action, china_today(), locale),
        unanswered=[s for s in statements.statements_of(session, entry.id) if s.status == "received"],
        reason=reason,
        errors=errors or [],
    )


@router.get("/entries/{entry_id}/confirm")
def entry_confirm(
    request: Request,
    entry_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(*REVIEWERS),
    action: str = "",
) -> Response:
    """The confirmation of a destructive step (驳回, 撤销): what it will do, the reason, and the button."""
    entry = registry.get_entry(session, entry_id, principal)
    act = next((a for a in DESTRUCTIVE if a.value == action), None)
    if act is None or act not in possible_steps(entry, principal, china_today()):
        # Not a step to confirm now (taken meanwhile, or never possible): back to the case.
        return redirect(request, f"{PREFIX}/entries/{entry_id}#steps")
    return _confirm_page(request, session, principal, entry, act)


@router.post("/entries/{entry_id}/transition")
def entry_transition(
    request: Request,
    entry_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(*REVIEWERS),
    action: str = Form(""),
    reason: str = Form(""),
    version: int | None = Form(None),
    confirmed: str = Form(""),
) -> Response:
    """Take a step; a destructive one only once confirmed. A refusal is shown on the page it came from."""
    locale = locale_of(request)
    _ = translator(locale)
    entry = registry.get_entry(session, entry_id, principal)
    act = next((a for a in Action if a.value == action), None)
    if act is None or act not in possible_steps(entry, principal, china_today()):
        message = _(N_("This step is not possible for the entry now; choose one of the steps shown."))
        return case_page(request, session, principal, entry, errors=[message], status_code=409)
    if act in DESTRUCTIVE and confirmed != "yes":
        return _confirm_page(request, session, principal, entry, act, reason=reason)
    try:
        locked = registry.get_entry_for_update(session, entry_id)
        take_step(session, principal.actor, locked, act, reason=reason, expected_version=version)
    except Problem as exc:
        session.rollback()
        entry = registry.get_entry(session, entry_id, principal)
        lines = problem_lines(exc, locale)
        if act in DESTRUCTIVE:
            return _confirm_page(
                request, session, principal, entry, act, errors=lines, reason=reason, status_code=exc.status
            )
        return case_page(request, session, principal, entry, errors=lines, status_code=exc.status)
    if act == Action.revoke and principal.role not in permissions.SEE_REVOKED:
        # A revoked entry is kept from the reviewer's sight (only its keepers see it): back to the list.
        return redirect(request, f"{PREFIX}/entries?done={act.value}")
    return redirect(request, f"{PREFIX}/entries/{entry_id}?done={act.value}#steps")


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
    try:
        entry = registry.get_entry_for_update(session, entry_id)
        registry.reject_proposed(
            session, principal.actor, entry, proposal_id, reason=reason, expected_version=version
        )
    except Problem as exc:
        if isinstance(exc, NotFound):
            raise
        session.rollback()
        entry = registry.get_entry(session, entry_id, principal)
        lines = problem_lines(exc, locale_of(request))
        return case_page(request, session, principal, entry, errors=lines, status_code=exc.status)
    return redirect(request, f"{PREFIX}/entries/{entry_id}#proposed")


@router.get("/entries/{entry_id}/evidence/{digest}")
def entry_evidence(
    request: Request,
    entry_id: uuid.UUID,
    digest: str,
    session: Session = DB,
    principal: Principal = page(*EVIDENCE_READERS),
    inline: bool = Query(False),
) -> Response:
    """An evidence file, for the platform and the organisation that reported the entry (audited);
    `inline`: a PDF or an image shown in the case view's preview."""
    entry = registry.get_entry(session, entry_id, principal)
    if not (principal.is_platform or entry.owner_org_id == principal.org_id):
        raise NotFound(f"No entry with id {entry_id}")
    ev, blob = registry.get_evidence_blob(session, entry, digest)
    audit.record(
        session, principal.actor, "evidence.read", "entry", entry.id,
        detail={"digest": digest, **({"inline": True} if inline else {})},
    )  # fmt: skip
    shown = inline and blob.media_type in INLINE_TYPES
    response = Response(
        blob.data,
        media_type=blob.media_type,
        headers={
            "Content-Disposition": f'{"inline" if shown else "attachment"}; filename="{ev.digest}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
    return framable(response) if shown else response
