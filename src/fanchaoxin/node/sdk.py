"""The in-process SDK: ``from fanchaoxin.node import Node; Node("var/node.db").decide(identifiers, scene)``.

A :class:`Node` holds ONE in-memory :class:`~fanchaoxin.sanctions.decide.DecisionIndex` of the entries in
force in the store (keyed by tag, and by a unit's public ``type:value``), and the map
``HMAC(node secret, "type:value") → tags`` of the enrolled users. A decision normalises each identifier,
maps it to its keys (cached in memory), and calls the platform's own ``decide()``: no I/O per decision.

The index follows the store (written by ``fcx node sync`` or ``fcx node serve``'s loop): at most once a
second (``refresh_seconds``) a decision reads the store's small config table, and if the head moved, loads
the entries changed since (or rebuilds after a snapshot). ``fcx node serve`` refreshes explicitly after
each sync instead.

Every decision is recorded in the node's decision log (:mod:`.decision_log`: queued in memory, written to
the store with the refresh check, at 2,000 queued and on :meth:`Node.close`; relayed to the platform by
``fcx node sync``), with the ``purpose`` the caller gives.
"""

from __future__ import annotations

import gc
import hmac
import json
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.identifiers import IdentifierError, normalise
from fanchaoxin.node.decision_log import FLUSH_AT, DecisionLog, check_purpose, is_tag
from fanchaoxin.node.store import SEP, Store
from fanchaoxin.sanctions.decide import ByScene, DecisionIndex, IndexedEntry, decide, index_entry
from fanchaoxin.sanctions.policy import measure_catalogue
from fanchaoxin.sharing.protocol import DecisionRequest, scene_codes, unb64

CACHE_MAX = 1_000_000


def id_hmac(secret: bytes, canonical_key: str) -> bytes:
    """HMAC-SHA256(node secret, ``"type:normalised value"``): how the store knows an enrolled identifier."""
    return hmac.digest(secret, canonical_key.encode(), "sha256")


# How the SDK takes an identifier: ``("phone", "138…")``, ``{"type": "phone", "value": "138…"}`` or
# ``"phone:138…"``.
IdentifierLike = tuple[str, str] | Mapping[str, str] | str


class NotSynced(RuntimeError):
    """The store has never completed a verified sync: there is nothing to decide from."""


class BadIdentifier(IdentifierError):
    """An :class:`IdentifierError` that knows where it stands in the request (``field``, e.g.
    ``subjects[3].identifiers[1]``) and the type as given (``given_type``), which is all the HTTP API
    needs for the platform's 422 without validating the request a second time."""

    def __init__(self, error: IdentifierError, given_type: str, field: str) -> None:
        super().__init__(error.type, error.rule, error.detail)
        self.given_type = given_type
        self.field = field

    def __reduce__(self) -> tuple[Any, ...]:
        # IdentifierError's reduction replays its own three arguments, which are not this class's.
        return (type(self), (IdentifierError(self.type, self.rule, self.detail), self.given_type, self.field))


def _pair(ident: IdentifierLike) -> tuple[str, str]:
    if isinstance(ident, str):
        type_, _, value = ident.partition(":")
        return type_, value
    if isinstance(ident, Mapping):
        return ident["type"], ident["value"]
    type_, value = ident
    return type_, value


def _date(value: object) -> date | None:
    return date.fromisoformat(str(value)[:10]) if value else None


