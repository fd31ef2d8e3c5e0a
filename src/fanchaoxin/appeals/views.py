"""Routes of due process: objections, credit repair, reports, attachments, public corrections.

Who sees what:
- an objection or a repair application: platform reviewers; the reporting organisation only once an
  objection is forwarded to it (`addressed_to_org_id`); the filer through its tracking number + secret;
- a report: platform reviewers, the reporting organisation (its own, status only for what the
  recipient did), the recipient it was routed to (not who reported it);
- correction notices: everybody, without login.

The filer's view of each kind of case (status, deadlines, outcome) is built in `appeals.progress`, for
the status routes here and the console's progress page alike.

The routes whose step changes the entry too (filing, forwarding and deciding an objection, deciding a
credit repair) start a workflow and live in `workflows.appeals_views`; they use the helpers here.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

from fastapi import APIRouter, File, Header, Query, Request, Response, UploadFile, status
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy.orm import Session

from fanchaoxin.appeals import attachments, cases, corrections, objections, progress, repair, reports
from fanchaoxin.appeals.models import CorrectionNotice, Objection, RepairApplication, Report
from fanchaoxin.appeals.progress import objection_deadlines, repair_deadlines, report_deadlines
from fanchaoxin.appeals.ratelimit import PublicLimits
from fanchaoxin.appeals.schemas import (
    AnswerIn,
    Attachment,
    CaseStatusOut,
    CorrectionOut,
    Deadlines,
    Filed,
    IdentityIn,
    ObjectionOut,
    RepairIn,
    RepairOut,
    ReportIn,
    ReportOut,
    ReportOutcomeIn,
    TriageIn,
)
from fanchaoxin.core import audit, permissions
from fanchaoxin.core.auth import DB, Principal, allow, allow_public
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.errors import NotFound, PayloadTooLarge
from fanchaoxin.core.identifiers import mask
from fanchaoxin.core.roles import OrgKind
from fanchaoxin.core.schemas import INT64_MAX, ResponseModel
from fanchaoxin.core.settings import get_settings

router = APIRouter(prefix="/v1", tags=["due process"])

REVIEWERS = permissions.REVIEWERS
ADDRESSEES = permissions.CASE_ADDRESSEES

# Pages of due process (the objector's confirmation): HTML lives in templates, escaped by Jinja2.
PAGES = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

_limits_lock = threading.Lock()


def _limits(request: Request) -> PublicLimits:
    state = request.app.state
    with _limits_lock:
        limits = getattr(state, "appeal_limits", None)
        if limits is None:
            limits = state.appeal_limits = PublicLimits(get_settings())
        return limits


def rate_limit(request: Request, principal: Principal, targets: list[str]) -> None:
    """Filings without a platform reviewer's key are limited per client address and per target."""
    if principal.role in REVIEWERS:
        return
    address = request.client.host if request.client else "unknown"
    _limits(request).check(address, [audit.digest(t) or t for t in targets])


def _attachments(session: Session, kind: str, case_id: uuid.UUID) -> list[Attachment]:
    return [Attachment.model_validate(a) for a in attachments.attachments_of(session, kind, case_id)]


def filed(case: Any, secret: str, deadlines: Deadlines) -> Filed:
    return Filed(
        id=case.id,
        tracking_number=case.tracking_number,
        secret=secret,
        status=case.status,
        deadlines=deadlines,
    )


# --- objections -----------------------------------------------------------------------------------------


def objection_out(session: Session, o: Objection, principal: Principal) -> ObjectionOut:
    # The reporting organisation sees the grounds and files it must check, not the objector's contact.
    platform = principal.is_platform
    late = objections.objection_overdue(o, china_today())
    return ObjectionOut(
        id=o.id,
        tracking_number=o.tracking_number,
        entry_id=o.entry_id,
        status=o.status,
        channel=o.channel,
        identifier_type=o.identifier_type,
        grounds=o.grounds,
        contact_email=o.contact_email if platform else None,
        identity_verification=o.identity_verification if platform else None,
        addressed_to_org_id=o.addressed_to_org_id,
        deadlines=objection_deadlines(o),
        disputed_at=o.disputed_at,
        forwarded_on=o.forwarded_on,
        forward_note=o.forward_note,
        answer_outcome=o.answer_outcome,
        answer=o.answer,
        answered_at=o.answered_at,
        outcome=o.outcome,
        decision_reason=o.decision_reason,
        corrections=o.corrections,
        decided_at=o.decided_at,
        overdue=bool(late),
        overdue_reasons=late,
        attachments=_attachments(session, "objection", o.id),
        version=o.version,
    )


