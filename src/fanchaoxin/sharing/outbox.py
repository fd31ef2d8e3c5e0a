"""Webhooks from a transactional outbox: at-least-once, retried with back-off, dead letters replayable.

``sharing.changes.append`` writes the outbox rows, in the transaction of the change: one outbox row
per active subscription, so an event is pushed if and only if it committed. :func:`deliver_due` (the
``fcx serve`` delivery thread, or ``fcx sharing deliver``) claims one due row at a time, right before
its attempt, with a lease longer than an attempt (so that two workers rarely deliver the same row), POSTs
``{"event_id", "seq", "event", "record"}`` signed with :func:`protocol.webhook_headers` to an address
that passed the SSRF check in the same attempt (:func:`pinned_post`), and on failure
schedules the next attempt after ``min(cap, base · 2^(attempts-1))`` seconds with jitter (half to all of
it); after the last attempt the row is dead until an admin replays it. The event id (``evt_<seq>``) is
the same on every retry and replay: receivers dedupe by it.

Each POST carries ``X-Request-ID``: the request that made the change (``feed_events.request_id``, #23),
and every line logged about the delivery names it, so a receiver's logs and the platform's meet on one id.

Enterprises receive the shared record (tags only), and only while their information-sharing agreement is
in force (orgs.agreements.standing, #22): a delivery due to an enterprise that is suspended, has
withdrawn or lapsed is cancelled, not sent (the feed, from its cursor, is the way back after a
reinstatement). Departments receive only events of entries on a
punishing basis (``core.catalogue.punishing_bases()``: an administrative penalty or a judicial decision),
in full (subject name and plain identifiers: their role may see them), over https only; each such
delivery is an audited ``pii.read``-style event.
"""

from __future__ import annotations

import ipaddress
import logging
import random
import secrets
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from fanchaoxin.core import audit
from fanchaoxin.core.audit import SYSTEM, Actor
from fanchaoxin.core.auth import Principal
from fanchaoxin.core.db import Database, utcnow
from fanchaoxin.core.errors import Conflict, NotFound, ValidationProblem
from fanchaoxin.core.logs import REQUEST_ID_HEADER, job_request_id, request_context
from fanchaoxin.core.roles import OrgKind
from fanchaoxin.core.settings import Settings, get_settings
from fanchaoxin.orgs import agreements
from fanchaoxin.orgs.models import Organisation
from fanchaoxin.sharing import keys as sharing_keys
from fanchaoxin.sharing import protocol
from fanchaoxin.sharing.feed import shared_event_records, subject_identifiers
from fanchaoxin.sharing.models import FeedEvent, OutboxItem, Webhook
from fanchaoxin.subjects.models import Subject

log = logging.getLogger(__name__)

LEASE_SECONDS = 60
MAX_WEBHOOKS_PER_ORG = 5
# Addresses of one name tried in turn when a connection is refused (each may take the connect timeout).
_MAX_ADDRESSES = 2
# Due rows one claim looks at: another worker may take the first ones between the look and the claim.
_CLAIM_CANDIDATES = 8


def _invalid(field: str, message: str) -> ValidationProblem:
    return ValidationProblem(
        f"Invalid {field}: {message}",
        errors=[{"in": "body", "field": field, "type": "value_error", "message": message}],
    )


# --- subscriptions --------------------------------------------------------------------------------------


