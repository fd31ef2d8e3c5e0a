"""Console pages of the information-sharing agreement (信息共享协议, #22).

The platform: the versions (and a form to publish one), every enterprise with its standing, and the
forms to suspend and reinstate. An enterprise's operator: `/console/agreement`, its standing, the current
version's text, and the forms to apply, sign (the signed PDF uploaded) and withdraw. The rules are
orgs.agreements'; a refusal re-renders the page with the reason in the reader's language."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from fastapi import File, Form, Request, UploadFile
from fastapi.responses import Response
from sqlalchemy.orm import Session

from fanchaoxin.console.auth import page
from fanchaoxin.console.common import PLATFORM, console_router
from fanchaoxin.console.i18n import N_
from fanchaoxin.console.problems import describe
from fanchaoxin.console.web import PREFIX, locale_of, redirect, render
from fanchaoxin.core import audit
from fanchaoxin.core.auth import DB, Principal
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.errors import NotFound, Problem, ValidationProblem
from fanchaoxin.core.roles import Role
from fanchaoxin.orgs import agreements
from fanchaoxin.orgs import service as orgs
from fanchaoxin.orgs.participation_models import AgreementSignature

router = console_router()

OPERATOR = Role.enterprise_operator
ADMIN = Role.platform_admin

DONE = {
    "published": N_("The version is published."),
    "suspended": N_("The enterprise is suspended."),
    "reinstated": N_("The suspension is lifted."),
    "applied": N_("The application is recorded."),
    "signed": N_("The signature is recorded: the enterprise takes part."),
    "withdrawn": N_("The withdrawal is recorded."),
}


def _day(field: str, value: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValidationProblem(
            f"Invalid {field}: not a date",
            code="agreement.date_invalid",
            errors=[{"in": "body", "field": field, "type": "date_parsing", "message": "not a date",
                     "code": "agreement.date_invalid", "params": {}}],
        ) from None  # fmt: skip


def _failed(request: Request, session: Session, exc: Problem) -> dict[str, Any]:
    session.rollback()
    text = describe(exc, locale_of(request))
    return {
        "problem_title": text.title,
        "problem_messages": text.messages,
        "field_errors": text.by_field,
        "status_code": exc.status,
    }


# --- the platform ---------------------------------------------------------------------------------------


def _platform_page(
    request: Request,
    session: Session,
    principal: Principal,
    *,
    form: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    orgs_ = agreements.enterprises(session, active_only=False)
    found = agreements.standings(session, orgs_)
    parts = agreements.participations(session)
    done = request.query_params.get("done")
    return render(
        request,
        "agreements.html",
        status_code=extra.pop("status_code", 200),
        versions=agreements.versions(session),
        current=agreements.current_version(session),
        rows=[(o, found[o.id], parts.get(o.id)) for o in orgs_],
        may_act=principal.role == ADMIN,
        values=form or {"published_on": china_today().isoformat()},
        field_errors=extra.pop("field_errors", {}),
        done=DONE.get(done or ""),
        **extra,
    )


@router.get("/agreements")
def agreements_page(
    request: Request, session: Session = DB, principal: Principal = page(*PLATFORM)
) -> Response:
    return _platform_page(request, session, principal)


@router.post("/agreements/versions")
def publish(
    request: Request,
    session: Session = DB,
    principal: Principal = page(ADMIN),
    version: str = Form(""),
    title: str = Form(""),
    text_zh: str = Form(""),
    summary_en: str = Form(""),
    published_on: str = Form(""),
    resign_by: str = Form(""),
) -> Response:
    form = {"version": version, "title": title, "text_zh": text_zh, "summary_en": summary_en,
            "published_on": published_on, "resign_by": resign_by}  # fmt: skip
    try:
        agreements.publish_version(
            session, principal.actor, version=version, title=title, text_zh=text_zh, summary_en=summary_en,
            published_on=_day("published_on", published_on),
            resign_by=_day("resign_by", resign_by) if resign_by.strip() else None,
        )  # fmt: skip
    except Problem as exc:
        return _platform_page(request, session, principal, form=form, **_failed(request, session, exc))
    return redirect(request, f"{PREFIX}/agreements?done=published")


@router.post("/agreements/{org_id}/suspend")
def suspend(
    request: Request,
    org_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(ADMIN),
    reason: str = Form(""),
) -> Response:
    try:
        agreements.suspend(
            session, principal.actor, orgs.get_organisation(session, org_id, principal), reason
        )
    except Problem as exc:
        return _platform_page(request, session, principal, **_failed(request, session, exc))
    return redirect(request, f"{PREFIX}/agreements?done=suspended")


@router.post("/agreements/{org_id}/reinstate")
def reinstate(
    request: Request,
    org_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(ADMIN),
    reason: str = Form(""),
) -> Response:
    try:
        agreements.reinstate(
            session, principal.actor, orgs.get_organisation(session, org_id, principal), reason
        )
    except Problem as exc:
        return _platform_page(request, session, principal, **_failed(request, session, exc))
    return redirect(request, f"{PREFIX}/agreements?done=reinstated")


# --- the enterprise -------------------------------------------------------------------------------------


def _own_page(request: Request, session: Session, principal: Principal, **extra: Any) -> Response:
    assert principal.org_id is not None
    org = orgs.get_organisation(session, principal.org_id, principal)
    p = agreements.participation(session, org)
    done = request.query_params.get("done")
    return render(
        request,
        "agreement.html",
        status_code=extra.pop("status_code", 200),
        org=org,
        standing=agreements.standing(session, org),
        participation=p,
        current=agreements.current_version(session),
        signatures=agreements.signatures(session, org),
        values=extra.pop("form", None) or {"signed_on": china_today().isoformat()},
        field_errors=extra.pop("field_errors", {}),
        done=DONE.get(done or ""),
        **extra,
    )


@router.get("/agreement")
def own_agreement(request: Request, session: Session = DB, principal: Principal = page(OPERATOR)) -> Response:
    return _own_page(request, session, principal)


def _own_org(session: Session, principal: Principal):  # type: ignore[no-untyped-def]
    assert principal.org_id is not None
    return orgs.get_organisation(session, principal.org_id, principal)


@router.post("/agreement/apply")
def apply(request: Request, session: Session = DB, principal: Principal = page(OPERATOR)) -> Response:
    try:
        agreements.apply(session, principal.actor, _own_org(session, principal))
    except Problem as exc:
        return _own_page(request, session, principal, **_failed(request, session, exc))
    return redirect(request, f"{PREFIX}/agreement?done=applied")


@router.post("/agreement/sign")
def sign(
    request: Request,
    session: Session = DB,
    principal: Principal = page(OPERATOR),
    version: str = Form(""),
    signatory: str = Form(""),
    signatory_title: str = Form(""),
    signed_on: str = Form(""),
    file: UploadFile | None = File(None),
) -> Response:
    form = {
        "version": version,
        "signatory": signatory,
        "signatory_title": signatory_title,
        "signed_on": signed_on,
    }
    try:
        data = file.file.read(agreements.pdf_max_bytes() + 1) if file is not None else b""
        agreements.sign(
            session, principal.actor, _own_org(session, principal), version=version, signatory=signatory,
            signatory_title=signatory_title, signed_on=_day("signed_on", signed_on), pdf=data,
            filename=(file.filename if file is not None else None) or "agreement.pdf",
        )  # fmt: skip
    except Problem as exc:
        return _own_page(request, session, principal, form=form, **_failed(request, session, exc))
    return redirect(request, f"{PREFIX}/agreement?done=signed")


@router.post("/agreement/withdraw")
def withdraw(
    request: Request, session: Session = DB, principal: Principal = page(OPERATOR), reason: str = Form("")
) -> Response:
    try:
        agreements.withdraw(session, principal.actor, _own_org(session, principal), reason)
    except Problem as exc:
        return _own_page(request, session, principal, **_failed(request, session, exc))
    return redirect(request, f"{PREFIX}/agreement?done=withdrawn")


@router.get("/agreement/signatures/{signature_id}/pdf")
def signature_pdf(
    signature_id: uuid.UUID, session: Session = DB, principal: Principal = page(*PLATFORM, OPERATOR)
) -> Response:
    sig = session.get(AgreementSignature, signature_id)
    if sig is None or not (principal.is_platform or sig.owner_org_id == principal.org_id):
        raise NotFound(f"No signature {signature_id}", code="agreement.signature_not_found")
    audit.record(
        session, principal.actor, "agreement.pdf.read", "organisation", sig.owner_org_id,
        detail={"signature_id": str(sig.id), "sha256": sig.pdf_sha256},
    )  # fmt: skip
    return Response(
        sig.pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="agreement-{sig.pdf_sha256[:12]}.pdf"'},
    )