class ObjectionPage(ResponseModel):
    objections: list[ObjectionOut]


@router.get("/objections", response_model=ObjectionPage, summary="Objections (with overdue flags)")
def list_objections(
    session: Session = DB,
    principal: Principal = allow(*REVIEWERS, *ADDRESSEES),
    status_: str | None = Query(None, alias="status"),
    overdue: bool | None = None,
    entry_id: uuid.UUID | None = None,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=INT64_MAX),
) -> ObjectionPage:
    rows = objections.list_objections(
        session, principal, status=status_, overdue=overdue, entry_id=entry_id, limit=limit, offset=offset
    )
    return ObjectionPage(objections=[objection_out(session, o, principal) for o in rows])


def objection_for(session: Session, objection_id: uuid.UUID, principal: Principal) -> Objection:
    obj: Objection = cases.get_case(session, Objection, objection_id, principal, "objection")
    return obj


@router.get("/objections/{objection_id}", response_model=ObjectionOut, summary="One objection")
def get_objection(
    objection_id: uuid.UUID, session: Session = DB, principal: Principal = allow(*REVIEWERS, *ADDRESSEES)
) -> ObjectionOut:
    return objection_out(session, objection_for(session, objection_id, principal), principal)


@router.post(
    "/objections/{objection_id}/identity",
    response_model=ObjectionOut,
    summary="Record how the objector's identity was verified (needed to decide)",
)
def record_identity(
    objection_id: uuid.UUID, body: IdentityIn, session: Session = DB, principal: Principal = allow(*REVIEWERS)
) -> ObjectionOut:
    obj = objection_for(session, objection_id, principal)
    cases.record_identity(session, principal.actor, obj, body.identity_verification)
    return objection_out(session, obj, principal)


@router.post(
    "/objections/{objection_id}/answer",
    response_model=ObjectionOut,
    summary="The reporting organisation's answer to a forwarded objection",
)
def answer_objection(
    objection_id: uuid.UUID, body: AnswerIn, session: Session = DB, principal: Principal = allow(*ADDRESSEES)
) -> ObjectionOut:
    obj = objection_for(session, objection_id, principal)
    objections.answer_objection(
        session, principal, obj, proposed_outcome=body.proposed_outcome, answer=body.answer
    )
    return objection_out(session, obj, principal)


@router.get(
    "/objections/{tracking_number}/confirmation",
    response_class=HTMLResponse,
    summary="The objector's confirmation of the decision (HTML), with tracking number and secret",
)
def objection_confirmation(
    tracking_number: str,
    session: Session = DB,
    _: Principal = allow_public(),
    secret: str | None = Query(None),
    x_case_secret: str | None = Header(None),
) -> HTMLResponse:
    obj = cases.by_tracking(session, "objection", tracking_number, secret or x_case_secret)
    page = PAGES.get_template("confirmation.html").render(c=objections.confirmation(session, obj))
    return HTMLResponse(
        page,
        headers={
            "Content-Disposition": f'inline; filename="{obj.tracking_number}.html"',
            "Cache-Control": "no-store",
        },
    )


@router.get(
    "/public/objections/{tracking_number}",
    response_model=CaseStatusOut,
    summary="Status of an objection, for the objector (tracking number + secret)",
)
def objection_status(
    tracking_number: str,
    response: Response,
    session: Session = DB,
    _: Principal = allow_public(),
    secret: str | None = Query(None),
    x_case_secret: str | None = Header(None),
) -> CaseStatusOut:
    obj = cases.by_tracking(session, "objection", tracking_number, secret or x_case_secret)
    response.headers["Cache-Control"] = "no-store"
    return progress.objection_status(session, obj)


# --- attachments ----------------------------------------------------------------------------------------

_KIND = {"objections": "objection", "repairs": "repair", "reports": "report"}


