"""The platform's own decision index: built from the database, kept current from the change feed.

Each API process keeps one in memory. A request refreshes it at most once a second by reading the
feed after the last sequence number it applied, so a publication or revocation reaches decisions
within about a second in every process, without a query per decision.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from fanchaoxin.blacklist.feed import head
from fanchaoxin.blacklist.lifecycle import IN_FORCE
from fanchaoxin.blacklist.models import Entry, FeedEvent
from fanchaoxin.core.db import Database
from fanchaoxin.sanctions.decide import DecisionIndex, index_entry
from fanchaoxin.subjects.models import Subject

REFRESH_SECONDS = 1.0


def _keys(subject: Subject) -> list[str]:
    return [f"{i.type}:{i.value}" for i in subject.identifiers]


def _indexed(entry: Entry):  # type: ignore[no-untyped-def]
    return index_entry(
        entry_id=str(entry.id),
        subject_kind=entry.subject.kind,
        severity=entry.severity,
        behaviours=entry.behaviours,
        disputed=entry.status == "disputed",
        max_end_on=entry.max_end_on,
        liable_role=entry.liable_role,
        measures=entry.measures or [],
    )


def load_entries(
    session: Session, index: DecisionIndex, entry_ids: Iterable[uuid.UUID] | None = None
) -> None:
    stmt = select(Entry).options(selectinload(Entry.subject).selectinload(Subject.identifiers))
    if entry_ids is None:
        stmt = stmt.where(Entry.status.in_([s.value for s in IN_FORCE]))
    else:
        stmt = stmt.where(Entry.id.in_(list(entry_ids)))
    for entry in session.scalars(stmt.execution_options(yield_per=5000)):
        if entry.status in IN_FORCE:
            index.put(_keys(entry.subject), _indexed(entry))
        else:
            index.remove(str(entry.id))


def build(session: Session) -> DecisionIndex:
    index = DecisionIndex()
    index.seq = head(session)
    load_entries(session, index)
    return index


def refresh(session: Session, index: DecisionIndex) -> None:
    """Apply feed events after `index.seq` (entries are re-read, so merges and corrections show too)."""
    while True:
        events = session.execute(
            select(FeedEvent.seq, FeedEvent.entry_id)
            .where(FeedEvent.seq > index.seq)
            .order_by(FeedEvent.seq)
            .limit(5000)
        ).all()
        if not events:
            return
        load_entries(session, index, {e.entry_id for e in events})
        index.seq = events[-1].seq


class IndexHolder:
    """One index per process, refreshed lazily; safe to share between request threads."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._index: DecisionIndex | None = None
        self._checked = 0.0
        self._lock = threading.Lock()

    def get(self) -> DecisionIndex:
        now = time.monotonic()
        if self._index is not None and now - self._checked < REFRESH_SECONDS:
            return self._index
        with self._lock:
            if self._index is None:
                with self.database.session() as s:
                    self._index = build(s)
            elif now - self._checked >= REFRESH_SECONDS:
                with self.database.session() as s:
                    refresh(s, self._index)
            self._checked = time.monotonic()
            return self._index

    def invalidate(self) -> None:
        """Make the next request read the feed (tests, and after a write in this process)."""
        self._checked = 0.0
