"""Bulk submission (批量报送): many validated entries stored as one batch, fast.

The single-entry path resolves subjects one query at a time; here the whole batch is resolved with
a few set queries, new subjects are created together (rows that share an identifier get one subject),
and rows are inserted in chunks. The rules are the same: identifiers decide who is who, names only
propose merges (checked later by `fcx jobs run`), every entry is an audited event.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fanchaoxin.blacklist.lifecycle import Status
from fanchaoxin.blacklist.models import Entry, EntryTransition, UploadBatch
from fanchaoxin.blacklist.schemas import EntryIn
from fanchaoxin.core import audit
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.db import bulk_insert, new_id, utcnow
from fanchaoxin.core.identifiers import STRONG_TYPES, IdentifierType, mask
from fanchaoxin.subjects.models import LiableLink, Subject, SubjectIdentifier
from fanchaoxin.subjects.names import display_name, name_key
from fanchaoxin.subjects.service import get_subject, survivor

CHUNK = 2000


@dataclass
class BatchResult:
    batch: UploadBatch
    entry_ids: list[uuid.UUID]
    errors: list[dict[str, Any]]


def _chunks(items: list[Any], n: int = CHUNK) -> list[list[Any]]:
    return [items[i : i + n] for i in range(0, len(items), n)]


def _insert_rows(session: Session, model: Any, rows: list[dict[str, Any]]) -> None:
    bulk_insert(session, model.__table__, rows)


class _Resolver:
    """Subjects for a whole batch: known ones by identifier, new ones grouped by shared identifiers."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.known: dict[tuple[str, str], tuple[uuid.UUID, str]] = {}  # pair -> (subject id, kind)
        self.new_subjects: list[dict[str, Any]] = []
        self.new_identifiers: list[dict[str, Any]] = []
        self.claimed: dict[tuple[str, str], uuid.UUID] = {}

    def load(self, pairs: set[tuple[str, str]]) -> None:
        merged: dict[uuid.UUID, uuid.UUID] = {}
        by_type: dict[str, list[str]] = {}
        for t, v in pairs:
            by_type.setdefault(t, []).append(v)
        # One identifier type at a time, so that the (type, value) index answers each IN list.
        for t, values in by_type.items():
            for chunk in _chunks(sorted(values), 5000):
                rows = self.session.execute(
                    select(SubjectIdentifier.value, Subject.id, Subject.kind, Subject.merged_into_id)
                    .join(Subject, Subject.id == SubjectIdentifier.subject_id)
                    .where(SubjectIdentifier.type == t, SubjectIdentifier.value.in_(chunk))
                ).all()
                for v, sid, kind, into in rows:
                    self.known[(t, v)] = (sid, kind)
                    if into is not None:
                        merged[sid] = into
        if merged:  # identifiers still pointing at a merged-away subject (should not happen; be safe)

            for pair, (sid, _kind) in list(self.known.items()):
                if sid in merged:
                    s = survivor(self.session, get_subject(self.session, sid))
                    self.known[pair] = (s.id, s.kind)

    def resolve(
        self, kind: str, name: str, pairs: list[tuple[str, str]]
    ) -> tuple[uuid.UUID | None, str | None]:
        """Subject id for one row, or an error message (identifier owned by another kind of subject)."""
        strong = [p for p in pairs if IdentifierType(p[0]) in STRONG_TYPES]
        chosen: uuid.UUID | None = None
        for t, v in strong:
            hit = self.known.get((t, v))
            if hit is not None:
                sid, known_kind = hit
                if known_kind != kind:
                    return (
                        None,
                        f"{t} {mask(t, v)} belongs to a known subject of kind {known_kind}, not {kind}",
                    )
                chosen = chosen or sid
        for t, v in strong:
            if chosen is None and (t, v) in self.claimed:
                chosen = self.claimed[(t, v)]
        if chosen is None:
            chosen = new_id()
            self.new_subjects.append(
                {
                    "id": chosen,
                    "kind": kind,
                    "name": display_name(name),
                    "name_key": name_key(name),
                    "created_at": utcnow(),
                }
            )
        for t, v in pairs:
            if (t, v) not in self.known and (t, v) not in self.claimed:
                self.claimed[(t, v)] = chosen
                self.new_identifiers.append(
                    {"id": new_id(), "subject_id": chosen, "type": t, "value": v, "created_at": utcnow()}
                )
                self.known[(t, v)] = (chosen, kind)
        return chosen, None


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
    for row_no, e in rows:
        sid, problem = resolver.resolve(
            e.subject.kind, e.subject.name, [(i.type.value, i.value) for i in e.subject.identifiers]
        )
        if problem:
            errors.append(
                {
                    "row": row_no,
                    "field": "subject.identifiers",
                    "message": problem,
                    "type": "identifier_kind_conflict",
                }
            )
            continue
        person_ids = []
        for k, person in enumerate(e.liable_persons):
            pid, problem = resolver.resolve(
                "individual", person.name, [(i.type.value, i.value) for i in person.identifiers]
            )
            if problem:
                errors.append(
                    {
                        "row": row_no,
                        "field": f"liable_persons[{k}]",
                        "message": problem,
                        "type": "identifier_kind_conflict",
                    }
                )
                break
            person_ids.append((pid, person.role.value))
        else:
            entry_id = new_id()
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
                    "_row": row_no,
                }
            )
            for pid, role in person_ids:
                links.append(
                    {
                        "id": new_id(),
                        "unit_id": sid,
                        "person_id": pid,
                        "role": role,
                        "entry_id": entry_id,
                        "created_at": now,
                    }
                )

    errors.sort(key=lambda x: (x["row"], x["field"]))
    if all_or_nothing and errors:
        entries, links = [], []
    batch = UploadBatch(
        id=batch_id,
        owner_org_id=org_id,
        filename=filename[:255],
        format=file_format,
        sha256=hashlib.sha256(content).hexdigest(),
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
            "after": {"id": str(s["id"]), "kind": s["kind"], "name": s["name"]},
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
                if k not in ("submitted_at", "updated_at")
            },
            "detail": {"batch_id": str(batch_id), "row": rows_of[e["id"]]},
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