@router.post(
    "/attachments/{kind}/{tracking_number}",
    response_model=Attachment,
    status_code=status.HTTP_201_CREATED,
    summary="Attach a file (PDF, image, text) to an objection, repair application or report",
    description="`kind` is objections, repairs or reports; the case's secret goes in `secret` or the "
    "`X-Case-Secret` header. Files are checked by content and size (FCX_ATTACHMENT_MAX_BYTES).",
)
def add_attachment(
    kind: str,
    tracking_number: str,
    request: Request,
    file: UploadFile = File(...),
    session: Session = DB,
    principal: Principal = allow_public(),
    secret: str | None = Query(None),
    x_case_secret: str | None = Header(None),
) -> Attachment:
    case_type = _KIND.get(kind)
    if case_type is None:
        raise NotFound(f"No such kind of case {kind!r}; one of {', '.join(_KIND)}")
    limit = get_settings().attachment_max_bytes
    declared = int(request.headers.get("content-length") or 0)
    if declared > limit + 64 * 1024:  # the file plus the multipart envelope
        raise PayloadTooLarge(
            f"The upload is {declared} bytes; an attachment may be at most {limit} bytes",
            errors=[{"in": "body", "field": "file", "type": "size", "message": f"at most {limit} bytes"}],
        )
    case = cases.by_tracking(session, case_type, tracking_number, secret or x_case_secret)
    data = file.file.read(limit + 1)
    att = attachments.add_attachment(
        session,
        principal.actor,
        case_type,
        case,
        filename=file.filename or "attachment",
        declared_type=file.content_type,
        data=data,
    )
    return Attachment.model_validate(att)


def _download(session: Session, principal: Principal, case_type: str, case: Any, digest: str) -> Response:
    att, blob = attachments.attachment_blob(session, case_type, case.id, digest)
    audit.record(session, principal.actor, "attachment.read", case_type, case.id, detail={"digest": digest})
    return Response(
        blob.data,
        media_type=att.media_type,
        headers={"Content-Disposition": f'attachment; filename="{att.digest}"', "ETag": f'"{att.digest}"'},
    )


@router.get("/objections/{objection_id}/attachments/{digest}", summary="Download an objection's file")
def get_objection_attachment(
    objection_id: uuid.UUID,
    digest: str,
    session: Session = DB,
    principal: Principal = allow(*REVIEWERS, *ADDRESSEES),
) -> Response:
    obj = objection_for(session, objection_id, principal)
    return _download(session, principal, "objection", obj, digest)


# --- credit repair --------------------------------------------------------------------------------------


def repair_out(session: Session, a: RepairApplication) -> RepairOut:
    return RepairOut(
        id=a.id,
        tracking_number=a.tracking_number,
        entry_id=a.entry_id,
        status=a.status,
        channel=a.channel,
        identifier_type=a.identifier_type,
        commitment_text=a.commitment_text,
        rectification=a.rectification,
        contact_email=a.contact_email,
        identity_verification=a.identity_verification,
        deadlines=repair_deadlines(a),
        outcome=a.outcome,
        decision_reason=a.decision_reason,
        decided_at=a.decided_at,
        overdue=a.status != "decided" and china_today() > a.decide_due_on,
        attachments=_attachments(session, "repair", a.id),
        version=a.version,
    )


@router.post(
    "/repairs",
    response_model=Filed,
    status_code=status.HTTP_201_CREATED,
    summary="Apply for credit repair (信用修复) after the minimum period, with a credit commitment",
    description="Before the entry's minimum period ends: 409 naming the date (`possible_from`). Attach the "
    "proof of rectification with `POST /v1/attachments/repairs/{tracking_number}`.",
)
def file_repair(
    body: RepairIn, request: Request, session: Session = DB, principal: Principal = allow_public()
) -> Filed:
    rate_limit(request, principal, [f"entry:{body.entry_id}"])
    reviewer = principal.role in REVIEWERS
    filing = repair.file_repair(
        session,
        principal.actor,
        entry_id=body.entry_id,
        identifier_type=body.identifier.type.value,
        identifier_value=body.identifier.value,
        commitment_accepted=body.commitment_accepted,
        commitment_text=body.commitment_text,
        rectification=body.rectification,
        contact_email=body.contact_email,
        channel="reviewer" if reviewer else "public",
        owner_org_id=principal.org_id if reviewer else None,
    )
    return filed(filing.case, filing.secret, repair_deadlines(filing.case))


class RepairPage(ResponseModel):
    repairs: list[RepairOut]


@router.get("/repairs", response_model=RepairPage, summary="Credit repair applications (overdue flags)")
def list_repairs(
    session: Session = DB,
    _: Principal = allow(*REVIEWERS),
    status_: str | None = Query(None, alias="status"),
    overdue: bool | None = None,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=INT64_MAX),
) -> RepairPage:
    rows = repair.list_repairs(session, status=status_, overdue=overdue, limit=limit, offset=offset)
    return RepairPage(repairs=[repair_out(session, a) for a in rows])


@router.get("/repairs/{repair_id}", response_model=RepairOut, summary="One credit repair application")
def get_repair(
    repair_id: uuid.UUID, session: Session = DB, principal: Principal = allow(*REVIEWERS)
) -> RepairOut:
    return repair_out(
        session, cases.get_case(session, RepairApplication, repair_id, principal, "application")
    )


