"""The platform's own decision index: built from the database, kept current from the change feed.

Each API process keeps one in memory. A request refreshes it at most once a second by reading the
feed after the last sequence number it applied, so a publication or revocation reaches decisions
within about a second in every process, without a query per decision.

With a packed store (`FCX_DECISION_INDEX=packed`, the default of `fcx serve`) the entries are not
held per process: the workers of a host map one read-only file (sanctions.packed) built by one of them,
and each keeps only the changes since it was built, applied from the feed as above. Once those changes
pass `FCX_DECISION_INDEX_REBUILD_ENTRIES` or the file is older than `FCX_DECISION_INDEX_REBUILD_SECONDS`,
one worker of the host (a file lock) writes a new file in the background; every worker switches to it
when it appears, between two requests (a request keeps the index it started with).

Entries are keyed by the blind index of each identifier of their subject (``vault.identifier_index``,
stored as ``SubjectIdentifier.value_index``): building the index decrypts nothing, and no plain
identifier is held in the workers' memory. Requests are keyed the same way (``sanctions.views``).
"""

from __future__ import annotations

import gc
import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload
from starlette.concurrency import run_in_threadpool

from fanchaoxin.blacklist.lifecycle import IN_FORCE
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.core.db import Database, unavailable
from fanchaoxin.core.settings import Settings
from fanchaoxin.sanctions.decide import DecisionIndex, EntryLookup, IndexedEntry, index_entry
from fanchaoxin.sanctions.packed import IndexStore, PackedIndex, usable
from fanchaoxin.sanctions.policy import measure_catalogue
from fanchaoxin.sharing.changes import head
from fanchaoxin.sharing.models import FeedEvent
from fanchaoxin.subjects.models import Subject, SubjectIdentifier

log = logging.getLogger(__name__)

REFRESH_SECONDS = 1.0
MAINTAIN_RETRY_SECONDS = 60.0  # after a failed rebuild of the packed file


def _keys(subject: Subject) -> list[str]:
    return [i.value_index for i in subject.identifiers]


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


class FeedApplied(EntryLookup, Protocol):
    """An index the change feed is applied to (DecisionIndex, PackedIndex)."""

    def put(self, keys: Iterable[str], entry: IndexedEntry) -> None: ...

    def remove(self, entry_id: str) -> None: ...


def load_entries(session: Session, index: FeedApplied, entry_ids: Iterable[uuid.UUID] | None = None) -> None:
    stmt = select(Entry).options(selectinload(Entry.subject).selectinload(Subject.identifiers))
    if entry_ids is None:
        stmt = stmt.where(Entry.status.in_([s.value for s in IN_FORCE])).execution_options(yield_per=5000)
    else:
        # A refresh's batch (at most 5000 entries) in one plain query: no server-side cursor, whose later
        # fetches the database watchdog could not see (core.db).
        stmt = stmt.where(Entry.id.in_(list(entry_ids)))
    for entry in session.scalars(stmt):
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
        select(SubjectIdentifier.subject_id, SubjectIdentifier.value_index)
        .where(SubjectIdentifier.subject_id.in_(select(Entry.subject_id).where(Entry.status.in_(in_force))))
        .execution_options(yield_per=20000)
    )
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for subject_id, ix in ident_rows:
            keys.setdefault(subject_id, []).append(ix)
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


def refresh(session: Session, index: FeedApplied) -> None:
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
    """The index is being built (in the background or by another request); decisions are answered once
    it is ready."""


Clock = Callable[[], float]
Index = DecisionIndex | PackedIndex


