"""The public progress page (办理进度查询): the filer of a report (举报), an objection (异议), an
application for credit repair (信用修复) or a statement (陈述申辩) enters the tracking number and the
secret it was given, and sees the case's status, deadlines and outcome.

The secret travels in a POST form only, never in a URL (nor so in an access log); each look-up takes a
token of the public forms' budget per address and per tracking number (`PublicLimits`), so secrets
cannot be guessed at speed. An unknown number and a wrong secret get the same answer, word for word.
What the filer sees of each kind is `appeals.progress`, the same as the API's status routes.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from fastapi import File, Form, Request, UploadFile
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from fanchaoxin.appeals import cases
from fanchaoxin.appeals import progress as case_progress
from fanchaoxin.appeals.models import Objection, RepairApplication
from fanchaoxin.appeals.schemas import CaseStatusOut
from fanchaoxin.console import log_proofs
from fanchaoxin.console.auth import public_page
from fanchaoxin.console.common import console_router
from fanchaoxin.console.i18n import N_, translator
from fanchaoxin.console.labels import OUTCOME
from fanchaoxin.console.problems import form_errors
from fanchaoxin.console.public import (
    CASE_PROOFS,
    PUBLIC_ACTOR,
    _address,
    _attach,
    _filing_limits,
    _log_proof_download,
)
from fanchaoxin.console.web import locale_of, render
from fanchaoxin.core import audit
from fanchaoxin.core.auth import DB, Principal
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.errors import NotFound

router = console_router()

# What each kind of case is called on the page.
KIND = {
    "report": N_("Report (举报)"),
    "objection": N_("Objection (异议)"),
    "repair": N_("Credit repair application (信用修复)"),
    "statement": N_("Statement (陈述申辩)"),
}

# The deadlines of a case (appeals.schemas.Deadlines), in the order a case meets them.
DEADLINE = {
    "filed_on": N_("Filed on"),
    "dispute_due_on": N_("Entry marked disputed by"),
    "forward_due_on": N_("Forwarded to the reporting organisation by"),
    "answer_due_on": N_("The reporting organisation answers by"),
    "handle_due_on": N_("Handled by"),
    "decide_due_on": N_("Decision due by"),
    "notice_ends_on": N_("Statements may be filed until"),
}

# Outcomes whose meaning depends on the kind of case: a statement's "rejected" is the entry's rejection
# (the statement convinced the reviewer), not a refusal of the filer.
KIND_OUTCOME = {
    ("statement", "published"): N_("Listed: the entry was published after review of the statement"),
    ("statement", "rejected"): N_("Not listed: the statement was accepted"),
}


def outcome_label(case: CaseStatusOut) -> str | None:
    """The msgid naming the case's outcome (None: not decided); an unknown code is shown as it is."""
    if case.outcome is None:
        return None
    return KIND_OUTCOME.get((case.kind, case.outcome)) or OUTCOME.get(case.outcome, case.outcome)


MAX_TRACKING = 40
MAX_SECRET = 200
# Errors at the form's fields, in the reader's language.
FIELD_ERROR = {
    "tracking_number": N_("Enter the tracking number you were given (at most 40 characters)."),
    "secret": N_("Enter the secret you were given (at most 200 characters)."),
}
FIELD = {"tracking_number": N_("Tracking number"), "secret": N_("Secret"), "files": N_("Files")}
NO_FILES = N_("Choose at least one file to send.")


def deadlines_of(status: CaseStatusOut, today: date) -> list[dict[str, Any]]:
    """The case's dates to show: each with its label, and whether it has passed while the case is open.

    A kind may have dates of its own (a statement's, for one): they are shown too, under their name.
    """
    rows = []
    dates = status.deadlines.model_dump()
    order = [k for k in DEADLINE if k in dates] + [k for k in dates if k not in DEADLINE]
    for key in order:
        day = dates[key]
        if day is None:
            continue
        rows.append(
            {
                "key": key,
                "label": DEADLINE.get(key),
                "date": day,
                "passed": key != "filed_on" and status.decided_at is None and day < today,
            }
        )
    return rows


def _page(
    request: Request,
    *,
    status_code: int = 200,
    case: CaseStatusOut | None = None,
    not_found: bool = False,
    tracking_number: str = "",
    errors: dict[str, str] | None = None,
    received: int | None = None,
    log_proof: dict[str, Any] | None = None,
) -> Response:
    return render(
        request,
        "public/progress.html",
        status_code=status_code,
        case=case,
        log_proof=log_proof,
        kind_label=KIND.get(case.kind, case.kind) if case is not None else "",
        outcome_label=outcome_label(case) if case is not None else None,
        deadlines=deadlines_of(case, china_today()) if case is not None else [],
        not_found=not_found,
        # The number is written back after a form error or with the case; the secret never.
        tracking_number=tracking_number,
        errors={k: translator(locale_of(request))(v) for k, v in (errors or {}).items()},
        fields=FIELD,
        received=received,
    )