def subscribe(
    session: Session, actor: Actor, org: Organisation, url: str, *, resolver: Resolver | None = None
) -> tuple[Webhook, str]:
    """Register ``url`` for ``org``; returns the webhook and its secret (shown once)."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _invalid("url", "must be an http:// or https:// URL with a host")
    if len(url) > 500:
        raise _invalid("url", "at most 500 characters")
    if org.kind == OrgKind.enterprise.value:
        audience = "enterprise"
    elif org.kind == OrgKind.department.value:
        audience = "department"
    else:
        raise _invalid("org_id", "only enterprises and departments receive feed webhooks")
    allow_private = get_settings().sharing_webhook_allow_private
    problem = scheme_problem(url, audience, allow_private=allow_private) or destination_problem(
        url, allow_private=allow_private, resolver=resolver
    )
    if problem:
        raise _invalid("url", problem)
    active = session.scalars(select(Webhook).where(Webhook.owner_org_id == org.id, Webhook.active)).all()
    if any(w.url == url for w in active):
        raise Conflict(f"{url} is already subscribed")
    if len(active) >= MAX_WEBHOOKS_PER_ORG:
        raise Conflict(f"An organisation may have at most {MAX_WEBHOOKS_PER_ORG} active webhooks")
    secret = "whsec_" + secrets.token_urlsafe(32)
    hook = Webhook(
        owner_org_id=org.id, url=url, secret=secret, audience=audience, active=True, created_by=actor.name
    )
    session.add(hook)
    session.flush()
    audit.record(session, actor, "sharing.webhook.create", "webhook", hook.id, after=hook.snapshot())
    return hook, secret


class Refused(Exception):
    """The platform will not connect to this destination (the message says why)."""


# What a receiver's name may resolve to is checked address by address; these IPv6 ranges carry an IPv4
# address that the check must look into (Python's ``is_global`` calls them global whatever they wrap).
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the NAT64 of any IPv4 address, 10.x included
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: a site's own translators
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d (and ::, ::1)
_PRIVATE_HINT = "(set FCX_SHARING_WEBHOOK_ALLOW_PRIVATE=true for receivers on a private network)"


def _address_refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why the platform must not connect to ``address``, or None for a public unicast address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return "a link-local address with a zone"
        if address.ipv4_mapped is not None:
            return "an IPv4-mapped IPv6 address"
        if address in _NAT64:
            inner = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
            why = _address_refused(inner)
            return f"the NAT64 address of {inner}, {why}" if why else None
        if address in _NAT64_LOCAL:
            return "a local-use NAT64 address"
        if address.sixtofour is not None:
            why = _address_refused(address.sixtofour)
            return f"the 6to4 address of {address.sixtofour}, {why}" if why else None
        if address in _IPV4_COMPATIBLE:
            return "an IPv4-compatible IPv6 address"
    if address.is_multicast:
        return "a multicast address"
    if not address.is_global:
        return "a loopback, private or reserved address"
    return None


Resolver = Callable[[str, int], list[str]]


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses of ``host`` (a zone kept as ``%<scope id>``, so that the check sees it)."""
    out = []
    for _, _, _, _, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = str(sockaddr[0]).split("%")[0]
        if len(sockaddr) == 4 and sockaddr[3]:  # an IPv6 scope id: fe80::1%eth0
            address = f"{address}%{sockaddr[3]}"
        if address not in out:
            out.append(address)
    return out


def checked_addresses(url: str, *, resolver: Resolver | None = None) -> list[str]:
    """Resolve the URL's host ONCE and check every address; the addresses to connect to, in order.

    A subscriber chooses the URL, so without this check it could make the platform call its own
    network (SSRF: the database, metadata services, admin ports). The delivery connects to these very
    addresses (:func:`pinned_post`): a name that answers a public address to the check and a private one
    to a second lookup (DNS rebinding) gets no second lookup. Raises :class:`Refused`, or
    ``socket.gaierror`` when the name does not resolve.
    """
    parts = httpx.URL(url)
    host = parts.host
    if "%" in host:
        raise Refused(f"host {host!r} is a link-local address with a zone")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = (resolver or system_resolver)(parts.raw_host.decode("ascii"), port)
    if not addresses:
        raise socket.gaierror(socket.EAI_NONAME, f"{host} has no address")
    for text in addresses:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise Refused(f"host {host!r} resolves to {text!r}, not an IP address") from None
        why = _address_refused(address)
        if why:
            raise Refused(f"host {host!r} resolves to {address}, {why} {_PRIVATE_HINT}")
    return addresses


def destination_problem(url: str, *, allow_private: bool, resolver: Resolver | None = None) -> str | None:
    """Why the platform must not POST to ``url``, or None (checked when subscribing; each delivery
    checks again, and connects only to what it checked)."""
    if allow_private:
        return None
    try:
        checked_addresses(url, resolver=resolver)
    except Refused as exc:
        return str(exc)
    except httpx.InvalidURL as exc:
        return f"not a URL the platform can call: {exc}"
    except (socket.gaierror, UnicodeError):
        return None  # not resolvable yet: nothing reached; checked again before each delivery
    return None


def scheme_problem(url: str, audience: str, *, allow_private: bool) -> str | None:
    """A department receives names and plain identifiers: never over plain HTTP on the internet."""
    if audience == "department" and not allow_private and urlsplit(url).scheme != "https":
        return "a department's webhook carries personal data: it must be an https:// URL"
    return None


