"""The registry's own work: submit, take one lifecycle step, open linked entries, read, evidence.

A step here changes the entry, its periods and its history and records the audit event; what follows
from it in other slices (instructions, the change feed, correction notices, linked entries) is the
workflow's (`workflows.entries.take_step`), which every caller uses.
"""

from __future__ import annotations

import contextlib
import unicodedata
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.exc import StaleDataError

from fanchaoxin.blacklist.evidence_digest import checked, content_address
from fanchaoxin.blacklist.lifecycle import IN_FORCE, Action, EntryFacts, Status, next_status
from fanchaoxin.blacklist.models import Entry, EntryTransition, Evidence, EvidenceBlob, ProposedIdentifier
from fanchaoxin.blacklist.schemas import EntryIn
from fanchaoxin.core import audit, identifiers, vault
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.auth import Principal
from fanchaoxin.core.calendar import SHANGHAI, add_months, add_working_days, china_today
from fanchaoxin.core.catalogue import catalogues, department_bases
from fanchaoxin.core.db import new_id, utcnow
from fanchaoxin.core.errors import (
    Conflict,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationProblem,
)
from fanchaoxin.core.identifiers import mask
from fanchaoxin.core.permissions import SEE_REVOKED, sees_shared_list
from fanchaoxin.core.settings import get_settings
from fanchaoxin.core.tenancy import get_visible, scoped
from fanchaoxin.subjects import names as subject_names
from fanchaoxin.subjects import service as subjects
from fanchaoxin.subjects.models import LiableLink, Subject
from fanchaoxin.subjects.names import display_name


def _transition_row(entry: Entry, frm: str | None, to: str, action: str, actor: Actor, reason: str) -> None:
    entry.transitions.append(
        EntryTransition(
            from_status=frm,
            to_status=to,
            action=action,
            actor=actor.name,
            actor_org_id=actor.org_id,
            reason=reason,
        )
    )


def lost_race() -> Conflict:
    """What a reviewer hears whose step lost to another one taken on the entry at the same moment."""
    return Conflict("Another reviewer changed this entry at the same time; reload it", code="entry.changed")


def as_submitted(data: EntryIn) -> dict[str, Any]:
    """The subject as its submitter sent it (identifiers normalised): all it is shown until publication."""
    return {
        "kind": data.subject.kind,
        "name": display_name(data.subject.name),
        "identifiers": [{"type": i.type.value, "value": i.value} for i in data.subject.identifiers],
    }


def contact_of(data: EntryIn) -> dict[str, Any] | None:
    """The subject's contact for the notice (告知书) as the entry keeps it (sealed); None when empty."""
    if data.contact is None or data.contact.is_empty():
        return None
    return data.contact.model_dump(exclude_none=True)


def gains_of(data: EntryIn) -> dict[str, Any] | None:
    """What the finding says the 炒信 gained (measure 5), as the entry keeps it; None when nothing."""
    return data.gains.model_dump(exclude_none=True) or None if data.gains else None


