"""Credit commitments (信用承诺) made for repair: recorded with the approval, published with the repair,
kept for their term (履约期), and a breach flagged to the reviewer with the commitment.

Read in order, it is what happens to a commitment:

- **recording** — an approved repair (`repair.record_decision`) records the applicant's commitment, in
  their own words, for `FCX_COMMITMENT_TERM_MONTHS` from the approval (`record_commitment`);
- **publication** — during its term it is published with the repair on the list the repaired entry was
  on: an entry of the public 失信 list (its basis and severity are public in the catalogues) on the
  public page and `GET /v1/public/commitments`; an entry of the shared list (an enterprise finding, a
  minor case) to participating enterprises only (`GET /v1/commitments`). A natural person's name is
  masked, and so is every identifier the text holds (`published_text`). After the term it is no
  longer published: the commitment was kept, and naming the subject longer would prolong a listing the
  repair ended;
- **breach** — a new entry against the same subject (merges followed) whose submission date, or whose
  facts' occurred dates, fall within the term marks the commitment `breached` when its review starts
  or when the scheduler passes over it still submitted (`flag_breaches`); the reviewer sees the
  commitment beside the submission (`breaches_of`). The flag rests on a submission not yet decided,
  so it is never published; if that entry is rejected or revoked the flag moves to another entry
  that breaches the term, or is withdrawn (`withdraw_breaches`);
- **fulfilment** — at the end of the term without a breach, the scheduler marks it `fulfilled`
  (`fulfil_due`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import date

from sqlalchemy import ColumnElement, and_, not_, select
from sqlalchemy.orm import Session

from fanchaoxin.appeals.commitment_models import CreditCommitment
from fanchaoxin.appeals.models import RepairApplication
from fanchaoxin.blacklist.lifecycle import Status
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.core import audit, permissions
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.auth import Principal
from fanchaoxin.core.calendar import add_months, china_today
from fanchaoxin.core.catalogue import public_bases, public_severities, shown_publicly
from fanchaoxin.core.db import utcnow
from fanchaoxin.core.errors import Conflict
from fanchaoxin.core.identifiers import mask_person_name
from fanchaoxin.core.logs import mask_text
from fanchaoxin.core.roles import OrgKind
from fanchaoxin.core.settings import get_settings
from fanchaoxin.orgs import agreements
from fanchaoxin.orgs.models import Organisation
from fanchaoxin.subjects.models import Subject
from fanchaoxin.subjects.service import is_personal, survivor

IN_FORCE = "in_force"
FULFILLED = "fulfilled"
BREACHED = "breached"
STATUSES = (IN_FORCE, FULFILLED, BREACHED)
# The two lists a commitment is published on: the one its repaired entry was on.
PUBLIC_LIST = "public"
SHARED_LIST = "shared"
# An entry that ended so, or was never accepted, breaches nothing: it was no finding.
NO_FINDING = (Status.rejected.value, Status.revoked.value)


# --- recording ------------------------------------------------------------------------------------------


def record_commitment(
    session: Session, actor: Actor, app: RepairApplication, entry: Entry, *, today: date
) -> CreditCommitment:
    """Record the commitment of an approved repair application, in force from `today` for its term."""
    if not app.commitment_accepted or not app.commitment_text.strip():
        # file_repair refuses such an application; an approval must never publish an empty promise.
        raise Conflict(f"Application {app.tracking_number} carries no credit commitment (信用承诺)")
    commitment = CreditCommitment(
        subject_id=entry.subject_id,
        entry_id=entry.id,
        repair_application_id=app.id,
        text=app.commitment_text.strip(),
        made_on=today,
        term_ends_on=add_months(today, get_settings().commitment_term_months),
        status=IN_FORCE,
        recorded_by=actor.name,
    )
    session.add(commitment)
    session.flush()
    audit.record(
        session,
        actor,
        "commitment.record",
        "commitment",
        commitment.id,
        after=commitment.snapshot(),
        detail={
            "entry_id": str(entry.id),
            "repair": app.tracking_number,
            "published_on": list_of(entry),
        },
    )
    return commitment


# --- publication ----------------------------------------------------------------------------------------


def on_public_list(entry: Entry) -> bool:
    """Whether the entry is on the public 失信 list: its basis and its severity are public (the test of
    the public query, `console.public.is_public_entry`; the catalogues decide, nothing is hard-coded)."""
    return shown_publicly(entry.basis, entry.severity)


def _public_list_clause() -> ColumnElement[bool]:
    """SQL of `on_public_list`, on the repaired entry."""
    return and_(Entry.basis.in_(sorted(public_bases())), Entry.severity.in_(sorted(public_severities())))


def list_of(entry: Entry) -> str:
    """The list a commitment for this entry is published on: `public` or `shared`."""
    return PUBLIC_LIST if on_public_list(entry) else SHARED_LIST


def participates(session: Session, principal: Principal, today: date) -> bool:
    """Whether the caller sees the shared list: platform staff, and an active enterprise whose sharing
    agreement is in force on `today` (orgs.agreements, as `sanctions.service.participants` counts them)."""
    if principal.is_platform:
        return True
    if principal.role not in permissions.ENTERPRISE or principal.org_id is None:
        return False
    org = session.get(Organisation, principal.org_id)
    return (
        org is not None
        and org.active
        and org.kind == OrgKind.enterprise.value
        and agreements.standing(session, org, today).in_force
    )


def published(
    session: Session,
    *,
    lists: Iterable[str],
    today: date | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[tuple[CreditCommitment, Entry]]:
    """The commitments published on these lists today (within their term), newest repair first."""
    today = today or china_today()
    wanted = set(lists)
    if not wanted:
        return []
    stmt = (
        select(CreditCommitment, Entry)
        .join(Entry, Entry.id == CreditCommitment.entry_id)
        .where(CreditCommitment.made_on <= today, CreditCommitment.term_ends_on >= today)
    )
    if wanted == {PUBLIC_LIST}:
        stmt = stmt.where(_public_list_clause())
    elif wanted == {SHARED_LIST}:
        stmt = stmt.where(not_(_public_list_clause()))
    stmt = stmt.order_by(CreditCommitment.made_on.desc(), CreditCommitment.id).limit(limit).offset(offset)
    return [(c, e) for c, e in session.execute(stmt)]


def published_name(subject: Subject) -> str:
    """The subject's name as published: a natural person's masked (张*三), a unit's as registered."""
    return mask_person_name(subject.name) if is_personal(subject.kind) else subject.name


