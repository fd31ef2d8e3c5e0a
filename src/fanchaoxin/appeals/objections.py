"""Objections (异议, DESIGN.md §2): the case itself — filing, forwarding, answering, deciding, overdue.

Filing marks the entry disputed at once (or within `objection_dispute_working_days`); the platform
decides within 5 working days, or forwards the case within 2 to the reporting organisation, which
answers within 5; the platform then decides. Outcomes: `upheld` (the entry stands), `corrected`
(fields changed, entry re-graded, instructions re-issued for the measures that changed), `revoked`
(the entry ends, every enterprise lifts, a correction notice is published).

These functions do the objection's part and say what happened; what the outcome does to the entry,
its instructions and the change feed is `workflows.appeals`, which calls them in order.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from fanchaoxin.appeals.cases import (
    Filing,
    add_unique_open,
    entry_of,
    flush_case,
    hash_secret,
    new_secret,
    new_tracking_number,
    prove_subject,
    record_identity,
)
from fanchaoxin.appeals.models import CorrectionNotice, Objection
from fanchaoxin.appeals.notify import notify
from fanchaoxin.blacklist.lifecycle import IN_FORCE, Status
from fanchaoxin.blacklist.models import Entry, EntryTransition
from fanchaoxin.core import audit
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.auth import Principal
from fanchaoxin.core.calendar import add_months, add_working_days, china_today
from fanchaoxin.core.catalogue import catalogues
from fanchaoxin.core.db import utcnow
from fanchaoxin.core.errors import Conflict, Forbidden, ValidationProblem
from fanchaoxin.core.identifiers import mask_person_name
from fanchaoxin.core.roles import OrgKind
from fanchaoxin.core.settings import get_settings
from fanchaoxin.core.tenancy import scoped
from fanchaoxin.orgs.models import Organisation
from fanchaoxin.sanctions import service as sanctions
from fanchaoxin.subjects.service import is_personal

OUTCOMES = ("upheld", "corrected", "revoked")
# Fields an objection may correct; a liable person's entry follows its unit's in all but the facts.
CORRECTABLE = ("severity", "behaviours", "role", "services", "facts")
FOLLOWED_BY_LINKED_FIELDS = ("severity", "behaviours", "role", "services")


# --- filing ---------------------------------------------------------------------------------------------


def receive(
    session: Session,
    actor: Actor,
    *,
    entry_id: uuid.UUID,
    identifier_type: str,
    identifier_value: str,
    grounds: str,
    contact_email: str,
    channel: str,
    owner_org_id: uuid.UUID | None = None,
    today: date,
) -> Filing:
    """Store a new objection with its deadlines (the subject proven, one open per entry), audit, mail."""
    s = get_settings()
    entry = prove_subject(session, entry_id, identifier_type, identifier_value)
    secret = new_secret()
    obj = Objection(
        tracking_number=new_tracking_number("objection", today),
        secret_hash=hash_secret(secret),
        entry_id=entry.id,
        open_entry_id=entry.id,
        owner_org_id=owner_org_id,
        status="open",
        channel=channel,
        filed_by=actor.name,
        identifier_type=identifier_type,
        grounds=grounds.strip(),
        contact_email=contact_email,
        filed_on=today,
        dispute_due_on=add_working_days(today, s.objection_dispute_working_days),
        forward_due_on=add_working_days(today, s.objection_forward_working_days),
        decide_due_on=add_working_days(today, s.objection_decide_working_days),
    )
    add_unique_open(session, obj, "objection")
    audit.record(
        session,
        actor,
        "objection.file",
        "objection",
        obj.id,
        after=obj.snapshot(),
        detail={"entry_id": str(entry.id), "channel": channel, "identifier_type": identifier_type},
    )
    notify(session, obj.contact_email, "objection.filed", obj.tracking_number, due=obj.decide_due_on)
    return Filing(obj, secret)


def disputes_at_once() -> bool:
    """Whether filing flags the entry disputed at once (else the jobs do, on `dispute_due_on`)."""
    return get_settings().objection_dispute_working_days == 0


def flag_disputed(session: Session, obj: Objection) -> None:
    """Record that the objection's entry is flagged disputed (the entry's own step is the workflow's)."""
    obj.disputed_at = utcnow()
    session.flush()


def awaiting_dispute_flag(session: Session, today: date) -> list[Objection]:
    """Open objections whose entry is due to be flagged disputed by `today` and is not yet."""
    return list(
        session.scalars(
            select(Objection).where(
                Objection.status != "decided",
                Objection.disputed_at.is_(None),
                Objection.dispute_due_on <= today,
            )
        )
    )


