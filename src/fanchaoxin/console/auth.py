"""Console sign-in: staff users with a password or an API key; signed session cookies; CSRF.

Every digest, MAC and password hash here is the crypto profile's (`core.crypto`): passwords in scrypt
or, under `gm`, PBKDF2-HMAC-SM3 (stored self-describing, so either verifies after a change of profile
and is re-hashed under the active one at the next sign-in); the cookie's signature and the CSRF tokens
in HMAC-SHA256 | HMAC-SM3.

- The session cookie carries a random token signed with itsdangerous (its signer computes the
  profile's MAC); the database keeps only its digest (`console_sessions`), so signing out or revoking
  the key ends the session at once. A change of profile ends every session (sign in again).
  HttpOnly, SameSite=Lax, Secure when the request came over https.
- Every visitor also gets an anonymous id cookie; the CSRF token of a form is an HMAC of the session
  token (signed in) or of that id (public forms, the sign-in form). Every POST under /console must
  carry it (`csrf_token` field or `X-CSRF-Token` header): `check_csrf` is a dependency of every
  console router.
"""

from __future__ import annotations

import dataclasses
import functools
import secrets
import threading
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import Depends, Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from itsdangerous.signer import SigningAlgorithm
from sqlalchemy import select
from sqlalchemy.orm import Session

from fanchaoxin.console.models import ConsoleSecret, ConsoleSession, ConsoleUser
from fanchaoxin.core import audit, crypto, permissions
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.auth import ANONYMOUS, DB, Access, Principal
from fanchaoxin.core.db import Database, utcnow
from fanchaoxin.core.errors import Conflict, Forbidden, Problem, Unauthenticated, ValidationProblem
from fanchaoxin.core.roles import ROLE_ORG_KIND, OrgKind, Role
from fanchaoxin.core.settings import get_settings
from fanchaoxin.orgs import agreements
from fanchaoxin.orgs import service as org_service
from fanchaoxin.orgs.models import ApiKey, Organisation
from fanchaoxin.orgs.service import authenticate

SESSION_COOKIE = "fcx_session"
ANON_COOKIE = "fcx_anon"
LANG_COOKIE = "fcx_lang"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
# A machine's key (the enterprise's node) is for the API, not for a person at a browser.
CONSOLE_ROLES = frozenset(Role) - {Role.public, Role.enterprise_node}


@dataclass(frozen=True)
class ConsolePrincipal(Principal):
    """A signed-in person. Actions by a password user are audited as `user:<username>`."""

    username: str | None = None
    display_name: str = ""
    org_name: str = ""

    @property
    def actor(self) -> Actor:
        if self.username:
            return Actor(f"user:{self.username}", self.org_id)
        return super().actor


# --- passwords ----------------------------------------------------------------------------------------


hash_password = crypto.hash_password
check_password = crypto.check_password


@functools.lru_cache(maxsize=4)
def _dummy_hash(profile_name: str) -> str:
    """A hash to check a password against when the user does not exist (per profile: the same work)."""
    return crypto.hash_password(secrets.token_urlsafe(16))


def _invalid(field: str, message: str) -> ValidationProblem:
    return ValidationProblem(
        f"Invalid {field}: {message}", errors=[{"in": "body", "field": field, "message": message}]
    )


def create_user(
    session: Session,
    actor: Actor,
    *,
    username: str,
    password: str,
    org: Organisation,
    role: Role,
    display_name: str = "",
) -> ConsoleUser:
    username = username.strip()
    if not username or len(username) > 64 or not all(c.isalnum() or c in "._-@" for c in username):
        raise _invalid("username", "1-64 letters, digits or . _ - @")
    if len(password) < 10:
        raise _invalid("password", "at least 10 characters")
    if role not in CONSOLE_ROLES:
        raise _invalid("role", f"role {role.value} cannot sign in to the console")
    expected = ROLE_ORG_KIND[role]
    if org.kind != expected.value:
        raise _invalid("role", f"role {role.value} belongs to a {expected.value}, not to a {org.kind}")
    if session.scalar(select(ConsoleUser.id).where(ConsoleUser.username == username)):
        raise Conflict(f"A console user named {username!r} already exists")
    user = ConsoleUser(
        username=username,
        display_name=display_name.strip(),
        owner_org_id=org.id,
        role=role.value,
        password_hash=hash_password(password),
        created_by=actor.name,
    )
    session.add(user)
    session.flush()
    audit.record(session, actor, "console_user.create", "console_user", user.id, after=user.snapshot())
    return user


# --- the signing key -------------------------------------------------------------------------------------

_secret_lock = threading.Lock()


def signing_secret(request: Request) -> str:
    """FCX_CONSOLE_SECRET_KEY, or one random key made on first use and kept in the database."""
    state = request.app.state
    cached = getattr(state, "console_secret", None)
    if cached:
        return str(cached)
    with _secret_lock:
        configured = get_settings().console_secret_key
        if configured:
            state.console_secret = configured
            return configured
        db: Database = state.db
        with db.session() as session:
            row = session.get(ConsoleSecret, 1)
            if row is None:
                session.add(ConsoleSecret(id=1, secret=secrets.token_urlsafe(48)))
        with db.session() as session:  # a concurrent first start may have won: read what is stored
            row = session.get(ConsoleSecret, 1)
            assert row is not None
            state.console_secret = row.secret
            return row.secret