# What is left of a number once the identifiers were masked, written as people write phones and
# accounts in free text (138 0013 8000, 010-6512-3456, a QQ or bank account): nine digits or more —
# a date (2026-01-05, 8 digits) or a time after it (10:00) stays.
_LONG_NUMBER = re.compile(r"(?<![0-9A-Za-z])\d(?:[ \-]?\d){8,}(?![0-9A-Za-z:])")


def published_text(commitment: CreditCommitment, subject: Subject) -> str:
    """The commitment as published: every resident ID, phone and e-mail in it masked (`core.logs`),
    any other long number hidden, and a natural person's own name masked where the text gives it
    (people commit in their own name)."""
    text = _LONG_NUMBER.sub("***", mask_text(commitment.text))
    if is_personal(subject.kind) and subject.name.strip():
        text = text.replace(subject.name.strip(), mask_person_name(subject.name))
    return text


# --- breach ---------------------------------------------------------------------------------------------


def _entry_days(entry: Entry) -> tuple[date, date | None, date | None]:
    """(submitted on, occurred from, occurred to) in Beijing dates; an open end takes the other end."""
    submitted_on = china_today(entry.submitted_at)
    start = entry.occurred_from or entry.occurred_to
    end = entry.occurred_to or entry.occurred_from
    return submitted_on, start, end


def covers(commitment: CreditCommitment, entry: Entry) -> bool:
    """Whether the entry falls within the commitment's term: submitted within it, or its facts occurred
    (in part) within it. The repaired entry itself never does."""
    if entry.id == commitment.entry_id:
        return False
    submitted_on, start, end = _entry_days(entry)
    if commitment.made_on <= submitted_on <= commitment.term_ends_on:
        return True
    return (
        start is not None
        and end is not None
        and start <= commitment.term_ends_on
        and end >= commitment.made_on
    )


def _same_subject(session: Session, commitment: CreditCommitment, entry: Entry) -> bool:
    made_by = session.get(Subject, commitment.subject_id)
    if made_by is None:
        return False
    return survivor(session, made_by).id == survivor(session, entry.subject).id


def _candidates(session: Session, entry: Entry, statuses: Iterable[str]) -> list[CreditCommitment]:
    """Commitments in these statuses whose term the entry may fall in (dates narrowed in SQL)."""
    submitted_on, start, end = _entry_days(entry)
    earliest = min(d for d in (submitted_on, start) if d is not None)
    latest = max(d for d in (submitted_on, end) if d is not None)
    stmt = (
        select(CreditCommitment)
        .where(
            CreditCommitment.status.in_(list(statuses)),
            CreditCommitment.entry_id != entry.id,
            CreditCommitment.made_on <= latest,
            CreditCommitment.term_ends_on >= earliest,
        )
        .order_by(CreditCommitment.made_on, CreditCommitment.id)
    )
    return [c for c in session.scalars(stmt) if covers(c, entry) and _same_subject(session, c, entry)]


def _may_breach(entry: Entry) -> bool:
    # A liable person's entry follows its unit's and is not reviewed on its own; a rejected or revoked
    # entry is no finding.
    return entry.parent_entry_id is None and entry.status not in NO_FINDING


def flag_breaches(session: Session, actor: Actor, entry: Entry) -> list[CreditCommitment]:
    """Mark `breached` every commitment of the entry's subject whose term the entry falls in, and flag it
    to the reviewer (audited). Returns the commitments flagged now; a commitment already breached stays
    with the entry that breached it first (`breaches_of` shows it to this entry's reviewer too)."""
    if not _may_breach(entry):
        return []
    flagged = []
    for commitment in _candidates(session, entry, (IN_FORCE, FULFILLED)):
        before = commitment.snapshot()
        commitment.status = BREACHED
        commitment.breached_by_entry_id = entry.id
        commitment.breach_flagged_at = utcnow()
        commitment.fulfilled_on = None
        audit.record(
            session,
            actor,
            "commitment.breach",
            "commitment",
            commitment.id,
            before=before,
            after=commitment.snapshot(),
            detail={"entry_id": str(entry.id), "repaired_entry_id": str(commitment.entry_id)},
        )
        flagged.append(commitment)
    if flagged:
        session.flush()
    return flagged


