"""Entity resolution, merges and splits — the rules for who is who.

A submission that shares a strong identifier with a known subject attaches to it, but its other
identifiers only *propose* themselves: they join the subject when a reviewer accepts them (at the
entry's publication). A similar name alone never merges anything: it only *proposes* a merge, with its
score, for a reviewer.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz, process
from sqlalchemy import delete, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from fanchaoxin.core import audit, vault
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.catalogue import catalogues
from fanchaoxin.core.db import new_id, utcnow
from fanchaoxin.core.errors import Conflict, NotFound, ValidationProblem
from fanchaoxin.core.identifiers import STRONG_TYPES, IdentifierType, mask
from fanchaoxin.subjects.models import MergeProposal, Subject, SubjectIdentifier, SubjectMerge
from fanchaoxin.subjects.names import display_name, name_key

NAME_PROPOSAL_THRESHOLD = 90.0
NAME_CANDIDATE_LIMIT = 500


@dataclass
class Resolution:
    """Who a submission names, and what of it a reviewer must settle before it changes anyone.

    `proposed`: identifiers the submission gives for a subject that already existed, as
    `(position in the submission, type, value)`; they join that subject only when a reviewer accepts
    them (`add_identifier`, at the entry's publication) — a submission must not change a subject others
    rely on. `conflicts`: what the identifiers say that the submission contradicts (another kind of
    subject, several subjects); for the reviewer only, never for the submitter, to whom they would
    reveal subjects it may not know of.
    """

    subject: Subject
    created: bool
    proposals: list[MergeProposal] = field(default_factory=list)
    proposed: list[tuple[int, str, str]] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)


def survivor(session: Session, subject: Subject) -> Subject:
    """Follow merges to the subject that absorbed this one."""
    seen = set()
    while subject.merged_into_id is not None and subject.id not in seen:
        seen.add(subject.id)
        nxt = session.get(Subject, subject.merged_into_id)
        if nxt is None:
            break
        subject = nxt
    return subject


def find_by_identifiers(session: Session, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], Subject]:
    """The subjects that hold these canonical identifiers, looked up by their blind indexes."""
    if not pairs:
        return {}
    by_index = {vault.identifier_index(t, v): (t, v) for t, v in pairs}
    rows = session.execute(
        select(SubjectIdentifier.type, SubjectIdentifier.value_index, Subject)
        .join(Subject, Subject.id == SubjectIdentifier.subject_id)
        .where(
            tuple_(SubjectIdentifier.type, SubjectIdentifier.value_index).in_(
                [(t, ix) for ix, (t, _) in by_index.items()]
            )
        )
    ).all()
    return {by_index[ix]: survivor(session, s) for _t, ix, s in rows}


def stored_name_key(kind: str, name: str) -> str:
    """``Subject.name_key`` as stored: a unit's folded name; a natural person's only as a blind index
    (an exact search still finds the person; no similarity search runs over persons' names)."""
    key = name_key(name)
    return vault.blind("name", key) if is_personal(kind) else key


def kind_conflict(
    field_name: str, t: str, v: str, kind: str, owner_id: uuid.UUID, owner_kind: str
) -> dict[str, Any]:
    """A reviewer's note: the identifier at `field_name` belongs to a subject of another kind."""
    return {
        "type": "identifier_kind_conflict",
        "field": field_name,
        "identifier_type": t,
        "subject_id": str(owner_id),
        "subject_kind": owner_kind,
        "message": f"{t} {mask(t, v)} belongs to subject {owner_id} of kind {owner_kind}, "
        f"not {kind}; the submission got a subject of its own without it",
    }


def several_conflict(field_name: str, subject_ids: list[uuid.UUID]) -> dict[str, Any]:
    """A reviewer's note: the identifiers of one submission name several subjects (a merge is proposed)."""
    return {
        "type": "several_subjects",
        "field": field_name,
        "subject_ids": [str(i) for i in subject_ids],
        "message": f"the identifiers name {len(subject_ids)} subjects; the entry went to the first, "
        "a merge of the others is proposed",
    }


def resolve(
    session: Session,
    actor: Actor,
    *,
    kind: str,
    name: str,
    identifiers: list[tuple[str, str]],
    field_prefix: str = "subject",
    _again: bool = False,
) -> Resolution:
    """Find or create the subject for a submission (identifiers already normalised).

    A strong identifier already known names the subject; the submission's other new identifiers are
    only proposed (`Resolution.proposed`). A new subject gets the identifiers no one has from the
    start: it has no published entry until a reviewer publishes one.
    """
    strong = [(t, v) for t, v in identifiers if IdentifierType(t) in STRONG_TYPES]
    owned = find_by_identifiers(session, identifiers)
    # Only strong identifiers say who a subject is; a weak one already owned elsewhere is just not copied.
    known = {pair: s for pair, s in owned.items() if pair in strong}
    conflicts: list[dict[str, Any]] = []
    for i, (t, v) in enumerate(identifiers):
        s = known.get((t, v))
        if s is not None and s.kind != kind:
            conflicts.append(kind_conflict(f"{field_prefix}.identifiers[{i}]", t, v, kind, s.id, s.kind))
    matched: list[Subject] = []
    for pair in strong:
        s = known.get(pair)
        if s is not None and s.kind == kind and s not in matched:
            matched.append(s)
    proposals: list[MergeProposal] = []
    free = [(i, t, v) for i, (t, v) in enumerate(identifiers) if (t, v) not in owned]
    if matched:
        subject = matched[0]
        for other in matched[1:]:
            proposals.append(_propose(session, subject, other, 100.0, "identifiers of one submission"))
        if len(matched) > 1:
            conflicts.append(several_conflict(f"{field_prefix}.identifiers", [s.id for s in matched]))
        return Resolution(subject, False, proposals, free, conflicts)
    subject = Subject(kind=kind, name=display_name(name), name_key=stored_name_key(kind, name))
    session.add(subject)
    session.flush()
    lost = [(t, v) for _, t, v in free if not _insert_identifier(session, subject.id, t, v)]
    session.expire(subject, ["identifiers"])
    if lost:
        # Another submission created a subject with these identifiers at the same moment and committed
        # first (the unique key on identifiers decided): undo ours and resolve against what it made.
        session.execute(delete(SubjectIdentifier).where(SubjectIdentifier.subject_id == subject.id))
        session.delete(subject)
        session.flush()
        if _again:
            raise Conflict("Another submission for the same subject is being stored; try again")
        return resolve(
            session,
            actor,
            kind=kind,
            name=name,
            identifiers=identifiers,
            field_prefix=field_prefix,
            _again=True,
        )
    proposals.extend(_name_proposals(session, subject))
    subject.proposals_checked_at = utcnow()
    session.flush()
    audit.record(session, actor, "subject.create", "subject", subject.id, after=subject.snapshot())
    return Resolution(subject, True, proposals, [], conflicts)


def add_identifier(session: Session, subject: Subject, type_: str, value: str) -> str:
    """Give the subject an identifier a reviewer accepted: `added`, `had` (it was the subject's
    already) or `taken` (another subject has it by now).

    Two publications may accept the same identifier at once: the database's unique key decides, and
    the later one finds it taken instead of failing.
    """
    owner = find_by_identifiers(session, [(type_, value)]).get((type_, value))
    if owner is not None:
        return "had" if owner.id == subject.id else "taken"
    if _insert_identifier(session, subject.id, type_, value):
        session.expire(subject, ["identifiers"])
        return "added"
    owner = find_by_identifiers(session, [(type_, value)]).get((type_, value))
    return "had" if owner is not None and owner.id == subject.id else "taken"


def _insert_identifier(session: Session, subject_id: uuid.UUID, type_: str, value: str) -> bool:
    """Insert the identifier unless some subject has it: the database's unique key decides, so two
    transactions racing for one identifier never fail — the later one is told it lost."""
    table = SubjectIdentifier.__table__
    insert = pg_insert(table) if session.get_bind().dialect.name == "postgresql" else sqlite_insert(table)
    row = {
        "id": new_id(),
        "subject_id": subject_id,
        "type": type_,
        "value": value,
        "value_index": vault.identifier_index(type_, value),
        "created_at": utcnow(),
    }
    inserted = session.execute(
        insert.values(**row)
        .on_conflict_do_nothing(index_elements=["type", "value_index"])
        .returning(table.c.id)
    ).first()
    return inserted is not None


def _name_proposals(session: Session, subject: Subject) -> list[MergeProposal]:
    """Subjects of the same kind with a similar name: proposals for a reviewer, never merges.

    Not for natural persons: their name key is a blind index, and strong identifiers say who they are."""
    key = subject.name_key
    if len(key) < 2 or is_personal(subject.kind):
        return []
    # Blocking on the first two characters keeps this cheap with a million subjects.
    candidates = session.execute(
        select(Subject.id, Subject.name_key)
        .where(
            Subject.kind == subject.kind,
            Subject.id != subject.id,
            Subject.merged_into_id.is_(None),
            Subject.name_key.like(key[:2].replace("%", r"\%").replace("_", r"\_") + "%", escape="\\"),
        )
        .limit(NAME_CANDIDATE_LIMIT)
    ).all()
    if not candidates:
        return []
    choices = {cid: ckey for cid, ckey in candidates}
    out = []
    for _, score, cid in process.extract(
        key, choices, scorer=fuzz.ratio, score_cutoff=NAME_PROPOSAL_THRESHOLD
    ):
        other = session.get(Subject, cid)
        if other is not None:
            out.append(_propose(session, subject, other, float(score), "similar name"))
    return out


def _propose(session: Session, subject: Subject, other: Subject, score: float, reason: str) -> MergeProposal:
    existing = session.scalar(
        select(MergeProposal).where(
            MergeProposal.status == "open",
            ((MergeProposal.subject_id == subject.id) & (MergeProposal.candidate_id == other.id))
            | ((MergeProposal.subject_id == other.id) & (MergeProposal.candidate_id == subject.id)),
        )
    )
    if existing is not None:
        return existing
    proposal = MergeProposal(
        subject_id=subject.id, candidate_id=other.id, score=round(score, 1), reason=reason
    )
    session.add(proposal)
    session.flush()
    return proposal


def get_subject(session: Session, subject_id: uuid.UUID) -> Subject:
    s = session.get(Subject, subject_id)
    if s is None:
        raise NotFound(f"No subject with id {subject_id}", code="subject.not_found")
    return s


def is_personal(kind: str) -> bool:
    return catalogues().subject_kinds[kind].personal


def merge(
    session: Session,
    actor: Actor,
    survivor_id: uuid.UUID,
    merged_id: uuid.UUID,
    *,
    reason: str,
    entry_ids: list[uuid.UUID],
) -> SubjectMerge:
    """Merge one subject into another: its identifiers move, and the merge records which entries the
    caller moves with them (`workflows.subjects.merge_subjects`), so that it can be undone exactly."""
    if survivor_id == merged_id:
        raise Conflict("A subject cannot be merged into itself", code="subject.merge_self")
    if not reason.strip():
        raise ValidationProblem(
            "A merge needs a reason",
            code="subject.reason_required",
            errors=[{"field": "reason", "message": "give the reason"}],
        )
    keep, gone = get_subject(session, survivor_id), get_subject(session, merged_id)
    if keep.merged_into_id or gone.merged_into_id:
        raise Conflict(
            "One of the subjects has already been merged into another", code="subject.merged_already"
        )
    if keep.kind != gone.kind:
        raise Conflict(
            f"Subjects of different kinds ({keep.kind}, {gone.kind}) cannot be merged",
            code="subject.merge_kinds",
        )
    before = {"survivor": keep.snapshot(), "merged": gone.snapshot()}
    ident_ids = [
        str(i)
        for i in session.scalars(select(SubjectIdentifier.id).where(SubjectIdentifier.subject_id == gone.id))
    ]
    session.execute(
        update(SubjectIdentifier).where(SubjectIdentifier.subject_id == gone.id).values(subject_id=keep.id)
    )
    gone.merged_into_id = keep.id
    record = SubjectMerge(
        survivor_id=keep.id,
        merged_id=gone.id,
        moved_identifier_ids=ident_ids,
        moved_entry_ids=[str(i) for i in entry_ids],
        reason=reason.strip(),
        actor=actor.name,
    )
    session.add(record)
    session.execute(
        update(MergeProposal)
        .where(
            MergeProposal.status == "open",
            ((MergeProposal.subject_id == keep.id) & (MergeProposal.candidate_id == gone.id))
            | ((MergeProposal.subject_id == gone.id) & (MergeProposal.candidate_id == keep.id)),
        )
        .values(status="merged", decided_by=actor.name, decided_at=utcnow())
    )
    session.flush()
    session.expire_all()
    after = {
        "survivor": get_subject(session, keep.id).snapshot(),
        "merged": get_subject(session, gone.id).snapshot(),
    }
    audit.record(
        session,
        actor,
        "subject.merge",
        "subject",
        keep.id,
        before=before,
        after=after,
        detail={
            "merge_id": str(record.id),
            "merged_id": str(gone.id),
            "identifiers": len(ident_ids),
            "entries": len(entry_ids),
        },
    )
    return record


def merge_to_undo(session: Session, merge_id: uuid.UUID) -> SubjectMerge:
    """The merge to undo, if it can still be undone."""
    record = session.get(SubjectMerge, merge_id)
    if record is None:
        raise NotFound(f"No merge with id {merge_id}")
    if record.undone_at is not None:
        raise Conflict("This merge was already undone", code="subject.merge_undone")
    return record


def mark_undone(session: Session, actor: Actor, record: SubjectMerge) -> SubjectMerge:
    record.undone_at = utcnow()
    record.undone_by = actor.name
    session.flush()
    return record


def split(
    session: Session,
    actor: Actor,
    subject_id: uuid.UUID,
    *,
    identifier_ids: list[uuid.UUID],
    reason: str,
    name: str | None = None,
    into: uuid.UUID | None = None,
    entry_count: int = 0,
) -> Subject:
    """Move some identifiers of a subject to another (new, or the one merged earlier).

    The entries that go with them are the registry's to move (`workflows.subjects.split_subject`).
    """
    if not reason.strip():
        raise ValidationProblem(
            "A split needs a reason",
            code="subject.reason_required",
            errors=[{"field": "reason", "message": "give the reason"}],
        )
    source = get_subject(session, subject_id)
    if not identifier_ids:
        raise ValidationProblem(
            "A split needs at least one identifier",
            code="subject.split_needs_identifier",
            errors=[{"field": "identifier_ids", "message": "at least one"}],
        )
    idents = list(session.scalars(select(SubjectIdentifier).where(SubjectIdentifier.id.in_(identifier_ids))))
    if len(idents) != len(set(identifier_ids)) or any(i.subject_id != source.id for i in idents):
        raise ValidationProblem(
            "Some identifiers do not belong to this subject",
            code="subject.identifiers_not_ours",
            errors=[{"field": "identifier_ids", "message": "not all ours"}],
        )
    remaining = session.scalar(
        select(SubjectIdentifier.id).where(
            SubjectIdentifier.subject_id == source.id, SubjectIdentifier.id.not_in(identifier_ids)
        )
    )
    if remaining is None:
        raise Conflict(
            "A split must leave the subject at least one identifier", code="subject.split_leaves_none"
        )
    before = source.snapshot()
    if into is not None:
        target = get_subject(session, into)
        target.merged_into_id = None
    else:
        label = name or source.name
        target = Subject(
            kind=source.kind, name=display_name(label), name_key=stored_name_key(source.kind, label)
        )
        session.add(target)
        session.flush()
    for i in idents:
        i.subject_id = target.id
    session.flush()
    audit.record(
        session,
        actor,
        "subject.split",
        "subject",
        source.id,
        before=before,
        after=get_subject(session, source.id).snapshot(),
        detail={"into": str(target.id), "identifiers": len(idents), "entries": entry_count},
    )
    return target


def identifiers_out(subject: Subject, *, reveal: bool) -> list[dict[str, Any]]:
    """Identifiers for display: masked for natural persons unless an authorised reviewer asked to reveal."""
    personal = is_personal(subject.kind)
    return [
        {"type": i.type, "value": i.value if (reveal or not personal) else mask(i.type, i.value)}
        for i in subject.identifiers
    ]


def search_by_name(session: Session, name: str, *, limit: int = 20) -> list[Subject]:
    """Subjects whose name is the same after folding (a natural person's only so), then the closest
    similar names of units."""
    key = name_key(name)
    exact = list(
        session.scalars(
            select(Subject)
            .where(Subject.name_key.in_([key, vault.blind("name", key)]), Subject.merged_into_id.is_(None))
            .limit(limit)
        )
    )
    if len(exact) >= limit or len(key) < 2:
        return exact
    personal = [k for k, spec in catalogues().subject_kinds.items() if spec.personal]
    candidates = session.execute(
        select(Subject.id, Subject.name_key)
        .where(
            Subject.merged_into_id.is_(None),
            Subject.kind.not_in(personal),
            Subject.name_key.like(key[:2].replace("%", r"\%").replace("_", r"\_") + "%", escape="\\"),
        )
        .limit(NAME_CANDIDATE_LIMIT)
    ).all()
    seen = {s.id for s in exact}
    for _, _score, cid in process.extract(
        key, {cid: k for cid, k in candidates}, scorer=fuzz.ratio, score_cutoff=80, limit=limit
    ):
        if cid not in seen:
            s = session.get(Subject, cid)
            if s is not None:
                exact.append(s)
                seen.add(cid)
    return exact[:limit]


def check_pending_proposals(session: Session, *, limit: int = 5000) -> int:
    """Look for similar names of subjects created in bulk (run by `fcx jobs run`)."""
    pending = session.scalars(
        select(Subject)
        .where(Subject.proposals_checked_at.is_(None), Subject.merged_into_id.is_(None))
        .order_by(Subject.created_at)
        .limit(limit)
    ).all()
    for subject in pending:
        _name_proposals(session, subject)
        subject.proposals_checked_at = utcnow()
    session.flush()
    return len(pending)


def open_proposals_of(session: Session, subject_id: uuid.UUID) -> list[MergeProposal]:
    """Open merge proposals that name the subject, on either side."""
    return list(
        session.scalars(
            select(MergeProposal).where(
                MergeProposal.status == "open",
                (MergeProposal.subject_id == subject_id) | (MergeProposal.candidate_id == subject_id),
            )
        )
    )


def merges_of(session: Session, subject_id: uuid.UUID) -> list[SubjectMerge]:
    """The merges the subject took part in, as survivor or as the one merged."""
    return list(
        session.scalars(
            select(SubjectMerge).where(
                (SubjectMerge.survivor_id == subject_id) | (SubjectMerge.merged_id == subject_id)
            )
        )
    )


def get_merge(session: Session, merge_id: uuid.UUID) -> SubjectMerge:
    """A merge record, undone or not."""
    record = session.get(SubjectMerge, merge_id)
    if record is None:
        raise NotFound(f"No merge with id {merge_id}")
    return record
