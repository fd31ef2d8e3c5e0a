"""Bulk submission (批量报送): many validated entries stored as one batch, fast.

The single-entry path resolves subjects one query at a time; here the whole batch is resolved with
a few set queries, new subjects are created together (rows that share an identifier get one subject),
and rows are inserted in chunks. The rules are the same: identifiers decide who is who, a row's new
identifiers for a known subject are only proposed (they join at publication), what a row contradicts
is the reviewer's to see and never a row error (it would tell the submitter of a subject it may not
know), names only propose merges (checked later by `fcx jobs run`), every entry is an audited event.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fanchaoxin.blacklist.lifecycle import Status
from fanchaoxin.blacklist.models import Entry, EntryTransition, ProposedIdentifier, UploadBatch
from fanchaoxin.blacklist.schemas import EntryIn
from fanchaoxin.blacklist.service import as_submitted, contact_of, gains_of
from fanchaoxin.core import audit, crypto, vault
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.db import bulk_insert, new_id, utcnow
from fanchaoxin.core.identifiers import STRONG_TYPES, IdentifierType, mask_person_name
from fanchaoxin.subjects.models import LiableLink, Subject, SubjectIdentifier
from fanchaoxin.subjects.names import display_name
from fanchaoxin.subjects.service import (
    get_subject,
    is_personal,
    kind_conflict,
    several_conflict,
    stored_name_key,
    survivor,
)

CHUNK = 2000


@dataclass
class BatchResult:
    batch: UploadBatch
    entry_ids: list[uuid.UUID]
    errors: list[dict[str, Any]]


# What was sent about the subject (and how to reach it) is personal data; the log keeps the entry's own
# fields.
_NOT_LOGGED = frozenset(
    {"submitted_at", "updated_at", "submitted_subject", "resolution_conflicts", "subject_contact"}
)


def _chunks(items: list[Any], n: int = CHUNK) -> list[list[Any]]:
    return [items[i : i + n] for i in range(0, len(items), n)]


def _insert_rows(session: Session, model: Any, rows: list[dict[str, Any]]) -> None:
    bulk_insert(session, model.__table__, rows)


class _Resolver:
    """Subjects for a whole batch: known ones by identifier, new ones grouped by shared identifiers.

    The rule of `subjects.service.resolve`: a row that names a subject already known (in the database
    or made by an earlier row) only *proposes* its other new identifiers, and what it contradicts is
    noted for the reviewer, not reported to the submitter.
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self.known: dict[tuple[str, str], tuple[uuid.UUID, str]] = {}  # pair -> (subject id, kind)
        self.index: dict[tuple[str, str], str] = {}  # pair -> its blind index (vault.identifier_index)
        self.new_subjects: list[dict[str, Any]] = []
        self.new_identifiers: list[dict[str, Any]] = []

    def load(self, pairs: set[tuple[str, str]]) -> None:
        merged: dict[uuid.UUID, uuid.UUID] = {}
        by_type: dict[str, dict[str, tuple[str, str]]] = {}
        for t, v in pairs:
            ix = self.index[(t, v)] = vault.identifier_index(t, v)
            by_type.setdefault(t, {})[ix] = (t, v)
        # One identifier type at a time, so that the (type, value_index) key answers each IN list.
        for t, of_index in by_type.items():
            for chunk in _chunks(sorted(of_index), 5000):
                rows = self.session.execute(
                    select(SubjectIdentifier.value_index, Subject.id, Subject.kind, Subject.merged_into_id)
                    .join(Subject, Subject.id == SubjectIdentifier.subject_id)
                    .where(SubjectIdentifier.type == t, SubjectIdentifier.value_index.in_(chunk))
                ).all()
                for ix, sid, kind, into in rows:
                    self.known[of_index[ix]] = (sid, kind)
                    if into is not None:
                        merged[sid] = into
        if merged:  # identifiers still pointing at a merged-away subject (should not happen; be safe)
            for pair, (sid, _kind) in list(self.known.items()):
                if sid in merged:
                    s = survivor(self.session, get_subject(self.session, sid))
                    self.known[pair] = (s.id, s.kind)

    def resolve(
        self, kind: str, name: str, pairs: list[tuple[str, str]], field_prefix: str
    ) -> tuple[uuid.UUID, list[tuple[str, str]], list[dict[str, Any]]]:
        """Subject id for one row, the identifiers it only proposes, and the reviewer's notes."""
        conflicts: list[dict[str, Any]] = []
        matched: list[uuid.UUID] = []
        for i, (t, v) in enumerate(pairs):
            hit = self.known.get((t, v))
            if hit is None or IdentifierType(t) not in STRONG_TYPES:
                continue
            sid, known_kind = hit
            if known_kind != kind:
                conflicts.append(
                    kind_conflict(f"{field_prefix}.identifiers[{i}]", t, v, kind, sid, known_kind)
                )
            elif sid not in matched:
                matched.append(sid)
        free = [(t, v) for t, v in pairs if (t, v) not in self.known]
        if matched:
            if len(matched) > 1:
                conflicts.append(several_conflict(f"{field_prefix}.identifiers", matched))
            return matched[0], free, conflicts
        chosen = new_id()
        self.new_subjects.append(
            {
                "id": chosen,
                "kind": kind,
                "name": display_name(name),
                "name_key": stored_name_key(kind, name),
                "created_at": utcnow(),
            }
        )
        for t, v in free:
            self.new_identifiers.append(
                {
                    "id": new_id(),
                    "subject_id": chosen,
                    "type": t,
                    "value": v,
                    "value_index": self.index_of(t, v),
                    "created_at": utcnow(),
                }
            )
            self.known[(t, v)] = (chosen, kind)
        return chosen, [], conflicts

    def index_of(self, t: str, v: str) -> str:
        ix = self.index.get((t, v))
        if ix is None:
            ix = self.index[(t, v)] = vault.identifier_index(t, v)
        return ix