def pinned_post(
    client: httpx.Client,
    url: str,
    *,
    content: bytes,
    headers: dict[str, str],
    allow_private: bool,
    resolver: Resolver | None = None,
) -> httpx.Response:
    """POST to ``url`` on an address checked in this call (see :func:`checked_addresses`).

    The request goes to the IP itself, with the URL's Host header, and for https the hostname as TLS
    SNI — which is also the name the certificate is verified against. The client must not keep
    connections alive (:func:`delivery_client`): a pooled connection is keyed by IP and would carry
    another hostname's request over a TLS session verified for the first one.
    """
    if allow_private:
        return client.post(url, content=content, headers=headers)
    try:
        addresses = checked_addresses(url, resolver=resolver)
    except Refused as exc:
        raise httpx.ConnectError(f"destination refused: {exc}") from None
    except (socket.gaierror, UnicodeError, httpx.InvalidURL) as exc:
        raise httpx.ConnectError(f"cannot resolve the host of {url}: {exc}") from None
    target = httpx.URL(url)
    pinned_headers = {**headers, "Host": target.netloc.decode("ascii")}
    extensions = {"sni_hostname": target.raw_host.decode("ascii")} if target.scheme == "https" else {}
    error: httpx.ConnectError | None = None
    for address in addresses[:_MAX_ADDRESSES]:
        try:
            return client.post(
                target.copy_with(host=address),
                content=content,
                headers=pinned_headers,
                extensions=extensions,
            )
        except httpx.ConnectError as exc:  # refused or unreachable: the next checked address
            error = exc
    assert error is not None
    raise error


def delivery_client(settings: Settings) -> httpx.Client:
    """The HTTP client of webhook deliveries: no keep-alive (see :func:`pinned_post`), no proxy from the
    environment (a proxy would resolve the name itself), no redirects (a 3xx is a failed attempt)."""
    return httpx.Client(
        timeout=settings.sharing_webhook_timeout_seconds,
        limits=httpx.Limits(max_keepalive_connections=0),
        trust_env=False,
        follow_redirects=False,
    )


def list_webhooks(session: Session, principal: Principal) -> list[Webhook]:
    stmt = select(Webhook).where(Webhook.active).order_by(Webhook.created_at)
    if not principal.is_platform:
        stmt = stmt.where(Webhook.owner_org_id == principal.org_id)
    return list(session.scalars(stmt))


def get_webhook(session: Session, webhook_id: uuid.UUID, principal: Principal) -> Webhook:
    hook = session.get(Webhook, webhook_id)
    if (
        hook is None
        or not hook.active
        or (not principal.is_platform and hook.owner_org_id != principal.org_id)
    ):
        raise NotFound(f"No webhook {webhook_id}")
    return hook


def unsubscribe(session: Session, actor: Actor, hook: Webhook) -> None:
    before = hook.snapshot()
    hook.active = False
    hook.deleted_at = utcnow()
    session.execute(
        update(OutboxItem)
        .where(OutboxItem.webhook_id == hook.id, OutboxItem.status == "pending")
        .values(status="cancelled")
    )
    audit.record(
        session, actor, "sharing.webhook.delete", "webhook", hook.id, before=before, after=hook.snapshot()
    )


# --- the outbox -----------------------------------------------------------------------------------------


def backoff(attempts: int, settings: Settings, rng: random.Random | None = None) -> float:
    """Seconds before attempt ``attempts + 1``: exponential, capped, with jitter (half to all of it)."""
    delay = min(
        settings.sharing_webhook_backoff_cap_seconds,
        settings.sharing_webhook_backoff_base_seconds * 2 ** max(0, attempts - 1),
    )
    return (rng or random).uniform(delay / 2, delay)


def lease_seconds(settings: Settings) -> float:
    """How long a claimed delivery is left alone by other workers: longer than one attempt can take
    (httpx's timeout bounds connect, write and read one by one, and up to two addresses are tried)."""
    return max(LEASE_SECONDS, (_MAX_ADDRESSES + 2) * settings.sharing_webhook_timeout_seconds)


def _claim_one(db: Database, now: datetime, lease: timedelta, skip: set[int]) -> int | None:
    """Claim the next due delivery for ONE attempt (None when nothing is due).

    Claimed just before its attempt, so the lease has to outlive that attempt only. (Claiming a batch
    with one lease let a slow receiver push the batch's last rows past it while they still waited their
    turn; another worker then took them as well and they were delivered twice.) ``skip``: rows this
    round has attempted already (a failed one may be due again before the round ends).
    """
    with db.session() as session:
        due = session.execute(
            select(OutboxItem.id, OutboxItem.next_attempt_at)
            .where(
                OutboxItem.status == "pending",
                OutboxItem.next_attempt_at <= now,
                OutboxItem.id.not_in(skip),
            )
            .order_by(OutboxItem.next_attempt_at, OutboxItem.id)
            .limit(_CLAIM_CANDIDATES)
        ).all()
        for item_id, at in due:
            # A conditional update: of two workers, only one moves the row's time (the claim).
            result = session.execute(
                update(OutboxItem)
                .where(
                    OutboxItem.id == item_id, OutboxItem.status == "pending", OutboxItem.next_attempt_at == at
                )
                .values(next_attempt_at=now + lease)
            )
            if result.rowcount == 1:
                return int(item_id)
    return None