def submit(
    session: Session, actor: Actor, org_id: uuid.UUID, data: EntryIn, *, batch_id: uuid.UUID | None = None
) -> Entry:
    """Record a submission (status `submitted`): the subject is resolved, liable persons linked.

    Identifiers it gives a subject that already existed are only proposed (`ProposedIdentifier`), and
    what resolution could not settle is noted for the reviewer (`Entry.resolution_conflicts`).
    """
    resolution = subjects.resolve(
        session,
        actor,
        kind=data.subject.kind,
        name=data.subject.name,
        identifiers=[(i.type.value, i.value) for i in data.subject.identifiers],
    )
    conflicts = list(resolution.conflicts)
    entry_id = new_id()
    proposed = [
        ProposedIdentifier(
            entry_id=entry_id, subject_id=resolution.subject.id, party="subject", type=t, value=v
        )
        for _, t, v in resolution.proposed
    ]
    links = []
    for i, person in enumerate(data.liable_persons):
        party = f"liable_persons[{i}]"
        res = subjects.resolve(
            session,
            actor,
            kind="individual",
            name=person.name,
            identifiers=[(x.type.value, x.value) for x in person.identifiers],
            field_prefix=party,
        )
        conflicts += res.conflicts
        proposed += [
            ProposedIdentifier(entry_id=entry_id, subject_id=res.subject.id, party=party, type=t, value=v)
            for _, t, v in res.proposed
        ]
        links.append(
            LiableLink(
                unit_id=resolution.subject.id,
                person_id=res.subject.id,
                role=person.role.value,
                entry_id=entry_id,
            )
        )
    # Everything the entry row holds is known before it is written: the submission is version 1.
    entry = Entry(
        id=entry_id,
        subject_id=resolution.subject.id,
        owner_org_id=org_id,
        shared_with_all=False,
        status=Status.submitted.value,
        behaviours=list(data.behaviours),
        role=data.role.value,
        services=sorted(s.value for s in data.services),
        severity=data.severity,
        basis=data.basis.value,
        document_number=data.document_number,
        issuing_authority=data.issuing_authority,
        document_date=data.document_date,
        occurred_from=data.occurred_from,
        occurred_to=data.occurred_to,
        facts=data.facts,
        submitted_by=actor.name,
        batch_id=batch_id,
        submitted_subject=as_submitted(data),
        resolution_conflicts=conflicts or None,
        subject_contact=contact_of(data),
        gains=gains_of(data),
    )
    session.add(entry)
    session.flush()
    session.add_all([*links, *proposed])
    _transition_row(entry, None, Status.submitted.value, "submit", actor, "")
    session.flush()
    audit.record(
        session,
        actor,
        "entry.submit",
        "entry",
        entry.id,
        after=entry.snapshot(),
        detail={
            "subject_id": str(entry.subject_id),
            "subject_created": resolution.created,
            "proposed_identifiers": len(proposed),
            "conflicts": [c["type"] for c in conflicts],
        },
    )
    return entry


def shows_as_submitted(entry: Entry, principal: Principal) -> bool:
    """Whether the entry's subject is shown as its submitter sent it rather than as resolved.

    Before publication the subject an entry was matched to may be another tenant's, unpublished: only
    the platform sees it. Once published, the subject is what every participant sees.
    """
    return not principal.is_platform and entry.published_at is None and entry.submitted_subject is not None


# --- proposed identifiers --------------------------------------------------------------------------

# Before publication a reviewer may still reject a proposed identifier.
_BEFORE_PUBLICATION = frozenset({Status.submitted, Status.under_review, Status.notice_period})


def proposed_of(
    session: Session, entry_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, list[ProposedIdentifier]]:
    """The identifiers each of these entries proposed, in the order they were given."""
    out: dict[uuid.UUID, list[ProposedIdentifier]] = {i: [] for i in entry_ids}
    if not out:
        return out
    rows = session.scalars(
        select(ProposedIdentifier)
        .where(ProposedIdentifier.entry_id.in_(list(out)))
        .order_by(ProposedIdentifier.created_at, ProposedIdentifier.party, ProposedIdentifier.id)
    )
    for p in rows:
        out[p.entry_id].append(p)
    return out


def reject_proposed(
    session: Session,
    actor: Actor,
    entry: Entry,
    proposal_id: uuid.UUID,
    *,
    reason: str,
    expected_version: int | None = None,
) -> ProposedIdentifier:
    """A reviewer keeps one identifier of a submission from joining its subject (before publication)."""
    proposal = session.get(ProposedIdentifier, proposal_id)
    if proposal is None or proposal.entry_id != entry.id:
        raise NotFound(f"No proposed identifier {proposal_id} on entry {entry.id}", code="entry.no_proposal")
    if not reason.strip():
        raise ValidationProblem(
            "Rejecting an identifier needs a reason",
            code="entry.reason_required",
            params={"action": "reject_identifier"},
            errors=[{"in": "body", "field": "reason", "type": "missing", "message": "give the reason"}],
        )
    if expected_version is not None and expected_version != entry.version:
        raise Conflict(
            f"The entry changed since you read it (version {entry.version}, "
            f"you sent {expected_version}); reload it",
            code="entry.changed",
        )
    if Status(entry.status) not in _BEFORE_PUBLICATION:
        raise Conflict(
            f"The entry is {entry.status}; its identifiers were settled at publication",
            code="entry.identifiers_settled",
            params={"status": entry.status},
        )
    if proposal.status != "proposed":
        raise Conflict(
            f"This identifier is already {proposal.status}",
            code="entry.proposal_decided",
            params={"proposal_status": proposal.status},
        )
    proposal.status = "rejected"
    proposal.reason = reason.strip()
    proposal.decided_by = actor.name
    proposal.decided_at = utcnow()
    # The entry's version moves on: a reviewer publishing from a page read before this is told to reload.
    entry.updated_at = utcnow()
    try:
        session.flush()
    except StaleDataError as exc:
        raise lost_race() from exc
    audit.record(
        session,
        actor,
        "entry.identifier_reject",
        "entry",
        entry.id,
        detail={
            "proposal_id": str(proposal.id),
            "party": proposal.party,
            "type": proposal.type,
            "value": mask(proposal.type, proposal.value),
            "reason": proposal.reason,
        },
    )
    return proposal


