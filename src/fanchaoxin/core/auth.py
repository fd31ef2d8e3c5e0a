"""Who is calling, and may they call this route.

Every route declares the roles it admits with `allow(...)` (or `allow_public()`); a test walks the
route table and fails on any route without such a rule. Keys are sent as `Authorization: Bearer
fcx_<prefix>_<secret>` or `X-API-Key: …`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from fanchaoxin.core.audit import Actor
from fanchaoxin.core.errors import Forbidden, Unauthenticated
from fanchaoxin.orgs.models import OrgKind, Role

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


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request: committed when the handler returns, rolled back on any error."""
    with request.app.state.db.session() as session:
        yield session


# scope="function": the commit happens before the response is sent, so a failed commit is an error
# the caller sees, never a 200 for something that was not stored.
DB: Any = Depends(get_session, scope="function")


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

    def __call__(self, request: Request, session: Session = DB) -> Principal:
        from fanchaoxin.orgs.service import authenticate

        raw = _raw_key(request)
        if raw is None:
            if Role.public in self.roles:
                return ANONYMOUS
            raise Unauthenticated("This route needs an API key")
        principal = authenticate(session, raw)
        request.state.principal = principal
        if principal.role not in self.roles and Role.public not in self.roles:
            raise Forbidden(
                f"Role {principal.role.value} may not call this route; it admits "
                + ", ".join(sorted(r.value for r in self.roles))
            )
        return principal


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
