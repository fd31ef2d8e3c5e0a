"""The rules of due process — objections, restoration, credit repair, reports — for the API, CLI and jobs.

Objections (异议, DESIGN.md §2): filing marks the entry disputed at once (or within
`objection_dispute_working_days`); the platform decides within 5 working days, or forwards the case
within 2 to the reporting organisation, which answers within 5; the platform then decides. Outcomes:
`upheld` (the entry stands), `corrected` (fields changed, entry re-graded, instructions re-issued for
the measures that changed), `revoked` (the entry ends, every enterprise lifts, a correction notice is
published). Credit repair (信用修复) ends an entry early after its minimum period. Reports (举报) are
routed by the platform to the enterprise or department that handles them within 10 working days.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import secrets
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from fanchaoxin.appeals.models import (
    CaseAttachment,
    CorrectionNotice,
    Objection,
    RepairApplication,
    Report,
)
from fanchaoxin.appeals.notify import notify
from fanchaoxin.blacklist import feed
from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import IN_FORCE, Action, Status
from fanchaoxin.blacklist.models import Entry, EntryTransition, EvidenceBlob
from fanchaoxin.core import audit
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.auth import Principal
from fanchaoxin.core.calendar import add_months, add_working_days, china_today
from fanchaoxin.core.catalogue import catalogues
from fanchaoxin.core.db import utcnow
from fanchaoxin.core.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationProblem,
)
from fanchaoxin.core.identifiers import mask_person_name
from fanchaoxin.core.settings import get_settings
from fanchaoxin.core.tenancy import can_see, scoped
from fanchaoxin.orgs.models import Organisation, OrgKind
from fanchaoxin.sanctions import service as sanctions
from fanchaoxin.sanctions.models import Instruction
from fanchaoxin.sanctions.policy import measure_catalogue
from fanchaoxin.subjects.service import is_personal

APPEALS = Actor("system:appeals")
OBJECTION_OUTCOMES = ("upheld", "corrected", "revoked")
REPORT_OUTCOMES = ("substantiated", "unsubstantiated", "forwarded")
_TRACKING_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
TRACKING_PREFIX = {"objection": "YY", "repair": "XF", "report": "JB"}  # 异议, 修复, 举报


# --- tracking numbers and secrets -----------------------------------------------------------------------


def new_tracking_number(kind: str, today: date) -> str:
    tail = "".join(secrets.choice(_TRACKING_ALPHABET) for _ in range(8))
    return f"{TRACKING_PREFIX[kind]}{today:%Y%m%d}-{tail}"


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _secret_ok(stored_hash: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(stored_hash, _hash_secret(given or ""))


CASE_MODELS: dict[str, type[Objection] | type[RepairApplication] | type[Report]] = {
    "objection": Objection,
    "repair": RepairApplication,
    "report": Report,
}


def by_tracking(session: Session, kind: str, tracking: str, secret: str | None) -> Any:
    """The case for its tracking number and secret; a wrong secret is a 404 like an unknown number."""
    model = CASE_MODELS[kind]
    case = session.scalar(select(model).where(model.tracking_number == tracking.strip().upper()))
    if case is None or not _secret_ok(case.secret_hash, secret):
        raise NotFound(f"No {kind} with tracking number {tracking} and that secret")
    return case


# --- identity of the subject ----------------------------------------------------------------------------


def prove_subject(session: Session, entry_id: uuid.UUID, id_type: str, id_value: str) -> Entry:
    """The entry in force whose subject has this identifier — or 404, the same for every failure.

    An unknown entry, an entry not in force and another subject's entry all answer the same, so that a
    caller learns nothing about entries it cannot prove to be its own.
    """
    entry = session.get(Entry, entry_id)
    proven = (
        entry is not None
        and Status(entry.status) in IN_FORCE
        and (id_type, id_value) in {(i.type, i.value) for i in entry.subject.identifiers}
    )
    if not proven or entry is None:
        raise NotFound(f"No entry in force with id {entry_id} for the identifier given")
    return entry


def _unique_open(session: Session, case: Any, what: str) -> None:
    """Store a new case about an entry; 409 when one is open (the unique `open_entry_id` decides races)."""
    model = type(case)
    message = f"An {what} about this entry is already open; wait for its decision"
    if session.scalar(select(model.id).where(model.open_entry_id == case.open_entry_id)) is not None:
        raise Conflict(message)
    session.add(case)
    try:
        session.flush()
    except IntegrityError as exc:  # filed at the same moment by someone else
        raise Conflict(message) from exc


# --- attachments ----------------------------------------------------------------------------------------


def add_attachment(
    session: Session,
    actor: Actor,
    case_type: str,
    case: Any,
    *,
    filename: str,
    declared_type: str | None,
    data: bytes,
) -> CaseAttachment:
    """Attach a file (PDF, image or text, checked by content) to an open case."""
    settings = get_settings()
    if case.status in ("decided", "handled", "dismissed"):
        raise Conflict(f"The {case_type} is {case.status}; no more files can be attached")
    limit = settings.attachment_max_bytes
    if len(data) > limit:
        raise PayloadTooLarge(
            f"Attachment {filename!r} is {len(data)} bytes; the limit is {limit}",
            errors=[{"in": "body", "field": "file", "type": "size", "message": f"at most {limit} bytes"}],
        )
    if not data:
        raise ValidationProblem(
            "Empty attachment", errors=[{"in": "body", "field": "file", "message": "the file is empty"}]
        )
    actual = registry.sniff(data)
    declared = (declared_type or "").split(";")[0].strip().lower() or None
    if declared == "text/csv" and actual == "text/plain":
        actual = "text/csv"
    if actual is None or actual not in registry.ALLOWED_MEDIA_TYPES:
        raise UnsupportedMediaType(
            f"Attachment {filename!r} is not an allowed type (PDF, PNG, JPEG, GIF, plain text or CSV)",
            errors=[
                {
                    "in": "body",
                    "field": "file",
                    "type": "media_type",
                    "message": f"content looks like {actual or 'unknown binary data'}",
                }
            ],
        )
    if declared and declared not in ("application/octet-stream", actual):
        raise UnsupportedMediaType(
            f"Attachment {filename!r} is declared as {declared} but its content is {actual}",
            errors=[{"in": "body", "field": "file", "type": "media_type_mismatch", "message": actual}],
        )
    digest = hashlib.sha256(data).hexdigest()
    existing = session.scalar(
        select(CaseAttachment).where(
            CaseAttachment.case_type == case_type,
            CaseAttachment.case_id == case.id,
            CaseAttachment.sha256 == digest,
        )
    )
    if existing is not None:
        return existing
    count = session.scalar(
        select(func.count())
        .select_from(CaseAttachment)
        .where(CaseAttachment.case_type == case_type, CaseAttachment.case_id == case.id)
    )
    if (count or 0) >= settings.attachment_max_count:
        raise Conflict(f"A {case_type} has at most {settings.attachment_max_count} attachments")
    if session.get(EvidenceBlob, digest) is None:
        session.add(EvidenceBlob(sha256=digest, size=len(data), media_type=actual, data=data))
        session.flush()  # the blob row first: the attachment's foreign key points at it
    att = CaseAttachment(
        case_type=case_type,
        case_id=case.id,
        sha256=digest,
        filename=(filename or "attachment")[:255],
        media_type=actual,
        size=len(data),
        uploaded_by=actor.name,
    )
    session.add(att)
    session.flush()
    audit.record(
        session,
        actor,
        f"{case_type}.attachment_add",
        case_type,
        case.id,
        detail={"sha256": digest, "size": len(data), "media_type": actual},
    )
    return att


def attachments_of(session: Session, case_type: str, case_id: uuid.UUID) -> list[CaseAttachment]:
    return list(
        session.scalars(
            select(CaseAttachment)
            .where(CaseAttachment.case_type == case_type, CaseAttachment.case_id == case_id)
            .order_by(CaseAttachment.created_at)
        )
    )


def attachment_blob(
    session: Session, case_type: str, case_id: uuid.UUID, sha256: str
) -> tuple[CaseAttachment, EvidenceBlob]:
    att = session.scalar(
        select(CaseAttachment).where(
            CaseAttachment.case_type == case_type,
            CaseAttachment.case_id == case_id,
            CaseAttachment.sha256 == sha256,
        )
    )
    blob = session.get(EvidenceBlob, sha256) if att else None
    if att is None or blob is None:
        raise NotFound(f"No attachment {sha256} on this {case_type}")
    return att, blob


# --- objections -----------------------------------------------------------------------------------------


@dataclass
class Filing:
    case: Any
    secret: str


def file_objection(
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
    today: date | None = None,
) -> Filing:
    today = today or china_today()
    s = get_settings()
    entry = prove_subject(session, entry_id, identifier_type, identifier_value)
    secret = secrets.token_urlsafe(24)
    obj = Objection(
        tracking_number=new_tracking_number("objection", today),
        secret_hash=_hash_secret(secret),
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
    _unique_open(session, obj, "objection")
    audit.record(
        session,
        actor,
        "objection.file",
        "objection",
        obj.id,
        after=obj.snapshot(),
        detail={"entry_id": str(entry.id), "channel": channel, "identifier_type": identifier_type},
    )
    if s.objection_dispute_working_days == 0:
        mark_disputed(session, obj, today=today)
    notify(session, obj.contact_email, "objection.filed", obj.tracking_number, due=obj.decide_due_on)
    return Filing(obj, secret)


def mark_disputed(session: Session, obj: Objection, *, today: date | None = None) -> None:
    """Flag the entry disputed (异议标注): the feed, the enterprises' nodes and decide() see it."""
    if obj.disputed_at is not None:
        return
    entry = session.get(Entry, obj.entry_id)
    assert entry is not None
    if entry.status == Status.published.value:
        registry.transition(
            session,
            APPEALS,
            entry,
            Action.dispute,
            reason=f"objection {obj.tracking_number} filed",
            today=today,
            system=True,
        )
    obj.disputed_at = utcnow()
    session.flush()


