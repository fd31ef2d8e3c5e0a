"""Live tags (实时标签) for first-seen identifiers: blinded evaluation in the decision's own request.

A decision naming a personal identifier the node holds no tag for (not enrolled, never seen) cannot
match a person's entry: entries reach the node by tag only. So the node blinds ``"type:normalised
value"`` (``oprf.blind_batch``), asks the platform's ``POST /v1/sharing/evaluate`` (within the
enterprise's quota), verifies the batch DLEQ proof against the OPRF public key it holds
(``oprf.finalize_batch``), keeps ``HMAC(node secret, "type:value") → tag`` in memory and in the store's
``node_live_tags`` (written by a background thread, so that a decision never waits on a store write), and
decides. A repeat identifier finds its tag locally and never leaves the node again.

Only the identifier types of natural persons' kinds (catalogues/subject_kinds.yaml ``personal: true``)
are evaluated: a unit's registration identifiers reach the node in plain and match as they are.

When no tag can be had — the platform unreachable or slow (``timeout``), the quota used up (429: answered
as unreachable, with the platform's reason), or a proof that does not verify (refused, logged, counted) —
the decision falls back as configured: ``fail_open`` answers from what the node knows (allow unless an
enrolled or public identifier matches) with ``degraded: true``; ``fail_closed`` restricts in the scenes
marked sensitive. After a failure the node answers "unavailable" at once for ``retry_seconds`` (or the
platform's Retry-After) rather than wait on the platform request after request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any, Final

from fanchaoxin.core.catalogue import catalogues
from fanchaoxin.node.client import PlatformClient, PlatformRefused, PlatformUnavailable
from fanchaoxin.node.store import Store, now
from fanchaoxin.sharing import oprf
from fanchaoxin.sharing.protocol import b64, scene_codes, unb64

log = logging.getLogger("fanchaoxin.node.live")

FAIL_OPEN: Final = "fail_open"
FAIL_CLOSED: Final = "fail_closed"
FALLBACKS: Final = (FAIL_OPEN, FAIL_CLOSED)
# Scenes where letting a listed person through does lasting harm: a new account (measure 1), a loan,
# hiring courier staff (measure 13). fail_closed restricts there while no live tag can be had.
DEFAULT_SENSITIVE_SCENES: Final = ("account_registration", "internet_finance", "courier_hiring")
EVALUATE_MAX = 1000  # sharing.evaluate.MAX_BATCH: elements in one evaluation call at most
IN_FLIGHT = 1  # evaluation calls of one HTTP node at once
WRITE_SECONDS = 0.5  # the live tags evaluated are written to the store this often …
WRITE_BATCH = 1000  # … or as soon as this many wait

# What the answer's ``live_tag`` says of a subject's first-seen identifiers.
EVALUATED: Final = "evaluated"
CACHED: Final = "cached"
UNAVAILABLE: Final = "unavailable"

_REASONS: Final[dict[str, tuple[str, str]]] = {
    "unreachable": ("平台不可达，未能实时核验该标识", "The platform could not be reached"),
    "quota_exhausted": ("实时核验配额已用完", "The enterprise's evaluation quota is used up"),
    "refused": ("平台拒绝了实时核验请求", "The platform refused the evaluation"),
    "proof_refused": ("平台的核验证明未通过验证，已拒绝", "The platform's evaluation proof does not verify"),
    "timeout": ("平台未在时限内答复", "The platform did not answer in time"),
}


@cache
def live_types() -> frozenset[str]:
    """Identifier types that reach the node only as tags: those of the personal subject kinds."""
    return frozenset(
        str(t) for kind in catalogues().subject_kinds.values() if kind.personal for t in kind.identifiers
    )


@dataclass(frozen=True)
class LiveSettings:
    """How the node gets live tags and what it answers without one (node config ``live_*``)."""

    enabled: bool = True
    fallback: str = FAIL_OPEN
    sensitive_scenes: frozenset[str] = frozenset(DEFAULT_SENSITIVE_SCENES)
    timeout: float = 2.0  # the longest a decision waits for the platform
    retry_seconds: float = 5.0  # after a failure, answer "unavailable" at once for this long
    # 0: an idle node calls at once (no added wait); what arrives while a call is in flight waits for the
    # next one, so batches grow with the load. A positive window adds a fixed wait to gather more.
    batch_window: float = 0.0  # the HTTP app gathers first-seen identifiers this long …
    batch_max: int = 64  # … or this many, into one evaluation call

    def __post_init__(self) -> None:
        if self.fallback not in FALLBACKS:
            raise ValueError(f"live fallback: {self.fallback!r} is not one of {', '.join(FALLBACKS)}")
        unknown = sorted(set(self.sensitive_scenes) - set(scene_codes()))
        if unknown:
            raise ValueError(f"sensitive scenes: unknown scene(s) {', '.join(unknown)}")
        if not 0 < self.timeout <= 60:
            raise ValueError("live timeout: give 0 to 60 seconds")
        if self.retry_seconds < 0 or self.batch_window < 0 or self.batch_max < 1:
            raise ValueError("live retry, batch window and batch size must not be negative")

    @classmethod
    def from_config(cls, cfg: Mapping[str, str]) -> LiveSettings:
        """The settings kept in the node's config (``fcx node init``), defaults where absent."""
        d = cls()
        scenes = cfg.get("live_sensitive_scenes")
        return cls(
            enabled=cfg.get("live_tags", "on") != "off",
            fallback=cfg.get("live_fallback", d.fallback),
            sensitive_scenes=frozenset(json.loads(scenes)) if scenes else d.sensitive_scenes,
            timeout=float(cfg.get("live_timeout_seconds", d.timeout)),
            retry_seconds=float(cfg.get("live_retry_seconds", d.retry_seconds)),
        )

    def config_values(self) -> dict[str, str]:
        return {
            "live_tags": "on" if self.enabled else "off",
            "live_fallback": self.fallback,
            "live_sensitive_scenes": json.dumps(sorted(self.sensitive_scenes)),
            "live_timeout_seconds": repr(self.timeout),
            "live_retry_seconds": repr(self.retry_seconds),
        }

    def but(self, **changes: Any) -> LiveSettings:
        """These settings with some changed (``None`` keeps a setting as it is)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


class LiveUnavailable(Exception):
    """No live tag could be had: ``code`` (unreachable, quota_exhausted, refused, proof_refused, timeout)
    and the detail (never an identifier)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail

    def reason(self) -> dict[str, str]:
        zh, en = _REASONS.get(self.code, _REASONS["unreachable"])
        return {"code": self.code, "zh": zh, "en": f"{en}: {self.detail}" if self.detail else en}


