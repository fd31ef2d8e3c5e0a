"""Who is calling, and may they call this route.

Every route declares the roles it admits with `allow(...)` (or `allow_public()`); a test walks the
route table and fails on any route without such a rule. Keys are sent as `Authorization: Bearer
fcx_<prefix>_<secret>` or `X-API-Key: …`.

Each application (each API process) keeps its own `KeyAuth`: a cache of recently authenticated keys,
a watch on revocations made anywhere, and the record of refused keys (see each class).
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Protocol

from fastapi import Depends, Request
from sqlalchemy import event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from fanchaoxin.core import audit, crypto
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.db import Database
from fanchaoxin.core.errors import Forbidden, Unauthenticated
from fanchaoxin.core.roles import OrgKind, Role

log = logging.getLogger(__name__)

PLATFORM_ROLES = frozenset({Role.platform_admin, Role.platform_reviewer, Role.auditor})
STAFF_ROLES = frozenset(Role) - {Role.public}
# The standing code of an enterprise whose information-sharing agreement is in force (orgs.agreements).
AGREEMENT_IN_FORCE = "agreement.in_force"

Clock = Callable[[], float]


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request."""

    role: Role
    org_id: uuid.UUID | None = None
    org_kind: OrgKind | None = None
    key_id: uuid.UUID | None = None
    key_prefix: str | None = None
    business_types: frozenset[str] = field(default_factory=frozenset)
    # An enterprise's agreement standing (orgs.agreements: `agreement.in_force`, `agreement.suspended` …)
    # and its params (the suspension's reason …), set by the authenticator; None for the platform and
    # departments, which do not sign. `core.permissions.require_agreement` reads it: no query.
    agreement: str | None = None
    agreement_params: tuple[tuple[str, str], ...] = ()

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


class InvalidKey(Unauthenticated):
    """A presented key that is refused. The caller is told only that it is invalid: whether it is
    unknown, revoked or expired would tell someone holding a stolen or guessed key what to try next.
    The reason goes to the audit log (`auth.refused`), never into the answer."""

    title = "Invalid API key"
    title_zh = "访问密钥无效"

    def __init__(
        self,
        reason: str,
        *,
        key_prefix: str | None = None,
        key_id: uuid.UUID | None = None,
        org_id: uuid.UUID | None = None,
    ) -> None:
        super().__init__("Invalid API key")
        self.reason = reason
        self.key_prefix = key_prefix
        self.key_id = key_id
        self.org_id = org_id


