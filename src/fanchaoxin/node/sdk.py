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

import functools
import gc
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from fanchaoxin.core import crypto
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.identifiers import IdentifierError, normalise
from fanchaoxin.node.client import PlatformClient
from fanchaoxin.node.decision_log import FLUSH_AT, DecisionLog, check_purpose, is_tag
from fanchaoxin.node.live import (
    CACHED,
    EVALUATED,
    FAIL_CLOSED,
    UNAVAILABLE,
    LiveResult,
    LiveRows,
    LiveSettings,
    LiveTags,
    LiveUnavailable,
    live_types,
)
from fanchaoxin.node.store import RULEBOOK_KEY, SEP, Store, id_hmac_profile
from fanchaoxin.sanctions.decide import RESTRICT, ByScene, DecisionIndex, IndexedEntry, decide, index_entry
from fanchaoxin.sanctions.policy import measure_catalogue
from fanchaoxin.sharing.protocol import DecisionRequest, scene_codes, unb64

CACHE_MAX = 1_000_000

# What the node holds for an identifier (keys_for): the tags of an enrolled user, a live tag evaluated
# before, nothing and none to ask for (a unit's public identifier, or live tags off), nothing yet (a
# first-seen personal identifier: evaluated live before the decision).
ENROLLED, LIVE, PUBLIC, FIRST_SEEN = 0, 1, 2, 3
Resolved = tuple[tuple[str, ...], int]


def id_hmac(secret: bytes, canonical_key: str, profile: crypto.Profile | None = None) -> bytes:
    """HMAC(node secret, ``"type:normalised value"``): how the store knows an enrolled identifier, with the
    MAC of the store's ``id_hmac_profile`` (HMAC-SHA256, or HMAC-SM3 under gm; international if not given)."""
    return (profile or _INTERNATIONAL).mac(secret, canonical_key.encode())


_INTERNATIONAL = crypto.profile("international")


def id_hmac_of(cfg: dict[str, str]) -> Callable[[bytes, str], bytes]:
    """:func:`id_hmac` under the store's profile, as the one callable enrolment and live tags use."""
    return functools.partial(id_hmac, profile=id_hmac_profile(cfg))


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
    live: LiveRows | None = None
    # entry id → the platform's request id of its last change (None: forget it); all of them on a rebuild
    change_requests: dict[str, str | None] | None = None