class _ProfileMac(SigningAlgorithm):
    """itsdangerous's signature computed as the crypto profile's MAC (its own HMAC takes a hashlib
    constructor, and SM3 is not one)."""

    def get_signature(self, key: bytes, value: bytes) -> bytes:
        return crypto.active().mac(_mac_key(key, b"cookie"), value)


def _mac_key(secret: bytes, use: bytes) -> bytes:
    # FCX_CONSOLE_SECRET_KEY may be any length; the profile's MAC wants a key as long as its output
    return crypto.active().digest(b"fcx-console|" + use + b"|" + secret)


def _serializer(request: Request) -> URLSafeTimedSerializer:
    # key_derivation "none": the secret goes to _ProfileMac as it is, which derives the MAC key itself
    return URLSafeTimedSerializer(
        signing_secret(request),
        salt="fcx-console-session",
        signer_kwargs={"key_derivation": "none", "algorithm": _ProfileMac()},
    )


def _token_hash(token: str) -> str:
    return crypto.secret_hash(token)


def _csrf(secret: str, binding: str) -> str:
    return crypto.active().mac(_mac_key(secret.encode(), b"csrf"), b"csrf|" + binding.encode()).hex()


def session_token(request: Request) -> str | None:
    """The verified session token of the cookie (signature and age), not yet checked in the database."""
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    hours = get_settings().console_session_hours
    try:
        return str(_serializer(request).loads(raw, max_age=hours * 3600))
    except BadSignature:
        return None


def csrf_binding(request: Request) -> str:
    """What this browser's CSRF token is bound to: its session, else its anonymous id (made if new)."""
    cached = getattr(request.state, "csrf_binding", None)
    if cached:
        return str(cached)
    principal = getattr(request.state, "principal", None)
    token = session_token(request) if isinstance(principal, ConsolePrincipal) else None
    if token:
        binding = "s:" + token
    else:
        anon = request.cookies.get(ANON_COOKIE)
        if not anon or len(anon) > 64:
            anon = secrets.token_urlsafe(24)
            request.state.new_anon = anon
        binding = "a:" + anon
    request.state.csrf_binding = binding
    return binding


def csrf_token(request: Request) -> str:
    return _csrf(signing_secret(request), csrf_binding(request))


class CsrfFailed(Forbidden):
    slug = "csrf"
    title = "The form has expired or did not come from this site"
    title_zh = "表单已失效或并非来自本站"


