"""The public statement form (陈述申辩): the subject named in a notice before listing (告知书) states its
case and defends itself, with evidence files, while the notice period runs.

The same rules as the API (`appeals.statements`): the notice number and one identifier of its subject;
404 for anything that does not prove it (the same words for an unknown notice, an entry no longer in its
notice period and another subject's identifier); 409 once the period ended, naming its last day; the same
per-address and per-notice rate limit as the other public forms. The filer gets its tracking number and
secret once (`public/filed.html`).
"""

from __future__ import annotations

from fastapi import File, Form, Request, UploadFile
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from fanchaoxin.appeals import statements
from fanchaoxin.appeals.notice_schemas import StatementIn
from fanchaoxin.appeals.views import rate_limit
from fanchaoxin.console.auth import public_page
from fanchaoxin.console.common import console_router
from fanchaoxin.console.i18n import N_, translator
from fanchaoxin.console.problems import describe, form_errors
from fanchaoxin.console.public import size_text
from fanchaoxin.console.web import locale_of, render
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.auth import DB, Principal
from fanchaoxin.core.errors import Conflict, NotFound, Problem
from fanchaoxin.core.identifiers import IdentifierType
from fanchaoxin.core.settings import get_settings

router = console_router()

PUBLIC_ACTOR = Actor("public")
NOT_PROVEN = N_("No notice in its notice period has this number for a subject with this identifier.")
# What the page calls each field when an error names it.
FIELD = {
    "notice_number": N_("Notice number"),
    "identifier": N_("Identifier"),
    "text": N_("Your statement"),
    "contact_email": N_("E-mail"),
    "file": N_("Evidence"),
    "form": "",
}


def _form(request: Request, form: dict[str, str], errors: dict[str, str], status_code: int) -> Response:
    _ = translator(locale_of(request))
    shown: dict[str, str] = {}
    for key, message in errors.items():
        field = key.split(".")[0]
        shown.setdefault(field if field in FIELD else "form", _(message))
    return render(
        request,
        "public/statement.html",
        status_code=status_code,
        form=form,
        errors=shown,
        fields=FIELD,
        id_types=[t.value for t in IdentifierType],
        max_size=size_text(get_settings().attachment_max_bytes),
    )


PERIOD_ENDED = N_(
    "The notice period ended on {d}: a statement can no longer be filed. Once the entry is published, its subject may file an objection."  # noqa: E501
)


def _problem(request: Request, exc: Problem) -> dict[str, str]:
    ended = exc.extra.get("notice_ends_on") if isinstance(exc, Conflict) else None
    if ended:
        return {"form": translator(locale_of(request))(PERIOD_ENDED).format(d=ended)}
    text = describe(exc, locale_of(request))
    return {k: m for k, m in text.by_field.items() if m} or {"form": " ".join(text.messages) or text.title}


@router.get("/public/statement")
def statement_form(request: Request, _: Principal = public_page(), notice: str = "") -> Response:
    return _form(request, {"notice_number": notice}, {}, 200)


@router.post("/public/statement")
def statement_submit(
    request: Request,
    session: Session = DB,
    principal: Principal = public_page(),
    notice_number: str = Form(""),
    identifier_type: str = Form(""),
    identifier_value: str = Form(""),
    text: str = Form(""),
    contact_email: str = Form(""),
    evidence: list[UploadFile] = File(default_factory=list),
) -> Response:
    """A statement on a notice, with its evidence files: all stored, or nothing."""
    form = {
        "notice_number": notice_number,
        "identifier_type": identifier_type,
        "text": text,
        "contact_email": contact_email,
    }
    try:
        body = StatementIn.model_validate(
            {
                "notice_number": notice_number,
                "identifier": {"type": identifier_type, "value": identifier_value},
                "text": text,
                "contact_email": contact_email or None,
            }
        )
    except ValidationError as exc:
        return _form(request, form, form_errors(exc, locale_of(request)), 422)
    rate_limit(request, principal, [f"notice:{body.notice_number.upper()}"])
    limit = get_settings().attachment_max_bytes
    try:
        filing = statements.file_statement(
            session,
            PUBLIC_ACTOR,
            notice_number=body.notice_number,
            identifier_type=body.identifier.type.value,
            identifier_value=body.identifier.value,
            text=body.text,
            contact_email=body.contact_email,
            channel="public",
        )
        for upload in evidence:
            if upload.filename:
                statements.add_evidence(
                    session,
                    PUBLIC_ACTOR,
                    filing.case,
                    filename=upload.filename,
                    declared_type=upload.content_type,
                    data=upload.file.read(limit + 1),
                )
    except NotFound:
        session.rollback()
        return _form(request, form, {"notice_number": NOT_PROVEN}, 404)
    except Conflict as exc:
        session.rollback()
        return _form(request, form, _problem(request, exc), 409)
    except Problem as exc:
        session.rollback()
        return _form(request, form, _problem(request, exc), exc.status)
    return render(
        request,
        "public/filed.html",
        status_code=201,
        kind="statement",
        tracking=filing.case.tracking_number,
        secret=filing.secret,
        due=None,
        notice_ends_on=filing.case.notice_ends_on,
    )