@dataclass
class LiveStats:
    """Counts since the node started, for its status: identifiers evaluated, found among the live tags
    already held, left without a tag; evaluation calls; refused proofs; failures and the last one."""

    evaluated: int = 0
    cached: int = 0
    unavailable: int = 0
    calls: int = 0
    proof_refused: int = 0
    errors: int = 0
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class _Key:
    key_id: str
    public_key: bytes


def _current_key(oprf_keys: object) -> _Key | None:
    if not isinstance(oprf_keys, list):
        return None
    for k in oprf_keys:
        if isinstance(k, dict) and k.get("current"):
            return _Key(str(k["key_id"]), unb64(k.get("public_key"), "OPRF public key"))
    return None


@dataclass
class _Call:
    """One evaluation call under way: what was blinded, with which blinds, under which key."""

    canonicals: list[str]
    key: _Key
    inputs: list[bytes]
    blinds: list[bytes]
    blinded: list[bytes]


@dataclass
class LiveRows:
    """Live tags read from the store (another process's, or this one's after a restart)."""

    last_n: int
    rows: list[tuple[bytes, str]] = field(default_factory=list)
    reset: bool = False  # the platform's OPRF keys changed (or a first read): these rows replace all held
    active: frozenset[str] | None = None  # the platform's active OPRF key ids, when known