async def check_csrf(request: Request) -> None:
    """Every state-changing request to the console carries the token of its form (router dependency)."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    sent = request.headers.get(CSRF_HEADER)
    if not sent:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent:
        raise CsrfFailed("The form carries no CSRF token; reload the page and try again")
    candidates = []
    token = session_token(request)
    if token:
        candidates.append("s:" + token)
    anon = request.cookies.get(ANON_COOKIE)
    if anon:
        candidates.append("a:" + anon)
    secret = signing_secret(request)
    for binding in candidates:
        if secrets.compare_digest(_csrf(secret, binding).encode(), sent.encode()):
            return
    raise CsrfFailed("The CSRF token does not match this browser; reload the page and try again")


# --- sessions ---------------------------------------------------------------------------------------------


def open_session(
    request: Request, session: Session, *, user: ConsoleUser | None = None, key: ApiKey | None = None
) -> str:
    """Make a session row and return the signed cookie value (a new token: no session fixation)."""
    token = secrets.token_urlsafe(32)
    hours = get_settings().console_session_hours
    session.add(
        ConsoleSession(
            token_hash=_token_hash(token),
            user_id=user.id if user else None,
            api_key_id=key.id if key else None,
            expires_at=utcnow() + timedelta(hours=hours),
            user_agent=(request.headers.get("user-agent") or "")[:300],
        )
    )
    session.flush()
    return str(_serializer(request).dumps(token))


def end_session(request: Request, session: Session) -> None:
    token = session_token(request)
    if not token:
        return
    row = session.scalar(select(ConsoleSession).where(ConsoleSession.token_hash == _token_hash(token)))
    if row is not None and row.ended_at is None:
        row.ended_at = utcnow()
        session.flush()


def sign_in_password(session: Session, username: str, password: str) -> ConsoleUser:
    user = session.scalar(select(ConsoleUser).where(ConsoleUser.username == username.strip()))
    if user is None:
        # the same work either way: no user enumeration by timing
        check_password(_dummy_hash(crypto.active().name), password)
        raise Unauthenticated("Wrong username or password", code="signin.wrong_credentials")
    if not check_password(user.password_hash, password):
        audit.record(session, Actor(f"user:{user.username}", user.owner_org_id), "console.sign_in_failed",
                     "console_user", user.id)  # fmt: skip
        raise Unauthenticated("Wrong username or password", code="signin.wrong_credentials")
    if not user.active or org_service.active_organisation(session, user.owner_org_id) is None:
        raise Unauthenticated("This account is disabled", code="signin.disabled")
    if crypto.password_needs_rehash(user.password_hash):
        # made under the other crypto profile (before `fcx crypto migrate`): now under the active one
        user.password_hash = crypto.hash_password(password)
    user.last_login_at = utcnow()
    audit.record(session, Actor(f"user:{user.username}", user.owner_org_id), "console.sign_in",
                 "console_user", user.id, detail={"method": "password"})  # fmt: skip
    return user


def sign_in_key(session: Session, raw: str) -> ApiKey:
    principal = authenticate(session, raw.strip())
    if principal.role not in CONSOLE_ROLES:
        raise Unauthenticated(
            f"A {principal.role.value} key cannot sign in to the console", code="signin.key_role"
        )
    key = org_service.api_key(session, principal.key_id)
    assert key is not None
    audit.record(session, principal.actor, "console.sign_in", "api_key", key.id, detail={"method": "api_key"})
    return key


def load_principal(request: Request, session: Session) -> ConsolePrincipal | None:
    """The signed-in person of this request, or None (no cookie, bad signature, ended, key revoked)."""
    token = session_token(request)
    if not token:
        return None
    row = session.scalar(select(ConsoleSession).where(ConsoleSession.token_hash == _token_hash(token)))
    now = utcnow()
    if row is None or row.ended_at is not None or row.expires_at <= now:
        return None
    if row.user_id is not None:
        user = session.get(ConsoleUser, row.user_id)
        if user is None or not user.active:
            return None
        org = org_service.active_organisation(session, user.owner_org_id)
        if org is None:
            return None
        role, username, display, prefix, key_id = (
            Role(user.role),
            user.username,
            user.display_name,
            None,
            None,
        )
    else:
        key = org_service.api_key(session, row.api_key_id)
        if key is None or key.status(now) != "active":
            return None
        org = org_service.active_organisation(session, key.owner_org_id)
        if org is None:
            return None
        role, username, display, prefix, key_id = Role(key.role), None, key.label, key.prefix, key.id
    return ConsolePrincipal(
        role=role,
        org_id=org.id,
        org_kind=OrgKind(org.kind),
        key_id=key_id,
        key_prefix=prefix,
        business_types=frozenset(org.business_types or []),
        username=username,
        display_name=display or (username or f"key {prefix}"),
        org_name=org.name,
    )


class SignInRequired(Unauthenticated):
    """Raised on a console page without a session; answered with a redirect to the sign-in page."""


class ConsoleAccess(Access):
    """A console page's access rule. An `Access`, so the route-table test and `x-roles` see it."""

    def __call__(self, request: Request, session: Session = DB) -> Principal:  # type: ignore[override]
        # The signing key first: on first use it is written in a transaction of its own, which must not
        # wait behind this request's writes (SQLite has one writer).
        signing_secret(request)
        principal: Principal | None = load_principal(request, session)
        request.state.principal = principal
        if Role.public in self.roles:
            return principal or _anonymous()
        if principal is None:
            raise SignInRequired("Sign in to see this page")
        if principal.role not in self.roles:
            raise Forbidden(
                f"Role {principal.role.value} may not open this page; it admits "
                + ", ".join(sorted(r.value for r in self.roles))
            )
        return principal


class ParticipantPageAccess(ConsoleAccess):
    """A page of the shared list's uses (instructions): as the API's `allow_participant`, an enterprise
    opens it only while its information-sharing agreement is in force (403 with the reason, in words)."""

    def __call__(self, request: Request, session: Session = DB) -> Principal:  # type: ignore[override]
        principal = super().__call__(request, session)
        # Read here, for these pages only: every other console page is spared the standing's queries.
        org = session.get(Organisation, principal.org_id) if principal.org_id else None
        if org is not None:
            agreement, params = agreements.principal_agreement(session, org)
            principal = dataclasses.replace(principal, agreement=agreement, agreement_params=params)
        permissions.require_agreement(principal)
        return principal


def _anonymous() -> Principal:
    return ANONYMOUS


def page(*roles: Role) -> Any:
    return Depends(ConsoleAccess(frozenset(roles)))


def participant_page(*roles: Role) -> Any:
    """`page(...)`, and an enterprise's agreement in force (the instruction workbench and its forms)."""
    return Depends(ParticipantPageAccess(frozenset(roles)))


def public_page() -> Any:
    return page(Role.public)


def is_problem(exc: BaseException) -> bool:
    return isinstance(exc, Problem)


def session_row_id(request: Request, session: Session) -> uuid.UUID | None:
    token = session_token(request)
    if not token:
        return None
    return session.scalar(select(ConsoleSession.id).where(ConsoleSession.token_hash == _token_hash(token)))
