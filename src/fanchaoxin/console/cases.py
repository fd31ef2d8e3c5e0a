"""Due-process pages of the console: one objection, report or credit repair application, and its actions.

Every action validates its form with the API's request models (appeals.schemas) and then calls the same
function as the API — `workflows.appeals` where the entry takes a step (forwarding and deciding an
objection, deciding a repair), else the appeals slice's own — which applies the rules and writes the
audit record.
Errors are shown next to the field they name; nothing is half-written (the transaction rolls back).
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from fastapi import Form, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from fanchaoxin.appeals import attachments, objections, reports, supplements
from fanchaoxin.appeals import cases as appeal_cases
from fanchaoxin.appeals.models import Objection, RepairApplication, Report
from fanchaoxin.appeals.schemas import (
    AnswerIn,
    ForwardIn,
    ObjectionDecisionIn,
    RepairDecisionIn,
    ReportOutcomeIn,
    TriageIn,
)
from fanchaoxin.appeals.views import objection_out, repair_out, report_out
from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.console import problems
from fanchaoxin.console.auth import page
from fanchaoxin.console.common import ADDRESSEES, REVIEWERS, console_router, deadline_badge
from fanchaoxin.console.i18n import N_
from fanchaoxin.console.problems import describe
from fanchaoxin.console.web import PREFIX, locale_of, redirect, render
from fanchaoxin.core import audit
from fanchaoxin.core.auth import DB, Principal
from fanchaoxin.core.calendar import add_working_days, china_today
from fanchaoxin.core.catalogue import catalogues
from fanchaoxin.core.errors import NotFound, Problem, ValidationProblem
from fanchaoxin.core.roles import OrgKind
from fanchaoxin.orgs import service as org_service
from fanchaoxin.workflows import appeals as due_process

router = console_router()

# Where the platform may route a report: an enterprise or a department.
ROUTABLE_KINDS = (OrgKind.enterprise.value, OrgKind.department.value)

# Confirmation shown after an action (?done=…), translated where shown.
DONE = {
    "forward": N_("The objection was forwarded to the reporting organisation."),
    "answer": N_("Your answer was sent to the platform."),
    "decide": N_("The objection is decided."),
    "triage": N_("The report was triaged."),
    "handle": N_("The outcome of the report was recorded."),
    "repair": N_("The credit repair application is decided."),
    "supplement": N_("The request for material was sent to the filer."),
    "supplement_closed": N_("The request for material is closed; the case goes on."),
}
# How a request for material (补正) ended, and what the reviewer may close it as.
SUPPLEMENT_STATUS = {
    "open": N_("Waiting for the material"),
    "received": N_("Material received"),
    "lapsed": N_("Not received by the date"),
    "withdrawn": N_("Withdrawn by the reviewer"),
}
# The filer is given 5 working days by default (the platform's own time to decide).
SUPPLEMENT_DEFAULT_WORKING_DAYS = 5


# --- objections -----------------------------------------------------------------------------------------


def _objection(session: Session, objection_id: uuid.UUID, principal: Principal) -> Objection:
    obj: Objection = appeal_cases.get_case(session, Objection, objection_id, principal, "objection")
    return obj


def _objection_page(
    request: Request,
    session: Session,
    principal: Principal,
    obj: Objection,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
    action: str | None = None,
    status_code: int = 200,
) -> Response:
    entry = appeal_cases.entry_of(session, obj)
    reviewer = principal.role in REVIEWERS
    return render(
        request,
        "objection.html",
        status_code=status_code,
        o=objection_out(session, obj, principal),
        entry=entry,
        org_names=org_service.organisation_names(session),
        today=china_today(),
        may_forward=reviewer and obj.status == "open",
        may_decide=reviewer and obj.status != "decided",
        may_answer=(
            principal.role in ADDRESSEES
            and obj.status == "forwarded"
            and obj.addressed_to_org_id == principal.org_id
        ),
        severities=list(catalogues().severities),
        behaviours=catalogues().behaviours,
        errors=errors or {},
        form=form or {},
        failed=action,
        done=DONE.get(request.query_params.get("done") or ""),
        **_supplement_context(session, principal, "objection", obj),
    )


@router.get("/objections/{objection_id}")
def objection_detail(
    request: Request,
    objection_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(*REVIEWERS, *ADDRESSEES),
) -> Response:
    return _objection_page(request, session, principal, _objection(session, objection_id, principal))


@router.post("/objections/{objection_id}/forward")
def objection_forward(
    request: Request,
    objection_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(*REVIEWERS),
    note: str = Form(""),
    version: int | None = Form(None),
) -> Response:
    obj = _objection(session, objection_id, principal)
    try:
        body = ForwardIn.model_validate({"note": note, "version": version})
        due_process.forward_objection(
            session, principal.actor, obj, note=body.note, expected_version=body.version
        )
    except (ValidationError, Problem) as exc:
        return _failed(request, session, principal, objection_id, exc, "forward", {"note": note})
    return redirect(request, f"{PREFIX}/objections/{objection_id}?done=forward")


@router.post("/objections/{objection_id}/answer")
def objection_answer(
    request: Request,
    objection_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(*ADDRESSEES),
    proposed_outcome: str = Form(""),
    answer: str = Form(""),
) -> Response:
    obj = _objection(session, objection_id, principal)
    form = {"proposed_outcome": proposed_outcome, "answer": answer}
    try:
        body = AnswerIn.model_validate(form)
        objections.answer_objection(
            session, principal, obj, proposed_outcome=body.proposed_outcome, answer=body.answer
        )
    except (ValidationError, Problem) as exc:
        return _failed(request, session, principal, objection_id, exc, "answer", form)
    return redirect(request, f"{PREFIX}/objections/{objection_id}?done=answer")


@router.post("/objections/{objection_id}/decide")
def objection_decide(
    request: Request,
    objection_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(*REVIEWERS),
    outcome: str = Form(""),
    reason: str = Form(""),
    public_reason: str = Form(""),
    identity_verification: str = Form(""),
    severity: str = Form(""),
    behaviours: list[str] = Form(default_factory=list),
    facts: str = Form(""),
    version: int | None = Form(None),
) -> Response:
    """Upheld, corrected (with the corrected fields) or revoked (lifted everywhere, correction notice)."""
    obj = _objection(session, objection_id, principal)
    form: dict[str, Any] = {
        "outcome": outcome,
        "reason": reason,
        "public_reason": public_reason,
        "identity_verification": identity_verification,
        "severity": severity,
        "behaviours": behaviours,
        "facts": facts,
    }
    corrections = {
        k: v
        for k, v in (("severity", severity.strip()), ("behaviours", behaviours), ("facts", facts.strip()))
        if v
    }
    try:
        body = ObjectionDecisionIn.model_validate(
            {
                "outcome": outcome,
                "reason": reason,
                "public_reason": public_reason.strip() or None,
                "identity_verification": identity_verification.strip() or None,
                "corrections": corrections if outcome == "corrected" else None,
                "version": version,
            }
        )
        due_process.decide_objection_as_asked(session, principal.actor, obj, body)
    except (ValidationError, Problem) as exc:
        return _failed(request, session, principal, objection_id, exc, "decide", form)
    return redirect(request, f"{PREFIX}/objections/{objection_id}?done=decide")


def _failed(
    request: Request,
    session: Session,
    principal: Principal,
    objection_id: uuid.UUID,
    exc: ValidationError | Problem,
    action: str,
    form: dict[str, Any],
) -> Response:
    session.rollback()
    status = exc.status if isinstance(exc, Problem) else 422
    obj = _objection(session, objection_id, principal)
    return _objection_page(
        request,
        session,
        principal,
        obj,
        errors=problems.form_errors(exc, locale_of(request)),
        form=form,
        action=action,
        status_code=status,
    )


@router.get("/objections/{objection_id}/attachments/{digest}")
def objection_attachment(
    request: Request,
    objection_id: uuid.UUID,
    digest: str,
    session: Session = DB,
    principal: Principal = page(*REVIEWERS, *ADDRESSEES),
) -> Response:
    return _download(session, principal, "objection", _objection(session, objection_id, principal), digest)


def _download(session: Session, principal: Principal, case_type: str, case: Any, digest: str) -> Response:
    att, blob = attachments.attachment_blob(session, case_type, case.id, digest)
    audit.record(session, principal.actor, "attachment.read", case_type, case.id, detail={"digest": digest})
    return Response(
        blob.data,
        media_type=att.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{att.digest}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


# --- reports (举报) ----------------------------------------------------------------------------------------


def _report(session: Session, report_id: uuid.UUID, principal: Principal) -> Report:
    rep: Report = appeal_cases.get_case(session, Report, report_id, principal, "report")
    return rep


def _report_page(
    request: Request,
    session: Session,
    principal: Principal,
    rep: Report,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
    action: str | None = None,
    status_code: int = 200,
) -> Response:
    reviewer = principal.role in REVIEWERS
    recipient = principal.role in ADDRESSEES and rep.addressed_to_org_id == principal.org_id
    mine: list[Entry] = []
    if recipient and rep.status == "routed":
        # The recipient names the entry it submitted for a substantiated report: its latest ones.
        assert principal.org_id is not None
        mine = registry.entries_owned_by(session, principal.org_id, limit=50)
    return render(
        request,
        "report.html",
        status_code=status_code,
        r=report_out(session, rep, principal),
        org_names=org_service.organisation_names(session),
        today=china_today(),
        may_triage=reviewer and rep.status == "received",
        may_handle=recipient and rep.status == "routed",
        routable=org_service.active_organisations(session, ROUTABLE_KINDS) if reviewer else [],
        own_entries=mine,
        errors=errors or {},
        form=form or {},
        failed=action,
        done=DONE.get(request.query_params.get("done") or ""),
    )


@router.get("/reports/{report_id}")
def report_detail(
    request: Request,
    report_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(*REVIEWERS, *ADDRESSEES),
) -> Response:
    return _report_page(request, session, principal, _report(session, report_id, principal))


@router.post("/reports/{report_id}/triage")
def report_triage(
    request: Request,
    report_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(*REVIEWERS),
    action: str = Form(""),
    addressed_to_org_id: str = Form(""),
    note: str = Form(""),
    version: int | None = Form(None),
) -> Response:
    """Route to the enterprise or department that handles it, or dismiss it (with a reason)."""
    rep = _report(session, report_id, principal)
    form = {"action": action, "addressed_to_org_id": addressed_to_org_id, "note": note}
    try:
        body = TriageIn.model_validate(
            {
                "action": action,
                "addressed_to_org_id": addressed_to_org_id.strip() or None if action == "route" else None,
                "note": note,
            }
        )
        reports.triage_report(
            session,
            principal.actor,
            rep,
            action=body.action,
            addressed_to_org_id=body.addressed_to_org_id,
            note=body.note,
            expected_version=version,
        )
    except (ValidationError, Problem) as exc:
        session.rollback()
        status = exc.status if isinstance(exc, Problem) else 422
        rep = _report(session, report_id, principal)
        return _report_page(
            request, session, principal, rep, errors=problems.form_errors(exc, locale_of(request)), form=form,
            action="triage", status_code=status,
        )  # fmt: skip
    return redirect(request, f"{PREFIX}/reports/{report_id}?done=triage")


@router.post("/reports/{report_id}/handle")
def report_handle(
    request: Request,
    report_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(*ADDRESSEES),
    outcome: str = Form(""),
    note: str = Form(""),
    entry_id: str = Form(""),
    forwarded_to: str = Form(""),
) -> Response:
    """The recipient's outcome: substantiated (with its entry), unsubstantiated, or forwarded elsewhere."""
    rep = _report(session, report_id, principal)
    form = {"outcome": outcome, "note": note, "entry_id": entry_id, "forwarded_to": forwarded_to}
    try:
        body = ReportOutcomeIn.model_validate(
            {
                "outcome": outcome,
                "note": note,
                "entry_id": entry_id.strip() or None,
                "forwarded_to": forwarded_to.strip() or None,
            }
        )
        reports.handle_report(
            session,
            principal,
            rep,
            outcome=body.outcome,
            note=body.note,
            entry_id=body.entry_id,
            forwarded_to=body.forwarded_to,
        )
    except (ValidationError, Problem) as exc:
        session.rollback()
        status = exc.status if isinstance(exc, Problem) else 422
        rep = _report(session, report_id, principal)
        return _report_page(
            request, session, principal, rep, errors=problems.form_errors(exc, locale_of(request)), form=form,
            action="handle", status_code=status,
        )  # fmt: skip
    return redirect(request, f"{PREFIX}/reports/{report_id}?done=handle")