@router.get("/repairs/{repair_id}/attachments/{digest}", summary="Download a repair application's file")
def get_repair_attachment(
    repair_id: uuid.UUID, digest: str, session: Session = DB, principal: Principal = allow(*REVIEWERS)
) -> Response:
    app = cases.get_case(session, RepairApplication, repair_id, principal, "application")
    return _download(session, principal, "repair", app, digest)


@router.get(
    "/public/repairs/{tracking_number}",
    response_model=CaseStatusOut,
    summary="Status of a credit repair application, for the applicant (tracking number + secret)",
)
def repair_status(
    tracking_number: str,
    response: Response,
    session: Session = DB,
    _: Principal = allow_public(),
    secret: str | None = Query(None),
    x_case_secret: str | None = Header(None),
) -> CaseStatusOut:
    app = cases.by_tracking(session, "repair", tracking_number, secret or x_case_secret)
    response.headers["Cache-Control"] = "no-store"
    return progress.repair_status(session, app)


# --- reports --------------------------------------------------------------------------------------------


# Identifiers that name a natural person outright. An enterprise that handles a report (and did not file
# it) sees them masked (least disclosure, #14): it acts on the accounts and shops on its own platform,
# which stay as reported; departments and the platform see what was reported.
PERSON_IDENTIFIERS = frozenset({"resident_id", "phone", "email"})


def _reported_for(r: Report, principal: Principal, reporter: bool) -> dict[str, Any]:
    if reporter or principal.org_kind != OrgKind.enterprise:
        return r.reported
    identifiers = [
        {**i, "value": mask(i["type"], i["value"])} if i.get("type") in PERSON_IDENTIFIERS else i
        for i in r.reported.get("identifiers") or []
    ]
    return {**r.reported, "identifiers": identifiers}


def report_out(session: Session, r: Report, principal: Principal) -> ReportOut:
    platform = principal.is_platform
    recipient = principal.org_id is not None and principal.org_id == r.addressed_to_org_id
    reporter = principal.org_id is not None and principal.org_id == r.owner_org_id
    # The reporter does not see what the recipient wrote; the recipient does not see who reported.
    show_handling = platform or recipient
    show_reporter = platform or reporter
    return ReportOut(
        id=r.id,
        tracking_number=r.tracking_number,
        status=r.status,
        channel=r.channel,
        description=r.description,
        behaviours=r.behaviours,
        reported=_reported_for(r, principal, reporter),
        contact_email=r.contact_email if show_reporter else None,
        reporting_org_id=r.owner_org_id if show_reporter else None,
        addressed_to_org_id=r.addressed_to_org_id if show_handling else None,
        deadlines=report_deadlines(r),
        triage_note=r.triage_note if show_handling else None,
        outcome=r.outcome,
        outcome_note=r.outcome_note if show_handling else None,
        forwarded_to=r.forwarded_to if show_handling else None,
        linked_entry_id=r.linked_entry_id if show_handling else None,
        handled_at=r.handled_at,
        overdue=reports.report_overdue(r, china_today()),
        attachments=_attachments(session, "report", r.id),
        version=r.version,
    )


def _report_targets(body: ReportIn) -> list[str]:
    return [f"{i.type.value}:{i.value}" for i in body.reported.identifiers] + [
        f"{k}:{v.strip().lower()}"
        for k, v in (("shop", body.reported.shop), ("account", body.reported.account))
        if v
    ]


def _file_report(session: Session, principal: Principal, body: ReportIn, channel: str) -> Filed:
    reported = body.reported.model_dump(mode="json")
    filing = reports.file_report(
        session,
        principal.actor,
        description=body.description,
        reported=reported,
        behaviours=body.behaviours,
        enterprise_org_id=body.enterprise_org_id,
        contact_email=body.contact_email,
        channel=channel,
        owner_org_id=principal.org_id if channel == "organisation" else None,
    )
    return filed(filing.case, filing.secret, report_deadlines(filing.case))


@router.post(
    "/public/reports",
    response_model=Filed,
    status_code=status.HTTP_201_CREATED,
    summary="Report 炒信 (举报), without a key; rate-limited per address and per reported identifier",
)
def file_public_report(
    body: ReportIn, request: Request, session: Session = DB, principal: Principal = allow_public()
) -> Filed:
    rate_limit(request, principal, _report_targets(body))
    return _file_report(session, principal, body, "public")


@router.post(
    "/reports",
    response_model=Filed,
    status_code=status.HTTP_201_CREATED,
    summary="Report 炒信 as an organisation (enterprise or department)",
)
def file_org_report(
    body: ReportIn, session: Session = DB, principal: Principal = allow(*ADDRESSEES)
) -> Filed:
    return _file_report(session, principal, body, "organisation")


