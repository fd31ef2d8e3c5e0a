"""The public page "who looked me up" (查询记录): a listed subject sees which organisations checked it.

The same proof as the objection form (entry id and one of the subject's identifiers; a wrong one reads
exactly like an unknown entry), the same per-address budget as the public forms, and the same report as
``POST /v1/public/access-log`` (appeals.access), audited with the entry id only.
"""

from __future__ import annotations

from fastapi import Form, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from fanchaoxin.appeals import access
from fanchaoxin.console.auth import public_page
from fanchaoxin.console.common import console_router
from fanchaoxin.console.i18n import N_
from fanchaoxin.console.problems import form_errors
from fanchaoxin.console.public import (
    FIELD,
    PUBLIC_ACTOR,
    _address,
    _errors_in,
    _filing_limits,
    _public_record,
    record_view,
)
from fanchaoxin.console.web import locale_of, render
from fanchaoxin.core import audit
from fanchaoxin.core.auth import DB, Principal
from fanchaoxin.core.errors import NotFound
from fanchaoxin.core.identifiers import IdentifierType

router = console_router()

NOT_PROVEN = N_("No entry in force with this id has a subject with this identifier.")


def _page(
    request: Request,
    session: Session,
    form: dict[str, str],
    errors: dict[str, str],
    report: dict | None,
    status_code: int,
) -> Response:
    # Opened from a public record page, the form knows its record; a subject of the shared list (no
    # public record) gives the entry number its notice or decision named.
    found = _public_record(session, form.get("entry_id", "")) if form.get("entry_id") else None
    record = record_view(session, found) if found is not None else None
    if record is not None and not form.get("identifier_type"):
        form = {**form, "identifier_type": record["proof_types"][0]}
    return render(
        request,
        "public/access.html",
        status_code=status_code,
        form=form,
        errors=_errors_in(locale_of(request), errors),
        fields=FIELD,
        record=record,
        report=report,
        id_types=record["proof_types"] if record else [t.value for t in IdentifierType],
    )


@router.get("/public/access")
def access_form(
    request: Request, session: Session = DB, _: Principal = public_page(), entry: str = ""
) -> Response:
    """The empty form: the proof is POSTed, so identifiers stay out of access logs."""
    return _page(request, session, {"entry_id": entry}, {}, None, 200)


@router.post("/public/access")
def access_submit(
    request: Request,
    session: Session = DB,
    _: Principal = public_page(),
    entry_id: str = Form(""),
    identifier_type: str = Form(""),
    identifier_value: str = Form(""),
) -> Response:
    form = {"entry_id": entry_id, "identifier_type": identifier_type}  # the identifier is not shown back
    try:
        body = access.AccessLogIn.model_validate(
            {"entry_id": entry_id.strip(), "identifier": {"type": identifier_type, "value": identifier_value}}
        )
    except ValidationError as exc:
        return _page(request, session, form, form_errors(exc, locale_of(request)), None, 422)
    _filing_limits(request).check(_address(request), [audit.digest(f"access:{body.entry_id}") or ""])
    try:
        report = access.who_looked_me_up(
            session, PUBLIC_ACTOR, body.entry_id, body.identifier.type.value, body.identifier.value
        )
    except NotFound:
        # A page, not an exception: the refusal's audit event is committed with the request.
        return _page(request, session, form, {"identifier": NOT_PROVEN}, None, 404)
    return _page(request, session, form, {}, report, 200)