@router.get("/reports/{report_id}/attachments/{digest}")
def report_attachment(
    request: Request,
    report_id: uuid.UUID,
    digest: str,
    session: Session = DB,
    principal: Principal = page(*REVIEWERS, *ADDRESSEES),
) -> Response:
    return _download(session, principal, "report", _report(session, report_id, principal), digest)


# --- credit repair (信用修复) -------------------------------------------------------------------------------


def _repair(session: Session, repair_id: uuid.UUID, principal: Principal) -> RepairApplication:
    app: RepairApplication = appeal_cases.get_case(
        session, RepairApplication, repair_id, principal, "application"
    )
    return app


def _repair_page(
    request: Request,
    session: Session,
    principal: Principal,
    app: RepairApplication,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
    status_code: int = 200,
    action: str | None = None,
) -> Response:
    today = china_today()
    return render(
        request,
        "repair.html",
        status_code=status_code,
        a=repair_out(session, app),
        entry=appeal_cases.entry_of(session, app),
        badge=deadline_badge(app.decide_due_on, today, app.status == "decided"),
        today=today,
        may_decide=app.status != "decided",
        errors=errors or {},
        form=form or {},
        failed=action,
        done=DONE.get(request.query_params.get("done") or ""),
        **_supplement_context(session, principal, "repair", app),
    )