def _entry_of(session: Session, case: CaseStatusOut) -> uuid.UUID | None:
    """The entry an objection or a repair application is about (its secret was checked already)."""
    if case.kind not in CASE_PROOFS:
        return None
    model = Objection if case.kind == "objection" else RepairApplication
    return session.scalar(select(model.entry_id).where(model.tracking_number == case.tracking_number))


def _log_proof(session: Session, case: CaseStatusOut) -> dict[str, Any] | None:
    if case.kind not in CASE_PROOFS:
        return None
    return log_proofs.proof_section(session, _entry_of(session, case))


@router.get("/public/progress")
def progress_form(request: Request, _: Principal = public_page()) -> Response:
    return _page(request)


def _checked(number: str, secret: str) -> dict[str, str]:
    errors = {}
    if not number or len(number) > MAX_TRACKING:
        errors["tracking_number"] = FIELD_ERROR["tracking_number"]
    if not secret or len(secret) > MAX_SECRET:
        errors["secret"] = FIELD_ERROR["secret"]
    return errors


@router.post("/public/progress/material")
def progress_material(
    request: Request,
    session: Session = DB,
    _: Principal = public_page(),
    tracking_number: str = Form(""),
    secret: str = Form(""),
    files: list[UploadFile] = File(default_factory=list),
) -> Response:
    """The material a reviewer asked for (补正), sent from the progress page: the tracking number and the
    secret again (the page never keeps the secret), the files checked by content and size, all kept or
    none. The reviewer then closes the request as received."""
    number, secret = tracking_number.strip().upper(), secret.strip()
    errors = _checked(number, secret)
    if not any(f.filename for f in files):
        errors["files"] = NO_FILES
    if errors:
        return _page(request, status_code=422, tracking_number=number[:MAX_TRACKING], errors=errors)
    _filing_limits(request).check(_address(request), [audit.digest(f"case:{number}") or number])
    try:
        case = case_progress.progress(session, number, secret)
        if not case.material_requested:
            raise NotFound("no material is asked for", code="case.not_found_by_tracking")
        held = cases.by_tracking(session, case.kind, number, secret)
    except NotFound:
        return _page(request, status_code=404, not_found=True)
    refused = _attach(session, case.kind, held, files)
    if refused is not None:
        session.rollback()
        name, problem = refused
        said = form_errors(problem, locale_of(request))
        text = " ".join(said.values())
        return _page(
            request, status_code=problem.status, case=case, tracking_number=number,
            errors={"files": f"{name}: {text}"},
        )  # fmt: skip
    sent = sum(1 for f in files if f.filename)
    audit.record(session, PUBLIC_ACTOR, "case.material_sent", case.kind, held.id, detail={"files": sent})
    case = case_progress.progress(session, number, secret)
    return _page(request, case=case, tracking_number=number, received=sent,
                 log_proof=_log_proof(session, case))  # fmt: skip


@router.post("/public/progress")
def progress_lookup(
    request: Request,
    session: Session = DB,
    _: Principal = public_page(),
    tracking_number: str = Form(""),
    secret: str = Form(""),
) -> Response:
    number, secret = tracking_number.strip().upper(), secret.strip()
    errors = _checked(number, secret)
    if errors:
        return _page(request, status_code=422, tracking_number=number[:MAX_TRACKING], errors=errors)
    # One token per look-up from the public forms' budget: per address, and per tracking number.
    _filing_limits(request).check(_address(request), [audit.digest(f"case:{number}") or number])
    try:
        case = case_progress.progress(session, number, secret)
    except NotFound:
        found = False
    else:
        found = True
    audit.record_read(
        session, PUBLIC_ACTOR, "case.progress", "case", number if found else "-",
        detail={"found": found, **({"kind": case.kind} if found else {})},
    )  # fmt: skip
    if not found:
        # Nothing of what was entered comes back: the same page for every failure, word for word.
        return _page(request, status_code=404, not_found=True)
    return _page(request, case=case, tracking_number=number, log_proof=_log_proof(session, case))


@router.post("/public/progress/log-proof.json")
def progress_log_proof(
    request: Request,
    session: Session = DB,
    _: Principal = public_page(),
    tracking_number: str = Form(""),
    secret: str = Form(""),
) -> Response:
    """The inclusion proof of the entry an objection or a repair application is about, as a file: the
    tracking number and the secret posted (never in a URL), one token of the public forms' budget."""
    number, secret = tracking_number.strip().upper(), secret.strip()
    errors = _checked(number, secret)
    if errors:
        return _page(request, status_code=422, tracking_number=number[:MAX_TRACKING], errors=errors)
    _filing_limits(request).check(_address(request), [audit.digest(f"case:{number}") or number])
    try:
        case = case_progress.progress(session, number, secret)
    except NotFound:
        return _page(request, status_code=404, not_found=True)
    entry_id = _entry_of(session, case)
    audit.record_read(
        session, PUBLIC_ACTOR, "case.progress", "case", number,
        detail={"kind": case.kind, "log_proof": True},
    )  # fmt: skip
    if entry_id is None:
        return _page(request, status_code=404, not_found=True)
    return _log_proof_download(session, entry_id, case.tracking_number)
