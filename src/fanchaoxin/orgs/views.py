"""Routes for organisations and their API keys."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from fastapi import APIRouter, status
from pydantic import Field
from sqlalchemy.orm import Session

from fanchaoxin.core import permissions
from fanchaoxin.core.auth import DB, Principal, allow
from fanchaoxin.core.db import utcnow
from fanchaoxin.core.errors import Forbidden
from fanchaoxin.core.roles import BusinessType, OrgKind, Role
from fanchaoxin.core.schemas import ResponseModel, StrictModel
from fanchaoxin.orgs import service

router = APIRouter(prefix="/v1", tags=["organisations"])

R = Role


class OrganisationIn(StrictModel):
    kind: OrgKind
    name: str = Field(min_length=1, max_length=200, description="Registered name (Chinese).")
    name_en: str | None = Field(None, max_length=200)
    uscc: str | None = Field(None, description="统一社会信用代码, 18 characters.")
    business_types: list[BusinessType] = Field(default_factory=list)
    agreement_signed_on: date | None = Field(
        None, description="Date the information-sharing agreement was signed."
    )
    declared_users: int | None = Field(None, ge=0)


class OrganisationOut(ResponseModel):
    id: uuid.UUID
    kind: OrgKind
    name: str
    name_en: str | None
    uscc: str | None
    business_types: list[BusinessType]
    agreement_signed_on: date | None
    declared_users: int | None
    active: bool
    created_at: datetime


class KeyIn(StrictModel):
    role: Role
    label: str = Field("", max_length=200)
    expires_in_days: int | None = Field(None, ge=1)


class KeyOut(ResponseModel):
    id: uuid.UUID
    owner_org_id: uuid.UUID
    role: Role
    prefix: str
    label: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    revoked_reason: str | None
    last_used_at: datetime | None
    status: str


class IssuedKeyOut(KeyOut):
    secret: str = Field(description="The whole API key. Shown once; store it now.")


class RevokeIn(StrictModel):
    reason: str = Field(min_length=1, max_length=500)


class WhoAmI(ResponseModel):
    role: Role
    org_id: uuid.UUID | None
    org_kind: OrgKind | None
    key_prefix: str | None


def _key_out(key, cls=KeyOut, **extra):  # type: ignore[no-untyped-def]
    data = {f: getattr(key, f) for f in KeyOut.model_fields if f != "status"}
    return cls(**data, status=key.status(utcnow()), **extra)


STAFF = permissions.STAFF


@router.get("/whoami", response_model=WhoAmI, summary="The caller's role and organisation")
def whoami(principal: Principal = allow(*STAFF)) -> WhoAmI:
    return WhoAmI(
        role=principal.role,
        org_id=principal.org_id,
        org_kind=principal.org_kind,
        key_prefix=principal.key_prefix,
    )


@router.get(
    "/organisations", response_model=list[OrganisationOut], summary="Organisations the caller may see"
)
def list_organisations(
    session: Session = DB,
    principal: Principal = allow(
        R.platform_admin, R.platform_reviewer, R.auditor, R.department_officer, R.enterprise_operator
    ),
) -> list[OrganisationOut]:
    return [OrganisationOut.model_validate(o) for o in service.list_organisations(session, principal)]


@router.post(
    "/organisations",
    response_model=OrganisationOut,
    status_code=status.HTTP_201_CREATED,
    summary="Register an organisation (platform admin)",
)
def create_organisation(
    body: OrganisationIn, session: Session = DB, principal: Principal = allow(R.platform_admin, fresh=True)
) -> OrganisationOut:
    org = service.create_organisation(session, principal.actor, **body.model_dump())
    return OrganisationOut.model_validate(org)


@router.get("/organisations/{org_id}", response_model=OrganisationOut)
def get_organisation(
    org_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = allow(
        R.platform_admin, R.platform_reviewer, R.auditor, R.department_officer, R.enterprise_operator
    ),
) -> OrganisationOut:
    return OrganisationOut.model_validate(service.get_organisation(session, org_id, principal))


@router.get("/organisations/{org_id}/keys", response_model=list[KeyOut], summary="An organisation's API keys")
def list_keys(
    org_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = allow(R.platform_admin, R.auditor, R.department_officer, R.enterprise_operator),
) -> list[KeyOut]:
    org = service.get_organisation(session, org_id, principal)
    return [_key_out(k) for k in service.list_keys(session, org)]


@router.post(
    "/organisations/{org_id}/keys",
    response_model=IssuedKeyOut,
    status_code=status.HTTP_201_CREATED,
    summary="Create an API key; its secret is in this answer only",
)
def create_key(
    org_id: uuid.UUID,
    body: KeyIn,
    session: Session = DB,
    principal: Principal = allow(R.platform_admin, R.department_officer, R.enterprise_operator, fresh=True),
) -> IssuedKeyOut:
    org = service.get_organisation(session, org_id, principal)
    if not service.may_issue(principal, org, body.role):
        raise Forbidden(f"Role {principal.role.value} may not create a {body.role.value} key")
    issued = service.create_key(
        session, principal.actor, org, body.role, label=body.label, expires_in_days=body.expires_in_days
    )
    return _key_out(issued.key, IssuedKeyOut, secret=issued.secret)


@router.get("/keys/{key_id}", response_model=KeyOut)
def get_key(
    key_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = allow(R.platform_admin, R.auditor, R.department_officer, R.enterprise_operator),
) -> KeyOut:
    return _key_out(service.get_key(session, key_id, principal))


@router.post("/keys/{key_id}/revoke", response_model=KeyOut, summary="Revoke an API key at once")
def revoke_key(
    key_id: uuid.UUID,
    body: RevokeIn,
    session: Session = DB,
    principal: Principal = allow(R.platform_admin, R.department_officer, R.enterprise_operator, fresh=True),
) -> KeyOut:
    key = service.get_key(session, key_id, principal)
    service.check_may_manage_key(principal, key, key.organisation)
    return _key_out(service.revoke_key(session, principal.actor, key, reason=body.reason))
