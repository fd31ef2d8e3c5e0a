"""Routes for organisations, their API keys and quotas, security alerts and the decision log."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Query, Request, status
from pydantic import Field
from sqlalchemy.orm import Session

from fanchaoxin.core import audit, permissions
from fanchaoxin.core.auth import DB, Principal, allow
from fanchaoxin.core.db import utcnow
from fanchaoxin.core.errors import Forbidden
from fanchaoxin.core.roles import BusinessType, OrgKind, Role
from fanchaoxin.core.schemas import ResponseModel, StrictModel
from fanchaoxin.orgs import budget as budgets
from fanchaoxin.orgs import decision_log, service

router = APIRouter(prefix="/v1", tags=["organisations"])

R = Role


class OrganisationIn(StrictModel):
    kind: OrgKind
    name: str = Field(min_length=1, max_length=200, description="Registered name (Chinese).")
    name_en: str | None = Field(None, max_length=200)
    uscc: str | None = Field(None, description="统一社会信用代码, 18 characters.")
    business_types: list[BusinessType] = Field(default_factory=list)
    agreement_signed_on: date | None = Field(
        None,
        description="Date of an information-sharing agreement signed before versioned agreements; an "
        "enterprise otherwise applies and signs (POST /v1/organisations/{org_id}/agreement/…).",
    )
    declared_users: int | None = Field(None, ge=0)
    contact_email: str | None = Field(
        None, max_length=320, description="Where consultation notices and agreement reminders are e-mailed."
    )
    department_kind: str | None = Field(
        None,
        max_length=32,
        description="A department's kind (department_kinds.yaml, e.g. market_regulation, posts): required "
        "for a department; it receives only what its kind's competence covers.",
    )


class OrganisationOut(ResponseModel):
    id: uuid.UUID
    kind: OrgKind
    name: str
    name_en: str | None
    uscc: str | None
    business_types: list[BusinessType]
    agreement_signed_on: date | None = Field(
        description="An agreement signed before versioned agreements (GET …/agreement: the standing)."
    )
    contact_email: str | None
    declared_users: int | None
    department_kind: str | None = Field(description="None: a department without a kind receives nothing.")
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


class ContactIn(StrictModel):
    contact_email: str | None = Field(None, max_length=320, description="None or empty: no address.")


@router.put(
    "/organisations/{org_id}/contact-email",
    response_model=OrganisationOut,
    summary="Set where an organisation's consultation notices and agreement reminders are e-mailed",
)
def set_contact_email(
    org_id: uuid.UUID,
    body: ContactIn,
    session: Session = DB,
    principal: Principal = allow(R.platform_admin, R.department_officer, R.enterprise_operator, fresh=True),
) -> OrganisationOut:
    org = service.get_organisation(session, org_id, principal)
    if principal.role != R.platform_admin and principal.org_id != org.id:
        raise Forbidden("Only the organisation itself or a platform admin sets its contact e-mail")
    return OrganisationOut.model_validate(
        service.set_contact_email(session, principal.actor, org, body.contact_email)
    )


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


# --- quotas, security alerts and the decision log (privacy, #14) -------------------------------------


class QuotasIn(StrictModel):
    """An organisation's own quotas; a field left out or null means the platform's default."""

    plain_per_minute: int | None = Field(None, ge=0, description="Plain identifiers matched per minute.")
    plain_per_day: int | None = Field(None, ge=0, description="Plain identifiers matched per China day.")
    evaluations_per_minute: int | None = Field(None, ge=0, description="Blinded evaluations per minute.")


def _quotas_out(request: Request, session: Session, org: Any) -> dict[str, Any]:
    settings = request.app.state.settings
    budget: budgets.Budget = request.app.state.budget
    limits = budgets.limits_of(org, settings)
    defaults = budgets.default_limits(settings)
    used = budget.status(org.id)
    if used["today"] is None:  # not seen by this process: what every process has written
        used["today"] = budgets.day_totals(session, [org.id], budget.today()).get(org.id, 0)
    alerts = budgets.open_alerts(session, [org.id])
    return {
        "org_id": str(org.id),
        "plain_per_minute": limits.plain_per_minute,
        "plain_per_day": limits.plain_per_day,
        "evaluations_per_minute": limits.evaluations_per_minute,
        "overrides": {
            "plain_per_minute": org.quota_plain_per_minute,
            "plain_per_day": org.quota_plain_per_day,
            "evaluations_per_minute": org.quota_evaluations_per_minute,
        },
        "defaults": {
            "plain_per_minute": defaults.plain_per_minute,
            "plain_per_day": defaults.plain_per_day,
            "evaluations_per_minute": defaults.evaluations_per_minute,
        },
        "plain_batch_max": settings.plain_batch_max,
        # Counts as this process sees them (the day's: every process's as of the last flush, plus its own).
        "used": used,
        "open_alerts": budgets.count_open(session, org.id),
        "suspended": org.id in alerts,
    }


@router.get("/organisations/{org_id}/quotas", summary="An organisation's matching quotas, use and alerts")
def get_quotas(
    org_id: uuid.UUID,
    request: Request,
    session: Session = DB,
    principal: Principal = allow(
        R.platform_admin, R.platform_reviewer, R.auditor, R.department_officer, R.enterprise_operator
    ),
) -> dict[str, Any]:
    return _quotas_out(request, session, service.get_organisation(session, org_id, principal))


@router.put(
    "/organisations/{org_id}/quotas", summary="Set an organisation's matching quotas (platform admin)"
)
def put_quotas(
    org_id: uuid.UUID,
    body: QuotasIn,
    request: Request,
    session: Session = DB,
    principal: Principal = allow(R.platform_admin, fresh=True),
) -> dict[str, Any]:
    """Applies at once in this process, in the others within one decision-log flush."""
    org = service.get_organisation(session, org_id, principal)
    budgets.set_quotas(
        session,
        principal.actor,
        org,
        {
            "quota_plain_per_minute": body.plain_per_minute,
            "quota_plain_per_day": body.plain_per_day,
            "quota_evaluations_per_minute": body.evaluations_per_minute,
        },
    )
    request.app.state.budget.set_limits(org.id, budgets.limits_of(org, request.app.state.settings))
    return _quotas_out(request, session, org)


class ClearIn(StrictModel):
    reason: str = Field(min_length=1, max_length=500, description="What the review found.")


@router.get(
    "/security/alerts", summary="Security alerts: suspected enumeration, silent nodes (platform staff)"
)
def get_security_alerts(
    session: Session = DB,
    principal: Principal = allow(*permissions.PLATFORM),
    include_cleared: bool = Query(False, description="Also the alerts already cleared."),
    limit: int = Query(100, ge=1, le=1000),
) -> list[dict[str, Any]]:
    return [
        budgets.alert_out(a)
        for a in budgets.list_alerts(session, include_cleared=include_cleared, limit=limit)
    ]


@router.post(
    "/security/alerts/{alert_id}/clear",
    summary="Clear a reviewed alert (audited): after an enumeration alert the organisation may match again",
)
def clear_security_alert(
    alert_id: uuid.UUID,
    body: ClearIn,
    request: Request,
    session: Session = DB,
    principal: Principal = allow(R.platform_admin, fresh=True),
) -> dict[str, Any]:
    alert = budgets.clear_alert(
        session, principal.actor, budgets.get_alert(session, alert_id), body.reason, utcnow()
    )
    if alert.kind == budgets.ENUMERATION:
        # Only an enumeration alert suspends matching and counts misses: clearing another kind (a silent
        # node) leaves both as they are.
        request.app.state.budget.cleared(alert.org_id, alert.id)
    return budgets.alert_out(alert)


@router.get("/decision-log", summary="Decision-log records: keyed digests, never plain identifiers (audited)")
def get_decision_log(
    session: Session = DB,
    principal: Principal = allow(*permissions.RECORD_KEEPERS),
    org_id: uuid.UUID | None = None,
    since: datetime | None = Query(None, description="From this time (inclusive)."),
    until: datetime | None = Query(None, description="Before this time."),
    kind: str | None = Query(None, pattern="^(decision|lookup|evaluation)$"),
    limit: int = Query(100, ge=1, le=1000),
    after: uuid.UUID | None = Query(None, description="Cursor: the last record id of the page before."),
) -> dict[str, Any]:
    page = decision_log.read(
        session, org_id=org_id, since=since, until=until, kind=kind, limit=limit, after=after
    )
    audit.record_read(
        session,
        principal.actor,
        "decision_log.read",
        "organisation",
        str(org_id) if org_id else "-",
        detail={
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
            "kind": kind,
            "count": len(page.records),
        },
    )
    return {"records": page.records, "next_after": str(page.next_after) if page.next_after else None}