def payload(session: Session, item: OutboxItem) -> tuple[dict[str, Any], list[str]]:
    """The body for one delivery and, for a department, the personal fields it carries."""
    event = session.get(FeedEvent, item.seq)
    assert event is not None
    fields: list[str] = []
    if item.webhook.audience == "department":
        record = dict(event.record)
        subject = session.get(Subject, uuid.UUID(record["subject_id"]))
        pairs = subject_identifiers(session, [record["subject_id"]]).get(record["subject_id"], [])
        record["subject_name"] = subject.name if subject else None
        record["identifiers"] = sorted(f"{t}:{v}" for t, v in pairs)
        fields = sorted({"name"} | {t for t, _ in pairs})
    else:
        record = shared_event_records(session, [event], sharing_keys.load())[0]
    body = {
        "event_id": item.event_id,
        "seq": event.seq,
        "event": event.event,
        "at": event.at.isoformat(),
        "record": record,
    }
    return body, fields


def deliver_due(
    db: Database,
    *,
    settings: Settings | None = None,
    client: httpx.Client | None = None,
    now: datetime | None = None,
    limit: int = 100,
    rng: random.Random | None = None,
    resolver: Resolver | None = None,
) -> dict[str, int]:
    """Deliver up to ``limit`` deliveries due now (``now``: a fixed time, for tests), one claim per
    attempt; ``{"delivered", "failed", "dead"}``."""
    settings = settings or get_settings()
    lease = timedelta(seconds=lease_seconds(settings))
    allow_private = settings.sharing_webhook_allow_private
    counts = {"delivered": 0, "failed": 0, "dead": 0}
    own_client = client is None
    attempted: set[int] = set()
    # Whether each subscriber's agreement is in force, read once per run (a run is short).
    takes_part: dict[uuid.UUID, bool] = {}
    try:
        for _ in range(limit):
            item_id = _claim_one(db, now or utcnow(), lease, attempted)
            if item_id is None:
                break
            attempted.add(item_id)
            with db.session() as session:
                item = session.get(OutboxItem, item_id)
                if item is None or item.status != "pending":
                    continue
                if not item.webhook.active:
                    item.status = "cancelled"
                    continue
                owner = item.webhook.owner_org_id
                if owner not in takes_part:
                    org = session.get(Organisation, owner)
                    takes_part[owner] = org is not None and agreements.standing(session, org).in_force
                if not takes_part[owner]:
                    item.status = "cancelled"
                    item.last_error = "the organisation's information-sharing agreement is not in force"
                    continue
                body, fields = payload(session, item)
                url, secret, audience = item.webhook.url, item.webhook.secret, item.webhook.audience
                event = session.get(FeedEvent, item.seq)  # in the session already (payload)
                change_request = event.request_id if event is not None else None
            # The delivery's lines, and the receiver, get the id of the request that made the change.
            with request_context(change_request or job_request_id("webhooks")) as request_id:
                data = protocol.canonical_json(body)
                headers = protocol.webhook_headers(secret.encode(), body["event_id"], data)
                headers[REQUEST_ID_HEADER] = request_id
                status, error = None, None
                try:
                    refused = scheme_problem(url, audience, allow_private=allow_private)
                    if refused:
                        raise httpx.ConnectError(f"destination refused: {refused}")
                    client = client or delivery_client(settings)
                    response = pinned_post(
                        client,
                        url,
                        content=data,
                        headers=headers,
                        allow_private=allow_private,
                        resolver=resolver,
                    )
                    status = response.status_code
                    if not 200 <= status < 300:
                        error = f"HTTP {status}: {response.text[:200]}"
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}: {exc}"[:500]
                outcome = _record_attempt(db, item_id, body, fields, status, error, settings, rng)
                counts[outcome] += 1
    finally:
        if own_client and client is not None:
            client.close()
    return counts