class _EntryBuilder:
    """Builds IndexedEntry objects from node_entries rows; entries with the same measures share one
    per-scene table (as the platform's index does), which keeps a million entries small and fast to load."""

    def __init__(self) -> None:
        self.catalogue = measure_catalogue()
        self.shared: dict[tuple[str, bool], ByScene] = {}
        self.dates: dict[str, date] = {}

    def __call__(self, row: Sequence[Any]) -> tuple[list[str], IndexedEntry]:
        eid, keys, kind, severity, behaviours, status, max_end_on, liable_role, measures = row
        disputed = status == "disputed"
        by_scene = self.shared.get((measures, disputed))
        if by_scene is None:
            by_scene = self.shared[(measures, disputed)] = index_entry(
                entry_id="", subject_kind="", severity="", behaviours=(), disputed=disputed,
                max_end_on=None, liable_role=None, measures=json.loads(measures), catalogue=self.catalogue,
            ).by_scene  # fmt: skip
        end = None
        if max_end_on:
            end = self.dates.get(max_end_on)
            if end is None:
                end = self.dates[max_end_on] = date.fromisoformat(max_end_on)
        entry = IndexedEntry(
            eid, kind, severity, tuple(behaviours.split(SEP)) if behaviours else (), disputed, end,
            liable_role, by_scene,
        )  # fmt: skip
        return [k for k in keys.split(SEP) if k], entry


_ROW = "entry_id, keys, subject_kind, severity, behaviours, status, max_end_on, liable_role, measures"


@dataclass
class _Refresh:
    """What a refresh will change, prepared off the serving thread; :meth:`Node.commit` swaps it in."""

    config: dict[str, str]
    new_index: DecisionIndex | None = None  # a rebuild (first load or after a snapshot)
    changes: list[tuple[str, list[str], IndexedEntry | None]] | None = None
    users: dict[bytes, tuple[str, ...]] | None = None


