"""Who is calling, and may they call this route.

Every route declares the roles it admits with `allow(...)` (or `allow_public()`); a test walks the
route table and fails on any route without such a rule. Keys are sent as `Authorization: Bearer
fcx_<prefix>_<secret>` or `X-API-Key: …`.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from fanchaoxin.core.audit import Actor
from fanchaoxin.core.errors import Forbidden, Unauthenticated
from fanchaoxin.core.roles import OrgKind, Role

PLATFORM_ROLES = frozenset({Role.platform_admin, Role.platform_reviewer, Role.auditor})
STAFF_ROLES = frozenset(Role) - {Role.public}


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request."""

    role: Role
    org_id: uuid.UUID | None = None
    org_kind: OrgKind | None = None
    key_id: uuid.UUID | None = None
    key_prefix: str | None = None
    business_types: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_platform(self) -> bool:
        """Platform staff see every tenant's objects (still within their role's routes)."""
        return self.role in PLATFORM_ROLES

    @property
    def actor(self) -> Actor:
        if self.key_prefix:
            return Actor(f"key:{self.key_prefix}", self.org_id)
        return Actor("public", None)


ANONYMOUS = Principal(role=Role.public)


class PrincipalCache:
    """Recently authenticated keys, so that a hot route (decisions) needs no database round trip.

    Keyed by the SHA-256 of the presented key, never the key itself. An entry lives at most `ttl`
    seconds and never past the key's own expiry. Revoking a key or deactivating an organisation
    clears its entries in this process at once (orgs.service calls `invalidate`); other API processes
    stop accepting it within `ttl` seconds (FCX_AUTH_CACHE_SECONDS; 0 turns the cache off).
    """

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def fingerprint(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()

    def get(self, fingerprint: str) -> Principal | None:
        hit = self._entries.get(fingerprint)
        if hit is None:
            return None
        principal, until = hit
        if time.monotonic() >= until:
            with self._lock:
                self._entries.pop(fingerprint, None)
            return None
        return principal

    def put(self, fingerprint: str, principal: Principal, ttl: float, expires_at: datetime | None) -> None:
        lifetime = ttl
        if expires_at is not None:
            lifetime = min(lifetime, expires_at.timestamp() - time.time())
        if lifetime <= 0:
            return
        with self._lock:
            self._entries[fingerprint] = (principal, time.monotonic() + lifetime)
            self._entries.move_to_end(fingerprint)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def invalidate(self, *, key_prefix: str | None = None, org_id: uuid.UUID | None = None) -> None:
        with self._lock:
            for fp, (p, _) in list(self._entries.items()):
                if (key_prefix is not None and p.key_prefix == key_prefix) or (
                    org_id is not None and p.org_id == org_id
                ):
                    del self._entries[fp]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


principal_cache = PrincipalCache()


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request: committed when the handler returns, rolled back on any error."""
    with request.app.state.db.session() as session:
        yield session


# scope="function": the commit happens before the response is sent, so a failed commit is an error
# the caller sees, never a 200 for something that was not stored.
DB: Any = Depends(get_session, scope="function")
# The same dependency as a type: `session: DbSession` in a route's signature.
DbSession = Annotated[Session, Depends(get_session, scope="function")]


def _raw_key(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthenticated("Authorization header must be 'Bearer <api key>'")
        return value.strip()
    return request.headers.get("x-api-key") or None


class Access:
    """A route's access rule: the roles it admits. Used as a FastAPI dependency."""

    def __init__(self, roles: frozenset[Role]) -> None:
        if not roles:
            raise ValueError("an access rule must name at least one role")
        self.roles = roles

    def __repr__(self) -> str:
        return f"Access({sorted(r.value for r in self.roles)})"

    async def __call__(self, request: Request) -> Principal:
        raw = _raw_key(request)
        if raw is None:
            if Role.public in self.roles:
                return ANONYMOUS
            raise Unauthenticated("This route needs an API key")
        ttl = request.app.state.settings.auth_cache_seconds
        fp = PrincipalCache.fingerprint(raw)
        cached = principal_cache.get(fp) if ttl > 0 else None
        if cached is not None:
            principal = cached
        else:
            # A miss needs the database: off the event loop, in a short transaction of its own.
            principal, expires_at = await run_in_threadpool(_authenticate, request, raw)
            if ttl > 0:
                principal_cache.put(fp, principal, ttl, expires_at)
        request.state.principal = principal
        if principal.role not in self.roles and Role.public not in self.roles:
            raise Forbidden(
                f"Role {principal.role.value} may not call this route; it admits "
                + ", ".join(sorted(r.value for r in self.roles))
            )
        return principal


# How a presented key becomes a principal: the organisations slice owns the keys, so `create_app`
# installs its function here (core knows no capability). Returns the principal and the key's expiry.
Authenticator = Callable[[Session, str], tuple[Principal, datetime | None]]


def install_authenticator(app: Any, authenticate: Authenticator) -> None:
    app.state.authenticate = authenticate


def _authenticate(request: Request, raw: str) -> tuple[Principal, datetime | None]:
    authenticate: Authenticator = request.app.state.authenticate
    with request.app.state.db.session() as session:
        return authenticate(session, raw)


def allow(*roles: Role) -> Any:
    """`principal: Principal = allow(Role.platform_admin, ...)` in a route's signature."""
    return Depends(Access(frozenset(roles)))


def allow_public() -> Any:
    return Depends(Access(frozenset({Role.public})))


def iter_routes(routes: Any) -> Iterator[tuple[str, Any]]:
    """Every route with its full path, looking inside included routers.

    Newer FastAPI keeps included routers as nested objects instead of copying their routes into the
    app, so walking `app.routes` alone would see nothing to check.
    """
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:
            for ctx in contexts():
                yield ctx.path, ctx.original_route
        else:
            yield getattr(route, "path", ""), route


def route_access(route: Any) -> Access | None:
    """The access rule declared by a route, if any (used by the route-table test and the docs)."""
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return None
    stack = list(dependant.dependencies)
    while stack:
        dep = stack.pop()
        if isinstance(dep.call, Access):
            return dep.call
        stack.extend(dep.dependencies)
    return None
