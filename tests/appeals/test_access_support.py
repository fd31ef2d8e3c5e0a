"""Helpers for the decision-log tests ("who looked me up", patterns, node relay): no tests in this file."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.blacklist.schemas import EntryIn
from fanchaoxin.core import vault
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.calendar import SHANGHAI
from fanchaoxin.core.db import Database
from fanchaoxin.core.identifiers import normalise
from fanchaoxin.orgs.models import DecisionLogIdentifier, DecisionLogRecord
from fanchaoxin.workflows.entries import take_step

REVIEWER = Actor("test:reviewer")


def publish(db: Database, org_id: uuid.UUID, body: dict) -> uuid.UUID:  # type: ignore[type-arg]
    """Submit, review and publish an entry (an enterprise finding's notice period already over)."""
    with db.session() as s:
        e = registry.submit(s, REVIEWER, org_id, EntryIn.model_validate(body))
        take_step(s, REVIEWER, e, Action.start_review)
        if body["basis"] == "enterprise_finding":
            take_step(s, REVIEWER, e, Action.open_notice)
            e.notice_ends_on = date.today() - timedelta(days=1)
        take_step(s, REVIEWER, e, Action.publish)
        return e.id


def digest(type_: str, value: str) -> str:
    """The platform's digest of an identifier in the decision log."""
    return vault.identifier_index(type_, normalise(type_, value))


def log_record(
    db: Database,
    org_id: uuid.UUID,
    at: datetime,
    digests: list[str],
    *,
    kind: str = "decision",
    channel: str = "platform",
    purpose: str | None = None,
    entry_ids: list[str] | None = None,
    scene: str | None = "account_registration",
) -> uuid.UUID:
    """One decision-log record, as the platform's writer (or a node's relay) stores it."""
    with db.session() as s:
        r = DecisionLogRecord(
            at=at,
            org_id=org_id,
            channel=channel,
            kind=kind,
            purpose=purpose,
            scene=scene,
            verdict="deny" if entry_ids else "allow",
            entry_ids=entry_ids or [],
            node_record_id=str(uuid.uuid4()) if channel == "node" else None,
        )
        s.add(r)
        s.flush()
        for d in dict.fromkeys(digests):
            s.add(DecisionLogIdentifier(record_id=r.id, digest=d))
        return r.id


def month_of(at: datetime) -> str:
    return at.astimezone(SHANGHAI).strftime("%Y-%m")