def _open_objection(obj: Objection, expected_version: int | None) -> None:
    if obj.status == "decided":
        raise Conflict(f"Objection {obj.tracking_number} was decided already ({obj.outcome})")
    if expected_version is not None and expected_version != obj.version:
        raise Conflict(
            f"The objection changed since you read it (version {obj.version}, you sent "
            f"{expected_version}); reload it"
        )


def _flush(session: Session, what: str) -> None:
    try:
        session.flush()
    except StaleDataError as exc:
        raise Conflict(f"Another reviewer changed this {what} at the same time; reload it") from exc


def record_identity(session: Session, actor: Actor, obj: Objection | RepairApplication, text: str) -> None:
    """How the objector's (or applicant's) identity was verified; required before a decision."""
    if obj.status == "decided":
        raise Conflict("The case was decided already")
    before = obj.snapshot()
    obj.identity_verification = text.strip()
    if isinstance(obj, Objection):
        obj.identity_verified_by = actor.name
    kind = "objection" if isinstance(obj, Objection) else "repair"
    _flush(session, kind)
    audit.record(
        session, actor, f"{kind}.identity_verified", kind, obj.id, before=before, after=obj.snapshot()
    )


def forward_objection(
    session: Session,
    actor: Actor,
    obj: Objection,
    *,
    note: str = "",
    today: date | None = None,
    expected_version: int | None = None,
) -> Objection:
    """Forward to the reporting organisation for verification (within 2 working days of filing)."""
    today = today or china_today()
    s = get_settings()
    _open_objection(obj, expected_version)
    if obj.status != "open":
        raise Conflict(f"Objection {obj.tracking_number} was forwarded already")
    if today > obj.forward_due_on:
        raise Conflict(
            f"An objection can be forwarded until {obj.forward_due_on.isoformat()}; decide it now",
            forward_due_on=obj.forward_due_on.isoformat(),
        )
    entry = session.get(Entry, obj.entry_id)
    assert entry is not None
    owner = session.get(Organisation, entry.owner_org_id)
    if owner is None or owner.kind == OrgKind.platform.value:
        raise Conflict("The entry was submitted by the platform itself; there is no one to forward to")
    mark_disputed(session, obj, today=today)
    before = obj.snapshot()
    obj.status = "forwarded"
    obj.addressed_to_org_id = entry.owner_org_id
    obj.forwarded_on = today
    obj.forward_note = note.strip() or None
    obj.answer_due_on = add_working_days(today, s.objection_answer_working_days)
    obj.decide_due_on = add_working_days(obj.answer_due_on, s.objection_decide_after_answer_working_days)
    _flush(session, "objection")
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
        raise Forbidden("Only the organisation the objection was forwarded to answers it")
    if obj.status != "forwarded":
        raise Conflict(f"Objection {obj.tracking_number} is {obj.status}; it takes no answer now")
    before = obj.snapshot()
    obj.status = "answered"
    obj.answer_outcome = proposed_outcome
    obj.answer = answer.strip()
    obj.answered_at = utcnow()
    obj.answered_by = principal.actor.name
    _flush(session, "objection")
    audit.record(
        session, principal.actor, "objection.answer", "objection", obj.id, before=before, after=obj.snapshot()
    )
    return obj