# --- forwarding and answering ---------------------------------------------------------------------------


def check_open(obj: Objection, expected_version: int | None) -> None:
    if obj.status == "decided":
        raise Conflict(
            f"Objection {obj.tracking_number} was decided already ({obj.outcome})",
            code="case.decided",
            params={"tracking": obj.tracking_number, "outcome": obj.outcome},
        )
    if expected_version is not None and expected_version != obj.version:
        raise Conflict(
            f"The objection changed since you read it (version {obj.version}, you sent "
            f"{expected_version}); reload it",
            code="case.changed",
        )


def check_forward(session: Session, obj: Objection, *, today: date, expected_version: int | None) -> Entry:
    """The objection's entry, when the objection may be forwarded to the reporting organisation now."""
    check_open(obj, expected_version)
    if obj.status != "open":
        raise Conflict(
            f"Objection {obj.tracking_number} was forwarded already",
            code="objection.forwarded_already",
            params={"tracking": obj.tracking_number},
        )
    if today > obj.forward_due_on:
        raise Conflict(
            f"An objection can be forwarded until {obj.forward_due_on.isoformat()}; decide it now",
            code="objection.forward_too_late",
            params={"until": obj.forward_due_on.isoformat()},
            forward_due_on=obj.forward_due_on.isoformat(),
        )
    entry = entry_of(session, obj)
    owner = session.get(Organisation, entry.owner_org_id)
    if owner is None or owner.kind == OrgKind.platform.value:
        raise Conflict(
            "The entry was submitted by the platform itself; there is no one to forward to",
            code="objection.nobody_to_forward_to",
        )
    return entry


def forward(
    session: Session, actor: Actor, obj: Objection, entry: Entry, *, note: str, today: date
) -> Objection:
    """Address the objection to the entry's reporting organisation, with its answer and decision dates."""
    s = get_settings()
    before = obj.snapshot()
    obj.status = "forwarded"
    obj.addressed_to_org_id = entry.owner_org_id
    obj.forwarded_on = today
    obj.forward_note = note.strip() or None
    obj.answer_due_on = add_working_days(today, s.objection_answer_working_days)
    obj.decide_due_on = add_working_days(obj.answer_due_on, s.objection_decide_after_answer_working_days)
    flush_case(session, "objection")
    audit.record(
        session,
        actor,
        "objection.forward",
        "objection",
        obj.id,
        before=before,
        after=obj.snapshot(),
        detail={"to": str(entry.owner_org_id)},
    )
    notify(
        session,
        obj.contact_email,
        "objection.forwarded",
        obj.tracking_number,
        answer_due=obj.answer_due_on,
        due=obj.decide_due_on,
    )
    return obj


def answer_objection(
    session: Session, principal: Principal, obj: Objection, *, proposed_outcome: str, answer: str
) -> Objection:
    """The reporting organisation's answer to a forwarded objection: what it found, what it proposes."""
    if obj.addressed_to_org_id is None or principal.org_id != obj.addressed_to_org_id:
        raise Forbidden(
            "Only the organisation the objection was forwarded to answers it", code="objection.not_addressee"
        )
    if obj.status != "forwarded":
        raise Conflict(
            f"Objection {obj.tracking_number} is {obj.status}; it takes no answer now",
            code="objection.no_answer_now",
            params={"tracking": obj.tracking_number, "case_status": obj.status},
        )
    before = obj.snapshot()
    obj.status = "answered"
    obj.answer_outcome = proposed_outcome
    obj.answer = answer.strip()
    obj.answered_at = utcnow()
    obj.answered_by = principal.actor.name
    flush_case(session, "objection")
    audit.record(
        session, principal.actor, "objection.answer", "objection", obj.id, before=before, after=obj.snapshot()
    )
    return obj


# --- deciding -------------------------------------------------------------------------------------------