@router.get("/repairs/{repair_id}")
def repair_detail(
    request: Request,
    repair_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(*REVIEWERS),
) -> Response:
    return _repair_page(request, session, principal, _repair(session, repair_id, principal))


@router.post("/repairs/{repair_id}/decide")
def repair_decide(
    request: Request,
    repair_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(*REVIEWERS),
    outcome: str = Form(""),
    reason: str = Form(""),
    identity_verification: str = Form(""),
    version: int | None = Form(None),
) -> Response:
    """Approval ends the entry as repaired and issues lift instructions; a refusal needs its reason."""
    app = _repair(session, repair_id, principal)
    form = {"outcome": outcome, "reason": reason, "identity_verification": identity_verification}
    try:
        body = RepairDecisionIn.model_validate(
            {
                "outcome": outcome,
                "reason": reason,
                "identity_verification": identity_verification.strip() or None,
                "version": version,
            }
        )
        due_process.decide_repair(
            session,
            principal.actor,
            app,
            outcome=body.outcome,
            reason=body.reason,
            identity_verification=body.identity_verification,
            expected_version=body.version,
        )
    except (ValidationError, Problem) as exc:
        session.rollback()
        status = exc.status if isinstance(exc, Problem) else 422
        app = _repair(session, repair_id, principal)
        return _repair_page(
            request, session, principal, app, errors=problems.form_errors(exc, locale_of(request)), form=form,
            status_code=status,
        )  # fmt: skip
    return redirect(request, f"{PREFIX}/repairs/{repair_id}?done=repair")


