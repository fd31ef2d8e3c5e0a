"""Merging and splitting subjects (主体合并、拆分): identifiers move in `subjects`, the entries that go
with them in the registry, and every entry in force of either subject is re-sent on the change feed
(its identifiers, and so its tags, changed)."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from fanchaoxin.blacklist import service as registry
from fanchaoxin.core.audit import Actor
from fanchaoxin.sharing import changes
from fanchaoxin.subjects import service as subjects
from fanchaoxin.subjects.models import Subject, SubjectMerge


def merge_subjects(
    session: Session, actor: Actor, survivor_id: uuid.UUID, merged_id: uuid.UUID, *, reason: str
) -> SubjectMerge:
    entry_ids = registry.entry_ids_of(session, merged_id)
    record = subjects.merge(session, actor, survivor_id, merged_id, reason=reason, entry_ids=entry_ids)
    registry.move_entries(session, entry_ids, survivor_id)
    _announce(session, [survivor_id, merged_id])
    return record


def split_subject(
    session: Session,
    actor: Actor,
    subject_id: uuid.UUID,
    *,
    identifier_ids: list[uuid.UUID],
    entry_ids: list[uuid.UUID],
    reason: str,
    name: str | None = None,
    into: uuid.UUID | None = None,
) -> Subject:
    registry.entries_of(session, subject_id, entry_ids)
    target = subjects.split(
        session,
        actor,
        subject_id,
        identifier_ids=identifier_ids,
        reason=reason,
        name=name,
        into=into,
        entry_count=len(entry_ids),
    )
    registry.move_entries(session, entry_ids, target.id)
    _announce(session, [subject_id, target.id])
    return subjects.get_subject(session, target.id)


def undo_merge(session: Session, actor: Actor, merge_id: uuid.UUID, *, reason: str) -> SubjectMerge:
    """Split a merged subject out again, with exactly the identifiers and entries it brought."""
    record = subjects.merge_to_undo(session, merge_id)
    split_subject(
        session,
        actor,
        record.survivor_id,
        identifier_ids=[uuid.UUID(i) for i in record.moved_identifier_ids],
        entry_ids=[uuid.UUID(i) for i in record.moved_entry_ids],
        reason=reason,
        into=record.merged_id,
    )
    return subjects.mark_undone(session, actor, record)


def _announce(session: Session, subject_ids: list[uuid.UUID]) -> None:
    for entry in registry.in_force_of(session, subject_ids):
        changes.append(session, entry, "updated")