def drop_proposed(session: Session, actor: Actor, entry: Entry) -> int:
    """An entry rejected before publication gives nothing to any subject: what it proposed is settled."""
    rows = [p for p in proposed_of(session, [entry.id])[entry.id] if p.status == "proposed"]
    for p in rows:
        p.status = "rejected"
        p.reason = "the entry was rejected"
        p.decided_by = actor.name
        p.decided_at = utcnow()
    session.flush()
    return len(rows)


def join_proposed(session: Session, actor: Actor, entry: Entry) -> set[uuid.UUID]:
    """At publication — the reviewer's acceptance — the identifiers the entry still proposes join their
    subjects. Returns the subjects whose identifiers changed (their entries in force are re-sent)."""
    changed: set[uuid.UUID] = set()
    rows = proposed_of(session, [entry.id])[entry.id]
    for p in rows:
        if p.status != "proposed":
            continue
        if p.party == "subject":
            target = subjects.get_subject(session, entry.subject_id)
        else:
            target = subjects.survivor(session, subjects.get_subject(session, p.subject_id))
        outcome = subjects.add_identifier(session, target, p.type, p.value)
        p.status = "taken" if outcome == "taken" else "joined"
        p.subject_id = target.id
        p.decided_by = actor.name
        p.decided_at = utcnow()
        if outcome == "added":
            changed.add(target.id)
    if rows:
        session.flush()
        audit.record(
            session,
            actor,
            "entry.identifiers_join",
            "entry",
            entry.id,
            detail={
                "joined": sum(p.status == "joined" for p in rows),
                "taken": sum(p.status == "taken" for p in rows),
                "rejected": sum(p.status == "rejected" for p in rows),
                "subjects": sorted(str(s) for s in changed),
            },
        )
    return changed


def facts_of(entry: Entry) -> EntryFacts:
    return EntryFacts(
        status=Status(entry.status),
        basis=entry.basis,
        notice_ends_on=entry.notice_ends_on,
        min_end_on=entry.min_end_on,
        max_end_on=entry.max_end_on,
        is_linked=entry.parent_entry_id is not None,
    )


def transition(
    session: Session,
    actor: Actor,
    entry: Entry,
    action: Action,
    *,
    reason: str = "",
    expected_version: int | None = None,
    today: date | None = None,
    system: bool = False,
) -> Entry:
    """Take one lifecycle step of this entry alone: status, periods, history, audit.

    Callers go through `workflows.entries.take_step`, which adds what follows in other slices.
    """
    today = today or china_today()
    if expected_version is not None and expected_version != entry.version:
        raise Conflict(
            f"The entry changed since you read it (version {entry.version}, "
            f"you sent {expected_version}); reload it",
            code="entry.changed",
        )
    target = next_status(facts_of(entry), action, today=today, reason=reason, system=system)
    # The version-checked UPDATE must run in the flush below, where a lost race becomes a 409: loading
    # the timeline to append to it would otherwise flush the changed entry first (autoflush).
    with session.no_autoflush:
        before = entry.snapshot()
        frm = entry.status
        entry.status = target.value
        now = utcnow()
        if action == Action.open_notice:
            entry.notice_started_on = today
            entry.notice_ends_on = add_working_days(today, get_settings().notice_working_days)
        if action == Action.publish:
            sev = catalogues().severities[entry.severity]
            entry.published_at = now
            entry.min_end_on = add_months(today, sev.min_months)
            entry.max_end_on = add_months(today, sev.max_months)
        if target in (Status.expired, Status.revoked, Status.repaired, Status.rejected):
            entry.ended_at = now
            entry.end_reason = reason.strip() or action.value
        entry.shared_with_all = target in IN_FORCE
        _transition_row(entry, frm, target.value, action.value, actor, reason.strip())
    try:
        session.flush()
    except StaleDataError as exc:
        raise lost_race() from exc
    audit.record(
        session,
        actor,
        f"entry.{action.value}",
        "entry",
        entry.id,
        before=before,
        after=entry.snapshot(),
        detail={"from": frm, "to": target.value},
    )
    return entry


