"""What the subject may do about an entry now (救济途径): object to it (异议) or apply for credit repair
(信用修复) — and, when not yet, from which day.

The one place that answers "possible now, or from when" for the public pages: the query shows the
objection and repair links only while the step is possible, and otherwise the earliest date. The
rules are those the filing itself enforces (`objections.receive`, `repair.file_repair`, through
`cases.prove_subject` and `cases.add_unique_open`): the entry in force (`blacklist.lifecycle.IN_FORCE`),
one open case of a kind per entry, and for repair a unit's own entry (a liable person's follows it)
whose minimum period has passed (`repair_possible_from`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from fanchaoxin.appeals.models import Objection, RepairApplication
from fanchaoxin.blacklist.lifecycle import IN_FORCE, Status
from fanchaoxin.blacklist.models import Entry


@dataclass(frozen=True)
class Remedy:
    """Whether a remedy is open now; when it is not, why (a code) and the first day it will be, if any.

    `why`: `not_in_force` (the entry is not published, or has ended), `disputed` (an objection is being
    decided), `case_open` (a case of this kind is open), `linked` (a liable person's entry: the unit
    acts), `not_yet` (the minimum period has not passed: `from_on` is the first day), `expires_first`
    (the entry ends by itself before repair would be possible).
    """

    possible: bool
    why: str = ""
    from_on: date | None = None


OPEN = Remedy(True)


@dataclass(frozen=True)
class Remedies:
    """The subject's remedies against one entry, as the public pages show them."""

    objection: Remedy
    repair: Remedy


def repair_possible_from(entry: Entry) -> date | None:
    """The first day credit repair may be applied for: the end of the minimum period (None: at once)."""
    return entry.min_end_on


def objection_remedy(entry: Entry, *, objection_open: bool) -> Remedy:
    """An objection is possible while the entry is published and no objection about it is open."""
    status = Status(entry.status)
    if status not in IN_FORCE:
        return Remedy(False, "not_in_force")
    if status == Status.disputed:
        return Remedy(False, "disputed")
    if objection_open:
        return Remedy(False, "case_open")
    return OPEN


def repair_remedy(entry: Entry, *, repair_open: bool, today: date) -> Remedy:
    """Credit repair is possible for a unit's (or person's own) entry in force, once its minimum period
    has passed, while no application about it is open."""
    if Status(entry.status) not in IN_FORCE:
        return Remedy(False, "not_in_force")
    if entry.parent_entry_id is not None:
        return Remedy(False, "linked")
    if repair_open:
        return Remedy(False, "case_open")
    start = repair_possible_from(entry)
    if start is not None and today < start:
        if entry.max_end_on is not None and start >= entry.max_end_on:
            return Remedy(False, "expires_first")
        return Remedy(False, "not_yet", start)
    return OPEN


def _open_cases(
    session: Session, model: type[Objection] | type[RepairApplication], ids: list[uuid.UUID]
) -> set[uuid.UUID]:
    if not ids:
        return set()
    return {i for i in session.scalars(select(model.open_entry_id).where(model.open_entry_id.in_(ids))) if i}


def remedies_of(session: Session, entries: Iterable[Entry], *, today: date) -> dict[uuid.UUID, Remedies]:
    """The remedies against each entry, by entry id (two queries for all of them)."""
    listed = list(entries)
    ids = [e.id for e in listed]
    objections = _open_cases(session, Objection, ids)
    repairs = _open_cases(session, RepairApplication, ids)
    return {
        e.id: Remedies(
            objection=objection_remedy(e, objection_open=e.id in objections),
            repair=repair_remedy(e, repair_open=e.id in repairs, today=today),
        )
        for e in listed
    }
