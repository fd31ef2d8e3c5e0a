"""API keys: the keys of the organisations one may manage, a new key (its secret shown once) and a
revocation.

The form offers only the roles the chosen organisation's kind can hold (core.roles.ROLE_ORG_KIND, the
one place that says so) and the caller may issue (orgs.service.may_issue); changing the organisation
shows that kind's roles only (static/admin.js; without script the server still refuses a mismatch).
Its defaults are valid as they stand: the platform's default lifetime, a label naming the day. A
refusal re-renders the form with what was typed and the reason at its field, in the reader's language
(console.problems).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, StringConstraints, ValidationError
from sqlalchemy.orm import Session

from fanchaoxin.console.auth import page
from fanchaoxin.console.common import KEY_MANAGERS, console_router
from fanchaoxin.console.i18n import N_, translator
from fanchaoxin.console.problems import describe, form_errors
from fanchaoxin.console.web import PREFIX, locale_of, redirect, render
from fanchaoxin.core.auth import DB, Principal
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.db import utcnow
from fanchaoxin.core.errors import Forbidden, Problem
from fanchaoxin.core.roles import ROLE_ORG_KIND, Role
from fanchaoxin.core.settings import get_settings
from fanchaoxin.orgs import service as orgs
from fanchaoxin.orgs.models import Organisation

router = console_router()

DEFAULT_LABEL = N_("Console key {date}")


class KeyForm(BaseModel):
    """The new-key form as posted (its field names are the form's)."""

    org_id: uuid.UUID
    role: Role
    label: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""
    # Left empty: the platform's default lifetime (orgs.service.create_key).
    expires_in_days: int | None = Field(None, ge=1)


def _key_orgs(session: Session, principal: Principal) -> list[Organisation]:
    if principal.role == Role.platform_admin:
        return orgs.list_organisations(session, principal)
    assert principal.org_id is not None
    return [orgs.get_organisation(session, principal.org_id, principal)]


def roles_for(principal: Principal, org: Organisation | None) -> list[Role]:
    """The roles a key of `org` may have (its kind's) that `principal` may issue there."""
    if org is None:
        return []
    return [
        r for r, kind in ROLE_ORG_KIND.items() if kind.value == org.kind and orgs.may_issue(principal, org, r)
    ]


def _offered(principal: Principal, org_list: list[Organisation]) -> list[Role]:
    """Every role the form may offer for some organisation of the list, in the catalogue's order."""
    mine = {r for o in org_list for r in roles_for(principal, o)}
    return [r for r in ROLE_ORG_KIND if r in mine]


def _defaults(request: Request) -> dict[str, str]:
    _ = translator(locale_of(request))
    return {
        "label": _(DEFAULT_LABEL).format(date=china_today().isoformat()),
        "expires_in_days": str(get_settings().api_key_default_days),
    }


def _keys_page(
    request: Request,
    session: Session,
    principal: Principal,
    *,
    issued: str | None = None,
    form: dict[str, str] | None = None,
    field_errors: dict[str, str] | None = None,
    problem_title: str | None = None,
    problem_messages: list[str] | None = None,
    status_code: int = 200,
) -> Response:
    org_list = [o for o in _key_orgs(session, principal) if roles_for(principal, o)]
    values = {**_defaults(request), **(form or {})}
    chosen = next(
        (o for o in org_list if str(o.id) == values.get("org_id")), org_list[0] if org_list else None
    )
    now = utcnow()
    keys = [
        {"key": k, "org": org, "status": k.status(now)}
        for org in _key_orgs(session, principal)
        for k in orgs.list_keys(session, org)
    ]
    return render(
        request,
        "keys.html",
        status_code=status_code,
        keys=keys,
        org_list=org_list,
        chosen=chosen,
        roles=[(r, ROLE_ORG_KIND[r].value) for r in _offered(principal, org_list)],
        chosen_kind=chosen.kind if chosen else None,
        values=values,
        max_days=get_settings().api_key_max_days,
        default_days=get_settings().api_key_default_days,
        issued=issued,
        field_errors=field_errors or {},
        problem_title=problem_title,
        # The summary above the form: the problem's own sentences, else the fields' messages.
        summary=problem_messages or list((field_errors or {}).values()),
    )


@router.get("/keys")
def keys_page(
    request: Request, session: Session = DB, principal: Principal = page(*KEY_MANAGERS), org_id: str = ""
) -> Response:
    return _keys_page(request, session, principal, form={"org_id": org_id} if org_id else None)


@router.post("/keys")
def key_create(
    request: Request,
    session: Session = DB,
    principal: Principal = page(*KEY_MANAGERS),
    org_id: str = Form(""),
    role: str = Form(""),
    label: str = Form(""),
    expires_in_days: str = Form(""),
) -> Response:
    locale = locale_of(request)
    typed = {"org_id": org_id, "role": role, "label": label, "expires_in_days": expires_in_days}
    try:
        data: dict[str, Any] = {k: v for k, v in typed.items() if v.strip() or k == "label"}
        form = KeyForm.model_validate(data)
    except ValidationError as exc:
        return _keys_page(
            request, session, principal, form=typed, field_errors=form_errors(exc, locale), status_code=422
        )
    try:
        org = orgs.get_organisation(session, form.org_id, principal)
        if not orgs.may_issue(principal, org, form.role):
            raise Forbidden(
                f"Role {principal.role.value} may not create a {form.role.value} key for {org.name}"
            )
        issued = orgs.create_key(
            session, principal.actor, org, form.role, label=form.label, expires_in_days=form.expires_in_days
        )
    except Problem as exc:
        session.rollback()
        text = describe(exc, locale)
        return _keys_page(
            request,
            session,
            principal,
            form=typed,
            field_errors=text.by_field,
            problem_title=text.title,
            problem_messages=text.messages,
            status_code=exc.status,
        )
    # The secret is in this one response only (never stored, never in a URL or a redirect).
    return _keys_page(request, session, principal, issued=issued.secret, status_code=201)


@router.post("/keys/{key_id}/revoke")
def key_revoke(
    request: Request,
    key_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(*KEY_MANAGERS),
    reason: str = Form(""),
) -> Response:
    try:
        key = orgs.get_key(session, key_id, principal)
        org = orgs.get_organisation(session, key.owner_org_id, principal)
        orgs.check_may_manage_key(principal, key, org)
        orgs.revoke_key(session, principal.actor, key, reason=reason)
    except Problem as exc:
        session.rollback()
        text = describe(exc, locale_of(request))
        errors = {f"revoke-{key_id}:{k}": v for k, v in text.by_field.items()}
        return _keys_page(
            request,
            session,
            principal,
            field_errors=errors,
            problem_title=text.title,
            problem_messages=text.messages,
            status_code=exc.status,
        )
    return redirect(request, f"{PREFIX}/keys")
