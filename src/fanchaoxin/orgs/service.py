"""Organisations and API keys: the rules, in one place, for the API and the CLI alike."""

from __future__ import annotations

import contextlib
import secrets
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select, true, update
from sqlalchemy.orm import Session, joinedload

from fanchaoxin.core import audit, crypto
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.auth import InvalidKey, Principal, forget_principals
from fanchaoxin.core.db import utcnow
from fanchaoxin.core.errors import Conflict, Forbidden, NotFound, ValidationProblem
from fanchaoxin.core.identifiers import IdentifierError, IdentifierType, normalise
from fanchaoxin.core.roles import ROLE_ORG_KIND, BusinessType, OrgKind, Role
from fanchaoxin.core.settings import get_settings
from fanchaoxin.core.tenancy import get_visible, scoped
from fanchaoxin.orgs import agreements
from fanchaoxin.orgs.department_kinds import department_kinds, known_kinds
from fanchaoxin.orgs.models import ApiKey, Organisation

KEY_PREFIX = "fcx"


def create_organisation(
    session: Session,
    actor: Actor,
    *,
    kind: OrgKind,
    name: str,
    name_en: str | None = None,
    uscc: str | None = None,
    business_types: list[BusinessType] | None = None,
    agreement_signed_on: date | None = None,
    declared_users: int | None = None,
    department_kind: str | None = None,
    contact_email: str | None = None,
) -> Organisation:
    """Register an organisation. A department names its kind (department_kinds.yaml): it receives only
    what its kind's competence covers. An enterprise is registered, then applies and signs the sharing
    agreement (orgs.agreements); `agreement_signed_on` is the date of an agreement signed before
    agreements were versioned (kept, optional)."""
    name = name.strip()
    if not name:
        raise ValidationProblem.on_field("name", "must not be empty", "missing", code="org.name_empty")
    business_types = sorted(set(business_types or []))
    if kind == OrgKind.enterprise:
        if not business_types:
            raise ValidationProblem.on_field(
                "business_types",
                "an enterprise needs at least one business type",
                code="org.business_type_needed",
            )
    elif business_types:
        raise ValidationProblem.on_field(
            "business_types",
            f"only enterprises have business types, not a {kind.value}",
            code="org.business_types_enterprise_only",
        )
    if kind == OrgKind.department:
        _check_department_kind(department_kind)
    elif department_kind is not None:
        raise ValidationProblem.on_field(
            "department_kind",
            f"only departments have a department kind, not a {kind.value}",
            code="org.department_kind_departments_only",
        )
    if declared_users is not None and declared_users < 0:
        raise ValidationProblem.on_field("declared_users", "must not be negative", code="org.users_negative")
    contact_email = checked_email(contact_email)
    if kind == OrgKind.platform and session.scalar(
        select(Organisation.id).where(Organisation.kind == OrgKind.platform.value)
    ):
        raise Conflict(
            "There is already a platform organisation; there can be only one", code="org.platform_exists"
        )
    canonical_uscc = None
    if uscc:
        try:
            canonical_uscc = normalise(IdentifierType.uscc, uscc)
        except IdentifierError as exc:
            raise ValidationProblem.on_field(
                "uscc", str(exc), exc.rule, code=exc.code, params=exc.params
            ) from exc
        if session.scalar(select(Organisation.id).where(Organisation.uscc == canonical_uscc)):
            raise Conflict(
                f"An organisation with USCC {canonical_uscc} already exists", code="org.uscc_taken"
            )
    if session.scalar(select(Organisation.id).where(Organisation.name == name)):
        raise Conflict(f"An organisation named {name!r} already exists", code="org.name_taken")
    org = Organisation(
        kind=kind.value,
        name=name,
        name_en=name_en,
        uscc=canonical_uscc,
        business_types=[b.value for b in business_types],
        agreement_signed_on=agreement_signed_on,
        declared_users=declared_users,
        department_kind=department_kind,
        contact_email=contact_email,
    )
    session.add(org)
    session.flush()
    audit.record(session, actor, "organisation.create", "organisation", org.id, after=org.snapshot())
    return org