def _record_attempt(
    db: Database,
    item_id: int,
    body: dict[str, Any],
    fields: list[str],
    status: int | None,
    error: str | None,
    settings: Settings,
    rng: random.Random | None,
) -> str:
    """Write one attempt's outcome (delivered, failed: retried later, dead) and log it."""
    with db.session() as session:
        item = session.get(OutboxItem, item_id)
        assert item is not None
        item.last_status = status
        item.attempts += 1
        where = {"webhook_id": str(item.webhook_id), "seq": item.seq, "event_id": item.event_id}
        if error is None:
            item.status = "delivered"
            item.delivered_at = utcnow()
            item.last_error = None
            if fields:
                audit.record(
                    session,
                    SYSTEM,
                    "sharing.department_delivery",
                    "entry",
                    body["record"]["entry_id"],
                    detail={
                        "webhook_id": str(item.webhook_id),
                        "org_id": str(item.webhook.owner_org_id),
                        "seq": item.seq,
                        "fields": fields,
                    },
                )
            log.info(
                "webhook %s: event %s delivered (HTTP %s)", item.webhook_id, item.seq, status,
                extra={**where, "attempts": item.attempts, "http_status": status},
            )  # fmt: skip
            return "delivered"
        item.last_error = error
        if item.attempts >= settings.sharing_webhook_max_attempts:
            item.status = "dead"
            item.dead_at = utcnow()
            log.warning(
                "webhook %s: event %s dead after %d attempts: %s",
                item.webhook_id, item.seq, item.attempts, error,
                extra={**where, "attempts": item.attempts, "http_status": status},
            )  # fmt: skip
            return "dead"
        item.next_attempt_at = utcnow() + timedelta(seconds=backoff(item.attempts, settings, rng))
        log.info(
            "webhook %s: event %s attempt %d failed, retried at %s: %s",
            item.webhook_id, item.seq, item.attempts, item.next_attempt_at.isoformat(), error,
            extra={**where, "attempts": item.attempts, "http_status": status},
        )  # fmt: skip
        return "failed"


def queue_figures(session: Session, now: datetime) -> dict[str, float]:
    """The outbox as a queue, for the metrics (#23): deliveries pending, dead, and the age in seconds of
    the oldest pending one (0 when none). Counts on the status index."""
    by_status = dict(
        session.execute(
            select(OutboxItem.status, func.count())
            .where(OutboxItem.status.in_(("pending", "dead")))
            .group_by(OutboxItem.status)
        ).all()
    )
    oldest = session.scalar(select(func.min(OutboxItem.created_at)).where(OutboxItem.status == "pending"))
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=now.tzinfo)
    return {
        "pending": float(by_status.get("pending", 0)),
        "dead": float(by_status.get("dead", 0)),
        "oldest_pending_age_seconds": max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
    }


def dead_letters(session: Session, *, limit: int = 100) -> list[OutboxItem]:
    return list(
        session.scalars(
            select(OutboxItem).where(OutboxItem.status == "dead").order_by(OutboxItem.id).limit(limit)
        )
    )


def replay(session: Session, actor: Actor, item_id: int) -> OutboxItem:
    item = session.get(OutboxItem, item_id)
    if item is None:
        raise NotFound(f"No outbox item {item_id}")
    if item.status != "dead":
        raise Conflict(f"Outbox item {item_id} is {item.status}, not dead")
    if not item.webhook.active:
        raise Conflict(f"The webhook of outbox item {item_id} was deleted")
    before = {"status": item.status, "attempts": item.attempts}
    item.status = "pending"
    item.attempts = 0
    item.dead_at = None
    item.next_attempt_at = utcnow()
    audit.record(
        session,
        actor,
        "sharing.dead_letter.replay",
        "outbox",
        str(item.id),
        before=before,
        after={"status": "pending"},
    )
    return item


def item_out(item: OutboxItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "event_id": item.event_id,
        "seq": item.seq,
        "webhook_id": str(item.webhook_id),
        "org_id": str(item.webhook.owner_org_id),
        "url": item.webhook.url,
        "status": item.status,
        "attempts": item.attempts,
        "last_status": item.last_status,
        "last_error": item.last_error,
        "created_at": item.created_at.isoformat(),
        "dead_at": item.dead_at.isoformat() if item.dead_at else None,
    }


# --- the worker inside `fcx serve` ----------------------------------------------------------------------


def run_worker(db: Database, stop: threading.Event, interval: float) -> None:
    """Deliver due webhooks every ``interval`` seconds until ``stop`` is set."""
    with delivery_client(get_settings()) as client:
        while not stop.is_set():
            try:
                counts = deliver_due(db, client=client)
                if any(counts.values()):
                    log.info("webhooks: %s", counts)
            except Exception:
                log.exception("webhook delivery failed; retrying in %s s", interval)
            stop.wait(interval)


def start_worker(
    db: Database, stop: threading.Event, interval: float | None = None
) -> threading.Thread | None:
    interval = get_settings().sharing_deliver_interval_seconds if interval is None else interval
    if interval <= 0:
        return None
    thread = threading.Thread(target=run_worker, args=(db, stop, interval), daemon=True, name="fcx-webhooks")
    thread.start()
    return thread
