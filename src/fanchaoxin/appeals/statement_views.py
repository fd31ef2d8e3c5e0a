"""Routes of the notice before listing (告知书) and statements (陈述申辩).

Who sees what:
- the notice (HTML, PDF), its delivery and the statements with their files: platform reviewers;
- a statement's status: its filer, through the tracking number + secret (as for an objection);
- filing a statement and adding its evidence: anyone who names the notice and proves one of the
  subject's identifiers, while the notice period runs; rate-limited like the other public forms.

Publishing with the answers is a lifecycle step: `POST /v1/entries/{id}/transitions` with `answers`.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, File, Header, Query, Request, Response, UploadFile, status
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from fanchaoxin.appeals import attachments, cases, notices, statements
from fanchaoxin.appeals.notice_models import Notice, Statement
from fanchaoxin.appeals.notice_schemas import EntryStatementsOut, LetterPostedIn, StatementIn, StatementOut
from fanchaoxin.appeals.schemas import Attachment, CaseStatusOut, Deadlines, Filed
from fanchaoxin.appeals.views import filed, rate_limit
from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.schemas import NoticeSummaryOut
from fanchaoxin.core import audit, permissions
from fanchaoxin.core.auth import DB, Principal, allow, allow_public
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.errors import PayloadTooLarge
from fanchaoxin.core.settings import get_settings

router = APIRouter(prefix="/v1", tags=["due process"])

REVIEWERS = permissions.REVIEWERS


def statement_out(session: Session, s: Statement) -> StatementOut:
    return StatementOut(
        id=s.id,
        tracking_number=s.tracking_number,
        entry_id=s.entry_id,
        status=s.status,
        channel=s.channel,
        identifier_type=s.identifier_type,
        text=s.text,
        contact_email=s.contact_email,
        filed_at=s.filed_at,
        filed_on=s.filed_on,
        notice_ends_on=s.notice_ends_on,
        answer=s.answer,
        answered_at=s.answered_at,
        answered_by=s.answered_by,
        outcome=s.outcome,
        attachments=[
            Attachment.model_validate(a) for a in attachments.attachments_of(session, "statement", s.id)
        ],
        version=s.version,
    )


# --- the subject ----------------------------------------------------------------------------------------


@router.post(
    "/public/statements",
    response_model=Filed,
    status_code=status.HTTP_201_CREATED,
    summary="File a statement (陈述申辩) on a notice before listing, while its notice period runs",
    description="Name the notice (告知书编号) and one identifier of its subject. After the notice period's "
    "last day: 409 naming it; an unknown notice, an entry no longer in its notice period or another "
    "subject's identifier: 404. Attach evidence with `POST /v1/public/statements/{tracking_number}/files`.",
)
def file_statement(
    body: StatementIn, request: Request, session: Session = DB, principal: Principal = allow_public()
) -> Filed:
    rate_limit(request, principal, [f"notice:{body.notice_number.upper()}"])
    reviewer = principal.role in REVIEWERS
    filing = statements.file_statement(
        session,
        principal.actor,
        notice_number=body.notice_number,
        identifier_type=body.identifier.type.value,
        identifier_value=body.identifier.value,
        text=body.text,
        contact_email=body.contact_email,
        channel="reviewer" if reviewer else "public",
        owner_org_id=principal.org_id if reviewer else None,
    )
    case: Statement = filing.case
    return filed(case, filing.secret, Deadlines(filed_on=case.filed_on, notice_ends_on=case.notice_ends_on))


@router.post(
    "/public/statements/{tracking_number}/files",
    response_model=Attachment,
    status_code=status.HTTP_201_CREATED,
    summary="Attach an evidence file (PDF, image, text) to a statement, while the notice period runs",
    description="The statement's secret goes in `secret` or the `X-Case-Secret` header. Files are checked "
    "by content and size (FCX_ATTACHMENT_MAX_BYTES).",
)
def add_statement_file(
    tracking_number: str,
    request: Request,
    file: UploadFile = File(...),
    session: Session = DB,
    principal: Principal = allow_public(),
    secret: str | None = Query(None),
    x_case_secret: str | None = Header(None),
) -> Attachment:
    limit = get_settings().attachment_max_bytes
    declared = int(request.headers.get("content-length") or 0)
    if declared > limit + 64 * 1024:  # the file plus the multipart envelope
        raise PayloadTooLarge(
            f"The upload is {declared} bytes; an attachment may be at most {limit} bytes",
            errors=[{"in": "body", "field": "file", "type": "size", "message": f"at most {limit} bytes"}],
        )
    statement: Statement = cases.by_tracking(session, "statement", tracking_number, secret or x_case_secret)
    att = statements.add_evidence(
        session,
        principal.actor,
        statement,
        filename=file.filename or "attachment",
        declared_type=file.content_type,
        data=file.file.read(limit + 1),
    )
    return Attachment.model_validate(att)


@router.get(
    "/public/statements/{tracking_number}",
    response_model=CaseStatusOut,
    summary="Status of a statement, for its filer (tracking number + secret): the answer once given",
)
def statement_status(
    tracking_number: str,
    response: Response,
    session: Session = DB,
    _: Principal = allow_public(),
    secret: str | None = Query(None),
    x_case_secret: str | None = Header(None),
) -> CaseStatusOut:
    statement = cases.by_tracking(session, "statement", tracking_number, secret or x_case_secret)
    response.headers["Cache-Control"] = "no-store"
    return statements.case_status(session, statement)


# --- the reviewer ---------------------------------------------------------------------------------------


@router.get(
    "/entries/{entry_id}/statements",
    response_model=EntryStatementsOut,
    summary="The entry's notice, its delivery and every statement with its files (before deciding)",
)
def entry_statements(
    entry_id: uuid.UUID, session: Session = DB, principal: Principal = allow(*REVIEWERS)
) -> EntryStatementsOut:
    entry = registry.get_entry(session, entry_id, principal)
    notice = notices.notice_of(session, entry.id)
    rows = statements.statements_of(session, entry.id)
    return EntryStatementsOut(
        entry_id=entry.id,
        entry_status=entry.status,
        notice=notices.summary(notice),
        notice_html=f"/v1/entries/{entry.id}/notice" if notice else None,
        notice_pdf=f"/v1/entries/{entry.id}/notice.pdf" if notice else None,
        statements=[statement_out(session, s) for s in rows],
        unanswered=sum(s.status == "received" for s in rows),
    )


def _read_notice(session: Session, principal: Principal, entry_id: uuid.UUID, fmt: str) -> Notice:
    entry = registry.get_entry(session, entry_id, principal)
    notice = notices.get_notice(session, entry.id)
    # The notice names the subject (and a letter its address): each read is audited.
    audit.record_read(session, principal.actor, "notice.read", "notice", notice.id, detail={"format": fmt})
    return notice


@router.get(
    "/entries/{entry_id}/notice",
    response_class=HTMLResponse,
    summary="The entry's notice before listing (告知书) as HTML",
)
def notice_html(
    entry_id: uuid.UUID, session: Session = DB, principal: Principal = allow(*REVIEWERS)
) -> HTMLResponse:
    notice = _read_notice(session, principal, entry_id, "html")
    return HTMLResponse(
        notices.render_html(notice.content),
        headers={
            "Content-Disposition": f'inline; filename="{notice.number}.html"',
            "Cache-Control": "no-store",
        },
    )


@router.get(
    "/entries/{entry_id}/notice.pdf",
    response_class=Response,
    summary="The entry's notice before listing (告知书) as a printable PDF (the letter)",
    responses={200: {"content": {"application/pdf": {}}}},
)
def notice_pdf(
    entry_id: uuid.UUID, session: Session = DB, principal: Principal = allow(*REVIEWERS)
) -> Response:
    notice = _read_notice(session, principal, entry_id, "pdf")
    return Response(
        notices.render_pdf(notice.content),
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{notice.number}.pdf"',
            "Cache-Control": "no-store",
        },
    )


@router.post(
    "/entries/{entry_id}/notice/letter-posted",
    response_model=NoticeSummaryOut,
    summary="Record that the printed notice was posted (when the subject gave no e-mail or phone)",
    description="Only for a notice whose delivery is `letter_required` or `failed` (409 otherwise); "
    "`posted_on` may not be in the future nor before the notice was issued.",
)
def letter_posted(
    entry_id: uuid.UUID, body: LetterPostedIn, session: Session = DB, principal: Principal = allow(*REVIEWERS)
) -> NoticeSummaryOut:
    registry.get_entry(session, entry_id, principal)
    notice = notices.record_letter_posted(
        session, principal.actor, entry_id, posted_on=body.posted_on, reference=body.reference,
        today=china_today(),
    )  # fmt: skip
    return notices.describe(notice)


@router.get(
    "/statements/{statement_id}/attachments/{digest}",
    summary="Download a statement's evidence file",
)
def get_statement_attachment(
    statement_id: uuid.UUID, digest: str, session: Session = DB, principal: Principal = allow(*REVIEWERS)
) -> Response:
    statement = statements.get_statement(session, statement_id)
    att, blob = attachments.attachment_blob(session, "statement", statement.id, digest)
    audit.record(
        session, principal.actor, "attachment.read", "statement", statement.id, detail={"digest": digest}
    )
    return Response(
        blob.data,
        media_type=att.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{att.digest}"',
            "ETag": f'"{att.digest}"',
            "Cache-Control": "no-store",
        },
    )