def open_linked_entries(session: Session, actor: Actor, unit_entry: Entry) -> list[Entry]:
    """Liable persons are punished with the unit: one entry each, under review, to be published with it.

    The caller publishes them through the same step as any entry (`workflows.entries.take_step`).
    """
    links = session.scalars(select(LiableLink).where(LiableLink.entry_id == unit_entry.id)).all()
    opened: list[Entry] = []
    for link in links:
        person = subjects.survivor(session, subjects.get_subject(session, link.person_id))
        linked = Entry(
            subject_id=person.id,
            owner_org_id=unit_entry.owner_org_id,
            shared_with_all=False,
            status=Status.under_review.value,
            behaviours=list(unit_entry.behaviours),
            role=unit_entry.role,
            services=list(unit_entry.services),
            severity=unit_entry.severity,
            basis=unit_entry.basis,
            document_number=unit_entry.document_number,
            issuing_authority=unit_entry.issuing_authority,
            document_date=unit_entry.document_date,
            occurred_from=unit_entry.occurred_from,
            occurred_to=unit_entry.occurred_to,
            facts=f"{link.role} of the unit listed in entry {unit_entry.id}",
            parent_entry_id=unit_entry.id,
            liable_role=link.role,
            submitted_by=actor.name,
            batch_id=unit_entry.batch_id,
        )
        session.add(linked)
        _transition_row(
            linked,
            None,
            Status.under_review.value,
            "link",
            actor,
            f"liable person ({link.role}) of entry {unit_entry.id}",
        )
        opened.append(linked)
    session.flush()
    return opened


def linked_entries(session: Session, entry: Entry) -> list[Entry]:
    return list(
        session.scalars(select(Entry).where(Entry.parent_entry_id == entry.id).order_by(Entry.submitted_at))
    )


# --- reading ---------------------------------------------------------------------------------------


def entry_ids_of(session: Session, subject_id: uuid.UUID) -> list[uuid.UUID]:
    return list(session.scalars(select(Entry.id).where(Entry.subject_id == subject_id)))


def entries_of(session: Session, subject_id: uuid.UUID, entry_ids: list[uuid.UUID]) -> list[Entry]:
    """These entries, each of which must be the subject's (a 422 naming `entry_ids` otherwise)."""
    entries = list(session.scalars(select(Entry).where(Entry.id.in_(entry_ids)))) if entry_ids else []
    if len(entries) != len(set(entry_ids)) or any(e.subject_id != subject_id for e in entries):
        raise ValidationProblem(
            "Some entries do not belong to this subject",
            errors=[{"field": "entry_ids", "message": "not all ours"}],
        )
    return entries


def move_entries(session: Session, entry_ids: list[uuid.UUID], to_subject_id: uuid.UUID) -> None:
    """Entries follow their subject's identifiers in a merge or a split."""
    if entry_ids:
        session.execute(
            update(Entry).where(Entry.id.in_(entry_ids)).values(subject_id=to_subject_id),
            execution_options={"synchronize_session": False},
        )
    session.flush()
    session.expire_all()


def in_force_of(session: Session, subject_ids: list[uuid.UUID]) -> list[Entry]:
    return list(
        session.scalars(
            select(Entry)
            .where(Entry.subject_id.in_(subject_ids), Entry.status.in_([s.value for s in IN_FORCE]))
            .order_by(Entry.published_at, Entry.id)
        )
    )


def entries_in_force(session: Session, subject_id: uuid.UUID) -> list[Entry]:
    """A subject's published and disputed entries (what the information service and decide() see)."""
    return list(
        session.scalars(
            select(Entry)
            .where(Entry.subject_id == subject_id, Entry.status.in_([s.value for s in IN_FORCE]))
            .order_by(Entry.published_at)
        )
    )


def sees_list(principal: Principal, entry: Entry) -> bool:
    """Whether the caller may see an entry as far as the two lists go (两类名单, lists.yaml): a department
    sees the lists that reach departments and what it submitted itself — never the market-shared list
    of the participating enterprises."""
    return (
        sees_shared_list(principal)
        or entry.basis in department_bases()
        or (principal.org_id is not None and entry.owner_org_id == principal.org_id)
    )