def decide_objection(
    session: Session,
    actor: Actor,
    obj: Objection,
    *,
    outcome: str,
    reason: str,
    identity_verification: str | None = None,
    corrections: dict[str, Any] | None = None,
    public_reason: str | None = None,
    today: date | None = None,
    expected_version: int | None = None,
) -> Objection:
    today = today or china_today()
    _open_objection(obj, expected_version)
    if outcome not in OBJECTION_OUTCOMES:
        raise ValidationProblem(
            f"Unknown outcome {outcome!r}",
            errors=[
                {"in": "body", "field": "outcome", "type": "enum", "message": ", ".join(OBJECTION_OUTCOMES)}
            ],
        )
    if not reason.strip():
        raise ValidationProblem(
            "A decision needs a reason",
            errors=[{"in": "body", "field": "reason", "type": "missing", "message": "give the reason"}],
        )
    if identity_verification and identity_verification.strip():
        record_identity(session, actor, obj, identity_verification)
    if not obj.identity_verification:
        raise ValidationProblem(
            "Record how the objector's identity was verified before deciding",
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
    entry = session.get(Entry, obj.entry_id)
    assert entry is not None
    if Status(entry.status) not in IN_FORCE:
        raise Conflict(
            f"The entry is {entry.status} already; the objection cannot change it "
            "(it left the blacklist by another way)"
        )
    mark_disputed(session, obj, today=today)
    before = obj.snapshot()
    why = f"objection {obj.tracking_number}: {reason.strip()}"
    changed: dict[str, Any] | None = None
    if outcome == "corrected":
        assert corrections is not None
        changed = correct_entry(session, actor, entry, corrections, reason=why, today=today)
    if outcome in ("upheld", "corrected") and entry.status == Status.disputed.value:
        registry.transition(
            session, actor, entry, Action.resolve_dispute, reason=why, today=today, system=True
        )
    if outcome == "revoked":
        registry.transition(session, actor, entry, Action.revoke, reason=why, today=today, system=True)
        # The notices (the unit's and its liable persons') carry the public reason, not the case number.
        revoked_ids = [entry.id, *(e.id for e in registry.linked_entries(session, entry))]
        for notice in session.scalars(
            select(CorrectionNotice).where(CorrectionNotice.entry_id.in_(revoked_ids))
        ):
            notice.objection_id = obj.id
            notice.reason = (public_reason or reason).strip()
    obj.status = "decided"
    obj.outcome = outcome
    obj.decision_reason = reason.strip()
    obj.corrections = changed
    obj.decided_at = utcnow()
    obj.decided_on = today
    obj.decided_by = actor.name
    obj.open_entry_id = None
    _flush(session, "objection")
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


# --- correction of an entry (outcome `corrected`) --------------------------------------------------------

CORRECTABLE = ("severity", "behaviours", "role", "services", "facts")
FOLLOWED_BY_LINKED_FIELDS = ("severity", "behaviours", "role", "services")


def correct_entry(
    session: Session,
    actor: Actor,
    entry: Entry,
    corrections: dict[str, Any],
    *,
    reason: str,
    today: date | None = None,
) -> dict[str, Any]:
    """Change an entry's fields, re-grade it, re-issue instructions for the measures that changed.

    Returns `{field: [before, after]}` of what changed (facts only as a flag). Liable persons' linked
    entries follow the unit's severity, behaviours, role and services.
    """
    today = today or china_today()
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
    changed = _apply_fields(session, actor, entry, corrections, reason=reason, today=today)
    if not changed:
        raise ValidationProblem(
            "The corrections change nothing",
            errors=[{"in": "body", "field": "corrections", "message": "same as the entry"}],
        )
    if entry.parent_entry_id is None:
        follow = {k: v for k, v in corrections.items() if k in FOLLOWED_BY_LINKED_FIELDS}
        for linked in registry.linked_entries(session, entry):
            if follow and Status(linked.status) in IN_FORCE:
                _apply_fields(session, actor, linked, follow, reason=reason, today=today)
    # The facts may describe people: the case records that they changed, not what they say.
    return {k: ("changed" if k == "facts" else v) for k, v in changed.items()}


def _apply_fields(
    session: Session, actor: Actor, entry: Entry, values: dict[str, Any], *, reason: str, today: date
) -> dict[str, Any]:
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
    reissue_instructions(session, actor, entry, today=today)
    feed.append(session, entry, "updated")
    return changed


def _desired_instructions(
    session: Session, entry: Entry, today: date
) -> dict[tuple[uuid.UUID, str], tuple[dict[str, Any], bool]]:
    """(organisation, measure) → (params, department measure) as publication would issue them now.

    The same targeting as `sanctions.service.on_published`: an enterprise gets the measures its
    business types can implement; departments get the memoranda measures for punishing bases.
    """
    out: dict[tuple[uuid.UUID, str], tuple[dict[str, Any], bool]] = {}
    severity_rank = list(catalogues().severities)
    for org in sanctions.participants(session, today):
        if org.kind == OrgKind.enterprise.value:
            types = set(org.business_types or [])
            for m in entry.measures or []:
                if types & set(m["implementers"]):
                    out[(org.id, m["code"])] = (m["params"], False)
        elif entry.basis in sanctions.PUNISHING_BASES:
            for d in measure_catalogue().department_measures.values():
                if severity_rank.index(entry.severity) >= severity_rank.index(d.min_severity):
                    out[(org.id, d.code)] = ({}, True)
    return out


def reissue_instructions(
    session: Session, actor: Actor, entry: Entry, *, today: date | None = None
) -> dict[str, int]:
    """After a correction: lift measures no longer graded, apply measures newly graded.

    A measure kept with other parameters is not re-issued (an instruction is one per organisation,
    measure and kind); nor is a measure lifted earlier and graded again. Both are counted as `kept`.
    """
    today = today or china_today()
    due = add_working_days(today, get_settings().instruction_ack_working_days)
    rows = session.scalars(select(Instruction).where(Instruction.entry_id == entry.id)).all()
    applied = {(r.owner_org_id, r.measure): r for r in rows if r.kind == "apply"}
    lifted = {r.lifts_id for r in rows if r.kind == "lift"}
    desired = _desired_instructions(session, entry, today)
    new: list[Instruction] = []
    for (org_id, code), (params, dept) in desired.items():
        if (org_id, code) not in applied:
            new.append(
                Instruction(
                    entry_id=entry.id,
                    owner_org_id=org_id,
                    kind="apply",
                    measure=code,
                    department_measure=dept,
                    params=params,
                    ack_due_on=due,
                    reason="corrected",
                )
            )
    lifts = 0
    for key, a in applied.items():
        if key not in desired and a.id not in lifted and a.outcome != "not_applicable":
            lifts += 1
            new.append(
                Instruction(
                    entry_id=entry.id,
                    owner_org_id=a.owner_org_id,
                    kind="lift",
                    measure=a.measure,
                    department_measure=a.department_measure,
                    params=a.params,
                    lifts_id=a.id,
                    ack_due_on=due,
                    reason="corrected",
                )
            )
    session.add_all(new)
    session.flush()
    counts = {"apply": len(new) - lifts, "lift": lifts}
    audit.record(
        session,
        actor,
        "instructions.issue",
        "entry",
        entry.id,
        detail={"kind": "correction", **counts, "policy_version": entry.policy_version},
    )
    return counts


# --- restoration (恢复信誉) -------------------------------------------------------------------------------


def publish_correction(
    session: Session, actor: Actor, entry: Entry, *, reason: str, today: date | None = None
) -> CorrectionNotice:
    """A public correction notice for a revoked entry (called by the registry on every revocation)."""
    today = today or china_today()
    existing = session.scalar(select(CorrectionNotice).where(CorrectionNotice.entry_id == entry.id))
    if existing is not None:
        return existing
    subject = entry.subject
    name = mask_person_name(subject.name) if is_personal(subject.kind) else subject.name
    notice = CorrectionNotice(
        entry_id=entry.id,
        subject_kind=subject.kind,
        subject_name=name,
        reason=reason.strip() or "revoked",
        revoked_on=today,
        lifts_due_on=add_working_days(today, get_settings().instruction_ack_working_days),
        published_by=actor.name,
    )
    session.add(notice)
    session.flush()
    audit.record(
        session,
        actor,
        "correction.publish",
        "correction",
        notice.id,
        after={"id": str(notice.id), "entry_id": str(entry.id), "revoked_on": today.isoformat()},
        detail={"entry_id": str(entry.id)},
    )
    return notice


def list_corrections(session: Session, *, limit: int = 100, offset: int = 0) -> list[CorrectionNotice]:
    return list(
        session.scalars(
            select(CorrectionNotice)
            .order_by(CorrectionNotice.revoked_on.desc(), CorrectionNotice.published_at.desc())
            .limit(limit)
            .offset(offset)
        )
    )


def correction_text(notice: CorrectionNotice) -> tuple[str, str]:
    kind = catalogues().subject_kinds.get(notice.subject_kind)
    kind_zh = kind.zh if kind is not None else notice.subject_kind
    zh = (
        f"更正公告：经核查，{kind_zh}“{notice.subject_name}”的炒信黑名单记录已于"
        f"{notice.revoked_on:%Y年%m月%d日}撤销，原因：{notice.reason}。"
        f"各参与企业应于{notice.lifts_due_on:%Y年%m月%d日}前解除相关惩戒措施，恢复其信誉。"
    )
    en = (
        f"Correction notice: the 炒信 blacklist record of {notice.subject_name} ({notice.subject_kind}) "
        f"was revoked on {notice.revoked_on.isoformat()}. Reason: {notice.reason}. Every participating "
        f"enterprise lifts its measures by {notice.lifts_due_on.isoformat()}."
    )
    return zh, en


def confirmation_html(session: Session, obj: Objection) -> str:
    """The objector's confirmation of the decision (撤销确认书 for a revocation), as an HTML page."""
    if obj.status != "decided":
        raise Conflict(
            f"Objection {obj.tracking_number} is not decided yet; the decision is due by "
            f"{obj.decide_due_on.isoformat()}",
            decide_due_on=obj.decide_due_on.isoformat(),
        )
    entry = session.get(Entry, obj.entry_id)
    assert entry is not None
    subject = entry.subject
    name = mask_person_name(subject.name) if is_personal(subject.kind) else subject.name
    notice = session.scalar(select(CorrectionNotice).where(CorrectionNotice.entry_id == entry.id))
    e = html.escape
    title_zh = {
        "revoked": "撤销确认书",
        "corrected": "异议处理决定书（更正）",
        "upheld": "异议处理决定书（维持）",
    }[obj.outcome or "upheld"]
    rows = [
        ("受理编号 Tracking number", obj.tracking_number),
        ("信息主体 Subject", name),
        ("异议提出日期 Filed on", obj.filed_on.isoformat()),
        ("处理结果 Outcome", obj.outcome or ""),
        ("决定日期 Decided on", (obj.decided_on or obj.filed_on).isoformat()),
        ("理由 Reason", obj.decision_reason or ""),
    ]
    if notice is not None:
        rows += [
            ("更正公告编号 Correction notice", str(notice.id)),
            ("撤销日期 Revoked on", notice.revoked_on.isoformat()),
            ("解除惩戒期限 Measures lifted by", notice.lifts_due_on.isoformat()),
        ]
    body = "\n".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows)
    statement = (
        "<p>该炒信黑名单记录已撤销，不再共享、不再用于联合惩戒；各参与企业已收到解除惩戒措施的指令。"
        "更正公告已在平台公示。</p><p>The blacklist record is revoked: it is no longer shared or used for "
        "joint punishment, every participating enterprise has been instructed to lift its measures, and a "
        "correction notice is published.</p>"
        if obj.outcome == "revoked"
        else ""
    )
    return (
        '<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{e(title_zh)} {e(obj.tracking_number)}</title>"
        "<style>body{font-family:sans-serif;max-width:42em;margin:2em auto}th{text-align:left;"
        "padding-right:1em;vertical-align:top}</style></head><body>"
        f"<h1>{e(title_zh)}</h1><p>全国信用信息共享平台 反炒信子系统 — fanchaoxin</p>"
        f"<table>{body}</table>{statement}</body></html>\n"
    )