@router.get("/repairs/{repair_id}/attachments/{digest}")
def repair_attachment(
    request: Request,
    repair_id: uuid.UUID,
    digest: str,
    session: Session = DB,
    principal: Principal = page(*REVIEWERS),
) -> Response:
    return _download(session, principal, "repair", _repair(session, repair_id, principal), digest)


# --- requests for more material (补正) ----------------------------------------------------------------------


def _supplement_context(session: Session, principal: Principal, case_type: str, case: Any) -> dict[str, Any]:
    """The case's requests for material, whether it waits for one now, and what the reviewer may do."""
    today = china_today()
    reviewer = principal.role in REVIEWERS
    history = supplements.requests_of(session, case_type, case.id) if reviewer else []
    current = next((r for r in history if r.status == "open"), None)
    waiting = supplements.waiting(current, case)
    return {
        "supplements": history,
        "supplement_open": current if waiting else None,
        "supplement_status": SUPPLEMENT_STATUS,
        "may_request_material": reviewer and supplements.case_is_open(case) and current is None,
        "supplement_due_default": add_working_days(today, SUPPLEMENT_DEFAULT_WORKING_DAYS),
        "supplement_max_on": today + timedelta(days=supplements.MAX_DAYS),
        "may_lapse": waiting and current is not None and today > current.due_on,
    }


