"""An entry's lifecycle across slices: the one path every step of every entry takes.

`take_step` is where an entry is published, disputed, revoked, expired or repaired, for the API, the
console, the CLI, due process and the scheduler alike. Read in order, it is what happens:

1. the registry takes the step (status, periods, history, audit) — `blacklist.service.transition`;
   at publication (the reviewer's acceptance) the identifiers the submission proposed join their
   subjects — `blacklist.service.join_proposed` — and a rejection drops them;
2. punishment follows: instructions on publication, lifts when the entry ends — `sanctions.service`;
3. the change feed announces it, with its webhook outbox rows — `sharing.changes.append`; the other
   entries in force of a subject whose identifiers grew are re-sent (`updated`);
   opening the notice period produces and delivers the notice (告知书) — `appeals.notices`; publishing
   needs an answer to each statement the subject filed (陈述申辩), and a rejection answers them —
   `appeals.statements`;
4. a revocation publishes a correction notice (恢复信誉) — `appeals.corrections`; a review that starts
   flags the credit commitments (信用承诺) the submission breaches, and a rejection or revocation
   withdraws the flags it raised — `appeals.commitments`;
5. liable persons follow the unit: their entries are opened and published with it, and take its
   later steps — through this same function.

A step that loses a race with another one on the same entry is a 409 (`registry.lost_race`), wherever
in this path the database notices it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date

from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from fanchaoxin.appeals import commitments, corrections, notices, statements
from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import (
    FEED_EVENT,
    FOLLOWED_BY_LINKED,
    IN_FORCE,
    LIFTED,
    Action,
    Status,
    next_status,
)
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.calendar import china_today
from fanchaoxin.sanctions import service as sanctions
from fanchaoxin.sharing import changes


def take_step(
    session: Session,
    actor: Actor,
    entry: Entry,
    action: Action,
    *,
    reason: str = "",
    expected_version: int | None = None,
    today: date | None = None,
    system: bool = False,
    answers: Mapping[uuid.UUID, str] | None = None,
) -> Entry:
    """Take one lifecycle step and everything that follows from it, in the caller's transaction.

    `answers`: at publication, the reviewer's answer to each statement (陈述申辩) the subject filed.
    """
    try:
        _take_step(
            session,
            actor,
            entry,
            action,
            reason=reason,
            expected_version=expected_version,
            today=today or china_today(),
            system=system,
            answers=answers or {},
        )
        # Flushed here, so that a clash with another step shows now and not at the caller's commit.
        session.flush()
    except StaleDataError as exc:
        raise registry.lost_race() from exc
    return entry


def _take_step(
    session: Session,
    actor: Actor,
    entry: Entry,
    action: Action,
    *,
    reason: str,
    expected_version: int | None,
    today: date,
    system: bool,
    answers: Mapping[uuid.UUID, str],
) -> None:
    if action == Action.publish and entry.parent_entry_id is None:
        # The step must be possible now (e.g. the notice period over) before the answers are asked for;
        # then every statement is answered before the entry is published, or nothing happens.
        next_status(registry.facts_of(entry), action, today=today, reason=reason, system=system)
        statements.answer_for_publication(session, actor, entry, answers)
    registry.transition(
        session,
        actor,
        entry,
        action,
        reason=reason,
        expected_version=expected_version,
        today=today,
        system=system,
    )
    status = Status(entry.status)
    grown: set[uuid.UUID] = set()
    if action == Action.start_review:
        # A credit commitment (信用承诺) in whose term the submission falls is breached: flag it.
        commitments.flag_breaches(session, actor, entry)
    if action == Action.open_notice:
        notices.issue_notice(session, actor, entry, today=today)
    if action == Action.publish:
        grown = registry.join_proposed(session, actor, entry)
        sanctions.on_published(session, actor, entry, today=today)
    elif status == Status.rejected:
        registry.drop_proposed(session, actor, entry)
        if entry.parent_entry_id is None:
            # The statement convinced the reviewer: the rejection answers each one (陈述申辩).
            statements.answer_on_rejection(session, actor, entry, answers, reason=reason)
    elif status in LIFTED:
        sanctions.on_ended(session, actor, entry, why=action.value, today=today)
    if action in FEED_EVENT:
        changes.append(session, entry, FEED_EVENT[action])
    # Their subject's identifiers (and so their tags) changed: participants get them again.
    for other in registry.in_force_of(session, sorted(grown)) if grown else []:
        if other.id != entry.id:
            changes.append(session, other, "updated")
    if status == Status.revoked:
        corrections.publish_correction(session, actor, entry, reason=reason, today=today)
    if status in (Status.rejected, Status.revoked):
        # No finding after all: the commitments it flagged as breached are not (or by another entry).
        commitments.withdraw_breaches(session, actor, entry, today=today)
    if entry.parent_entry_id is None:
        _follow_with_linked(session, actor, entry, action, reason=reason, today=today)


def _follow_with_linked(
    session: Session, actor: Actor, unit_entry: Entry, action: Action, *, reason: str, today: date
) -> None:
    if action == Action.publish:
        for linked in registry.open_linked_entries(session, actor, unit_entry):
            _take_step(
                session,
                actor,
                linked,
                Action.publish,
                reason="published with the unit",
                expected_version=None,
                today=today,
                system=True,
                answers={},
            )
    elif action in FOLLOWED_BY_LINKED:
        for linked in registry.linked_entries(session, unit_entry):
            if Status(linked.status) in IN_FORCE:
                _take_step(
                    session,
                    actor,
                    linked,
                    action,
                    reason=reason or action.value,
                    expected_version=None,
                    today=today,
                    system=True,
                    answers={},
                )