# --- overdue --------------------------------------------------------------------------------------------


def objection_overdue(obj: Objection, today: date) -> list[str]:
    reasons = []
    if obj.status == "decided":
        return reasons
    if obj.disputed_at is None and today > obj.dispute_due_on:
        reasons.append("dispute_flag")
    if obj.status == "forwarded" and obj.answer_due_on and today > obj.answer_due_on:
        reasons.append("answer")
    if today > obj.decide_due_on:
        reasons.append("decision")
    return reasons


def _objection_overdue_clause(today: date) -> Any:
    return and_(
        Objection.status != "decided",
        or_(
            Objection.decide_due_on < today,
            and_(Objection.status == "forwarded", Objection.answer_due_on < today),
            and_(Objection.disputed_at.is_(None), Objection.dispute_due_on < today),
        ),
    )


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
        stmt = stmt.where(_objection_overdue_clause(today))
    elif overdue is False:
        stmt = stmt.where(~_objection_overdue_clause(today))
    return list(session.scalars(stmt.order_by(Objection.filed_at, Objection.id).limit(limit).offset(offset)))


def get_case(session: Session, model: Any, case_id: uuid.UUID, principal: Principal, what: str) -> Any:
    case = session.get(model, case_id)
    if case is None or not can_see(case, principal):
        raise NotFound(f"No {what} with id {case_id}")
    return case