class Node:
    """An enterprise node's decisions, in process. Thread-safe for decisions; one refresher at a time."""

    def __init__(self, path: str | Store, *, refresh_seconds: float | None = 1.0) -> None:
        self.store = path if isinstance(path, Store) else Store(path)
        cfg = self.store.get_config()
        self._secret = unb64(cfg["node_secret"], "node secret")
        self.index = DecisionIndex()
        self.generation = -1
        self.users_version = ""
        self.users: dict[bytes, tuple[str, ...]] = {}
        self.last_sync_at: float | None = None
        self.refresh_seconds = refresh_seconds
        self._checked = 0.0
        self._cache: dict[tuple[str, str], tuple[tuple[str, ...], bool]] = {}
        self._today: date = china_today()
        self._today_until = 0.0
        self._refresh_lock = threading.Lock()
        self._scenes = frozenset(scene_codes())
        self._user_tags: tuple[dict[bytes, tuple[str, ...]], set[str]] | None = None
        self.log = DecisionLog(self.store)
        self._record = self.log.add
        self.refresh()

    # --- following the store ------------------------------------------------------------------------

    def prepare_refresh(self) -> _Refresh:
        """Read what changed in the store (I/O; may run in a worker thread). One read transaction: the
        config and the rows are the same moment of the store."""
        with self.store.read() as conn:
            cfg = self.store.get_config(conn)
            plan = _Refresh(cfg)
            generation = int(cfg.get("generation", "0"))
            head = int(cfg.get("head", "0"))
            build = _EntryBuilder()
            if generation != self.generation:
                index = DecisionIndex()
                index.seq = head
                rows = conn.exec_driver_sql(f"SELECT {_ROW} FROM node_entries WHERE in_force = 1")
                was_enabled = gc.isenabled()
                gc.disable()
                try:
                    put = index.put
                    for row in rows:
                        keys, entry = build(row)
                        put(keys, entry)
                finally:
                    if was_enabled:
                        gc.enable()
                plan.new_index = index
            elif head > self.index.seq:
                plan.changes = []
                rows = conn.exec_driver_sql(
                    f"SELECT in_force, {_ROW} FROM node_entries WHERE seq > ? ORDER BY seq", (self.index.seq,)
                )
                for row in rows:
                    if row[0]:
                        keys, entry = build(row[1:])
                        plan.changes.append((row[1], keys, entry))
                    else:
                        plan.changes.append((row[1], [], None))
            if cfg.get("users_version", "") != self.users_version:
                users: dict[bytes, list[str]] = {}
                for h, t in conn.exec_driver_sql("SELECT id_hmac, tag FROM node_users"):
                    users.setdefault(bytes(h), []).append(t)
                plan.users = {h: tuple(ts) for h, ts in users.items()}
        return plan

    def commit(self, plan: _Refresh) -> None:
        """Swap a prepared refresh in (fast, no I/O): a decision sees the store before or after a delta."""
        cfg = plan.config
        if plan.new_index is not None:
            self.index = plan.new_index
            self.generation = int(cfg.get("generation", "0"))
            gc.freeze()  # the index lives until the next snapshot: keep it out of later collections
        elif plan.changes is not None:
            was_enabled = gc.isenabled()
            gc.disable()
            try:
                for eid, keys, entry in plan.changes:
                    if entry is None:
                        self.index.remove(eid)
                    else:
                        self.index.put(keys, entry)
            finally:
                if was_enabled:
                    gc.enable()
            self.index.seq = int(cfg.get("head", "0"))
        if plan.users is not None:
            self.users = plan.users
            self.users_version = cfg.get("users_version", "")
            self._cache = {}
        last = cfg.get("last_sync_at")
        self.last_sync_at = float(last) if last else None
        self._checked = time.monotonic()

    def refresh(self) -> None:
        with self._refresh_lock:
            self.commit(self.prepare_refresh())

    def _maybe_refresh(self) -> None:
        if self._refresh_lock.acquire(blocking=False):
            try:
                self.commit(self.prepare_refresh())
            finally:
                self._refresh_lock.release()

    # --- state ----------------------------------------------------------------------------------------

    @property
    def synced(self) -> bool:
        return self.last_sync_at is not None

    @property
    def feed_seq(self) -> int:
        return self.index.seq

    def feed_age_seconds(self) -> float | None:
        if self.last_sync_at is None:
            return None
        return round(max(0.0, time.time() - self.last_sync_at), 1)

    def today(self) -> date:
        mono = time.monotonic()
        if mono >= self._today_until:
            self._today = china_today()
            self._today_until = mono + 1.0
        return self._today

    # --- decisions ------------------------------------------------------------------------------------

    def keys_for(self, type_: str, value: str) -> tuple[tuple[str, ...], bool]:
        """The index keys of one identifier (its public ``type:value`` plus its tags if enrolled), and
        whether it is enrolled. Raises IdentifierError for a bad identifier."""
        cache_key = (type_, value)
        hit = self._cache.get(cache_key)
        if hit is not None:
            return hit
        canonical = f"{type_}:{normalise(type_, value)}"
        tags = self.users.get(id_hmac(self._secret, canonical))
        result = ((canonical, *tags), True) if tags else ((canonical,), False)
        if len(self._cache) >= CACHE_MAX:
            self._cache = {}
        self._cache[cache_key] = result
        return result

    def _decide_one(
        self,
        identifiers: Iterable[IdentifierLike],
        scene: str,
        path: str,
        purpose: str | None,
        at: float,
        seq: int,
    ) -> dict[str, Any]:
        keys: list[str] = []
        not_enrolled: list[str] = []
        cache = self._cache
        for i, ident in enumerate(identifiers):
            hit = cache.get(ident) if type(ident) is tuple else None
            if hit is None:
                type_, value = _pair(ident)
                try:
                    hit = self.keys_for(type_, value)
                except IdentifierError as exc:
                    raise BadIdentifier(exc, type_, f"{path}[{i}]") from None
            keys.extend(hit[0])
            if not hit[1]:
                not_enrolled.append(f"{path}[{i}]")
        out = decide(self.index, keys, scene, today=self.today()).to_dict()
        out["not_enrolled"] = not_enrolled
        self._record((at, purpose, scene, out["verdict"], out["entry_ids"], seq, keys, len(not_enrolled)))
        return out

    def _ready(self) -> float:
        """Refresh if due; the time of the last verified sync. Raises :class:`NotSynced` before the first."""
        if self.refresh_seconds is not None and time.monotonic() - self._checked >= self.refresh_seconds:
            self._maybe_refresh()
            self.log.flush(blocking=False)
        elif len(self.log) >= FLUSH_AT:
            self.log.flush(blocking=False)
        last = self.last_sync_at
        if last is None:
            raise NotSynced("the node has not completed a verified sync yet: run `fcx node sync`")
        return last

    def _check(self, scene: str) -> float:
        last = self._ready()
        if scene not in self._scenes:
            raise ValueError(f"scene: unknown scene {scene!r}")
        return last

    def _single(
        self, identifiers: Iterable[IdentifierLike], scene: str, last_sync_at: float, purpose: str | None
    ) -> dict[str, Any]:
        at = time.time()
        seq = self.index.seq
        out = self._decide_one(identifiers, scene, "identifiers", purpose, at, seq)
        out["scene"] = scene
        out["feed_seq"] = seq
        out["feed_age_seconds"] = round(at - last_sync_at, 1)
        return out

    def _batch(
        self, subjects: Iterable[Iterable[IdentifierLike]], scene: str, purpose: str | None
    ) -> dict[str, Any]:
        at = time.time()
        seq = self.index.seq
        results = [
            self._decide_one(s, scene, f"subjects[{n}].identifiers", purpose, at, seq)
            for n, s in enumerate(subjects)
        ]
        return {
            "scene": scene,
            "results": results,
            "feed_seq": seq,
            "feed_age_seconds": self.feed_age_seconds(),
        }

    def decide(
        self, identifiers: Iterable[IdentifierLike], scene: str, purpose: str | None = None
    ) -> dict[str, Any]:
        """The platform's answer for one subject, plus ``feed_seq``, ``feed_age_seconds`` and
        ``not_enrolled`` (identifiers the node holds no tag for, so they could match only as a unit's
        public identifier). ``identifiers``: ``(type, value)`` tuples, ``{"type", "value"}`` dicts or
        ``"type:value"`` strings; ``purpose``: why the enterprise checks (用途, up to 200 characters),
        kept in the decision log. Raises :class:`NotSynced` before the first verified sync, ValueError
        for an unknown scene or a bad purpose, :class:`BadIdentifier` (an IdentifierError) for a bad
        identifier."""
        purpose = check_purpose(purpose)
        return self._single(identifiers, scene, self._check(scene), purpose)

    def decide_many(
        self, subjects: Iterable[Iterable[IdentifierLike]], scene: str, purpose: str | None = None
    ) -> dict[str, Any]:
        """A batch, in the platform's batch shape: ``{"scene", "results": [...], "feed_seq", ...}``;
        one decision-log record per subject."""
        purpose = check_purpose(purpose)
        self._check(scene)
        return self._batch(subjects, scene, purpose)

    def answer(self, request: DecisionRequest) -> dict[str, Any]:
        """:meth:`decide` or :meth:`decide_many` for a request the wire model has validated (the HTTP
        API's body), so its scene is not checked again. Raises :class:`NotSynced`, :class:`BadIdentifier`."""
        last_sync_at = self._ready()
        purpose = request.purpose
        if request.identifiers is not None:
            identifiers = [(i.type, i.value) for i in request.identifiers]
            return self._single(identifiers, request.scene, last_sync_at, purpose)
        subjects = [[(i.type, i.value) for i in s.identifiers] for s in request.subjects or []]
        return self._batch(subjects, request.scene, purpose)

    def matches(self, entry_id: str) -> bool:
        """Whether an entry in force concerns one of this node's enrolled users (one of its tags is theirs),
        or is a unit's (public identifiers): the node's need to know for its details."""
        keys = self.index.keys_of.get(entry_id)
        if not keys:
            return False
        if self._user_tags is None or self._user_tags[0] is not self.users:
            self._user_tags = (self.users, {t for ts in self.users.values() for t in ts})
        tags = self._user_tags[1]
        return any(k in tags or not is_tag(k) for k in keys)

    def close(self) -> None:
        """Write the decisions still queued to the store, then let the store go."""
        self.log.flush()
        self.store.dispose()
