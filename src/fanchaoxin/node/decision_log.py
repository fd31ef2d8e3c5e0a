"""The node's decision log (决策日志): every decision the node answers, kept and relayed to the platform.

A decision costs the node microseconds, so recording one must cost far less: :meth:`DecisionLog.add`
appends one tuple to an in-memory queue (no I/O, no id, no JSON). :meth:`DecisionLog.flush` writes what
has queued up to the store in one transaction — ``fcx node serve`` every ``flush_seconds``, the
in-process SDK every second (with its refresh check), at :data:`FLUSH_AT` queued records, and on
:meth:`~fanchaoxin.node.sdk.Node.close`. Only then are the identifiers reduced to what may be kept: the
node's **tags** (the keys of its index; never a plain value). An identifier the node holds no tag for (not
enrolled) is kept as a count only (``absent``). A flush writes ONE row of ``node_decision_log_chunks`` per
up to :data:`~fanchaoxin.node.store.CHUNK_MAX` records, encoded column by column
(:func:`~fanchaoxin.node.store.encode_chunk`), not a row per record: a row per record cost more than the
decision itself. Each record still has its own number: a chunk takes the next ``count`` consecutive
numbers (``decision_log_next_seq`` in the config, never reused), and a record's id is the store's random
UUID-shaped prefix and its number, so ids are unique across nodes without a uuid4 per decision.

:func:`relay` (run by the sync loop and ``fcx node sync``) sends unsent records in batches of
:data:`BATCH` to the platform's ``POST /v1/decision-log/node``, which stores them with ``channel="node"``
once each (the node's record id is unique there: a batch re-sent after a lost answer is not counted
twice). Records go oldest first, so "unsent" is every record numbered above a watermark
(``decision_log_sent_upto`` in the config); a batch takes records from as many chunks as it needs, or part
of one. Each batch handed over is one row of ``node_decision_log_batches`` (its record numbers), and its
records are deleted :data:`KEEP_SENT_SECONDS` after it was sent (a chunk partly deleted is rewritten with
the records it keeps).

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
from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import repeat
from operator import itemgetter
from typing import Any

from sqlalchemy.engine import Connection

from fanchaoxin.core.identifiers import IdentifierType
from fanchaoxin.node.client import PlatformClient, PlatformRefused, PlatformUnavailable
from fanchaoxin.node.store import (
    CHUNK_MAX,
    RS,
    SEP,
    LogRow,
    Store,
    count_after,
    decode_chunk,
    encode_chunk,
    encode_rows,
    now,
)

log = logging.getLogger("fanchaoxin.node.decision_log")

BATCH = 1_000
# Queued records that make the SDK write at once, not at its next refresh check. Small: records kept alive
# in memory slow the deciding thread itself (the allocator, the collector; measured: 10,000 cost it ~15%
# of its rate, 2,000 next to nothing), and a flush costs little more than its records.
FLUSH_AT = 2_000
KEEP_SENT_SECONDS = 3 * 86_400
MAX_UNSENT = 5_000_000
MAX_UNSENT_ENV = "FCX_NODE_DECISION_LOG_MAX_UNSENT"
PURPOSE_MAX = 200  # sharing.protocol.DecisionRequest.purpose
# A batch the platform refuses for its content would be refused again: kept as refused, not retried.
_REFUSED_FOR_CONTENT = frozenset({400, 413, 422})

_IDENTIFIER_TYPES = frozenset(t.value for t in IdentifierType)
# An index key that starts with an identifier type and a colon is a plain ``type:value``: never stored.
_PLAIN = tuple(sorted(f"{t}:" for t in _IDENTIFIER_TYPES))
_FIRST, _REST = itemgetter(slice(0, 1)), itemgetter(slice(1, None))

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


def _reduce(keys: Sequence[list[str]], kids: set[str]) -> tuple[list[str], list[int]]:
    """The records' tags (joined by SEP) and how many identifiers each was asked about, from their index
    keys: each identifier gives its plain ``type:value`` key first, then its tags (sdk.keys_for).

    Usually one identifier a record, so a record's tags are its keys but the first. That is checked for
    the whole chunk at once by counting in C, not key by key: every colon after the first keys must open a
    tag of a key id seen before (``kids``: a plain key's colon follows its type, never a key id), and no
    first key may be such a tag. Otherwise (several identifiers, a new key id) key by key, learning the
    key ids."""
    heads = list(map(SEP.join, map(_FIRST, keys)))
    tails = list(map(SEP.join, map(_REST, keys)))
    text = RS + RS.join(tails)
    first = RS + RS.join(heads)
    opened = sum(text.count(f"{sep}{kid}:") for kid in kids for sep in (RS, SEP))
    if text.count(":") == opened and not any(f"{RS}{kid}:" in first for kid in kids):
        return tails, list(map(bool, heads))  # bool is an int
    tags, identifiers = [], []
    for ks in keys:
        kept = [k for k in ks if not k.startswith(_PLAIN)]
        kids.update(k.partition(":")[0] for k in kept)
        tags.append(SEP.join(kept))
        identifiers.append(len(ks) - len(kept))
    return tags, identifiers


def _pack(items: Sequence[Queued], kids: set[str]) -> bytes:
    """A chunk's body from queued decisions: the plain keys dropped here (tags and counts kept)."""
    at, purpose, scene, verdict, entry_ids, feed_seq, keys, absent = zip(*items, strict=True)
    tags, identifiers = _reduce(keys, kids)
    joined = list(map(SEP.join, entry_ids))
    return encode_chunk(at, purpose, scene, verdict, joined, feed_seq, tags, identifiers, absent)


class DecisionLog:
    """The queue of decisions not yet in the store, and the writer that moves them there.

    Thread-safe: ``deque.append`` and ``deque.popleft`` are atomic, so deciding threads never wait for a
    flush and a flush never loses a record appended while it runs; one flush at a time (a lock)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.queue: deque[Queued] = deque()
        self._lock = threading.Lock()
        self._kids: set[str] = set()  # the key ids of the tags seen (_reduce)
        self.add = self.queue.append  # the decision path's one call

    def __len__(self) -> int:
        return len(self.queue)

    def flush(self, *, blocking: bool = True) -> int:
        """Write every queued decision to the store in one transaction (a chunk per CHUNK_MAX records);
        returns how many. Not ``blocking``: 0 at once when another thread is flushing."""
        if not self._lock.acquire(blocking=blocking):
            return 0
        try:
            queue = self.queue
            n = len(queue)
            if not n:
                return 0
            popleft = queue.popleft
            items = [popleft() for _ in repeat(None, n)]
            try:
                bodies = [_pack(items[i : i + CHUNK_MAX], self._kids) for i in range(0, n, CHUNK_MAX)]
                created = now()
                with self.store.transaction() as conn:
                    # the DB-API cursor: a flush is a few statements, and SQLAlchemy's own cost per
                    # statement would be a good part of it
                    cursor = conn.connection.cursor()
                    try:
                        seq = _next_seq(cursor)
                        rows = []
                        for i, body in zip(range(0, n, CHUNK_MAX), bodies, strict=True):
                            count = min(CHUNK_MAX, n - i)
                            rows.append((seq, count, created, body))
                            seq += count
                        cursor.executemany(
                            "INSERT INTO node_decision_log_chunks(first_seq, count, created_at, body) "
                            "VALUES (?, ?, ?, ?)",
                            rows,
                        )
                        cursor.execute(
                            "INSERT INTO node_config(name, value) VALUES ('decision_log_next_seq', ?) "
                            "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                            (str(seq),),
                        )
                    finally:
                        cursor.close()
            except Exception:
                queue.extendleft(reversed(items))  # kept for the next flush, in order
                raise
            return n
        finally:
            self._lock.release()


def _next_seq(cursor: Any) -> int:
    """The number the next record takes (a DB-API cursor inside the writing transaction)."""
    cursor.execute("SELECT value FROM node_config WHERE name = 'decision_log_next_seq'")
    row = cursor.fetchone()
    return int(row[0]) if row else 1


# --- reading and deleting records ---------------------------------------------------------------------------


class _Chunks:
    """Reads records by number from the chunks, keeping the last chunk decoded (a batch of 1,000 takes
    a tenth of a full chunk: decoded once, not ten times)."""

    def __init__(self) -> None:
        self.key: tuple[int, int] | None = None
        self.rows: list[LogRow] = []

    def decode(self, first: int, count: int, body: bytes) -> list[LogRow]:
        if self.key != (first, count):
            self.key, self.rows = (first, count), decode_chunk(first, body)
        return self.rows

    def after(self, conn: Connection, after: int, limit: int) -> list[LogRow]:
        """Up to ``limit`` records numbered above ``after``, oldest first."""
        out: list[LogRow] = []
        result = conn.exec_driver_sql(
            "SELECT first_seq, count, body FROM node_decision_log_chunks "
            "WHERE first_seq > ? AND first_seq + count - 1 > ? ORDER BY first_seq",
            (after - CHUNK_MAX, after),
        )
        for first, count, body in result:
            rows = self.decode(first, count, body)
            skip = max(0, after - first + 1)
            out.extend(rows[skip : skip + limit - len(out)])
            if len(out) >= limit:
                break
        result.close()
        return out


def read_records(store: Store, *, after: int = 0, limit: int = CHUNK_MAX) -> list[LogRow]:
    """The stored records numbered above ``after``, oldest first (tests, tools)."""
    with store.read() as conn:
        return _Chunks().after(conn, after, limit)


def _delete_range(conn: Connection, lo: int, hi: int) -> int:
    """Delete the records numbered ``lo`` … ``hi``; returns how many there were. Chunks wholly inside go
    at once; one straddling an end is rewritten with the records it keeps (two chunks when the range is
    inside it, so that each still holds consecutive numbers)."""
    if hi < lo:
        return 0
    straddling = conn.exec_driver_sql(
        "SELECT first_seq, count, created_at, body FROM node_decision_log_chunks "
        "WHERE first_seq > ? AND first_seq <= ? AND first_seq + count - 1 >= ? "
        "AND (first_seq < ? OR first_seq + count - 1 > ?)",
        (lo - CHUNK_MAX, hi, lo, lo, hi),
    ).all()
    inside = (
        "FROM node_decision_log_chunks WHERE first_seq >= ? AND first_seq + count - 1 <= ? AND first_seq <= ?"
    )
    deleted = int(conn.exec_driver_sql(f"SELECT coalesce(sum(count), 0) {inside}", (lo, hi, hi)).scalar_one())
    conn.exec_driver_sql(f"DELETE {inside}", (lo, hi, hi))
    for first, count, created, body in straddling:
        rows = decode_chunk(first, body)
        parts = [[r for r in rows if r[0] < lo], [r for r in rows if r[0] > hi]]
        deleted += count - len(parts[0]) - len(parts[1])
        conn.exec_driver_sql("DELETE FROM node_decision_log_chunks WHERE first_seq = ?", (first,))
        conn.exec_driver_sql(
            "INSERT INTO node_decision_log_chunks(first_seq, count, created_at, body) VALUES (?, ?, ?, ?)",
            [(part[0][0], len(part), created, encode_rows(part)) for part in parts if part],
        )
    return deleted


# --- relay to the platform ------------------------------------------------------------------------------


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
    """UUID-shaped: the prefix's 8-4-4-4 groups and the record number as the last 12 hex digits."""
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
        return count_after(conn, _sent_upto(store, conn))


def enforce_bound(store: Store, limit: int | None = None) -> int:
    """Delete the oldest unsent records beyond ``limit``; returns how many (also added to the config's
    ``decision_log_dropped``, which the next batch reports to the platform)."""
    limit = max_unsent() if limit is None else limit
    with store.transaction() as conn:
        upto = _sent_upto(store, conn)
        waiting = count_after(conn, upto)
        excess = waiting - limit
        if excess <= 0:
            return 0
        # The oldest ``excess`` unsent records end at this record number.
        need, last = excess, upto
        for first, count in conn.exec_driver_sql(
            "SELECT first_seq, count FROM node_decision_log_chunks "
            "WHERE first_seq > ? AND first_seq + count - 1 > ? ORDER BY first_seq",
            (upto - CHUNK_MAX, upto),
        ).all():
            start = max(first, upto + 1)
            if need <= first + count - start:
                last = start + need - 1
                break
            need -= first + count - start
        _delete_range(conn, upto + 1, last)
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
        ranges: list[list[int]] = []
        for first, last in conn.exec_driver_sql(
            "SELECT first_n, last_n FROM node_decision_log_batches WHERE sent_at < ? ORDER BY first_n",
            (cutoff,),
        ):
            if ranges and first <= ranges[-1][1] + 1:  # consecutive batches: one range, one pass
                ranges[-1][1] = max(ranges[-1][1], last)
            else:
                ranges.append([first, last])
        for first, last in ranges:
            deleted += _delete_range(conn, first, last)
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
    chunks = _Chunks()
    sent = refused = 0
    while True:
        with store.read() as conn:
            upto = _sent_upto(store, conn)
            rows = chunks.after(conn, upto, batch)
            reported = int(store.get_config(conn).get("decision_log_dropped", "0"))
        if not rows and not reported:
            break
        body: dict[str, Any] = {"records": [_wire(prefix, r) for r in rows]}
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
    rows: list[LogRow] = []
    with store.read() as conn:
        result = conn.exec_driver_sql(
            "SELECT first_seq, body FROM node_decision_log_chunks ORDER BY first_seq DESC"
        )
        for first, body in result:
            if len(rows) >= limit:
                break
            rows.extend(reversed(decode_chunk(first, body)))
        result.close()
        batches = conn.exec_driver_sql(
            "SELECT first_n, last_n, sent_at, status FROM node_decision_log_batches"
        ).all()
    out = []
    for r in rows[:limit]:
        n = r[0]
        handed = next((b for b in batches if b[0] <= n <= b[1]), None)
        out.append(
            {
                **_wire(prefix, r),
                "sent_at": handed[2] if handed else None,
                "refused": bool(handed and handed[3] == "refused"),
            }
        )
    return out
