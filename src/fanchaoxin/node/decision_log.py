"""The node's decision log (决策日志): every decision the node answers, kept and relayed to the platform.

A decision costs the node microseconds, so recording one must cost far less: :meth:`DecisionLog.add`
appends one tuple to an in-memory queue (no I/O, no id, no JSON). :meth:`DecisionLog.flush` writes what
has queued up to the store's ``node_decision_log`` table in one transaction — ``fcx node serve`` every
``flush_seconds``, the in-process SDK every second (with its refresh check), at 10,000 queued records, and
on :meth:`~fanchaoxin.node.sdk.Node.close`. Only then are the identifiers reduced to what may be kept:
the node's **tags** (the keys of its index; never a plain value). An identifier the node holds no tag for
(not enrolled) is kept as a count only (``absent``). The table is append-only with no index but its
row number, so a record costs one insert; a record's id is the store's random UUID-shaped prefix and
that number (never reused: AUTOINCREMENT), so ids are unique across nodes without a uuid4 per decision.

:func:`relay` (run by the sync loop and ``fcx node sync``) sends unsent records in batches of
:data:`BATCH` to the platform's ``POST /v1/decision-log/node``, which stores them with ``channel="node"``
once each (the node's record id is unique there: a batch re-sent after a lost answer is not counted
twice). Records go oldest first, so "unsent" is everything after a watermark (``decision_log_sent_upto``
in the config); each batch handed over is one row of ``node_decision_log_batches``, and its records are
deleted :data:`KEEP_SENT_SECONDS` after it was sent.

While the platform is unreachable, records accumulate in the store, up to ``max_unsent`` (default
:data:`MAX_UNSENT`, ``FCX_NODE_DECISION_LOG_MAX_UNSENT``; about 200 bytes each, so 5,000,000 ≈ 1 GB).
Beyond it the oldest unsent records are deleted, the number deleted is logged as an error and kept in the
store's config, and the next batch tells the platform (which records a ``decision_log.node_dropped`` audit
event): a loss of records is itself on the record.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection

from fanchaoxin.core.identifiers import IdentifierType
from fanchaoxin.node.client import PlatformClient, PlatformRefused, PlatformUnavailable
from fanchaoxin.node.store import SEP, Store, now

log = logging.getLogger("fanchaoxin.node.decision_log")

BATCH = 1_000
FLUSH_AT = 10_000  # queued records that make the SDK write at once, not at its next refresh check
KEEP_SENT_SECONDS = 3 * 86_400
MAX_UNSENT = 5_000_000
MAX_UNSENT_ENV = "FCX_NODE_DECISION_LOG_MAX_UNSENT"
PURPOSE_MAX = 200  # sharing.protocol.DecisionRequest.purpose
# A batch the platform refuses for its content would be refused again: kept as refused, not retried.
_REFUSED_FOR_CONTENT = frozenset({400, 413, 422})

_IDENTIFIER_TYPES = frozenset(t.value for t in IdentifierType)

# One queued decision: (at, purpose, scene, verdict, entry ids, feed seq, index keys, identifiers absent).
# The index keys hold the identifiers' plain ``type:value`` too: they never leave memory (flush keeps tags).
Queued = tuple[float, str | None, str, str, list[str], int, list[str], int]


def is_tag(key: str) -> bool:
    """A tag is ``key id:43 base64url characters``; an identifier's index key is ``type:value``."""
    kid, _, body = key.partition(":")
    return len(body) == 43 and kid not in _IDENTIFIER_TYPES


def check_purpose(purpose: str | None) -> str | None:
    """The purpose as the platform's DecisionRequest takes it: absent, or 1 to 200 characters."""
    if purpose is None:
        return None
    if not isinstance(purpose, str):
        raise ValueError("purpose: expected text")
    text = purpose.strip()
    if not text or len(text) > PURPOSE_MAX:
        raise ValueError(f"purpose: say why you check, in 1 to {PURPOSE_MAX} characters")
    return text


