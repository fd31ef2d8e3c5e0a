"""Webhooks from a transactional outbox: at-least-once, retried with back-off, dead letters replayable.

``sharing.changes.append`` writes the outbox rows, in the transaction of the change: one outbox row
per active subscription, so an event is pushed if and only if it committed. :func:`deliver_due` (the
``fcx serve`` delivery thread, or ``fcx sharing deliver``) claims due rows with a short lease, POSTs
``{"event_id", "seq", "event", "record"}`` signed with :func:`protocol.webhook_headers`, and on failure
schedules the next attempt after ``min(cap, base · 2^(attempts-1))`` seconds with jitter (half to all of
it); after the last attempt the row is dead until an admin replays it. The event id (``evt_<seq>``) is
the same on every retry and replay: receivers dedupe by it.

Enterprises receive the shared record (tags only). Departments receive only events of entries on a
punishing basis (``core.catalogue.punishing_bases()``: an administrative penalty or a judicial decision),
in full (subject name and plain identifiers: their role may see them); each such delivery is an audited
``pii.read``-style event.
"""

from __future__ import annotations

import ipaddress
import logging
import random
import secrets
import socket
import threading
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fanchaoxin.core import audit
from fanchaoxin.core.audit import SYSTEM, Actor
from fanchaoxin.core.auth import Principal
from fanchaoxin.core.db import Database, utcnow
from fanchaoxin.core.errors import Conflict, NotFound, ValidationProblem
from fanchaoxin.core.roles import OrgKind
from fanchaoxin.core.settings import Settings, get_settings
from fanchaoxin.orgs.models import Organisation
from fanchaoxin.sharing import keys as sharing_keys
from fanchaoxin.sharing import protocol
from fanchaoxin.sharing.feed import shared_event_records, subject_identifiers
from fanchaoxin.sharing.models import FeedEvent, OutboxItem, Webhook
from fanchaoxin.subjects.models import Subject

log = logging.getLogger(__name__)

LEASE_SECONDS = 60
MAX_WEBHOOKS_PER_ORG = 5


def _invalid(field: str, message: str) -> ValidationProblem:
    return ValidationProblem(
        f"Invalid {field}: {message}",
        errors=[{"in": "body", "field": field, "type": "value_error", "message": message}],
    )


# --- subscriptions --------------------------------------------------------------------------------------


def subscribe(session: Session, actor: Actor, org: Organisation, url: str) -> tuple[Webhook, str]:
    """Register ``url`` for ``org``; returns the webhook and its secret (shown once)."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _invalid("url", "must be an http:// or https:// URL with a host")
    if len(url) > 500:
        raise _invalid("url", "at most 500 characters")
    problem = destination_problem(url, allow_private=get_settings().sharing_webhook_allow_private)
    if problem:
        raise _invalid("url", problem)
    if org.kind == OrgKind.enterprise.value:
        audience = "enterprise"
    elif org.kind == OrgKind.department.value:
        audience = "department"
    else:
        raise _invalid("org_id", "only enterprises and departments receive feed webhooks")
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


def destination_problem(url: str, *, allow_private: bool) -> str | None:
    """Why the platform must not POST to ``url``, or None.

    A subscriber chooses the URL, so without this check it could make the platform call its own
    network (SSRF: the database, metadata services, admin ports). Checked when subscribing and again
    before every delivery, since a name can be re-pointed after it was accepted.
    """
    if allow_private:
        return None
    host = urlsplit(url).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return None  # not resolvable yet: nothing reached; checked again before each delivery
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not address.is_global:
            return (
                f"host {host!r} resolves to {address}, a loopback, private or reserved address "
                "(set FCX_SHARING_WEBHOOK_ALLOW_PRIVATE=true for receivers on a private network)"
            )
    return None


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


def _claim(db: Database, now: datetime, limit: int) -> list[int]:
    with db.session() as session:
        due = session.execute(
            select(OutboxItem.id, OutboxItem.next_attempt_at)
            .where(OutboxItem.status == "pending", OutboxItem.next_attempt_at <= now)
            .order_by(OutboxItem.next_attempt_at, OutboxItem.id)
            .limit(limit)
        ).all()
        claimed = []
        lease = now + timedelta(seconds=LEASE_SECONDS)
        for item_id, at in due:
            # A conditional update: of two workers, only one moves the row's time (the claim).
            result = session.execute(
                update(OutboxItem)
                .where(
                    OutboxItem.id == item_id, OutboxItem.status == "pending", OutboxItem.next_attempt_at == at
                )
                .values(next_attempt_at=lease)
            )
            if result.rowcount == 1:
                claimed.append(item_id)
    return claimed


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
) -> dict[str, int]:
    """Deliver what is due now; ``{"delivered", "failed", "dead"}``."""
    settings = settings or get_settings()
    now = now or utcnow()
    counts = {"delivered": 0, "failed": 0, "dead": 0}
    ids = _claim(db, now, limit)
    if not ids:
        return counts
    own_client = client is None
    client = client or httpx.Client(timeout=settings.sharing_webhook_timeout_seconds)
    try:
        for item_id in ids:
            with db.session() as session:
                item = session.get(OutboxItem, item_id)
                if item is None or item.status != "pending":
                    continue
                if not item.webhook.active:
                    item.status = "cancelled"
                    continue
                body, fields = payload(session, item)
                url, secret = item.webhook.url, item.webhook.secret
            data = protocol.canonical_json(body)
            headers = protocol.webhook_headers(secret.encode(), body["event_id"], data)
            status, error = None, None
            try:
                refused = destination_problem(url, allow_private=settings.sharing_webhook_allow_private)
                if refused:
                    raise httpx.ConnectError(f"destination refused: {refused}")
                response = client.post(url, content=data, headers=headers)
                status = response.status_code
                if not 200 <= status < 300:
                    error = f"HTTP {status}: {response.text[:200]}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"[:500]
            with db.session() as session:
                item = session.get(OutboxItem, item_id)
                assert item is not None
                item.last_status = status
                item.attempts += 1
                if error is None:
                    item.status = "delivered"
                    item.delivered_at = utcnow()
                    item.last_error = None
                    counts["delivered"] += 1
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
                elif item.attempts >= settings.sharing_webhook_max_attempts:
                    item.status = "dead"
                    item.dead_at = utcnow()
                    item.last_error = error
                    counts["dead"] += 1
                    log.warning(
                        "webhook %s: event %s dead after %d attempts: %s",
                        item.webhook_id,
                        item.seq,
                        item.attempts,
                        error,
                    )
                else:
                    item.last_error = error
                    item.next_attempt_at = utcnow() + timedelta(seconds=backoff(item.attempts, settings, rng))
                    counts["failed"] += 1
    finally:
        if own_client:
            client.close()
    return counts


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
    with httpx.Client(timeout=get_settings().sharing_webhook_timeout_seconds) as client:
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