# --- credit repair (信用修复) -----------------------------------------------------------------------------


def file_repair(
    session: Session,
    actor: Actor,
    *,
    entry_id: uuid.UUID,
    identifier_type: str,
    identifier_value: str,
    commitment_accepted: bool,
    commitment_text: str,
    rectification: str,
    contact_email: str,
    channel: str,
    owner_org_id: uuid.UUID | None = None,
    today: date | None = None,
) -> Filing:
    today = today or china_today()
    entry = prove_subject(session, entry_id, identifier_type, identifier_value)
    if commitment_accepted is not True or not commitment_text.strip():
        raise ValidationProblem(
            "Credit repair needs a credit commitment (信用承诺)",
            errors=[{"in": "body", "field": "commitment_accepted", "message": "must be true, with its text"}],
        )
    if entry.parent_entry_id is not None:
        raise Conflict("A liable person's entry follows its unit's entry; the unit applies for repair")
    if entry.min_end_on is not None and today < entry.min_end_on:
        raise Conflict(
            f"Credit repair is possible from {entry.min_end_on.isoformat()} (the minimum period)",
            possible_from=entry.min_end_on.isoformat(),
        )
    secret = secrets.token_urlsafe(24)
    app = RepairApplication(
        tracking_number=new_tracking_number("repair", today),
        secret_hash=_hash_secret(secret),
        entry_id=entry.id,
        open_entry_id=entry.id,
        owner_org_id=owner_org_id,
        status="open",
        channel=channel,
        filed_by=actor.name,
        identifier_type=identifier_type,
        commitment_accepted=True,
        commitment_text=commitment_text.strip(),
        rectification=rectification.strip(),
        contact_email=contact_email,
        filed_on=today,
        decide_due_on=add_working_days(today, get_settings().repair_decide_working_days),
    )
    _unique_open(session, app, "application for credit repair")
    audit.record(
        session,
        actor,
        "repair.file",
        "repair",
        app.id,
        after=app.snapshot(),
        detail={"entry_id": str(entry.id), "channel": channel},
    )
    notify(session, app.contact_email, "repair.filed", app.tracking_number, due=app.decide_due_on)
    return Filing(app, secret)