def check_decision(
    session: Session,
    actor: Actor,
    obj: Objection,
    *,
    outcome: str,
    reason: str,
    identity_verification: str | None,
    corrections: dict[str, Any] | None,
    expected_version: int | None,
) -> Entry:
    """The objection's entry, when this decision may be taken (recording the identity check if given)."""
    check_open(obj, expected_version)
    if outcome not in OUTCOMES:
        raise ValidationProblem(
            f"Unknown outcome {outcome!r}",
            errors=[{"in": "body", "field": "outcome", "type": "enum", "message": ", ".join(OUTCOMES)}],
        )
    if not reason.strip():
        raise ValidationProblem(
            "A decision needs a reason",
            code="case.reason_required",
            errors=[{"in": "body", "field": "reason", "type": "missing", "message": "give the reason"}],
        )
    if identity_verification and identity_verification.strip():
        record_identity(session, actor, obj, identity_verification)
    if not obj.identity_verification:
        raise ValidationProblem(
            "Record how the objector's identity was verified before deciding",
            code="case.identity_unverified",
            errors=[
                {
                    "in": "body",
                    "field": "identity_verification",
                    "type": "missing",
                    "message": "how the objector's identity was verified",
                }
            ],
        )
    if (outcome == "corrected") != bool(corrections):
        raise ValidationProblem(
            "Corrections go with the corrected outcome, and only with it",
            errors=[{"in": "body", "field": "corrections", "message": "fields to correct (corrected only)"}],
        )
    entry = entry_of(session, obj)
    if Status(entry.status) not in IN_FORCE:
        raise Conflict(
            f"The entry is {entry.status} already; the objection cannot change it "
            "(it left the blacklist by another way)",
            code="case.entry_not_in_force",
            params={"status": entry.status},
        )
    return entry


def decision_note(obj: Objection, reason: str) -> str:
    """The reason the entry's history and audit trail give for a step the decision takes."""
    return f"objection {obj.tracking_number}: {reason.strip()}"


def record_decision(
    session: Session,
    actor: Actor,
    obj: Objection,
    entry: Entry,
    *,
    outcome: str,
    reason: str,
    changed: dict[str, Any] | None,
    today: date,
) -> Objection:
    """Close the objection with its outcome, audit it and tell the objector."""
    before = obj.snapshot()
    obj.status = "decided"
    obj.outcome = outcome
    obj.decision_reason = reason.strip()
    obj.corrections = changed
    obj.decided_at = utcnow()
    obj.decided_on = today
    obj.decided_by = actor.name
    obj.open_entry_id = None
    flush_case(session, "objection")
    audit.record(
        session,
        actor,
        "objection.decide",
        "objection",
        obj.id,
        before=before,
        after=obj.snapshot(),
        detail={"outcome": outcome, "entry_id": str(entry.id), "late": today > obj.decide_due_on},
    )
    extra = ""
    if outcome == "revoked":
        due = add_working_days(today, get_settings().instruction_ack_working_days)
        extra = (
            f"记录已撤销并发布更正公告；各参与企业应于 {due.isoformat()} 前解除惩戒措施。\n"
            f"The entry is revoked, a correction notice is published; every enterprise lifts its measures "
            f"by {due.isoformat()}. Download your confirmation with your tracking number and secret."
        )
    elif outcome == "corrected":
        extra = "记录已更正 The entry was corrected: " + ", ".join(sorted(changed or {}))
    notify(
        session,
        obj.contact_email,
        "objection.decided",
        obj.tracking_number,
        outcome=outcome,
        reason=obj.decision_reason,
        extra=extra,
    )
    return obj


# --- correcting an entry (outcome `corrected`) -----------------------------------------------------------


def check_corrections(entry: Entry, corrections: dict[str, Any]) -> None:
    """422 unless only correctable fields are corrected, and services go only with a facilitator."""
    unknown = sorted(set(corrections) - set(CORRECTABLE))
    if unknown:
        raise ValidationProblem(
            "Only " + ", ".join(CORRECTABLE) + " can be corrected",
            errors=[
                {"in": "body", "field": f"corrections.{k}", "message": "not correctable"} for k in unknown
            ],
        )
    role = corrections.get("role", entry.role)
    services = corrections.get("services", entry.services)
    if services and role != "facilitator":
        raise ValidationProblem(
            "Only a facilitator provides services",
            errors=[{"in": "body", "field": "corrections.services", "message": "only a facilitator"}],
        )


def nothing_to_correct() -> ValidationProblem:
    return ValidationProblem(
        "The corrections change nothing",
        errors=[{"in": "body", "field": "corrections", "message": "same as the entry"}],
    )


def followed_by_linked(corrections: dict[str, Any]) -> dict[str, Any]:
    """The corrections a liable person's linked entry takes from its unit's."""
    return {k: v for k, v in corrections.items() if k in FOLLOWED_BY_LINKED_FIELDS}