def _excluded(text: str) -> dict[str, str]:
    """The rulebook as the sync stored it (JSON code → clause); anything else is no exclusion."""
    try:
        found = json.loads(text) if text else {}
    except json.JSONDecodeError:
        return {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


@dataclass
class Prepared:
    """A decision request with its identifiers resolved, waiting for the live tags of its first-seen
    identifiers (``first_seen``: their canonical ``type:value``, distinct) if it has any."""

    single: bool
    scene: str
    purpose: str | None
    last_sync_at: float
    subjects: list[list[Resolved]]
    first_seen: list[str]


class Node:
    """An enterprise node's decisions, in process. Thread-safe for decisions; one refresher at a time.

    ``live``: how first-seen identifiers get live tags (:mod:`.live`): the store's config (``fcx node
    init``) unless given; ``False`` turns live tags off (such identifiers are only ``not_enrolled``).
    ``client``: the platform client for live evaluation (default: one from the store's config)."""

    def __init__(
        self,
        path: str | Store,
        *,
        refresh_seconds: float | None = 1.0,
        live: LiveSettings | bool | None = None,
        client: PlatformClient | None = None,
    ) -> None:
        self.store = path if isinstance(path, Store) else Store(path)
        cfg = self.store.get_config()
        self._secret = unb64(cfg["node_secret"], "node secret")
        self._id_hmac = id_hmac_of(cfg)
        if live is None or live is True:
            live = LiveSettings.from_config(cfg)
        self.live: LiveTags | None = None
        if live is not False and live.enabled:
            self.live = LiveTags(self.store, self._secret, self._id_hmac, live, client=client)
        self._live_types = live_types()
        self.index = DecisionIndex()
        self.generation = -1
        # entry id → the platform's request id of the change applied last (node_entry_requests, #23)
        self.change_requests: dict[str, str] = {}
        self.users_version = ""
        self.users: dict[bytes, tuple[str, ...]] = {}
        # The measures the enterprise's rules exclude (code → clause): decide() leaves them out.
        self.excluded: dict[str, str] = {}
        self._rulebook_text = ""
        self.last_sync_at: float | None = None
        self.refresh_seconds = refresh_seconds
        self._checked = 0.0
        self._cache: dict[tuple[str, str], Resolved] = {}
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
                every = "SELECT entry_id, request_id FROM node_entry_requests"
                plan.change_requests = dict(conn.exec_driver_sql(every).all())
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
                since = "SELECT entry_id, request_id FROM node_entry_requests WHERE seq > ?"
                named: dict[str, str] = dict(conn.exec_driver_sql(since, (self.index.seq,)).all())
                plan.change_requests = {eid: named.get(eid) for eid, _keys, _entry in plan.changes}
            if cfg.get("users_version", "") != self.users_version:
                users: dict[bytes, list[str]] = {}
                for h, t in conn.exec_driver_sql("SELECT id_hmac, tag FROM node_users"):
                    users.setdefault(bytes(h), []).append(t)
                plan.users = {h: tuple(ts) for h, ts in users.items()}
            if self.live is not None:
                plan.live = self.live.read_new(conn, cfg)
        return plan

    def commit(self, plan: _Refresh) -> None:
        """Swap a prepared refresh in (fast, no I/O): a decision sees the store before or after a delta."""
        cfg = plan.config
        if plan.new_index is not None:
            self.index = plan.new_index
            self.generation = int(cfg.get("generation", "0"))
            gc.freeze()  # the index lives until the next snapshot: keep it out of later collections
            self.change_requests = {}
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
        for eid, request_id in (plan.change_requests or {}).items():
            if request_id is None:
                self.change_requests.pop(eid, None)
            else:
                self.change_requests[eid] = request_id
        if plan.users is not None:
            self.users = plan.users
            self.users_version = cfg.get("users_version", "")
            self._cache = {}
        if plan.live is not None and self.live is not None:
            self.live.apply(plan.live)
            if plan.live.reset:
                self._cache = {}  # live tags under a retired key are gone
        rulebook_text = cfg.get(RULEBOOK_KEY, "")
        if rulebook_text != self._rulebook_text:
            self.excluded = _excluded(rulebook_text)
            self._rulebook_text = rulebook_text
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

    def keys_for(self, type_: str, value: str) -> Resolved:
        """The index keys of one identifier (its public ``type:value`` plus its tags if enrolled or
        evaluated live), and what the node holds for it (ENROLLED, LIVE, PUBLIC or FIRST_SEEN). Raises
        IdentifierError for a bad identifier."""
        cache_key = (type_, value)
        hit = self._cache.get(cache_key)
        if hit is not None:
            return hit
        canonical = f"{type_}:{normalise(type_, value)}"
        h = self._id_hmac(self._secret, canonical)
        tags = self.users.get(h)
        result: Resolved
        if tags:
            result = ((canonical, *tags), ENROLLED)
        elif self.live is not None and type_ in self._live_types:
            tag = self.live.tags.get(h)
            if tag is None:
                return (canonical,), FIRST_SEEN  # not cached: its tag is on its way
            result = ((canonical, tag), LIVE)
        else:
            result = ((canonical,), PUBLIC)
        if len(self._cache) >= CACHE_MAX:
            self._cache = {}
        self._cache[cache_key] = result
        return result

    def _resolve(
        self, identifiers: Iterable[IdentifierLike], path: str, first_seen: dict[str, None]
    ) -> list[Resolved]:
        out: list[Resolved] = []
        cache = self._cache
        for i, ident in enumerate(identifiers):
            hit = cache.get(ident) if type(ident) is tuple else None
            if hit is None:
                type_, value = _pair(ident)
                try:
                    hit = self.keys_for(type_, value)
                except IdentifierError as exc:
                    raise BadIdentifier(exc, type_, f"{path}[{i}]") from None
                if hit[1] == FIRST_SEEN:
                    first_seen[hit[0][0]] = None
            out.append(hit)
        return out

    def _decide_one(
        self,
        resolved: list[Resolved],
        scene: str,
        path: str,
        purpose: str | None,
        at: float,
        seq: int,
        live: LiveResult | None,
    ) -> dict[str, Any]:
        keys: list[str] = []
        not_enrolled: list[str] = []
        held = evaluated = unavailable = False
        for i, (ks, state) in enumerate(resolved):
            keys.extend(ks)
            if state == ENROLLED:
                continue
            if state == LIVE:
                held = True
            elif state == FIRST_SEEN:
                tag = live.tags.get(ks[0]) if live is not None else None
                if tag is not None:
                    keys.append(tag)
                    evaluated = True
                else:
                    unavailable = True
                    not_enrolled.append(f"{path}[{i}]")
            else:
                not_enrolled.append(f"{path}[{i}]")
        out = decide(self.index, keys, scene, today=self.today(), excluded=self.excluded).to_dict()
        out["not_enrolled"] = not_enrolled
        out["live_tag"] = UNAVAILABLE if unavailable else EVALUATED if evaluated else CACHED if held else None
        out["degraded"] = unavailable
        out["fallback"] = None
        if unavailable and self.live is not None:
            settings = self.live.settings
            error = live.error if live is not None and live.error is not None else None
            out["fallback"] = settings.fallback
            out["degraded_reason"] = (error or LiveUnavailable("unreachable", "")).reason()
            if (
                settings.fallback == FAIL_CLOSED
                and scene in settings.sensitive_scenes
                and out["verdict"] == "allow"
            ):
                out["verdict"] = (
                    RESTRICT  # 敏感场景失败即收紧: no tag, so no first-seen person goes through unchecked
                )
            self.live.stats.unavailable += 1
        elif held and self.live is not None:
            self.live.stats.cached += 1
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

    def prepare(
        self,
        subjects: Iterable[Iterable[IdentifierLike]],
        scene: str,
        purpose: str | None,
        last_sync_at: float,
        *,
        single: bool,
    ) -> Prepared:
        """Resolve every identifier of a request (no I/O); :meth:`finish` decides once the first-seen
        ones have their live tags (or failed to get them)."""
        first_seen: dict[str, None] = {}
        if single:
            resolved = [self._resolve(next(iter(subjects)), "identifiers", first_seen)]
        else:
            resolved = [
                self._resolve(s, f"subjects[{n}].identifiers", first_seen) for n, s in enumerate(subjects)
            ]
        return Prepared(single, scene, purpose, last_sync_at, resolved, list(first_seen))

    def evaluate(self, first_seen: list[str]) -> LiveResult | None:
        """The live tags of first-seen identifiers, in this thread (one platform call per 1,000)."""
        if not first_seen or self.live is None:
            return None
        try:
            return LiveResult(self.live.evaluate(first_seen))
        except LiveUnavailable as exc:
            return LiveResult({}, exc)

    def finish(self, prepared: Prepared, live: LiveResult | None) -> dict[str, Any]:
        """The answer to a prepared request (one decision-log record per subject)."""
        at = time.time()
        seq = self.index.seq
        scene, purpose = prepared.scene, prepared.purpose
        if prepared.single:
            out = self._decide_one(prepared.subjects[0], scene, "identifiers", purpose, at, seq, live)
            out["scene"] = scene
            out["feed_seq"] = seq
            out["feed_age_seconds"] = round(at - prepared.last_sync_at, 1)
            return out
        results = [
            self._decide_one(r, scene, f"subjects[{n}].identifiers", purpose, at, seq, live)
            for n, r in enumerate(prepared.subjects)
        ]
        return {
            "scene": scene,
            "results": results,
            "feed_seq": seq,
            "feed_age_seconds": self.feed_age_seconds(),
        }

    def _answer(self, prepared: Prepared) -> dict[str, Any]:
        return self.finish(prepared, self.evaluate(prepared.first_seen))

    def decide(
        self, identifiers: Iterable[IdentifierLike], scene: str, purpose: str | None = None
    ) -> dict[str, Any]:
        """The platform's answer for one subject, plus ``feed_seq``, ``feed_age_seconds``,
        ``not_enrolled`` (identifiers the node holds no tag for, so they could match only as a unit's
        public identifier), ``live_tag`` (``evaluated``: a first-seen identifier's tag was asked of the
        platform in this call; ``cached``: one evaluated before was found here; ``unavailable``: none
        could be had; None: no identifier needed one), ``degraded`` and ``fallback`` (``fail_open`` or
        ``fail_closed`` when unavailable, with ``degraded_reason``). ``identifiers``: ``(type, value)``
        tuples, ``{"type", "value"}`` dicts or ``"type:value"`` strings; ``purpose``: why the enterprise
        checks (用途, up to 200 characters), kept in the decision log. Raises :class:`NotSynced` before
        the first verified sync, ValueError for an unknown scene or a bad purpose, :class:`BadIdentifier`
        (an IdentifierError) for a bad identifier. Blocks at most the live timeout on the platform."""
        purpose = check_purpose(purpose)
        last = self._check(scene)
        # prepare() + finish() without the Prepared record: the path of every repeat identifier
        first_seen: dict[str, None] = {}
        resolved = self._resolve(identifiers, "identifiers", first_seen)
        live = self.evaluate(list(first_seen)) if first_seen else None
        at = time.time()
        seq = self.index.seq
        out = self._decide_one(resolved, scene, "identifiers", purpose, at, seq, live)
        out["scene"] = scene
        out["feed_seq"] = seq
        out["feed_age_seconds"] = round(at - last, 1)
        return out

    def decide_many(
        self, subjects: Iterable[Iterable[IdentifierLike]], scene: str, purpose: str | None = None
    ) -> dict[str, Any]:
        """A batch, in the platform's batch shape: ``{"scene", "results": [...], "feed_seq", ...}``;
        one decision-log record per subject, one platform call for all the batch's first-seen
        identifiers (per 1,000)."""
        purpose = check_purpose(purpose)
        last = self._check(scene)
        return self._answer(self.prepare(subjects, scene, purpose, last, single=False))

    def prepare_request(self, request: DecisionRequest) -> Prepared:
        """:meth:`prepare` for a request the wire model has validated (the HTTP API's body), so its
        scene is not checked again. Raises :class:`NotSynced`, :class:`BadIdentifier`."""
        last_sync_at = self._ready()
        if request.identifiers is not None:
            identifiers = [(i.type, i.value) for i in request.identifiers]
            return self.prepare([identifiers], request.scene, request.purpose, last_sync_at, single=True)
        subjects = [[(i.type, i.value) for i in s.identifiers] for s in request.subjects or []]
        return self.prepare(subjects, request.scene, request.purpose, last_sync_at, single=False)

    def answer(self, request: DecisionRequest) -> dict[str, Any]:
        """:meth:`decide` or :meth:`decide_many` for a request the wire model has validated."""
        return self._answer(self.prepare_request(request))

    def requests_behind(self, entry_ids: Iterable[str]) -> dict[str, str]:
        """The platform's request ids of the changes behind these entries, where the node knows them."""
        known = self.change_requests
        return {eid: known[eid] for eid in entry_ids if eid in known}

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

    def live_stats(self) -> dict[str, Any] | None:
        """Live-tag counts since start (:class:`~fanchaoxin.node.live.LiveStats`); None when off."""
        return None if self.live is None else {**self.live.stats.as_dict(), "held": len(self.live.tags)}

    def close(self) -> None:
        """Write the decisions and live tags still queued to the store, then let the store go."""
        self.log.flush()
        if self.live is not None:
            self.live.close()
        self.store.dispose()