def _lists_clause(principal: Principal) -> Any:
    """`sees_list` as a WHERE clause; None when the caller sees every list."""
    if sees_shared_list(principal):
        return None
    return or_(Entry.basis.in_(sorted(department_bases())), Entry.owner_org_id == principal.org_id)


def get_entry(session: Session, entry_id: uuid.UUID, principal: Principal) -> Entry:
    # After a revocation nothing of the entry is shown but to those who keep the record (SEE_REVOKED).
    entry = get_visible(session, Entry, entry_id, principal, what="entry")
    revoked_hidden = entry.status == Status.revoked.value and principal.role not in SEE_REVOKED
    if revoked_hidden or not sees_list(principal, entry):
        raise NotFound(f"No entry with id {entry_id}", code="entry.not_found")
    return entry


def get_entry_for_update(session: Session, entry_id: uuid.UUID) -> Entry:
    entry = session.get(Entry, entry_id)
    if entry is None:
        raise NotFound(f"No entry with id {entry_id}", code="entry.not_found")
    return entry


def _visible_entries(principal: Principal) -> Any:
    """Entries the caller may see (tenancy, revoked ones, the two lists), with their subjects' identifiers
    loaded in two queries, not one a row."""
    stmt = scoped(select(Entry), Entry, principal).options(
        selectinload(Entry.subject).selectinload(Subject.identifiers)
    )
    if principal.role not in SEE_REVOKED:
        stmt = stmt.where(Entry.status != Status.revoked.value)
    lists = _lists_clause(principal)
    if lists is not None:
        stmt = stmt.where(lists)
    return stmt


@dataclass(frozen=True)
class EntrySearch:
    """What a reviewer looks entries up by: `text` is a subject's name (a unit's in part, a person's
    whole), an entry id, a USCC or a document number (文书号); `entry_ids` are matches the caller
    found elsewhere (a notice's number); submission dates are China's calendar days, both included."""

    text: str = ""
    entry_ids: tuple[uuid.UUID, ...] = ()
    status: str | None = None
    submitted_from: date | None = None
    submitted_to: date | None = None


def _text_clause(session: Session, text: str, entry_ids: tuple[uuid.UUID, ...]) -> Any:
    matches: list[Any] = [Entry.id.in_(entry_ids)] if entry_ids else []
    with contextlib.suppress(ValueError):
        matches.append(Entry.id == uuid.UUID(text))
    if identifiers.is_valid("uscc", text):
        uscc = identifiers.normalise("uscc", text)
        held = subjects.find_by_identifiers(session, [("uscc", uscc)])
        if held:
            matches.append(Entry.subject_id.in_([s.id for s in held.values()]))
    matches.append(Entry.document_number == text)
    key = subject_names.name_key(text)
    if key:
        like = "%" + key.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_") + "%"
        # A unit's folded name is stored plainly and matches in part; a person's only as a blind index.
        personal = [k for k, spec in catalogues().subject_kinds.items() if spec.personal]
        named = select(Subject.id).where(
            or_(
                and_(Subject.kind.not_in(personal), Subject.name_key.like(like, escape="\\")),
                Subject.name_key == vault.blind("name", key),
            )
        )
        matches.append(Entry.subject_id.in_(named))
    return or_(*matches)


def search_entries(
    session: Session, principal: Principal, search: EntrySearch, *, offset: int = 0, limit: int = 50
) -> tuple[list[Entry], int]:
    """One page of the entries the caller may see that match, newest first, and how many match."""
    stmt = _visible_entries(principal)
    text = search.text.strip()
    if text or search.entry_ids:
        found = _text_clause(session, text, search.entry_ids) if text else Entry.id.in_(search.entry_ids)
        stmt = stmt.where(found)
    if search.status:
        stmt = stmt.where(Entry.status == search.status)
    if search.submitted_from:
        start = datetime.combine(search.submitted_from, time.min, SHANGHAI)
        stmt = stmt.where(Entry.submitted_at >= start)
    if search.submitted_to:
        end = datetime.combine(search.submitted_to + timedelta(days=1), time.min, SHANGHAI)
        stmt = stmt.where(Entry.submitted_at < end)
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    rows = list(
        session.scalars(stmt.order_by(Entry.submitted_at.desc(), Entry.id.desc()).offset(offset).limit(limit))
    )
    return rows, total