class DecisionLog:
    """The queue of decisions not yet in the store, and the writer that moves them there.

    Thread-safe: ``deque.append`` and ``deque.popleft`` are atomic, so deciding threads never wait for a
    flush and a flush never loses a record appended while it runs; one flush at a time (a lock)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.queue: deque[Queued] = deque()
        self._lock = threading.Lock()
        self.add = self.queue.append  # the decision path's one call

    def __len__(self) -> int:
        return len(self.queue)

    def flush(self, *, blocking: bool = True) -> int:
        """Write every queued decision to the store in one transaction; returns how many. Not
        ``blocking``: 0 at once when another thread is flushing."""
        if not self._lock.acquire(blocking=blocking):
            return 0
        try:
            queue = self.queue
            n = len(queue)
            if not n:
                return 0
            items = [queue.popleft() for _ in range(n)]
            join = SEP.join
            rows = []
            for at, purpose, scene, verdict, entry_ids, seq, keys, absent in items:
                tags = [k for k in keys if is_tag(k)]  # the plain ``type:value`` keys are dropped here
                # each identifier gives exactly one ``type:value`` key; the rest are its tags
                identifiers = len(keys) - len(tags)
                rows.append(
                    (at, purpose, scene, verdict, join(entry_ids), seq, join(tags), identifiers, absent)
                )
            try:
                with self.store.transaction() as conn:
                    conn.exec_driver_sql(
                        "INSERT INTO node_decision_log"
                        "(at, purpose, scene, verdict, entry_ids, feed_seq, tags, identifiers, absent) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        rows,
                    )
            except Exception:
                queue.extendleft(reversed(items))  # kept for the next flush, in order
                raise
            return n
        finally:
            self._lock.release()


# --- relay to the platform ------------------------------------------------------------------------------

_COLUMNS = "n, at, purpose, scene, verdict, entry_ids, feed_seq, tags, identifiers, absent"


def record_prefix(store: Store) -> str:
    """The store's record-id prefix: the first 24 characters of a UUID, made on first use."""
    prefix = store.get_config().get("decision_log_prefix")
    if prefix:
        return prefix
    with store.transaction() as conn:
        prefix = store.get_config(conn).get("decision_log_prefix") or str(uuid.uuid4())[:24]
        store.set_config(conn, decision_log_prefix=prefix)
    return prefix


def record_id(prefix: str, n: int) -> str:
    """UUID-shaped: the prefix's 8-4-4-4 groups and the row number as the last 12 hex digits."""
    return f"{prefix}{n:012x}"


def _wire(prefix: str, row: tuple[Any, ...]) -> dict[str, Any]:
    n, at, purpose, scene, verdict, entry_ids, feed_seq, tags, identifiers, absent = row
    return {
        "id": record_id(prefix, n),
        "at": datetime.fromtimestamp(at, UTC).isoformat(),
        "purpose": purpose,
        "scene": scene,
        "verdict": verdict,
        "entry_ids": entry_ids.split(SEP) if entry_ids else [],
        "feed_seq": feed_seq,
        "tags": tags.split(SEP) if tags else [],
        "identifiers": identifiers,
        "absent": absent,
    }


def _sent_upto(store: Store, conn: Connection) -> int:
    return int(store.get_config(conn).get("decision_log_sent_upto", "0"))


def max_unsent() -> int:
    return int(os.environ.get(MAX_UNSENT_ENV) or MAX_UNSENT)


def unsent(store: Store) -> int:
    with store.read() as conn:
        return int(
            conn.exec_driver_sql(
                "SELECT count(*) FROM node_decision_log WHERE n > ?", (_sent_upto(store, conn),)
            ).scalar_one()
        )


def enforce_bound(store: Store, limit: int | None = None) -> int:
    """Delete the oldest unsent records beyond ``limit``; returns how many (also added to the config's
    ``decision_log_dropped``, which the next batch reports to the platform)."""
    limit = max_unsent() if limit is None else limit
    with store.transaction() as conn:
        upto = _sent_upto(store, conn)
        waiting = int(
            conn.exec_driver_sql("SELECT count(*) FROM node_decision_log WHERE n > ?", (upto,)).scalar_one()
        )
        excess = waiting - limit
        if excess <= 0:
            return 0
        # Unsent rows are consecutive after the watermark: the oldest ``excess`` end at this row number.
        last = conn.exec_driver_sql(
            "SELECT n FROM node_decision_log WHERE n > ? ORDER BY n LIMIT 1 OFFSET ?", (upto, excess - 1)
        ).scalar_one()
        conn.exec_driver_sql("DELETE FROM node_decision_log WHERE n > ? AND n <= ?", (upto, last))
        dropped = int(store.get_config(conn).get("decision_log_dropped", "0")) + excess
        store.set_config(conn, decision_log_dropped=str(dropped), decision_log_sent_upto=str(last))
    log.error(
        "decision log: %s unsent records over the limit of %s (platform unreachable too long?): the oldest "
        "%s deleted; the platform will be told how many",
        waiting, limit, excess,
    )  # fmt: skip
    return excess