def checked_email(value: str | None) -> str | None:
    """A contact e-mail address, normalised (None or blank: none), or a 422 naming `contact_email`."""
    if value is None or not value.strip():
        return None
    try:
        return normalise(IdentifierType.email, value.strip())
    except IdentifierError as exc:
        raise ValidationProblem.on_field(
            "contact_email", str(exc), exc.rule, code=exc.code, params=exc.params
        ) from exc


def set_contact_email(session: Session, actor: Actor, org: Organisation, email: str | None) -> Organisation:
    """Where consultation notices and agreement reminders are e-mailed (None: none)."""
    email = checked_email(email)
    if org.contact_email == email:
        return org
    before = org.snapshot()
    org.contact_email = email
    session.flush()
    audit.record(
        session, actor, "organisation.set_contact_email", "organisation", org.id, before=before,
        after=org.snapshot(),
    )  # fmt: skip
    return org


def _check_department_kind(kind: str | None) -> None:
    if kind is None or not kind.strip():
        raise ValidationProblem.on_field(
            "department_kind",
            f"a department needs a kind, which says what it acts on: one of {known_kinds()}",
            "missing",
            code="org.department_kind_needed",
        )
    if kind not in department_kinds():
        raise ValidationProblem.on_field(
            "department_kind",
            f"unknown department kind {kind!r}; one of {known_kinds()}",
            "enum",
            code="org.department_kind_unknown",
        )


def set_department_kind(session: Session, actor: Actor, org: Organisation, kind: str) -> Organisation:
    """Give a department its kind (a department made before kinds has none and receives nothing).

    What it has been instructed stays; from now on it is instructed by its kind's competence."""
    if org.kind != OrgKind.department.value:
        raise ValidationProblem.on_field(
            "department_kind",
            f"only departments have a department kind, not a {org.kind}",
            code="org.department_kind_departments_only",
        )
    _check_department_kind(kind)
    if org.department_kind == kind:
        return org
    before = org.snapshot()
    org.department_kind = kind
    session.flush()
    audit.record(
        session, actor, "organisation.set_department_kind", "organisation", org.id, before=before,
        after=org.snapshot(),
    )  # fmt: skip
    return org


def list_organisations(session: Session, principal: Principal) -> list[Organisation]:
    stmt = scoped(select(Organisation), Organisation, principal).order_by(
        Organisation.kind, Organisation.name
    )
    return list(session.scalars(stmt))


def get_organisation(session: Session, org_id: uuid.UUID, principal: Principal) -> Organisation:
    return get_visible(session, Organisation, org_id, principal, what="organisation")


def find_organisation(session: Session, ref: str) -> Organisation:
    """Look an organisation up by id, USCC or exact name (for the CLI)."""
    try:
        org = session.get(Organisation, uuid.UUID(ref))
    except ValueError:
        org = None
    if org is None:
        org = session.scalar(
            select(Organisation).where((Organisation.uscc == ref) | (Organisation.name == ref))
        )
    if org is None:
        raise NotFound(f"No organisation {ref!r}", code="org.not_found")
    return org


# --- API keys -------------------------------------------------------------------------------------


def _hash_secret(secret: str) -> str:
    # The secret is 256 random bits, so a plain digest (SHA-256 | SM3) cannot be brute-forced; no slow KDF
    # needed.
    return crypto.secret_hash(secret)


@dataclass
class IssuedKey:
    key: ApiKey
    secret: str  # the full key, shown once


def may_issue(principal: Principal, org: Organisation, role: Role) -> bool:
    """Who may create a key of which role: admins any; operators only for their own organisation."""
    if principal.role == Role.platform_admin:
        return True
    if principal.org_id != org.id:
        return False
    if principal.role == Role.enterprise_operator:
        return role in (Role.enterprise_operator, Role.enterprise_node)
    if principal.role == Role.department_officer:
        return role == Role.department_officer
    return False