@dataclass
class EntryPage:
    entries: list[Entry]
    next_cursor: str | None


def list_entries(
    session: Session,
    principal: Principal,
    *,
    status: str | None = None,
    severity: str | None = None,
    behaviour: str | None = None,
    basis: str | None = None,
    subject_id: uuid.UUID | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> EntryPage:
    stmt = _visible_entries(principal)
    if status:
        stmt = stmt.where(Entry.status == status)
    if severity:
        stmt = stmt.where(Entry.severity == severity)
    if basis:
        stmt = stmt.where(Entry.basis == basis)
    if subject_id:
        stmt = stmt.where(Entry.subject_id == subject_id)
    if cursor:
        try:
            at_s, id_s = cursor.split("|", 1)
            at, last_id = datetime.fromisoformat(at_s), uuid.UUID(id_s)
        except ValueError as exc:
            raise ValidationProblem(
                "Bad cursor",
                errors=[{"in": "query", "field": "cursor", "message": "use next_cursor as given"}],
            ) from exc
        stmt = stmt.where(or_(Entry.submitted_at > at, and_(Entry.submitted_at == at, Entry.id > last_id)))
    stmt = stmt.order_by(Entry.submitted_at, Entry.id)
    if behaviour:
        # JSON containment differs between backends; behaviours are few, so filter after reading.
        rows: list[Entry] = []
        for e in session.scalars(stmt.limit(limit * 20)):
            if behaviour in e.behaviours:
                rows.append(e)
                if len(rows) == limit:
                    break
    else:
        rows = list(session.scalars(stmt.limit(limit)))
    nxt = f"{rows[-1].submitted_at.isoformat()}|{rows[-1].id}" if len(rows) == limit else None
    return EntryPage(rows, nxt)


# --- evidence --------------------------------------------------------------------------------------

# Evidence types, recognised by their content, not by what the client claims.
_SIGNATURES = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
ALLOWED_MEDIA_TYPES = frozenset(
    {"application/pdf", "image/png", "image/jpeg", "image/gif", "text/plain", "text/csv"}
)


def sniff(data: bytes) -> str | None:
    for magic, media in _SIGNATURES:
        if data.startswith(magic):
            return media
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "image/webp"
    if b"\x00" not in data[:8192]:
        try:
            data.decode("utf-8")
            return "text/plain"
        except UnicodeDecodeError:
            try:
                data.decode("gbk")
                return "text/plain"
            except UnicodeDecodeError:
                return None
    return None


FILENAME_MAX = 120


def display_filename(given: str) -> str:
    """The name an evidence file is shown under: its last path part, without control characters, at
    most FILENAME_MAX characters (the extension kept). The content is stored by its hash, never by it."""
    name = given.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = " ".join(name.split()).strip(" .")
    if len(name) > FILENAME_MAX:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 10:
            name = stem[: FILENAME_MAX - len(ext) - 1].rstrip(" .") + "." + ext
        else:
            name = name[:FILENAME_MAX].rstrip(" .")
    return name or "evidence"


def add_evidence(
    session: Session, actor: Actor, entry: Entry, *, filename: str, declared_type: str | None, data: bytes
) -> Evidence:
    limit = get_settings().evidence_max_bytes
    # The name as given may be a path or hold control characters: neither is stored nor echoed.
    filename = display_filename(filename)
    if len(data) > limit:
        raise PayloadTooLarge(
            f"Evidence file {filename!r} is {len(data)} bytes; the limit is {limit}",
            code="evidence.too_large",
            params={"size": len(data), "limit": limit},
        )
    if not data:
        raise ValidationProblem(
            "Empty evidence file",
            code="evidence.empty",
            errors=[{"field": "file", "message": "the file is empty"}],
        )
    actual = sniff(data)
    declared = (declared_type or "").split(";")[0].strip().lower() or None
    if declared == "text/csv" and actual == "text/plain":
        actual = "text/csv"
    if actual is None or actual not in ALLOWED_MEDIA_TYPES:
        raise UnsupportedMediaType(
            f"Evidence {filename!r} is not an allowed type (PDF, PNG, JPEG, GIF, plain text or CSV)",
            code="evidence.type_not_allowed",
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
            f"Evidence {filename!r} is declared as {declared} but its content is {actual}",
            code="evidence.type_mismatch",
            errors=[
                {
                    "in": "body",
                    "field": "file",
                    "type": "media_type_mismatch",
                    "message": f"content is {actual}",
                }
            ],
        )
    if Status(entry.status) in (Status.rejected, Status.expired, Status.revoked, Status.repaired):
        raise Conflict(
            f"The entry is {entry.status}; no more evidence can be added",
            code="evidence.entry_closed",
            params={"status": entry.status},
        )
    digest = content_address(data)
    if session.get(EvidenceBlob, digest) is None:
        session.add(EvidenceBlob(digest=digest, size=len(data), media_type=actual, data=data))
    existing = session.scalar(
        select(Evidence).where(Evidence.entry_id == entry.id, Evidence.digest == digest)
    )
    if existing is not None:
        return existing
    ev = Evidence(
        entry_id=entry.id,
        digest=digest,
        filename=filename,
        media_type=actual,
        size=len(data),
        uploaded_by=actor.name,
    )
    session.add(ev)
    session.flush()
    audit.record(
        session,
        actor,
        "entry.evidence_add",
        "entry",
        entry.id,
        detail={"digest": digest, "size": len(data), "media_type": actual},
    )
    return ev


def read_evidence(
    session: Session, principal: Principal, entry_id: uuid.UUID, digest: str
) -> tuple[Evidence, EvidenceBlob]:
    """An evidence file, for the platform and the organisation that reported the entry; every read is
    an audit event (the API and the console both come here)."""
    entry = get_entry(session, entry_id, principal)
    if not (principal.is_platform or entry.owner_org_id == principal.org_id):
        raise NotFound(f"No entry with id {entry_id}", code="entry.not_found")
    ev, blob = get_evidence_blob(session, entry, digest)
    audit.record(session, principal.actor, "evidence.read", "entry", entry.id, detail={"digest": digest})
    return ev, blob


def get_evidence_blob(session: Session, entry: Entry, digest: str) -> tuple[Evidence, EvidenceBlob]:
    """An entry's evidence file by its address, its bytes checked against it (the profile's digest)."""
    ev = session.scalar(select(Evidence).where(Evidence.entry_id == entry.id, Evidence.digest == digest))
    blob = session.get(EvidenceBlob, digest) if ev else None
    if ev is None or blob is None:
        raise NotFound(f"No evidence {digest} on this entry", code="evidence.not_found")
    return ev, checked(blob)


# --- jobs ------------------------------------------------------------------------------------------


def due_for_expiry(session: Session, today: date) -> list[Entry]:
    """Units' entries in force whose maximum period has run out (their liable persons follow them)."""
    return list(
        session.scalars(
            select(Entry).where(
                Entry.status.in_([Status.published.value, Status.disputed.value]),
                Entry.parent_entry_id.is_(None),
                Entry.max_end_on <= today,
            )
        )
    )


def flag_notice_ended(session: Session, actor: Actor, today: date) -> int:
    """Mark, once, each entry whose notice period is over: it is ready to publish (a deadline event)."""
    notice_over = session.scalars(
        select(Entry).where(Entry.status == Status.notice_period.value, Entry.notice_ends_on < today)
    ).all()
    flagged = 0
    for entry in notice_over:
        if any(t.action == "notice_ended" for t in entry.transitions):
            continue
        _transition_row(
            entry, entry.status, entry.status, "notice_ended", actor, "notice period over; ready to publish"
        )
        audit.record(
            session,
            actor,
            "entry.notice_ended",
            "entry",
            entry.id,
            detail={"notice_ends_on": entry.notice_ends_on.isoformat() if entry.notice_ends_on else None},
        )
        flagged += 1
    session.flush()
    return flagged


def entries_by_id(session: Session, entry_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, Entry]:
    """The entries a list of instructions or cases refers to, by id (the caller may see those)."""
    if not entry_ids:
        return {}
    return {e.id: e for e in session.scalars(select(Entry).where(Entry.id.in_(list(entry_ids))))}


def entries_owned_by(session: Session, org_id: uuid.UUID, *, limit: int = 50) -> list[Entry]:
    """An organisation's own entries, newest first."""
    return list(
        session.scalars(
            select(Entry).where(Entry.owner_org_id == org_id).order_by(Entry.submitted_at.desc()).limit(limit)
        )
    )