def prune(store: Store, at: float | None = None) -> int:
    """Delete the records of batches sent more than KEEP_SENT_SECONDS ago; returns how many."""
    cutoff = (now() if at is None else at) - KEEP_SENT_SECONDS
    deleted = 0
    with store.transaction() as conn:
        batches = conn.exec_driver_sql(
            "SELECT first_n, last_n FROM node_decision_log_batches WHERE sent_at < ?", (cutoff,)
        ).all()
        for first, last in batches:
            result = conn.exec_driver_sql(
                "DELETE FROM node_decision_log WHERE n >= ? AND n <= ?", (first, last)
            )
            deleted += int(result.rowcount or 0)
        conn.exec_driver_sql("DELETE FROM node_decision_log_batches WHERE sent_at < ?", (cutoff,))
    return deleted


def relay(
    store: Store, client: PlatformClient, *, batch: int = BATCH, limit: int | None = None
) -> dict[str, int]:
    """Send the unsent records, oldest first, ``batch`` at a time; stop at the first batch the platform
    cannot take now (kept for the next run). Then prune. Returns counts: sent, refused, dropped, pruned,
    unsent (left)."""
    dropped = enforce_bound(store, limit)
    prefix = record_prefix(store)
    sent = refused = 0
    while True:
        with store.read() as conn:
            upto = _sent_upto(store, conn)
            rows = conn.exec_driver_sql(
                f"SELECT {_COLUMNS} FROM node_decision_log WHERE n > ? ORDER BY n LIMIT ?", (upto, batch)
            ).all()
            reported = int(store.get_config(conn).get("decision_log_dropped", "0"))
        if not rows and not reported:
            break
        body: dict[str, Any] = {"records": [_wire(prefix, tuple(r)) for r in rows]}
        if reported:
            body["dropped"] = reported
        status, error = "sent", None
        try:
            client.decision_log(body)
        except PlatformUnavailable as exc:
            log.warning("decision log: platform unavailable (%s): %s records kept for later", exc, len(rows))
            break
        except PlatformRefused as exc:
            if exc.status not in _REFUSED_FOR_CONTENT:  # 401/403/404/429: the platform may take it later
                log.warning("decision log: platform answered %s: records kept for later", exc.status)
                break
            log.error("decision log: the platform refused a batch of %s records: %s", len(rows), exc)
            status, error = "refused", str(exc)[:2000]
        with store.transaction() as conn:
            values: dict[str, object] = {}
            if rows:
                first, last = rows[0][0], rows[-1][0]
                conn.exec_driver_sql(
                    "INSERT OR REPLACE INTO node_decision_log_batches"
                    "(first_n, last_n, sent_at, status, error) VALUES (?, ?, ?, ?, ?)",
                    (first, last, now(), status, error),
                )
                values["decision_log_sent_upto"] = str(last)
            if reported and status == "sent":
                left = int(store.get_config(conn).get("decision_log_dropped", "0")) - reported
                values["decision_log_dropped"] = str(max(0, left))
            if values:
                store.set_config(conn, **values)
        if status == "refused":
            refused += len(rows)
        else:
            sent += len(rows)
        if len(rows) < batch:
            break
    pruned = prune(store)
    return {"sent": sent, "refused": refused, "dropped": dropped, "pruned": pruned, "unsent": unsent(store)}


def listing(store: Store, *, limit: int = 100) -> list[dict[str, Any]]:
    """The newest records, newest first (``GET /v1/decision-log`` on the node, tests): what the node keeps,
    nothing more, with whether each was handed to the platform (``sent_at``) or refused."""
    prefix = record_prefix(store)
    with store.read() as conn:
        rows = conn.exec_driver_sql(
            f"SELECT {_COLUMNS} FROM node_decision_log ORDER BY n DESC LIMIT ?", (limit,)
        ).all()
        batches = conn.exec_driver_sql(
            "SELECT first_n, last_n, sent_at, status FROM node_decision_log_batches"
        ).all()
    out = []
    for r in rows:
        n = r[0]
        handed = next((b for b in batches if b[0] <= n <= b[1]), None)
        out.append(
            {
                **_wire(prefix, tuple(r)),
                "sent_at": handed[2] if handed else None,
                "refused": bool(handed and handed[3] == "refused"),
            }
        )
    return out