def _problem_fields(exc: Problem, locale: str) -> dict[str, str]:
    """A service's problem by field, in the reader's language (`form` for what names no field)."""
    text = describe(exc, locale)
    return dict(text.by_field) or {"form": " ".join([text.title, *text.messages])}


def _case_and_page(case_type: str) -> tuple[Any, Any]:
    return (_objection, _objection_page) if case_type == "objection" else (_repair, _repair_page)


def _supplement_request(
    request: Request, session: Session, principal: Principal, case_type: str, case_id: uuid.UUID,
    materials: str, due_on: str,
) -> Response:  # fmt: skip
    load, show = _case_and_page(case_type)
    case = load(session, case_id, principal)
    locale = locale_of(request)
    form = {"materials": materials, "due_on": due_on}
    try:
        try:
            day: date | None = date.fromisoformat(due_on) if due_on else None
        except ValueError as exc:
            raise ValidationProblem(
                "due_on: not a date",
                code="supplement.due_missing",
                errors=[{"field": "due_on", "message": "not a date", "code": "supplement.due_missing"}],
            ) from exc
        supplements.request_material(
            session, principal.actor, case_type, case, materials=materials, due_on=day, today=china_today()
        )
    except Problem as exc:
        session.rollback()
        case = load(session, case_id, principal)
        errors = _problem_fields(exc, locale)
        return show(
            request, session, principal, case, errors=errors, form=form, action="supplement",
            status_code=exc.status,
        )  # fmt: skip
    path = "objections" if case_type == "objection" else "repairs"
    return redirect(request, f"{PREFIX}/{path}/{case_id}?done=supplement#supplement")


def _supplement_close(
    request: Request, session: Session, principal: Principal, case_type: str, case_id: uuid.UUID,
    request_id: uuid.UUID, outcome: str, note: str,
) -> Response:  # fmt: skip
    load, show = _case_and_page(case_type)
    case = load(session, case_id, principal)
    try:
        found = supplements.get_request(session, request_id, case_type, case.id)
        supplements.close_request(
            session, principal.actor, case_type, case, found, outcome=outcome, note=note, today=china_today()
        )
    except Problem as exc:
        if isinstance(exc, NotFound):
            raise
        session.rollback()
        case = load(session, case_id, principal)
        errors = _problem_fields(exc, locale_of(request))
        return show(
            request, session, principal, case, errors=errors, form={"outcome": outcome, "note": note},
            action="supplement-close", status_code=exc.status,
        )  # fmt: skip
    path = "objections" if case_type == "objection" else "repairs"
    return redirect(request, f"{PREFIX}/{path}/{case_id}?done=supplement_closed#supplement")


@router.post("/objections/{objection_id}/supplement")
def objection_supplement(
    request: Request,
    objection_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(*REVIEWERS),
    materials: str = Form(""),
    due_on: str = Form(""),
) -> Response:
    """Ask the objector for specific material by a date (补正): the case waits for it."""
    return _supplement_request(request, session, principal, "objection", objection_id, materials, due_on)


@router.post("/objections/{objection_id}/supplement/{request_id}/close")
def objection_supplement_close(
    request: Request,
    objection_id: uuid.UUID,
    request_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(*REVIEWERS),
    outcome: str = Form(""),
    note: str = Form(""),
) -> Response:
    return _supplement_close(
        request, session, principal, "objection", objection_id, request_id, outcome, note
    )


@router.post("/repairs/{repair_id}/supplement")
def repair_supplement(
    request: Request,
    repair_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(*REVIEWERS),
    materials: str = Form(""),
    due_on: str = Form(""),
) -> Response:
    """Ask the applicant for specific material by a date (补正): the case waits for it."""
    return _supplement_request(request, session, principal, "repair", repair_id, materials, due_on)


@router.post("/repairs/{repair_id}/supplement/{request_id}/close")
def repair_supplement_close(
    request: Request,
    repair_id: uuid.UUID,
    request_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(*REVIEWERS),
    outcome: str = Form(""),
    note: str = Form(""),
) -> Response:
    return _supplement_close(request, session, principal, "repair", repair_id, request_id, outcome, note)