def create_key(
    session: Session,
    actor: Actor,
    org: Organisation,
    role: Role,
    *,
    label: str = "",
    expires_in_days: int | None = None,
) -> IssuedKey:
    settings = get_settings()
    if role == Role.public:
        raise ValidationProblem.on_field("role", "public callers have no key", code="key.public_role")
    expected_kind = ROLE_ORG_KIND[role]
    if org.kind != expected_kind.value:
        raise ValidationProblem.on_field(
            "role",
            f"role {role.value} belongs to a {expected_kind.value}, not to a {org.kind}",
            code="key.role_org_kind",
            params={"role": role.value, "org_kind": org.kind, "expected_kind": expected_kind.value},
        )
    if not org.active:
        raise Conflict(f"Organisation {org.name} is inactive", code="org.inactive")
    days = settings.api_key_default_days if expires_in_days is None else expires_in_days
    if not 1 <= days <= settings.api_key_max_days:
        raise ValidationProblem.on_field(
            "expires_in_days",
            f"must be between 1 and {settings.api_key_max_days}",
            code="key.expiry_range",
            params={"max": settings.api_key_max_days},
        )
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = ApiKey(
        owner_org_id=org.id,
        role=role.value,
        prefix=prefix,
        secret_hash=_hash_secret(secret),
        label=label,
        created_by=actor.name,
        expires_at=utcnow() + timedelta(days=days),
    )
    session.add(key)
    session.flush()
    audit.record(session, actor, "api_key.create", "api_key", key.id, after=key.snapshot())
    return IssuedKey(key, f"{KEY_PREFIX}_{prefix}_{secret}")


def list_keys(session: Session, org: Organisation) -> list[ApiKey]:
    return list(
        session.scalars(select(ApiKey).where(ApiKey.owner_org_id == org.id).order_by(ApiKey.created_at))
    )


def get_key(session: Session, key_id: uuid.UUID, principal: Principal) -> ApiKey:
    return get_visible(session, ApiKey, key_id, principal, what="API key")


def find_key(session: Session, ref: str) -> ApiKey:
    """By id or by prefix (the public part shown in lists), for the CLI."""
    key = None
    with contextlib.suppress(ValueError):
        key = session.get(ApiKey, uuid.UUID(ref))
    if key is None:
        key = session.scalar(select(ApiKey).where(ApiKey.prefix == ref))
    if key is None:
        raise NotFound(f"No API key {ref!r}", code="key.not_found")
    return key


def revoke_key(session: Session, actor: Actor, key: ApiKey, *, reason: str) -> ApiKey:
    if not reason.strip():
        raise ValidationProblem.on_field(
            "reason", "say why the key is revoked", "missing", code="key.reason_required"
        )
    if key.revoked_at is not None:
        raise Conflict(
            f"API key {key.prefix} was already revoked at {key.revoked_at.isoformat()}",
            code="key.revoked_already",
        )
    before = key.snapshot()
    key.revoked_at = utcnow()
    key.revoked_reason = reason.strip()
    session.flush()
    forget_principals(session, key_prefix=key.prefix)
    audit.record(session, actor, "api_key.revoke", "api_key", key.id, before=before, after=key.snapshot())
    return key


def check_may_manage_key(principal: Principal, key: ApiKey, org: Organisation) -> None:
    if not may_issue(principal, org, Role(key.role)):
        raise Forbidden(
            f"Role {principal.role.value} may not manage a {key.role} key",
            code="key.not_manageable",
            params={"role": principal.role.value, "key_role": key.role},
        )


_LAST_USED_RESOLUTION = timedelta(minutes=10)


def authenticate(session: Session, raw: str) -> Principal:
    """Turn a presented key into a principal, or `InvalidKey` (the caller is not told why)."""
    return authenticate_key(session, raw)[0]