def decide_repair(
    session: Session,
    actor: Actor,
    app: RepairApplication,
    *,
    outcome: str,
    reason: str,
    identity_verification: str | None = None,
    today: date | None = None,
    expected_version: int | None = None,
) -> RepairApplication:
    today = today or china_today()
    if app.status == "decided":
        raise Conflict(f"Application {app.tracking_number} was decided already ({app.outcome})")
    if expected_version is not None and expected_version != app.version:
        raise Conflict(f"The application changed since you read it (version {app.version}); reload it")
    if identity_verification and identity_verification.strip():
        record_identity(session, actor, app, identity_verification)
    if not app.identity_verification:
        raise ValidationProblem(
            "Record how the applicant's identity was verified before deciding",
            errors=[
                {"in": "body", "field": "identity_verification", "type": "missing", "message": "required"}
            ],
        )
    entry = session.get(Entry, app.entry_id)
    assert entry is not None
    if outcome == "approved":
        if not attachments_of(session, "repair", app.id):
            raise Conflict("No proof of rectification is attached; it is needed to approve")
        if Status(entry.status) not in IN_FORCE:
            raise Conflict(f"The entry is {entry.status} already")
        registry.transition(
            session,
            actor,
            entry,
            Action.repair,
            reason=f"credit repair {app.tracking_number}: {reason.strip()}",
            today=today,
        )
    before = app.snapshot()
    app.status = "decided"
    app.outcome = outcome
    app.decision_reason = reason.strip()
    app.decided_at = utcnow()
    app.decided_by = actor.name
    app.open_entry_id = None
    _flush(session, "application")
    audit.record(
        session,
        actor,
        "repair.decide",
        "repair",
        app.id,
        before=before,
        after=app.snapshot(),
        detail={"outcome": outcome, "entry_id": str(entry.id), "late": today > app.decide_due_on},
    )
    notify(session, app.contact_email, "repair.decided", app.tracking_number, outcome=outcome, reason=reason)
    return app


