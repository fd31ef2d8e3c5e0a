"""The platform's own decision index: built from the database, kept current from the change feed.

Each API process keeps one in memory. A request refreshes it at most once a second by reading the
feed after the last sequence number it applied, so a publication or revocation reaches decisions
within about a second in every process, without a query per decision.
"""

from __future__ import annotations

import gc
import json
import threading
import time
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload
from starlette.concurrency import run_in_threadpool

from fanchaoxin.blacklist.lifecycle import IN_FORCE
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.core.db import Database
from fanchaoxin.sanctions.decide import DecisionIndex, IndexedEntry, index_entry
from fanchaoxin.sanctions.policy import measure_catalogue
from fanchaoxin.sharing.changes import head
from fanchaoxin.sharing.models import FeedEvent
from fanchaoxin.subjects.models import Subject, SubjectIdentifier

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
    """Every entry in force, streamed with two plain queries (a million entries in well under a minute).

    Most entries share their graded measures, so the per-scene table is computed once per distinct
    (measures, disputed) and shared; the collector is paused while millions of small objects are made.
    """
    index = DecisionIndex()
    index.seq = head(session)
    in_force = [s.value for s in IN_FORCE]
    keys: dict[uuid.UUID, list[str]] = {}
    ident_rows = session.execute(
        select(SubjectIdentifier.subject_id, SubjectIdentifier.type, SubjectIdentifier.value)
        .where(SubjectIdentifier.subject_id.in_(select(Entry.subject_id).where(Entry.status.in_(in_force))))
        .execution_options(yield_per=20000)
    )
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for subject_id, t, v in ident_rows:
            keys.setdefault(subject_id, []).append(f"{t}:{v}")
        shared: dict[tuple[str, bool], Any] = {}
        cat = measure_catalogue()
        rows = session.execute(
            select(
                Entry.id, Entry.subject_id, Subject.kind, Entry.severity, Entry.behaviours, Entry.status,
                Entry.max_end_on, Entry.liable_role, Entry.measures,
            )
            .join(Subject, Subject.id == Entry.subject_id)
            .where(Entry.status.in_(in_force))
            .execution_options(yield_per=20000)
        )  # fmt: skip
        for eid, subject_id, kind, severity, behaviours, status, max_end_on, liable_role, measures in rows:
            disputed = status == "disputed"
            signature = (json.dumps(measures or [], sort_keys=True), disputed)
            by_scene = shared.get(signature)
            if by_scene is None:
                by_scene = shared[signature] = index_entry(
                    entry_id="", subject_kind="", severity="", behaviours=(), disputed=disputed,
                    max_end_on=None, liable_role=None, measures=measures or [], catalogue=cat,
                ).by_scene  # fmt: skip
            entry = IndexedEntry(
                str(eid), kind, severity, tuple(behaviours or ()), disputed, max_end_on, liable_role, by_scene
            )
            index.put(keys.get(subject_id, ()), entry)
    finally:
        if was_enabled:
            gc.enable()
        gc.freeze()  # the index lives as long as the process: keep it out of later collections
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


class IndexWarming(Exception):
    """The index is being built in the background; decisions are answered once it is ready."""


class IndexHolder:
    """One index per process, refreshed lazily; safe to share between request threads."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._index: DecisionIndex | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        self._warming: threading.Thread | None = None

    def warm_in_background(self) -> None:
        """Build the index at start-up so that no request waits for a million entries to load."""

        def run() -> None:
            try:
                self.get()
            finally:
                self._warming = None

        self._warming = threading.Thread(target=run, name="fcx-decision-index", daemon=True)
        self._warming.start()

    def get(self) -> DecisionIndex:
        now = time.monotonic()
        if self._index is not None and now - self._checked < REFRESH_SECONDS:
            return self._index
        warming = self._warming
        if self._index is None and warming is not None and warming is not threading.current_thread():
            raise IndexWarming("The decision index is still loading; retry in a few seconds")
        if self._index is not None:
            # A refresh is due. Never make a request wait for it: if another thread is already
            # refreshing, answer from the current index (at most a second older). Waiting here while
            # holding a pooled connection deadlocked the pool under load.
            if not self._lock.acquire(blocking=False):
                return self._index
            try:
                if time.monotonic() - self._checked >= REFRESH_SECONDS:
                    with self.database.session() as s:
                        refresh(s, self._index)
                    self._checked = time.monotonic()
            finally:
                self._lock.release()
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

    async def aget(self) -> DecisionIndex:
        """`get` for an async route: the current index at once; a due refresh or the first build in a
        worker thread, so that the event loop never waits on the database."""
        index = self._index
        if index is not None and time.monotonic() - self._checked < REFRESH_SECONDS:
            return index
        return await run_in_threadpool(self.get)

    def invalidate(self) -> None:
        """Make the next request read the feed (tests, and after a write in this process)."""
        self._checked = 0.0