class KeyAuthenticator:
    """The platform's API keys as `core.auth` uses them (installed by `create_app`)."""

    def __call__(
        self, session: Session, raw: str, *, lock: bool = False
    ) -> tuple[Principal, datetime | None]:
        """The principal, and until when the answer may be reused (the key's expiry).

        `lock` (routes that grant authority): the key's row is written, which holds it — a row lock on
        PostgreSQL, the write lock on SQLite — until the request's transaction ends, and then read again:
        a revocation either committed before (refused here) or waits until this request is done.
        """
        parts = raw.split("_", 2)
        if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or len(parts[1]) > 16:
            raise InvalidKey("malformed")
        _, prefix, secret = parts
        # One round trip: every request authenticates, so the organisation comes in the same query.
        key = session.scalar(
            select(ApiKey).options(joinedload(ApiKey.organisation)).where(ApiKey.prefix == prefix)
        )
        # Before the lookup's answer: the same work either way. A hash made under the other crypto
        # profile (before `fcx crypto migrate`) still matches, and is rewritten under the active one.
        made_under = crypto.secret_matches(key.secret_hash if key is not None else "", secret)
        if key is None:
            raise InvalidKey("unknown")
        refused = {"key_prefix": key.prefix, "key_id": key.id, "org_id": key.owner_org_id}
        if made_under is None:
            raise InvalidKey("wrong_secret", **refused)
        now = utcnow()
        org = key.organisation
        if lock:
            session.execute(
                update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now),
                execution_options={"synchronize_session": False},
            )
            session.refresh(key)
            session.refresh(org, with_for_update={"read": True})
        status = key.status(now)
        if status != "active":
            raise InvalidKey(status, **refused)
        if not org.active:
            raise InvalidKey("organisation_inactive", **refused)
        if made_under is not crypto.active():
            key.secret_hash = _hash_secret(secret)
        # Recorded coarsely so that reads do not turn every request into a write.
        if key.last_used_at is None or now - key.last_used_at > _LAST_USED_RESOLUTION:
            key.last_used_at = now
        # An enterprise's agreement standing rides on the principal (cached with it): the gate on the
        # shared list, evaluation and instructions (core.permissions.require_agreement) costs nothing.
        agreement, agreement_params = agreements.principal_agreement(session, org)
        principal = Principal(
            role=Role(key.role),
            org_id=org.id,
            org_kind=OrgKind(org.kind),
            key_id=key.id,
            key_prefix=key.prefix,
            business_types=frozenset(org.business_types or []),
            agreement=agreement,
            agreement_params=agreement_params,
        )
        return principal, key.expires_at

    @staticmethod
    def revocation_epoch(session: Session) -> tuple[object, ...]:
        """Moves whenever a key is revoked, an organisation deactivated, an enterprise's participation
        changes (suspended, withdrawn, signed …) or an agreement version is published: small queries
        that each API process runs at most once per FCX_AUTH_REVOCATION_CHECK_SECONDS.

        Counts as well as latest times: a revocation stamped by a clock behind the others' still counts.
        """
        revoked = select(func.count(ApiKey.revoked_at), func.max(ApiKey.revoked_at))
        inactive = select(func.count(Organisation.id), func.max(Organisation.updated_at)).where(
            Organisation.active.is_(False)
        )
        keys_row, orgs_row = revoked.subquery(), inactive.subquery()
        both = select(keys_row, orgs_row).select_from(keys_row.join(orgs_row, true()))
        return tuple(session.execute(both).one()) + agreements.epoch(session)


authenticate_key = KeyAuthenticator()


def organisation_names(session: Session) -> dict[uuid.UUID, str]:
    """id → name of every organisation (to name reporters and addressees on a page)."""
    return {org_id: name for org_id, name in session.execute(select(Organisation.id, Organisation.name))}


def active_organisations(session: Session, kinds: Collection[str]) -> list[Organisation]:
    """The active organisations of these kinds, by kind and name (where a case can be routed to)."""
    return list(
        session.scalars(
            select(Organisation)
            .where(Organisation.kind.in_(list(kinds)), Organisation.active.is_(True))
            .order_by(Organisation.kind, Organisation.name)
        )
    )


def active_organisation(session: Session, org_id: uuid.UUID) -> Organisation | None:
    """The organisation, if it exists and is active (a signed-in person acts for it)."""
    org = session.get(Organisation, org_id)
    return org if org is not None and org.active else None


def api_key(session: Session, key_id: uuid.UUID | None) -> ApiKey | None:
    """An API key by id, whatever its state (the caller checks it)."""
    return session.get(ApiKey, key_id) if key_id is not None else None