def list_repairs(
    session: Session,
    *,
    status: str | None = None,
    overdue: bool | None = None,
    today: date | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[RepairApplication]:
    today = today or china_today()
    stmt = select(RepairApplication)
    if status:
        stmt = stmt.where(RepairApplication.status == status)
    late = and_(RepairApplication.status != "decided", RepairApplication.decide_due_on < today)
    if overdue is True:
        stmt = stmt.where(late)
    elif overdue is False:
        stmt = stmt.where(~late)
    return list(
        session.scalars(
            stmt.order_by(RepairApplication.filed_at, RepairApplication.id).limit(limit).offset(offset)
        )
    )


# --- reports (举报) ---------------------------------------------------------------------------------------


def file_report(
    session: Session,
    actor: Actor,
    *,
    description: str,
    reported: dict[str, Any],
    behaviours: list[str],
    enterprise_org_id: uuid.UUID | None,
    contact_email: str | None,
    channel: str,
    owner_org_id: uuid.UUID | None = None,
    today: date | None = None,
) -> Filing:
    today = today or china_today()
    if enterprise_org_id is not None:
        org = session.get(Organisation, enterprise_org_id)
        if org is None or org.kind != OrgKind.enterprise.value:
            raise ValidationProblem(
                "No participating enterprise with that id",
                errors=[{"in": "body", "field": "enterprise_org_id", "message": "unknown enterprise"}],
            )
    secret = secrets.token_urlsafe(24)
    rep = Report(
        tracking_number=new_tracking_number("report", today),
        secret_hash=_hash_secret(secret),
        owner_org_id=owner_org_id,
        status="received",
        channel=channel,
        filed_by=actor.name,
        description=description.strip(),
        behaviours=behaviours,
        reported={**reported, "enterprise_org_id": str(enterprise_org_id) if enterprise_org_id else None},
        contact_email=contact_email,
        filed_on=today,
    )
    session.add(rep)
    session.flush()
    audit.record(
        session,
        actor,
        "report.file",
        "report",
        rep.id,
        after=rep.snapshot(),
        detail={"channel": channel, "identifiers": len(reported.get("identifiers") or [])},
    )
    notify(session, contact_email, "report.filed", rep.tracking_number)
    return Filing(rep, secret)


def triage_report(
    session: Session,
    actor: Actor,
    rep: Report,
    *,
    action: str,
    addressed_to_org_id: uuid.UUID | None,
    note: str,
    today: date | None = None,
    expected_version: int | None = None,
) -> Report:
    """Route a report to the enterprise where it happened or to a department; or dismiss it."""
    today = today or china_today()
    if rep.status != "received":
        raise Conflict(f"Report {rep.tracking_number} is {rep.status}; it was triaged already")
    if expected_version is not None and expected_version != rep.version:
        raise Conflict(f"The report changed since you read it (version {rep.version}); reload it")
    before = rep.snapshot()
    rep.triage_note = note.strip() or None
    rep.routed_by = actor.name
    if action == "route":
        org = session.get(Organisation, addressed_to_org_id) if addressed_to_org_id else None
        if org is None or not org.active or org.kind == OrgKind.platform.value:
            raise ValidationProblem(
                "Route a report to an active enterprise or department",
                errors=[{"in": "body", "field": "addressed_to_org_id", "message": "unknown organisation"}],
            )
        rep.status = "routed"
        rep.addressed_to_org_id = org.id
        rep.routed_on = today
        rep.handle_due_on = add_working_days(today, get_settings().report_handle_working_days)
    else:
        rep.status = "dismissed"
        rep.outcome_note = note.strip()
        rep.handled_at = utcnow()
        rep.handled_by = actor.name
    _flush(session, "report")
    audit.record(
        session,
        actor,
        f"report.{action}",
        "report",
        rep.id,
        before=before,
        after=rep.snapshot(),
        detail={"to": str(rep.addressed_to_org_id) if rep.addressed_to_org_id else None},
    )
    if action == "route":
        notify(session, rep.contact_email, "report.routed", rep.tracking_number, due=rep.handle_due_on)
    else:
        notify(session, rep.contact_email, "report.handled", rep.tracking_number, outcome="dismissed")
    return rep


def handle_report(
    session: Session,
    principal: Principal,
    rep: Report,
    *,
    outcome: str,
    note: str,
    entry_id: uuid.UUID | None = None,
    forwarded_to: str | None = None,
) -> Report:
    """The recipient's outcome: substantiated (perhaps with its entry), unsubstantiated or forwarded."""
    if rep.addressed_to_org_id is None or principal.org_id != rep.addressed_to_org_id:
        raise Forbidden("Only the organisation the report was routed to reports its outcome")
    if rep.status != "routed":
        raise Conflict(f"Report {rep.tracking_number} is {rep.status}")
    if entry_id is not None:
        entry = session.get(Entry, entry_id)
        if entry is None or entry.owner_org_id != principal.org_id:
            raise ValidationProblem(
                "Link an entry your organisation submitted",
                errors=[{"in": "body", "field": "entry_id", "message": "no such entry of yours"}],
            )
    before = rep.snapshot()
    rep.status = "handled"
    rep.outcome = outcome
    rep.outcome_note = note.strip()
    rep.linked_entry_id = entry_id
    rep.forwarded_to = forwarded_to
    rep.handled_at = utcnow()
    rep.handled_by = principal.actor.name
    _flush(session, "report")
    audit.record(
        session, principal.actor, "report.handle", "report", rep.id, before=before, after=rep.snapshot(),
        detail={"outcome": outcome, "late": bool(rep.handle_due_on and china_today() > rep.handle_due_on)},
    )  # fmt: skip
    notify(session, rep.contact_email, "report.handled", rep.tracking_number, outcome=outcome)
    return rep


def report_overdue(rep: Report, today: date) -> bool:
    return rep.status == "routed" and rep.handle_due_on is not None and today > rep.handle_due_on


def list_reports(
    session: Session,
    principal: Principal,
    *,
    status: str | None = None,
    overdue: bool | None = None,
    today: date | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Report]:
    today = today or china_today()
    stmt = scoped(select(Report), Report, principal)
    if status:
        stmt = stmt.where(Report.status == status)
    late = and_(Report.status == "routed", Report.handle_due_on < today)
    if overdue is True:
        stmt = stmt.where(late)
    elif overdue is False:
        stmt = stmt.where(~late)
    return list(session.scalars(stmt.order_by(Report.filed_at, Report.id).limit(limit).offset(offset)))


# --- jobs -----------------------------------------------------------------------------------------------


def run_jobs(session: Session, *, today: date | None = None) -> dict[str, Any]:
    """Flag disputed the entries whose objection reached its flag date; count what is overdue."""
    today = today or china_today()
    flagged = 0
    for obj in session.scalars(
        select(Objection).where(
            Objection.status != "decided", Objection.disputed_at.is_(None), Objection.dispute_due_on <= today
        )
    ):
        entry = session.get(Entry, obj.entry_id)
        if entry is not None and Status(entry.status) in IN_FORCE:
            mark_disputed(session, obj, today=today)
            flagged += 1
    overdue_objections = session.scalar(
        select(func.count()).select_from(Objection).where(_objection_overdue_clause(today))
    )
    overdue_repairs = session.scalar(
        select(func.count())
        .select_from(RepairApplication)
        .where(RepairApplication.status != "decided", RepairApplication.decide_due_on < today)
    )
    overdue_reports = session.scalar(
        select(func.count())
        .select_from(Report)
        .where(Report.status == "routed", Report.handle_due_on < today)
    )
    return {
        "disputed": flagged,
        "overdue_objections": int(overdue_objections or 0),
        "overdue_repairs": int(overdue_repairs or 0),
        "overdue_reports": int(overdue_reports or 0),
        "today": today.isoformat(),
    }