def breaches_of(session: Session, entry: Entry) -> list[CreditCommitment]:
    """The commitments this entry breaches, for its reviewer: breached, same subject, entry in term."""
    if entry.parent_entry_id is not None:
        return []
    return _candidates(session, entry, (BREACHED,))


def _family(session: Session, subject_ids: set[uuid.UUID]) -> set[uuid.UUID]:
    """These subjects and every subject merged into them, however many merges back."""
    found = set(subject_ids)
    frontier = set(subject_ids)
    while frontier:
        frontier = (
            set(session.scalars(select(Subject.id).where(Subject.merged_into_id.in_(frontier)))) - found
        )
        found |= frontier
    return found


def _other_breaching_entry(session: Session, commitment: CreditCommitment, not_this: Entry) -> Entry | None:
    made_by = session.get(Subject, commitment.subject_id)
    if made_by is None:
        return None
    stmt = (
        select(Entry)
        .where(
            Entry.subject_id.in_(_family(session, {survivor(session, made_by).id})),
            Entry.id.not_in([not_this.id, commitment.entry_id]),
            Entry.parent_entry_id.is_(None),
            Entry.status.not_in(NO_FINDING),
        )
        .order_by(Entry.submitted_at, Entry.id)
    )
    return next((e for e in session.scalars(stmt) if covers(commitment, e)), None)


def withdraw_breaches(session: Session, actor: Actor, entry: Entry, *, today: date) -> list[CreditCommitment]:
    """The entry was rejected or revoked: it breached nothing. Each commitment it had flagged passes to
    another entry that breaches its term, or goes back to in force (fulfilled if its term is over)."""
    stmt = select(CreditCommitment).where(CreditCommitment.breached_by_entry_id == entry.id)
    changed = []
    for commitment in session.scalars(stmt):
        before = commitment.snapshot()
        other = _other_breaching_entry(session, commitment, entry)
        if other is not None:
            commitment.breached_by_entry_id = other.id
        else:
            commitment.breached_by_entry_id = None
            commitment.breach_flagged_at = None
            if today > commitment.term_ends_on:
                commitment.status, commitment.fulfilled_on = FULFILLED, today
            else:
                commitment.status = IN_FORCE
        audit.record(
            session,
            actor,
            "commitment.breach_withdrawn",
            "commitment",
            commitment.id,
            before=before,
            after=commitment.snapshot(),
            detail={"entry_id": str(entry.id), "entry_status": entry.status},
        )
        changed.append(commitment)
    if changed:
        session.flush()
    return changed


# --- the scheduler --------------------------------------------------------------------------------------


def flag_pending_submissions(session: Session, actor: Actor) -> int:
    """Flag the breaches of submissions whose review has not started (the reviewer finds them flagged).

    Only commitments in force are looked at: they run before `fulfil_due`, so a submission within a term
    is flagged before the term is counted kept; a fulfilled commitment broken by facts found later is
    flagged when that submission's review starts (`flag_breaches`)."""
    in_force = select(CreditCommitment.subject_id).where(CreditCommitment.status == IN_FORCE)
    made_by = set(session.scalars(in_force))
    if not made_by:
        return 0
    survivors = {
        survivor(session, s).id for s in session.scalars(select(Subject).where(Subject.id.in_(made_by)))
    }
    pending = select(Entry).where(
        Entry.status == Status.submitted.value,
        Entry.subject_id.in_(_family(session, survivors)),
    )
    return sum(len(flag_breaches(session, actor, entry)) for entry in session.scalars(pending).all())


def fulfil_due(session: Session, actor: Actor, *, today: date) -> int:
    """Commitments whose term ended before `today` without a breach are fulfilled (履约)."""
    due = session.scalars(
        select(CreditCommitment).where(
            CreditCommitment.status == IN_FORCE, CreditCommitment.term_ends_on < today
        )
    ).all()
    for commitment in due:
        before = commitment.snapshot()
        commitment.status, commitment.fulfilled_on = FULFILLED, today
        audit.record(
            session,
            actor,
            "commitment.fulfil",
            "commitment",
            commitment.id,
            before=before,
            after=commitment.snapshot(),
        )
    if due:
        session.flush()
    return len(due)


def run_jobs(session: Session, actor: Actor, *, today: date | None = None) -> dict[str, int]:
    """Breaches of pending submissions first (a submission within the term counts even if its review
    comes after the term), then the terms that ended without one."""
    today = today or china_today()
    flagged = flag_pending_submissions(session, actor)
    return {
        "commitment_breaches_flagged": flagged,
        "commitments_fulfilled": fulfil_due(session, actor, today=today),
    }