def submit_batch(
    session: Session,
    actor: Actor,
    org_id: uuid.UUID,
    rows: list[tuple[int, EntryIn]],
    *,
    filename: str,
    file_format: str,
    content: bytes,
    total_rows: int,
    row_errors: list[dict[str, Any]],
    all_or_nothing: bool,
) -> BatchResult:
    """Store every valid row as one batch, or nothing when `all_or_nothing` and any row has an error."""
    # Each row seals and indexes a few values: the data key ring is read once for the whole batch.
    with vault.pinned():
        errors = list(row_errors)
        resolver = _Resolver(session)
        pairs: set[tuple[str, str]] = set()
        for _, e in rows:
            pairs.update((i.type.value, i.value) for i in e.subject.identifiers)
            for person in e.liable_persons:
                pairs.update((i.type.value, i.value) for i in person.identifiers)
        resolver.load(pairs)

        batch_id = new_id()
        now = utcnow()
        entries: list[dict[str, Any]] = []
        links: list[dict[str, Any]] = []
        proposed: list[dict[str, Any]] = []
        for row_no, e in rows:
            sid, offered, conflicts = resolver.resolve(
                e.subject.kind,
                e.subject.name,
                [(i.type.value, i.value) for i in e.subject.identifiers],
                "subject",
            )
            entry_id = new_id()
            proposed += [
                {
                    "entry_id": entry_id,
                    "subject_id": sid,
                    "party": "subject",
                    "type": t,
                    "value": v,
                    "value_index": resolver.index_of(t, v),
                }
                for t, v in offered
            ]
            for k, person in enumerate(e.liable_persons):
                party = f"liable_persons[{k}]"
                pid, offered, notes = resolver.resolve(
                    "individual", person.name, [(i.type.value, i.value) for i in person.identifiers], party
                )
                conflicts += notes
                proposed += [
                    {
                        "entry_id": entry_id,
                        "subject_id": pid,
                        "party": party,
                        "type": t,
                        "value": v,
                        "value_index": resolver.index_of(t, v),
                    }
                    for t, v in offered
                ]
                links.append(
                    {
                        "id": new_id(),
                        "unit_id": sid,
                        "person_id": pid,
                        "role": person.role.value,
                        "entry_id": entry_id,
                        "created_at": now,
                    }
                )
            entries.append(
                {
                    "id": entry_id,
                    "subject_id": sid,
                    "owner_org_id": org_id,
                    "shared_with_all": False,
                    "status": Status.submitted.value,
                    "behaviours": list(e.behaviours),
                    "role": e.role.value,
                    "services": sorted(s.value for s in e.services),
                    "severity": e.severity,
                    "basis": e.basis.value,
                    "document_number": e.document_number,
                    "issuing_authority": e.issuing_authority,
                    "document_date": e.document_date,
                    "occurred_from": e.occurred_from,
                    "occurred_to": e.occurred_to,
                    "facts": e.facts,
                    "batch_id": batch_id,
                    "submitted_at": now,
                    "submitted_by": actor.name,
                    "updated_at": now,
                    "version": 1,
                    "submitted_subject": as_submitted(e),
                    "resolution_conflicts": conflicts or None,
                    "subject_contact": contact_of(e),
                    "gains": gains_of(e),
                    "_row": row_no,
                }
            )

        errors.sort(key=lambda x: (x["row"], x["field"]))
        if all_or_nothing and errors:
            entries, links, proposed = [], [], []
        batch = UploadBatch(
            id=batch_id,
            owner_org_id=org_id,
            filename=filename[:255],
            format=file_format,
            digest=crypto.active().hexdigest(content),
            total_rows=total_rows,
            accepted=len(entries),
            rejected_rows=len({x["row"] for x in errors}),
            all_or_nothing=all_or_nothing,
            errors=errors[:10000],
            submitted_by=actor.name,
        )
        session.add(batch)
        if not entries:
            session.flush()
            audit.record(
                session,
                actor,
                "upload.refuse",
                "upload_batch",
                batch_id,
                detail={"rows": total_rows, "errors": len(errors)},
            )
            return BatchResult(batch, [], errors)

        used = {e["subject_id"] for e in entries} | {lk["person_id"] for lk in links}
        new_subjects = [s for s in resolver.new_subjects if s["id"] in used]
        new_idents = [i for i in resolver.new_identifiers if i["subject_id"] in used]
        _insert_rows(session, Subject, new_subjects)
        _insert_rows(session, SubjectIdentifier, new_idents)
        rows_of = {e["id"]: e.pop("_row") for e in entries}
        _insert_rows(session, Entry, entries)
        _insert_rows(session, LiableLink, links)
        proposed_count: dict[uuid.UUID, int] = {}
        for p in proposed:
            proposed_count[p["entry_id"]] = proposed_count.get(p["entry_id"], 0) + 1
        _insert_rows(
            session,
            ProposedIdentifier,
            [{"id": new_id(), "status": "proposed", "created_at": now, **p} for p in proposed],
        )
        transitions = [
            {
                "entry_id": e["id"],
                "from_status": None,
                "to_status": Status.submitted.value,
                "action": "submit",
                "actor": actor.name,
                "actor_org_id": actor.org_id,
                "reason": f"batch {batch_id}",
                "at": now,
            }
            for e in entries
        ]
        _insert_rows(session, EntryTransition, transitions)
        events = [
            {
                "action": "subject.create",
                "target_type": "subject",
                "target_id": s["id"],
                "after": {
                    "id": str(s["id"]),
                    "kind": s["kind"],
                    "name": mask_person_name(s["name"]) if is_personal(s["kind"]) else s["name"],
                },
            }
            for s in new_subjects
        ]
        events += [
            {
                "action": "entry.submit",
                "target_type": "entry",
                "target_id": e["id"],
                "after": {
                    k: (str(v) if isinstance(v, uuid.UUID) else v)
                    for k, v in e.items()
                    if k not in _NOT_LOGGED
                },
                "detail": {
                    "batch_id": str(batch_id),
                    "row": rows_of[e["id"]],
                    "proposed_identifiers": proposed_count.get(e["id"], 0),
                    "conflicts": [c["type"] for c in e["resolution_conflicts"] or []],
                },
            }
            for e in entries
        ]
        events.append(
            {
                "action": "upload.accept",
                "target_type": "upload_batch",
                "target_id": batch_id,
                "detail": {"rows": total_rows, "accepted": len(entries), "errors": len(errors)},
            }
        )
        audit.record_many(session, actor, events)
        session.flush()
        return BatchResult(batch, [e["id"] for e in entries], errors)