class IndexHolder:
    """One index per process, refreshed lazily; safe to share between request threads.

    While the database is away the index is kept as it was and decisions go on from it: `degraded`
    says so and `age_seconds` how old it is. A refresh that cannot reach the database is tried again
    every `retry_seconds`, in the background, so that no request waits for a database that is gone.
    """

    def __init__(
        self,
        database: Database,
        *,
        retry_seconds: float = 5.0,
        clock: Clock = time.monotonic,
        store: IndexStore | None = None,
        rebuild_entries: int = 50_000,
        rebuild_seconds: float = 1800.0,
        wall: Clock = time.time,
    ):
        self.database = database
        self.retry_seconds = retry_seconds
        self.clock = clock
        # With a store: the host's packed file plus this process's changes since (sanctions.packed).
        self.store = store
        self.rebuild_entries = rebuild_entries
        self.rebuild_seconds = rebuild_seconds
        self.wall = wall
        self._maintaining: threading.Thread | None = None
        self._maintain_after = -math.inf  # after a failed rebuild: not before this (clock)
        self._index: Index | None = None
        self._checked = -math.inf  # the last refresh tried, whether or not it reached the database
        self._synced = -math.inf  # the last build or refresh that did
        self._degraded = False
        self._lock = threading.Lock()
        self._warming: threading.Thread | None = None
        self._retrying: threading.Thread | None = None

    @property
    def degraded(self) -> bool:
        """The last refresh could not reach the database: the index may be missing recent changes."""
        return self._degraded

    def age_seconds(self) -> float:
        """Seconds since the index last matched the database (0 before it is built)."""
        if self._index is None:
            return 0.0
        return max(0.0, self.clock() - self._synced)

    def _due(self, now: float) -> bool:
        return now - self._checked >= (self.retry_seconds if self._degraded else REFRESH_SECONDS)

    def warm_in_background(self) -> None:
        """Build the index at start-up so that no request waits for a million entries to load."""

        def run() -> None:
            try:
                self.get()
            except Exception as exc:  # the first request builds it then
                log.warning("decision index not built at start-up: %s", exc)
            finally:
                self._warming = None

        self._warming = threading.Thread(target=run, name="fcx-decision-index", daemon=True)
        self._warming.start()

    def get(self) -> Index:
        """The index: built on first use, then refreshed from the feed when due. Raises only while
        there is no index yet (IndexWarming while another thread builds it, or the database's error)."""
        index = self._index
        if index is not None and not self._due(self.clock()):
            return index
        warming = self._warming
        if index is None and warming is not None and warming is not threading.current_thread():
            raise IndexWarming("The decision index is still loading; retry in a few seconds")
        # Never make a request wait for another thread's build or refresh: waiting here while holding a
        # pooled connection deadlocked the pool under load, and a build can take a while.
        if not self._lock.acquire(blocking=False):
            if index is not None:
                return index  # the refresh under way gives at most a second's difference
            raise IndexWarming("The decision index is being loaded; retry in a few seconds")
        try:
            if self._index is None:
                with self.database.session() as s:
                    self._index = self._load(s)
                self._checked = self._synced = self.clock()
            elif self._due(self.clock()):
                self._refresh(self._index)
            return self._index
        finally:
            self._lock.release()

    def _load(self, session: Session) -> Index:
        if self.store is None:
            return build(session)
        try:
            base = self.store.open_or_build(session)
        except OSError as exc:
            # A directory that cannot take the file (full, read-only): this process decides from an index
            # of its own rather than not at all.
            log.error(
                "decision index: no packed file in %s (%s); building one in memory", self.store.directory, exc
            )
            return build(session)
        index = PackedIndex(base)
        refresh(session, index)
        # As build() does: what the worker holds by now (the application, the index's tables) lives as long
        # as the process, so it is kept out of later collections, whose full passes over it would stall
        # decisions (without it, the packed workers' slowest answers were 170-210 ms where the in-memory
        # index's, frozen, were 70-120 ms; 68 ms with it, in one run on the shared 2-core box).
        gc.freeze()
        return index

    def _refresh(self, index: Index) -> None:
        started = self.clock()
        try:
            with self.database.session() as s:
                refresh(s, index)
        except Exception as exc:
            if not unavailable(exc):
                raise
            self._checked = self.clock()
            if not self._degraded:
                log.warning(
                    "decision index: database unavailable (%s); deciding from the index as of %.0f s ago",
                    type(exc).__name__,
                    self.age_seconds(),
                )
            self._degraded = True
            return
        if self._degraded:
            log.warning("decision index: database back; the index is current again")
        self._degraded = False
        self._checked = self._synced = started
        if (
            isinstance(index, PackedIndex)
            and self.clock() >= self._maintain_after
            and self._maintenance_due(index)
        ):
            self._maintain_in_background()

    def _rebuild_due(self, index: PackedIndex) -> bool:
        changed = index.changed_since_base
        if changed >= self.rebuild_entries:
            return True
        # By age only with something to fold in: a file that still matches the database is kept.
        old = self.rebuild_seconds > 0 and self.wall() - index.base.built_at >= self.rebuild_seconds
        return old and changed > 0

    def _maintenance_due(self, index: PackedIndex) -> bool:
        assert self.store is not None
        return self.store.replaced(index.base) or self._rebuild_due(index)

    def maintain(self) -> bool:
        """Move to a newer packed file: the one another worker of the host published, or one built here
        when the changes since the current file are many or it is old (unless another worker is building
        it). The new index is brought up to the feed before it replaces the current one. True if it did."""
        index = self._index
        store = self.store
        if store is None or not isinstance(index, PackedIndex):
            return False
        replaced = store.replaced(index.base)
        if not replaced and not self._rebuild_due(index):
            return False
        base = store.current() if replaced else None  # None too for a file that cannot be trusted
        with self.database.session() as s:
            if base is None or not usable(s, base, just_published=replaced):
                base = store.rebuild(s, unless_replaced=index.base)
                if base is None:
                    return False  # another worker is building it: this one switches once it appears
            fresh = PackedIndex(base)
            refresh(s, fresh)
        with self._lock:
            with self.database.session() as s:
                refresh(s, fresh)  # what came in since, so that no decision goes back in time
            self._index = fresh
        log.info("decision index: now on %s (feed seq %d)", base.path, base.seq)
        return True

    def _maintain_in_background(self) -> None:
        running = self._maintaining
        if running is not None and running.is_alive():
            return

        def run() -> None:
            try:
                self.maintain()
            except Exception as exc:
                # Not again at every feed read: a build that fails (a full disk) would take a core for it.
                self._maintain_after = self.clock() + MAINTAIN_RETRY_SECONDS
                if not unavailable(exc):
                    log.exception("decision index: rebuilding the packed file failed")
                else:
                    log.warning("decision index: not rebuilt, database unavailable (%s)", type(exc).__name__)

        self._maintaining = threading.Thread(target=run, name="fcx-decision-index-pack", daemon=True)
        self._maintaining.start()

    async def aget(self) -> Index:
        """`get` for an async route: the current index at once; a due refresh or the first build in a
        worker thread, so that the event loop never waits on the database. While degraded, the retry
        runs in the background and the request is answered from the index as it is."""
        index = self._index
        if index is not None:
            if not self._due(self.clock()):
                return index
            if self._degraded:
                self._retry_in_background()
                return index
        return await run_in_threadpool(self.get)

    def _retry_in_background(self) -> None:
        retrying = self._retrying
        if retrying is not None and retrying.is_alive():
            return

        def run() -> None:
            try:
                self.get()
            except Exception:
                log.exception("decision index: refresh failed")

        self._retrying = threading.Thread(target=run, name="fcx-decision-index-retry", daemon=True)
        self._retrying.start()

    def invalidate(self) -> None:
        """Make the next request read the feed (tests, and after a write in this process)."""
        self._checked = -math.inf


def holder_for(database: Database, settings: Settings, *, served: bool) -> IndexHolder:
    """The holder as the settings ask for it: packed (shared by the host's workers) or in memory;
    `auto` is packed for `fcx serve` and in memory in an embedded app (tests, tools)."""
    mode = settings.decision_index
    packed = mode == "packed" or (mode == "auto" and served)
    store = None
    if packed:
        directory = Path(settings.decision_index_dir)
        store = IndexStore(directory, f"{database.url}|{database.schema or ''}", database=database)
    return IndexHolder(
        database,
        retry_seconds=settings.database_retry_after_seconds,
        store=store,
        rebuild_entries=settings.decision_index_rebuild_entries,
        rebuild_seconds=settings.decision_index_rebuild_seconds,
    )
