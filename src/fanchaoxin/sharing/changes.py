"""The change feed (变更流): gap-free, written in the transaction of the change it reports.

One `append()` writes the event, with the one record participants may know of the entry (`record`),
and the webhook outbox rows it causes, in the caller's transaction. The decision index, the outbox,
snapshots and deltas, and so the enterprise node, all read that record.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from fanchaoxin.blacklist.models import Entry
from fanchaoxin.core.db import utcnow
from fanchaoxin.core.logs import current_request_id
from fanchaoxin.orgs.department_kinds import receives
from fanchaoxin.orgs.models import Organisation
from fanchaoxin.sharing import translog
from fanchaoxin.sharing.models import FeedEvent, FeedHead, OutboxItem, Webhook
from fanchaoxin.subjects.service import is_personal

EVENTS = ("published", "updated", "disputed", "undisputed", "revoked", "expired", "repaired")
# Departments receive only entries resting on a decision of an authority (行政处罚, 司法判决): the
# punishing bases of the catalogue (bases.yaml), to which the memoranda apply.


def record(entry: Entry) -> dict[str, Any]:
    """What participants may know of an entry. No name or plain identifier of a natural person.

    A unit's (or website's, app's, courier company's) name and registration identifiers are public
    registration data and may appear; for persons and accounts, sharing uses identifier tags.
    """
    subject = entry.subject
    record: dict[str, Any] = {
        "entry_id": str(entry.id),
        "subject_id": str(entry.subject_id),
        "subject_kind": subject.kind,
        "behaviours": entry.behaviours,
        "role": entry.role,
        "severity": entry.severity,
        "basis": entry.basis,
        "status": entry.status,
        "published_at": entry.published_at.isoformat() if entry.published_at else None,
        "min_end_on": entry.min_end_on.isoformat() if entry.min_end_on else None,
        "max_end_on": entry.max_end_on.isoformat() if entry.max_end_on else None,
        "parent_entry_id": str(entry.parent_entry_id) if entry.parent_entry_id else None,
        "liable_role": entry.liable_role,
        "policy_version": entry.policy_version,
        "measures": [{"code": m["code"], "params": m["params"]} for m in entry.measures or []],
    }
    if not is_personal(subject.kind):
        record["subject_name"] = subject.name
        record["identifiers"] = sorted(f"{i.type}:{i.value}" for i in subject.identifiers)
    return record


def append(session: Session, entry: Entry, event: str) -> FeedEvent:
    if event not in EVENTS:
        raise ValueError(f"unknown feed event {event}")
    session.flush()
    # The head row's lock orders concurrent publishers; the number is taken and used in one transaction.
    row = session.execute(text("UPDATE feed_head SET seq = seq + 1 WHERE id = 1 RETURNING seq")).one_or_none()
    if row is None:
        session.add(FeedHead(id=1, seq=0))
        session.flush()
        row = session.execute(text("UPDATE feed_head SET seq = seq + 1 WHERE id = 1 RETURNING seq")).one()
    # The request that made the change (an HTTP request's X-Request-ID, a job run's id): the node and the
    # webhook receivers log it, so one id follows the change from the form to the node's answer (#23).
    ev = FeedEvent(
        seq=int(row[0]),
        at=utcnow(),
        event=event,
        entry_id=entry.id,
        record=record(entry),
        request_id=current_request_id(),
    )
    session.add(ev)
    session.flush()
    _enqueue(session, ev)
    # The transparency log's leaf of this event, in the same transaction (#19).
    translog.append_feed_event(session, ev)
    return ev


def _enqueue(session: Session, event: FeedEvent) -> int:
    """The transactional outbox: one row per subscription that gets this event, in the same transaction."""
    hooks = session.execute(
        select(Webhook.id, Webhook.audience, Organisation.department_kind)
        .join(Organisation, Organisation.id == Webhook.owner_org_id)
        .where(Webhook.active)
    ).all()
    if not hooks:
        return 0
    rec = event.record or {}
    # A department's webhook gets what its kind acts on: an entry on a punishing basis within its
    # competence (orgs.department_kinds, the rule its instructions follow too).
    basis, behaviours = rec.get("basis") or "", rec.get("behaviours") or []
    now = utcnow()
    rows = [
        OutboxItem(
            webhook_id=hid, seq=event.seq, status="pending", attempts=0, next_attempt_at=now, created_at=now
        )
        for hid, audience, kind in hooks
        if audience == "enterprise" or receives(kind, basis=basis, behaviours=behaviours)
    ]
    session.add_all(rows)
    return len(rows)


def events_after(session: Session, after: int, limit: int) -> list[FeedEvent]:
    return list(
        session.scalars(select(FeedEvent).where(FeedEvent.seq > after).order_by(FeedEvent.seq).limit(limit))
    )


def head(session: Session) -> int:
    return int(session.scalar(select(FeedHead.seq).where(FeedHead.id == 1)) or 0)
