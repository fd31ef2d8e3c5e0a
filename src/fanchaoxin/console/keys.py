"""API keys: the keys of the organisations one may manage, a new key (its secret shown once) and a
revocation."""

from __future__ import annotations

import uuid

from fastapi import Form, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from fanchaoxin.console.auth import page
from fanchaoxin.console.common import KEY_MANAGERS, console_router, problem_errors
from fanchaoxin.console.web import PREFIX, redirect, render
from fanchaoxin.core.auth import DB, Principal
from fanchaoxin.core.db import utcnow
from fanchaoxin.core.errors import Forbidden, Problem, ValidationProblem
from fanchaoxin.core.roles import Role
from fanchaoxin.orgs import service as orgs
from fanchaoxin.orgs.models import Organisation

router = console_router()


def _key_orgs(session: Session, principal: Principal) -> list[Organisation]:
    if principal.role == Role.platform_admin:
        return orgs.list_organisations(session, principal)
    assert principal.org_id is not None
    return [orgs.get_organisation(session, principal.org_id, principal)]


def _keys_page(
    request: Request,
    session: Session,
    principal: Principal,
    *,
    issued: str | None = None,
    errors: list[str] | None = None,
    status_code: int = 200,
) -> Response:
    org_list = _key_orgs(session, principal)
    now = utcnow()
    keys = [
        {"key": k, "org": org, "status": k.status(now)}
        for org in org_list
        for k in orgs.list_keys(session, org)
    ]
    roles = [r for r in Role if r != Role.public and any(orgs.may_issue(principal, o, r) for o in org_list)]
    return render(
        request,
        "keys.html",
        status_code=status_code,
        keys=keys,
        org_list=org_list,
        roles=roles,
        issued=issued,
        errors=errors or [],
    )


@router.get("/keys")
def keys_page(
    request: Request, session: Session = DB, principal: Principal = page(*KEY_MANAGERS)
) -> Response:
    return _keys_page(request, session, principal)


def _choice(field: str, message: str) -> ValidationProblem:
    return ValidationProblem(field, errors=[{"field": field, "message": message}])


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
    try:
        try:
            org = orgs.get_organisation(session, uuid.UUID(org_id), principal)
        except ValueError as exc:
            raise _choice("org_id", "choose one") from exc
        try:
            key_role = Role(role)
        except ValueError as exc:
            raise _choice("role", "choose a role") from exc
        if not orgs.may_issue(principal, org, key_role):
            raise Forbidden(
                f"Role {principal.role.value} may not create a {key_role.value} key for {org.name}"
            )
        days = None
        if expires_in_days.strip():
            try:
                days = int(expires_in_days)
            except ValueError as exc:
                raise _choice("expires_in_days", "a whole number") from exc
        issued = orgs.create_key(
            session, principal.actor, org, key_role, label=label.strip(), expires_in_days=days
        )
    except Problem as exc:
        session.rollback()
        return _keys_page(request, session, principal, errors=problem_errors(exc), status_code=exc.status)
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
        return _keys_page(request, session, principal, errors=problem_errors(exc), status_code=exc.status)
    return redirect(request, f"{PREFIX}/keys")