class LiveTags:
    """The node's live tags: ``tags`` (id HMAC → tag) held in memory, evaluated on demand, written to the
    store in the background. Thread-safe: decisions read ``tags``; :meth:`evaluate` may run in several
    threads at once."""

    def __init__(
        self,
        store: Store,
        secret: bytes,
        hmac_of: Callable[[bytes, str], bytes],
        settings: LiveSettings,
        *,
        client: PlatformClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.settings = settings
        self._secret = secret
        self._hmac = hmac_of
        cfg = store.get_config()
        self._own_client = client is None
        self.client = client or PlatformClient(cfg["platform_url"], cfg["api_key"], timeout=settings.timeout)
        self._key = _current_key(json.loads(cfg.get("oprf_keys") or "null"))
        self.tags: dict[bytes, str] = {}
        self.active_key_ids: frozenset[str] | None = None
        self.loaded_n = 0
        self.stats = LiveStats()
        self._clock = clock
        self._down_until = 0.0
        self._down: LiveUnavailable | None = None
        self._pending: list[tuple[bytes, str, str, str, float]] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = False
        self._writer: threading.Thread | None = None

    # --- following the store -----------------------------------------------------------------------

    def read_new(self, conn: Any, cfg: Mapping[str, str]) -> LiveRows:
        """The live tags written since the last read (I/O; off the serving thread). Only tags under the
        platform's active OPRF keys count: a tag under a retired key matches no entry any more."""
        active_ids = cfg.get("oprf_key_ids")
        active = frozenset(json.loads(active_ids)) if active_ids else None
        reset = active != self.active_key_ids
        after = 0 if reset else self.loaded_n
        out = LiveRows(after, reset=reset, active=active)
        for n, h, key_id, tag in conn.exec_driver_sql(
            "SELECT n, id_hmac, key_id, tag FROM node_live_tags WHERE n > ? ORDER BY n", (after,)
        ):
            out.last_n = max(out.last_n, int(n))
            if active is None or key_id in active:
                out.rows.append((bytes(h), str(tag)))
        return out

    def apply(self, rows: LiveRows) -> None:
        if rows.reset:
            self.active_key_ids = rows.active
            self.tags = dict(rows.rows)
            key, active = self._key, self.active_key_ids
            if key is not None and active is not None and key.key_id not in active:
                self._key = None  # rotated: ask the platform which key is current before evaluating
        else:
            self.tags.update(rows.rows)
        self.loaded_n = max(self.loaded_n, rows.last_n)

    # --- evaluating --------------------------------------------------------------------------------

    def _fail(self, exc: LiveUnavailable, hold: float) -> LiveUnavailable:
        self.stats.errors += 1
        self.stats.last_error = str(exc)
        self._down = exc
        self._down_until = self._clock() + hold
        return exc

    def _current(self) -> _Key:
        key = self._key
        if key is None:
            key = _current_key(self.client.keys().get("oprf"))
            if key is None:
                raise LiveUnavailable("refused", "the platform lists no current OPRF key")
            self._key = key
        return key

    def unavailable_now(self) -> LiveUnavailable | None:
        """Why no live tag can be had now (a failure less than ``retry_seconds`` ago), or None."""
        down = self._down
        if down is not None and self._clock() < self._down_until:
            return LiveUnavailable(down.code, down.detail)
        return None

    def evaluate(self, canonicals: Sequence[str]) -> dict[str, str]:
        """Tags for first-seen ``"type:normalised value"`` identifiers, asked of the platform in calls of
        up to 1,000 with one proof each; held (and queued for the store) before returning. Raises
        :class:`LiveUnavailable`; a refused proof keeps nothing of its call."""
        down = self.unavailable_now()
        if down is not None:
            raise down
        out: dict[str, str] = {}
        for start in range(0, len(canonicals), EVALUATE_MAX):
            chunk = canonicals[start : start + EVALUATE_MAX]
            try:
                call = self._begin(chunk, self._current())
                answer = self.client.evaluate(
                    [b64(e) for e in call.blinded], call.key.key_id, timeout=self.settings.timeout
                )
            except (PlatformUnavailable, PlatformRefused) as exc:
                raise self._refusal(exc) from None
            out.update(self._finish(call, answer))
        return out

    async def aevaluate(self, canonicals: Sequence[str]) -> dict[str, str]:
        """:meth:`evaluate` on the serving node's event loop (no thread hop for the platform call)."""
        down = self.unavailable_now()
        if down is not None:
            raise down
        out: dict[str, str] = {}
        for start in range(0, len(canonicals), EVALUATE_MAX):
            chunk = canonicals[start : start + EVALUATE_MAX]
            try:
                key = self._key
                if key is None:  # rare: the first call, or after a rotation
                    key = await asyncio.to_thread(self._current)
                call = self._begin(chunk, key)
                answer = await self.client.aevaluate(
                    [b64(e) for e in call.blinded], call.key.key_id, timeout=self.settings.timeout
                )
            except (PlatformUnavailable, PlatformRefused) as exc:
                raise self._refusal(exc) from None
            out.update(self._finish(call, answer))
        return out

    def _begin(self, canonicals: Sequence[str], key: _Key) -> _Call:
        inputs = [c.encode() for c in canonicals]
        blinds, blinded = oprf.blind_batch(inputs)
        self.stats.calls += 1
        return _Call(list(canonicals), key, inputs, blinds, blinded)

    def _refusal(self, exc: PlatformUnavailable | PlatformRefused) -> LiveUnavailable:
        """Why the platform gave no evaluation, held for ``retry_seconds`` (or its Retry-After)."""
        hold = self.settings.retry_seconds
        if isinstance(exc, PlatformUnavailable):
            return self._fail(LiveUnavailable("unreachable", str(exc)), hold)
        detail = str(exc.problem.get("detail") or exc.problem.get("title") or exc)
        if exc.status == 429:
            wait = exc.retry_after if exc.retry_after is not None else hold
            return self._fail(LiveUnavailable("quota_exhausted", detail), min(wait, 3600.0))
        if exc.status == 422 and "key_id" in json.dumps(exc.problem):
            self._key = None  # our key was retired: learn the current one next time
        return self._fail(LiveUnavailable("refused", f"{exc.status} {detail}"), hold)

    def _finish(self, call: _Call, answer: Mapping[str, Any]) -> dict[str, str]:
        """Verify the batch proof, then hold the tags (and queue them for the store)."""
        key, blinded = call.key, call.blinded
        try:
            if answer.get("key_id") != key.key_id:
                raise oprf.ProofError(f"answered with key {answer.get('key_id')!r}, asked for {key.key_id!r}")
            evaluated = [unb64(e, f"evaluated[{i}]") for i, e in enumerate(answer.get("evaluated") or [])]
            if len(evaluated) != len(blinded):
                raise oprf.ProofError(f"{len(evaluated)} evaluations answered for {len(blinded)} elements")
            outputs = oprf.finalize_batch(
                call.inputs, call.blinds, evaluated, proof=unb64(answer.get("proof"), "proof"),
                pk=key.public_key, blinded=blinded,
            )  # fmt: skip
        except (oprf.OPRFError, ValueError) as exc:
            self.stats.proof_refused += 1
            log.error("refused a live evaluation of %d identifier(s) under key %s: %s; nothing of it kept",
                      len(call.inputs), key.key_id, exc)  # fmt: skip
            raise self._fail(
                LiveUnavailable("proof_refused", f"key {key.key_id}: {exc}"), self.settings.retry_seconds
            ) from None
        self._down = None
        at = now()
        tags: dict[str, str] = {}
        rows = []
        for canonical, output in zip(call.canonicals, outputs, strict=True):
            tag = oprf.tag(key.key_id, output)
            h = self._hmac(self._secret, canonical)
            self.tags[h] = tag
            tags[canonical] = tag
            rows.append((h, key.key_id, canonical.partition(":")[0], tag, at))
        self.stats.evaluated += len(rows)
        self._persist(rows)
        return tags

    # --- writing to the store, in the background ------------------------------------------------------

    def _persist(self, rows: list[tuple[bytes, str, str, str, float]]) -> None:
        with self._lock:
            self._pending.extend(rows)
            if self._writer is None and not self._closing:
                self._writer = threading.Thread(target=self._write_loop, name="fcx-live-tags", daemon=True)
                self._writer.start()
            full = len(self._pending) >= WRITE_BATCH
        if full:
            self._wake.set()

    def _write_loop(self) -> None:
        # Every WRITE_SECONDS, or at once when WRITE_BATCH tags wait: not one store transaction (and one
        # thread switch away from the serving loop) per evaluation call.
        while not self._closing:
            self._wake.wait(WRITE_SECONDS)
            self._wake.clear()
            try:
                self.flush()
            except Exception:
                log.exception("writing live tags failed; they stay queued")

    def flush(self) -> int:
        """Write the queued live tags (a repeat of one already written is ignored)."""
        with self._write_lock:
            with self._lock:
                rows, self._pending = self._pending, []
            if not rows:
                return 0
            try:
                with self.store.transaction() as conn:
                    conn.exec_driver_sql(
                        "INSERT OR IGNORE INTO node_live_tags(id_hmac, key_id, id_type, tag, created_at) "
                        "VALUES (?, ?, ?, ?, ?)",
                        rows,
                    )
            except Exception:
                with self._lock:
                    self._pending[:0] = rows
                raise
            return len(rows)

    def close(self) -> None:
        self._closing = True
        self._wake.set()
        if self._writer is not None:
            self._writer.join(5)
        with contextlib.suppress(Exception):
            self.flush()
        if self._own_client:
            self.client.close()


@dataclass
class LiveResult:
    """What one request's evaluation gave: tags by canonical identifier, or why there are none."""

    tags: dict[str, str]
    error: LiveUnavailable | None = None


class LiveBatcher:
    """The HTTP app's first-seen identifiers, gathered across concurrent requests: whatever arrives
    within ``batch_window`` (or ``batch_max`` identifiers) goes to the platform in ONE evaluation call,
    in a worker thread; each request gets its own tags, or the failure, within ``timeout``. At most
    :data:`IN_FLIGHT` calls at once: while they run, what arrives waits for the next call, so that a
    slow platform gets fewer, larger batches rather than a queue of small ones."""

    def __init__(self, live: LiveTags) -> None:
        self.live = live
        self.settings = live.settings
        self._waiting: list[asyncio.Future[dict[str, str]]] = []
        self._canonicals: dict[str, None] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Future[dict[str, str]]] = set()
        self.calls = 0
        self._due = False  # the window has passed (or the batch is full): fire when a call is free

    async def tags(self, canonicals: Sequence[str]) -> LiveResult:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[dict[str, str]] = loop.create_future()
        self._waiting.append(future)
        self._canonicals.update(dict.fromkeys(canonicals))
        if len(self._canonicals) >= self.settings.batch_max:
            self._fire()
        elif self._timer is None and not self._due:
            self._timer = loop.call_later(self.settings.batch_window, self._fire)
        try:
            got = await asyncio.wait_for(asyncio.shield(future), self.settings.timeout)
        except TimeoutError:
            # the call goes on in its thread (its tags are kept when it answers); nobody awaits it here
            future.add_done_callback(lambda f: f.cancelled() or f.exception())
            self.live.stats.errors += 1
            return LiveResult({}, LiveUnavailable("timeout", f"no answer within {self.settings.timeout:g} s"))
        except LiveUnavailable as exc:
            return LiveResult({}, exc)
        return LiveResult(got)

    def _fire(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if len(self._tasks) >= IN_FLIGHT:
            self._due = True  # the next call goes when one of those in flight answers
            return
        self._due = False
        waiting, self._waiting = self._waiting, []
        canonicals, self._canonicals = list(self._canonicals), {}
        if not waiting:
            return
        self.calls += 1
        task = asyncio.ensure_future(self.live.aevaluate(canonicals))
        self._tasks.add(task)

        def distribute(done: asyncio.Future[dict[str, str]]) -> None:
            self._tasks.discard(done)
            if self._due:
                self._fire()
            exc = done.exception() if not done.cancelled() else LiveUnavailable("timeout", "cancelled")
            for f in waiting:
                if f.done():
                    continue
                if exc is None:
                    f.set_result(done.result())
                elif isinstance(exc, LiveUnavailable):
                    f.set_exception(exc)
                else:
                    log.error("live evaluation failed: %s", exc)
                    f.set_exception(LiveUnavailable("unreachable", f"evaluation failed: {exc}"))

        task.add_done_callback(distribute)

    async def close(self) -> None:
        for task in list(self._tasks):
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):
            await self.live.client.aclose()