class PrincipalCache:
    """Recently authenticated keys, so that a hot route (decisions) needs no database round trip.

    Keyed by the SHA-256 of the presented key, never the key itself. An entry lives at most `ttl`
    seconds and never past the key's own expiry. A revocation in this process forgets the key at once
    (`forget_principals`); one made anywhere else empties the cache within
    FCX_AUTH_REVOCATION_CHECK_SECONDS (`RevocationWatch`).

    `generation` moves on every forgetting: an answer read from the database before a forgetting is
    not stored after it, so a request racing a revocation cannot put the revoked key back.
    """

    def __init__(self, max_entries: int = 10_000, *, clock: Clock = time.monotonic) -> None:
        self.max_entries = max_entries
        self.clock = clock
        self.generation = 0
        self._entries: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def fingerprint(raw: str) -> str:
        # Process-local: the active profile's digest, never stored
        return crypto.active().hexdigest(raw.encode())

    def get(self, fingerprint: str) -> Principal | None:
        hit = self._entries.get(fingerprint)
        if hit is None:
            return None
        principal, until = hit
        if self.clock() >= until:
            with self._lock:
                self._entries.pop(fingerprint, None)
            return None
        return principal

    def put(
        self,
        fingerprint: str,
        principal: Principal,
        ttl: float,
        expires_at: datetime | None,
        *,
        generation: int | None = None,
    ) -> None:
        lifetime = ttl
        if expires_at is not None:
            lifetime = min(lifetime, expires_at.timestamp() - time.time())
        if lifetime <= 0:
            return
        with self._lock:
            if generation is not None and generation != self.generation:
                return
            self._entries[fingerprint] = (principal, self.clock() + lifetime)
            self._entries.move_to_end(fingerprint)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def invalidate(self, *, key_prefix: str | None = None, org_id: uuid.UUID | None = None) -> None:
        with self._lock:
            self.generation += 1
            for fp, (p, _) in list(self._entries.items()):
                if (key_prefix is not None and p.key_prefix == key_prefix) or (
                    org_id is not None and p.org_id == org_id
                ):
                    del self._entries[fp]

    def clear(self) -> None:
        with self._lock:
            self.generation += 1
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class RevocationWatch:
    """Notices revocations made by any process: the cache is emptied when the revocation epoch moves.

    The epoch (the organisations slice's `revocation_epoch`: revoked keys and deactivated
    organisations, counted and latest) is read at most once per interval, by one request at a time,
    off the event loop; the others meanwhile go on with the cache as it is. A revocation is therefore
    refused everywhere within the interval plus one query.

    While the database cannot be read, cached keys stay usable until their entries expire
    (FCX_AUTH_CACHE_SECONDS): decisions go on answering from memory through a short outage (a process
    cut off from the database cannot see a revocation made elsewhere meanwhile; it would not see it
    any sooner by refusing everyone). The epoch it last read is kept, so a revocation made during the
    outage empties the cache at the first read that succeeds.
    """

    def __init__(self, *, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self._checked_at: float | None = None
        self._epoch: Hashable | None = None
        self._lock = threading.Lock()

    def due(self, interval: float) -> bool:
        return not self._lock.locked() and (
            self._checked_at is None or self.clock() - self._checked_at >= interval
        )

    def check(self, read_epoch: Callable[[], Hashable], cache: PrincipalCache, interval: float) -> None:
        if not self._lock.acquire(blocking=False):
            return  # another request is reading it
        try:
            if self._checked_at is not None and self.clock() - self._checked_at < interval:
                return  # read while this request was on its way
            started = self.clock()
            try:
                epoch = read_epoch()
            except SQLAlchemyError:
                log.warning("could not read the revocation epoch; retrying in %s s", interval, exc_info=True)
            else:
                # First read: whatever is cached (by requests that came meanwhile) may predate it.
                if self._epoch is None or epoch != self._epoch:
                    cache.clear()
                self._epoch = epoch
            self._checked_at = started
        finally:
            self._lock.release()


class RefusalLog:
    """Which refused keys are written to the audit log (`auth.refused`).

    Anyone can send any number of made-up keys, and every audit row takes the chain's lock, so each
    (key prefix, reason) is written at most once per `window` seconds in each process; the row says
    how many refusals were folded into it since the previous one. A key that exists (wrong secret,
    revoked, expired, organisation inactive) is named by its prefix; made-up and malformed keys are
    not (what they carry is the sender's choice, not a key of ours), so they share one row per reason
    per window. The number of rows is thus bounded by the keys that exist, whatever a flood sends.
    """

    def __init__(
        self, *, window: float = 60.0, max_entries: int = 10_000, clock: Clock = time.monotonic
    ) -> None:
        self.window = window
        self.max_entries = max_entries
        self.clock = clock
        self._seen: OrderedDict[tuple[str | None, str], tuple[float, int]] = OrderedDict()
        self._lock = threading.Lock()

    def admit(self, prefix: str | None, reason: str) -> int | None:
        """None: fold this refusal into the last row; else write a row now, with this many folded."""
        now = self.clock()
        key = (prefix, reason)
        with self._lock:
            hit = self._seen.get(key)
            if hit is not None and now - hit[0] < self.window:
                self._seen[key] = (hit[0], hit[1] + 1)
                return None
            self._seen[key] = (now, 0)
            self._seen.move_to_end(key)
            while len(self._seen) > self.max_entries:
                self._seen.popitem(last=False)
            return hit[1] if hit is not None else 0


class Authenticator(Protocol):
    """How a presented key becomes a principal. The organisations slice owns the keys, so `create_app`
    installs its authenticator (core knows no capability)."""

    def __call__(
        self, session: Session, raw: str, *, lock: bool = False
    ) -> tuple[Principal, datetime | None]:
        """The principal and until when the answer may be reused (the key's expiry), or `InvalidKey`.

        `lock`: hold the key's row until the session's transaction ends, so that no revocation can
        commit between this check and what the request then does."""
        ...

    def revocation_epoch(self, session: Session) -> Hashable:
        """A value that changes whenever a key is revoked or an organisation deactivated."""
        ...


class KeyAuth:
    """The keys of one application (one API process): cache, revocation watch, refusal record."""

    def __init__(self, authenticate: Authenticator, *, clock: Clock = time.monotonic) -> None:
        self.authenticate = authenticate
        self.cache = PrincipalCache(clock=clock)
        _caches.add(self.cache)
        self.watch = RevocationWatch(clock=clock)
        self.refusals = RefusalLog(clock=clock)

    async def principal(self, request: Request, raw: str) -> Principal:
        settings = request.app.state.settings
        db: Database = request.app.state.db
        ttl: float = settings.auth_cache_seconds
        if ttl <= 0:
            return (await run_in_threadpool(self._authenticate, db, raw))[0]
        interval: float = settings.auth_revocation_check_seconds
        if self.watch.due(interval):
            await run_in_threadpool(self.watch.check, lambda: self._epoch(db), self.cache, interval)
        fp = PrincipalCache.fingerprint(raw)
        cached = self.cache.get(fp)
        if cached is not None:
            return cached
        generation = self.cache.generation
        # A miss needs the database: off the event loop, in a short transaction of its own.
        principal, expires_at = await run_in_threadpool(self._authenticate, db, raw)
        self.cache.put(fp, principal, ttl, expires_at, generation=generation)
        return principal

    def _authenticate(self, db: Database, raw: str) -> tuple[Principal, datetime | None]:
        with db.session() as session:
            return self.authenticate(session, raw)

    def _epoch(self, db: Database) -> Hashable:
        with db.session() as session:
            return self.authenticate.revocation_epoch(session)

    def refused(self, request: Request, exc: InvalidKey) -> None:
        """Audit a refusal, if `RefusalLog` admits it (a thread may block here: not on the event loop)."""
        folded = self.refusals.admit(exc.key_prefix, exc.reason)
        if folded is not None:
            self.record_refusal(request, exc, folded)

    async def refused_async(self, request: Request, exc: InvalidKey) -> None:
        folded = self.refusals.admit(exc.key_prefix, exc.reason)
        if folded is not None:
            await run_in_threadpool(self.record_refusal, request, exc, folded)

    def record_refusal(self, request: Request, exc: InvalidKey, folded: int) -> None:
        """One `auth.refused` row, in a transaction of its own (the request's is rolled back with the
        error). The key's secret is never in it: the prefix names the key."""
        route = request.scope.get("route")
        detail: dict[str, Any] = {
            "reason": exc.reason,
            "folded": folded,
            "route": f"{request.method} {getattr(route, 'path', '-')}",
            "address": request.client.host if request.client else None,
        }
        actor = Actor(f"key:{exc.key_prefix}", exc.org_id) if exc.key_prefix else Actor("public")
        log.info("API key refused: %s (key %s)", exc.reason, exc.key_prefix or "-")
        try:
            with request.app.state.db.session() as session:
                audit.record(session, actor, "auth.refused", "api_key", exc.key_id or "-", detail=detail)
        except SQLAlchemyError:
            # The caller is refused either way; a database that cannot take the row must not turn the
            # 401 into a 500.
            log.warning("could not audit a refused API key", exc_info=True)


def install_authenticator(app: Any, authenticate: Authenticator, *, clock: Clock = time.monotonic) -> None:
    """Give the application its own keys state (tests pass a clock; two apps model two processes)."""
    app.state.keys = KeyAuth(authenticate, clock=clock)


def _keys(request: Request) -> KeyAuth:
    keys: KeyAuth = request.app.state.keys
    return keys


_CACHE_INFO = "fcx_principal_cache"


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request: committed when the handler returns, rolled back on any error."""
    with request.app.state.db.session() as session:
        keys: KeyAuth | None = getattr(request.app.state, "keys", None)
        if keys is not None:
            session.info[_CACHE_INFO] = keys.cache
        yield session


# scope="function": the commit happens before the response is sent, so a failed commit is an error
# the caller sees, never a 200 for something that was not stored.
DB: Any = Depends(get_session, scope="function")
# The same dependency as a type: `session: DbSession` in a route's signature.
DbSession = Annotated[Session, Depends(get_session, scope="function")]


# Every application's cache in this process, for changes made outside any request (the CLI, scripts).
_caches: weakref.WeakSet[PrincipalCache] = weakref.WeakSet()


def forget_principals(
    session: Session,
    *,
    key_prefix: str | None = None,
    org_id: uuid.UUID | None = None,
    everyone: bool = False,
) -> None:
    """A key revoked or an organisation deactivated in this session: forgotten now and once more after
    the commit, so that a request racing the change cannot cache it again from the not yet committed
    row. By the application whose request it is; outside a request, by every application of this
    process. Other processes notice within the revocation check interval (`RevocationWatch`).
    `everyone`: every cached principal (a change that may touch any organisation, e.g. a new
    agreement version)."""
    own: PrincipalCache | None = session.info.get(_CACHE_INFO)
    caches = [own] if own is not None else list(_caches)

    def forget(_session: Session | None = None) -> None:
        for cache in caches:
            if everyone:
                cache.clear()
            else:
                cache.invalidate(key_prefix=key_prefix, org_id=org_id)

    forget()
    event.listen(session, "after_commit", forget, once=True)


def _raw_key(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise InvalidKey("malformed_header")
        return value.strip()
    return request.headers.get("x-api-key") or None


class Access:
    """A route's access rule: the roles it admits. Used as a FastAPI dependency."""

    fresh = False

    def __init__(self, roles: frozenset[Role]) -> None:
        if not roles:
            raise ValueError("an access rule must name at least one role")
        self.roles = roles

    def __repr__(self) -> str:
        return f"Access({sorted(r.value for r in self.roles)})"

    async def __call__(self, request: Request) -> Principal:
        keys = _keys(request)
        try:
            raw = _raw_key(request)
            if raw is None:
                if Role.public in self.roles:
                    return ANONYMOUS
                raise Unauthenticated("This route needs an API key")
            principal = await keys.principal(request, raw)
        except InvalidKey as exc:
            await keys.refused_async(request, exc)
            raise
        request.state.principal = principal
        self.check_role(principal)
        return principal

    def check_role(self, principal: Principal) -> None:
        if principal.role not in self.roles and Role.public not in self.roles:
            raise Forbidden(
                f"Role {principal.role.value} may not call this route; it admits "
                + ", ".join(sorted(r.value for r in self.roles))
            )


class FreshAccess(Access):
    """The rule of a route that grants authority (keys, organisations, policy, quotas): the key is
    checked in the database, in the route's own transaction and holding the key's row, whatever any
    cache says — a key revoked anywhere can do none of these, not even in the instant after."""

    fresh = True

    def __init__(self, roles: frozenset[Role]) -> None:
        if Role.public in roles:
            raise ValueError("a route that grants authority needs a key: it cannot admit the public")
        super().__init__(roles)

    def __repr__(self) -> str:
        return f"FreshAccess({sorted(r.value for r in self.roles)})"

    def __call__(self, request: Request, session: Session = DB) -> Principal:  # type: ignore[override]
        keys = _keys(request)
        try:
            raw = _raw_key(request)
            if raw is None:
                raise Unauthenticated("This route needs an API key")
            principal, _ = keys.authenticate(session, raw, lock=True)
        except InvalidKey as exc:
            # Let go of the key's row first: the refusal is written in a transaction of its own.
            session.rollback()
            keys.refused(request, exc)
            raise
        request.state.principal = principal
        self.check_role(principal)
        return principal


def allow(*roles: Role, fresh: bool = False) -> Any:
    """`principal: Principal = allow(Role.platform_admin, ...)` in a route's signature.

    `fresh=True` for routes that grant authority (`FreshAccess`)."""
    rule = FreshAccess(frozenset(roles)) if fresh else Access(frozenset(roles))
    return Depends(rule)


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


# --- client addresses -------------------------------------------------------------------------------


def trusted_proxies(value: str) -> list[str]:
    """FCX_TRUSTED_PROXIES as a list of addresses and networks (CIDR), or ValueError naming the entry."""
    out = []
    for item in (p.strip() for p in value.split(",")):
        if not item:
            continue
        try:
            out.append(
                str(ipaddress.ip_network(item, strict=False))
                if "/" in item
                else str(ipaddress.ip_address(item))
            )
        except ValueError:
            raise ValueError(
                f"FCX_TRUSTED_PROXIES: {item!r} is not an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/8)"
            ) from None
    return out


def proxy_header_options(value: str) -> dict[str, Any]:
    """uvicorn's options for X-Forwarded-For/-Proto under FCX_TRUSTED_PROXIES.

    Per-address limits (sign-in, public query, public filings) key on the client address. uvicorn
    believes the header from 127.0.0.1 unless told otherwise, so anyone on the same host could send a
    new address with every request; with no proxy configured the header is not read at all, and with
    proxies it is read only from them (the client is the last address in the chain that is not one).
    """
    proxies = trusted_proxies(value)
    if not proxies:
        return {"proxy_headers": False, "forwarded_allow_ips": ""}
    return {"proxy_headers": True, "forwarded_allow_ips": ",".join(proxies)}