class ReportPage(ResponseModel):
    reports: list[ReportOut]


@router.get("/reports", response_model=ReportPage, summary="Reports the caller filed, handles or triages")
def list_reports(
    session: Session = DB,
    principal: Principal = allow(*REVIEWERS, *ADDRESSEES),
    status_: str | None = Query(None, alias="status"),
    overdue: bool | None = None,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=INT64_MAX),
) -> ReportPage:
    rows = reports.list_reports(
        session, principal, status=status_, overdue=overdue, limit=limit, offset=offset
    )
    return ReportPage(reports=[report_out(session, r, principal) for r in rows])


def _report(session: Session, report_id: uuid.UUID, principal: Principal) -> Report:
    rep: Report = cases.get_case(session, Report, report_id, principal, "report")
    return rep


@router.get("/reports/{report_id}", response_model=ReportOut, summary="One report")
def get_report(
    report_id: uuid.UUID, session: Session = DB, principal: Principal = allow(*REVIEWERS, *ADDRESSEES)
) -> ReportOut:
    return report_out(session, _report(session, report_id, principal), principal)


@router.post(
    "/reports/{report_id}/triage",
    response_model=ReportOut,
    summary="Route a report to the enterprise or department that handles it (10 working days), or dismiss it",
)
def triage_report(
    report_id: uuid.UUID, body: TriageIn, session: Session = DB, principal: Principal = allow(*REVIEWERS)
) -> ReportOut:
    rep = _report(session, report_id, principal)
    reports.triage_report(
        session,
        principal.actor,
        rep,
        action=body.action,
        addressed_to_org_id=body.addressed_to_org_id,
        note=body.note,
    )
    return report_out(session, rep, principal)


@router.post(
    "/reports/{report_id}/outcome",
    response_model=ReportOut,
    summary="The recipient's outcome: substantiated (entry id), unsubstantiated or forwarded",
)
def report_outcome(
    report_id: uuid.UUID,
    body: ReportOutcomeIn,
    session: Session = DB,
    principal: Principal = allow(*ADDRESSEES),
) -> ReportOut:
    rep = _report(session, report_id, principal)
    reports.handle_report(
        session,
        principal,
        rep,
        outcome=body.outcome,
        note=body.note,
        entry_id=body.entry_id,
        forwarded_to=body.forwarded_to,
    )
    return report_out(session, rep, principal)


@router.get("/reports/{report_id}/attachments/{digest}", summary="Download a report's file")
def get_report_attachment(
    report_id: uuid.UUID,
    digest: str,
    session: Session = DB,
    principal: Principal = allow(*REVIEWERS, *ADDRESSEES),
) -> Response:
    rep = _report(session, report_id, principal)
    return _download(session, principal, "report", rep, digest)


@router.get(
    "/public/reports/{tracking_number}",
    response_model=CaseStatusOut,
    summary="Status of a report, for the reporter (tracking number + secret): status only",
)
def report_status(
    tracking_number: str,
    response: Response,
    session: Session = DB,
    _: Principal = allow_public(),
    secret: str | None = Query(None),
    x_case_secret: str | None = Header(None),
) -> CaseStatusOut:
    rep = cases.by_tracking(session, "report", tracking_number, secret or x_case_secret)
    response.headers["Cache-Control"] = "no-store"
    return progress.report_status(session, rep)


# --- restoration ----------------------------------------------------------------------------------------


def correction_out(n: CorrectionNotice) -> CorrectionOut:
    zh, en = corrections.correction_text(n)
    return CorrectionOut(
        id=n.id,
        subject_kind=n.subject_kind,
        subject_name=n.subject_name,
        revoked_on=n.revoked_on,
        lifts_due_on=n.lifts_due_on,
        reason=n.reason,
        text_zh=zh,
        text_en=en,
    )


class CorrectionPage(ResponseModel):
    corrections: list[CorrectionOut]


@router.get(
    "/public/corrections",
    response_model=CorrectionPage,
    tags=["public"],
    summary="Correction notices (更正公告) of revoked entries: public, no login",
)
def list_corrections(
    session: Session = DB,
    _: Principal = allow_public(),
    limit: int = Query(100, ge=1, le=500),
    offset: int = Query(0, ge=0, le=100_000),
) -> CorrectionPage:
    return CorrectionPage(
        corrections=[
            correction_out(n) for n in corrections.list_corrections(session, limit=limit, offset=offset)
        ]
    )
