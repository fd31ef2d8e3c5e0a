"""Reads the console needs that no slice service offers yet — each one belongs to the slice named below.

Everything else the console shows comes from the slices' services. These few queries read another
slice's tables directly; each is written the way its slice would offer it (same name, same result), so
that moving it is a matter of deleting it here and importing the slice's function instead:

- `organisation_names`, `active_organisations`, `active_organisation`, `api_key` → `orgs.service`
- `entries_by_id`, `entries_owned_by` → `blacklist.service`
- `open_proposals_of`, `merges_of`, `get_merge` → `subjects.service`
- `policy_versions` → `sanctions.service`
- `search_audit` → `core.audit`
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from fanchaoxin.blacklist.models import Entry
from fanchaoxin.core.audit import AuditEvent
from fanchaoxin.core.errors import NotFound
from fanchaoxin.orgs.models import ApiKey, Organisation
from fanchaoxin.sanctions.models import PolicyVersion
from fanchaoxin.subjects.models import MergeProposal, SubjectMerge

# --- orgs -------------------------------------------------------------------------------------------------


def organisation_names(session: Session) -> dict[uuid.UUID, str]:
    """id → name of every organisation (to name reporters and addressees on a page)."""
    return {org_id: name for org_id, name in session.execute(select(Organisation.id, Organisation.name))}


def active_organisations(session: Session, kinds: Collection[str]) -> list[Organisation]:
    """The active organisations of these kinds, by kind and name (where a case can be routed to)."""
    return list(
        session.scalars(
            select(Organisation)
            .where(Organisation.kind.in_(list(kinds)), Organisation.active.is_(True))
            .order_by(Organisation.kind, Organisation.name)
        )
    )


def active_organisation(session: Session, org_id: uuid.UUID) -> Organisation | None:
    """The organisation, if it exists and is active (a signed-in person acts for it)."""
    org = session.get(Organisation, org_id)
    return org if org is not None and org.active else None


def api_key(session: Session, key_id: uuid.UUID | None) -> ApiKey | None:
    """An API key by id, whatever its state (the caller checks it)."""
    return session.get(ApiKey, key_id) if key_id is not None else None


# --- blacklist --------------------------------------------------------------------------------------------


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


# --- subjects ---------------------------------------------------------------------------------------------


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


# --- sanctions --------------------------------------------------------------------------------------------


def policy_versions(session: Session) -> list[PolicyVersion]:
    """Every policy version loaded, newest first."""
    return list(session.scalars(select(PolicyVersion).order_by(PolicyVersion.loaded_at.desc())))


# --- core.audit -------------------------------------------------------------------------------------------


def search_audit(
    session: Session,
    *,
    action: str = "",
    actor: str = "",
    target_id: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[AuditEvent]:
    """Audit events, newest first. `action` and `actor` are LIKE patterns (`%` any run); `since` is
    inclusive and `until` exclusive; `before_id` pages on (events older than that one)."""
    stmt = select(AuditEvent)
    if action:
        stmt = stmt.where(AuditEvent.action.like(action))
    if actor:
        stmt = stmt.where(AuditEvent.actor.like(actor))
    if target_id:
        stmt = stmt.where(AuditEvent.target_id == target_id)
    if since is not None:
        stmt = stmt.where(AuditEvent.at >= since)
    if until is not None:
        stmt = stmt.where(AuditEvent.at < until)
    if before_id:
        stmt = stmt.where(AuditEvent.id < before_id)
    return list(session.scalars(stmt.order_by(AuditEvent.id.desc()).limit(limit)))