def apply_fields(
    session: Session, actor: Actor, entry: Entry, values: dict[str, Any], *, reason: str
) -> dict[str, Any]:
    """Change an entry's fields, its periods with its severity, and grade it again; `{field: [old, new]}`.

    Records the correction in the entry's history and the audit trail, with the measures it removed
    and added. Nothing is changed (and `{}` returned) when the values are the entry's already.
    """
    before = entry.snapshot()
    changed: dict[str, Any] = {}
    for field, new in values.items():
        old = getattr(entry, field)
        if old != new:
            changed[field] = [old, new]
            setattr(entry, field, list(new) if isinstance(new, list) else new)
    if not changed:
        return changed
    if "severity" in changed and entry.published_at is not None:
        sev = catalogues().severities[entry.severity]
        published_on = china_today(entry.published_at)
        entry.min_end_on = add_months(published_on, sev.min_months)
        entry.max_end_on = add_months(published_on, sev.max_months)
    old_measures = {m["code"] for m in entry.measures or []}
    sanctions.grade_entry(session, entry)
    new_measures = {m["code"] for m in entry.measures or []}
    entry.transitions.append(
        EntryTransition(
            from_status=entry.status,
            to_status=entry.status,
            action="correct",
            actor=actor.name,
            actor_org_id=actor.org_id,
            reason=reason + " (" + ", ".join(sorted(changed)) + ")",
        )
    )
    try:
        session.flush()
    except StaleDataError as exc:
        raise Conflict("Another reviewer changed this entry at the same time; reload it") from exc
    audit.record(
        session,
        actor,
        "entry.correct",
        "entry",
        entry.id,
        before=before,
        after=entry.snapshot(),
        detail={
            "fields": sorted(changed),
            "measures_removed": sorted(old_measures - new_measures),
            "measures_added": sorted(new_measures - old_measures),
        },
    )
    return changed


def recorded_changes(changed: dict[str, Any]) -> dict[str, Any]:
    """What the case records of a correction: the facts may describe people, so only that they changed."""
    return {k: ("changed" if k == "facts" else v) for k, v in changed.items()}


# --- the objector's confirmation ------------------------------------------------------------------------


@dataclass(frozen=True)
class Confirmation:
    """What the objector's confirmation of the decision states (撤销确认书 for a revocation)."""

    tracking_number: str
    subject_name: str
    filed_on: date
    outcome: str
    decided_on: date
    reason: str
    notice: CorrectionNotice | None


def confirmation(session: Session, obj: Objection) -> Confirmation:
    """The decision as the objector's confirmation states it; 409 while the objection is undecided."""
    if obj.status != "decided":
        raise Conflict(
            f"Objection {obj.tracking_number} is not decided yet; the decision is due by "
            f"{obj.decide_due_on.isoformat()}",
            decide_due_on=obj.decide_due_on.isoformat(),
        )
    entry = entry_of(session, obj)
    subject = entry.subject
    return Confirmation(
        tracking_number=obj.tracking_number,
        subject_name=mask_person_name(subject.name) if is_personal(subject.kind) else subject.name,
        filed_on=obj.filed_on,
        outcome=obj.outcome or "upheld",
        decided_on=obj.decided_on or obj.filed_on,
        reason=obj.decision_reason or "",
        notice=session.scalar(select(CorrectionNotice).where(CorrectionNotice.entry_id == entry.id)),
    )


# --- overdue and lists ----------------------------------------------------------------------------------


def objection_overdue(obj: Objection, today: date) -> list[str]:
    """Which deadlines of an open objection have passed: dispute_flag, answer, decision."""
    reasons: list[str] = []
    if obj.status == "decided":
        return reasons
    if obj.disputed_at is None and today > obj.dispute_due_on:
        reasons.append("dispute_flag")
    if obj.status == "forwarded" and obj.answer_due_on and today > obj.answer_due_on:
        reasons.append("answer")
    if today > obj.decide_due_on:
        reasons.append("decision")
    return reasons


def overdue_clause(today: date) -> ColumnElement[bool]:
    """SQL for `objection_overdue(obj, today)` being non-empty."""
    return and_(
        Objection.status != "decided",
        or_(
            Objection.decide_due_on < today,
            and_(Objection.status == "forwarded", Objection.answer_due_on < today),
            and_(Objection.disputed_at.is_(None), Objection.dispute_due_on < today),
        ),
    )


def count_overdue(session: Session, today: date) -> int:
    return int(session.scalar(select(func.count()).select_from(Objection).where(overdue_clause(today))) or 0)


def list_objections(
    session: Session,
    principal: Principal,
    *,
    status: str | None = None,
    overdue: bool | None = None,
    entry_id: uuid.UUID | None = None,
    today: date | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Objection]:
    today = today or china_today()
    stmt = scoped(select(Objection), Objection, principal)
    if status:
        stmt = stmt.where(Objection.status == status)
    if entry_id:
        stmt = stmt.where(Objection.entry_id == entry_id)
    if overdue is True:
        stmt = stmt.where(overdue_clause(today))
    elif overdue is False:
        stmt = stmt.where(~overdue_clause(today))
    return list(session.scalars(stmt.order_by(Objection.filed_at, Objection.id).limit(limit).offset(offset)))
