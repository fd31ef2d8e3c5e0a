"""The enterprise node's own SQLite store (its own metadata: nothing here touches the platform's schema).

What it keeps
-------------
* ``node_config``: name → value: the platform URL and API key, the crypto profile learnt from the
  platform's manifest at ``fcx node init`` (``crypto_profile``: everything is verified under it, never under
  ``FCX_CRYPTO_PROFILE``, which is the platform's setting), the pinned feed-signing public key (Ed25519 or
  SM2) and its fingerprint, the OPRF public keys last fetched, the node secret (keys the identifier HMAC), the
  feed head, the snapshot sequence number, a generation number bumped by every snapshot, the time of the
  last verified sync.
* ``node_entries``: entry id → the shared record (JSON, tags only for persons), the sequence number of the
  event that last touched it, and whether it is in force (revoked entries stay as tombstones so that an
  in-memory index can follow the store by sequence number).
* ``node_users``: enrolled users: ``user_ref`` (the enterprise's own user id), ``id_hmac`` =
  HMAC(node secret, ``"type:normalised value"``) under ``id_hmac_profile`` (HMAC-SHA256 or HMAC-SM3: fixed
  when the store is made, since the HMACs cannot be recomputed without the plain identifiers), the OPRF key
  id and the tag. Never a plain personal identifier.
* ``node_live_tags``: tags of first-seen identifiers evaluated live in a decision's request
  (:mod:`.live`): ``id_hmac``, key id, identifier type, tag; never a plain identifier, never a user.
* ``node_entry_requests``: entry id → the platform's request id of its last change applied from a delta
  (#23: a decision matching the entry logs it).
* ``node_outbox``: instruction acknowledgements and feedback waiting for the platform.
* ``node_webhook_events``: webhook event ids already accepted (replay refusal).
* ``node_log_pending``: applied feed events not yet covered by the transparency log's checkpoint (their
  leaf hashes, :mod:`.logcheck`); the last checkpoint accepted is in ``node_config`` (``log_*``).
* ``node_decision_log_chunks``: the decisions this node answered (:mod:`.decision_log`), one row per
  chunk of up to :data:`CHUNK_MAX` records written together (records ``first_seq`` … ``first_seq + count -
  1``): time, purpose, scene, verdict, entry ids, feed position and the identifiers' tags (never a plain
  value), until relayed to the platform and a few days after; ``node_decision_log_batches``: the batches
  relayed (record ranges). A store from before the chunks has its ``node_decision_log`` rows moved into
  chunks when opened (same record numbers, so the same record ids).

Writes go through :meth:`Store.transaction`, which opens ``BEGIN IMMEDIATE``: one writer at a time, and
everything inside commits or nothing does (a process killed inside leaves the store as before).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import struct
import sys
import time
from array import array
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.schema import CreateIndex, CreateTable

from fanchaoxin.core import crypto

metadata = MetaData()

config = Table(
    "node_config",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

entries = Table(
    "node_entries",
    metadata,
    Column("entry_id", String(64), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("in_force", Integer, nullable=False),
    # what the in-memory index needs, pre-extracted so that a million entries load without parsing JSON
    Column("keys", Text, nullable=False),  # index keys joined by SEP
    Column("subject_kind", String(32), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("behaviours", Text, nullable=False),  # joined by SEP
    Column("status", String(16), nullable=False),
    Column("max_end_on", String(10)),
    Column("liable_role", String(32)),
    Column("measures", Text, nullable=False),  # canonical JSON: entries with the same measures share work
    Column("record", Text, nullable=False),  # the shared record as received
    Index("ux_node_entries_entry", "entry_id", unique=True),
    Index("ix_node_entries_seq", "seq"),
)

users = Table(
    "node_users",
    metadata,
    Column("id_hmac", LargeBinary(32), primary_key=True),
    Column("key_id", String(32), primary_key=True),
    Column("user_ref", String(200), nullable=False),
    Column("id_type", String(32), nullable=False),
    Column("tag", String(80), nullable=False),
    Column("enrolled_at", Float, nullable=False),
    Index("ix_node_users_ref", "user_ref"),
    # re-screening joins a delta's tags to the enrolled users (node.hits): probes, never a scan
    Index("ix_node_users_tag", "tag"),
    sqlite_with_rowid=False,
)

outbox = Table(
    "node_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("instruction_id", String(64), nullable=False),
    Column("action", String(16), nullable=False),  # ack | feedback
    Column("body", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_at", Float, nullable=False),
    Column("last_error", Text),
    Column("sent_at", Float),
    Column("status", String(16), nullable=False),  # queued | sent | refused
)

webhook_events = Table(
    "node_webhook_events",
    metadata,
    Column("event_id", String(200), primary_key=True),
    Column("received_at", Float, nullable=False),
)

decision_log_chunks = Table(
    "node_decision_log_chunks",
    metadata,
    # A chunk holds the records first_seq .. first_seq + count - 1 (consecutive record numbers, never
    # reused: decision_log_next_seq in the config); the row number is first_seq, so ranges of record
    # numbers are ranges of rows. One row per flush: a record costs a few bytes of one insert.
    Column("first_seq", Integer, primary_key=True, autoincrement=False),
    Column("count", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("body", LargeBinary, nullable=False),  # encode_chunk
)

decision_log_batches = Table(
    "node_decision_log_batches",
    metadata,
    # One row per batch handed to the platform (records first_n..last_n): sent, or refused for its content.
    Column("first_n", Integer, primary_key=True),
    Column("last_n", Integer, nullable=False),
    Column("sent_at", Float, nullable=False),
    Column("status", String(16), nullable=False),  # sent | refused
    Column("error", Text),
)

# --- re-screening (node.hits) ---
hits = Table(
    "node_hits",
    metadata,
    # The worklist (复筛结果): one row per enrolled user newly hit, changed or lifted by an applied
    # snapshot or delta, numbered for paging (AUTOINCREMENT: a number is never reused).
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("user_ref", String(200), nullable=False),
    Column("entry_id", String(64), nullable=False),
    Column("kind", String(8), nullable=False),  # hit | changed | lifted
    Column("reason", String(32), nullable=False),  # the entry's status, or why it no longer concerns them
    Column("status", String(16)),  # the entry's status now (None: no longer in the feed)
    Column("measures", Text, nullable=False),  # JSON: the measures it implements, params, actions
    Column("previous", Text),  # JSON {status, measures} before a change or a lift
    Column("deadline", String(10), nullable=False),  # ISO date
    Column("feed_seq", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    sqlite_autoincrement=True,
)

hit_state = Table(
    "node_hit_state",
    metadata,
    # What the worklist last said for each (entry, user) in force: the difference to the next feed is
    # the next hits, so that a snapshot applied again adds nothing and a lift names what was applied.
    Column("entry_id", String(64), primary_key=True),
    Column("user_ref", String(200), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("measures", Text, nullable=False),  # compact canonical JSON (code, params, actions)
    sqlite_with_rowid=False,
)

# --- live tags (node.live) ---
live_tags = Table(
    "node_live_tags",
    metadata,
    # Tags of first-seen identifiers, evaluated live in a decision's request (实时标签): not enrolled
    # users (no user_ref: re-screening, counts and removal concern node_users only), so a table of their
    # own. Numbered so that an SDK in another process loads only the rows added since it last looked.
    Column("n", Integer, primary_key=True, autoincrement=True),
    Column("id_hmac", LargeBinary(32), nullable=False),  # HMAC(node secret, "type:value"): id_hmac_profile
    Column("key_id", String(32), nullable=False),
    Column("id_type", String(32), nullable=False),
    Column("tag", String(80), nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("id_hmac", "key_id", name="ux_node_live_tags_hmac_key"),
)

# --- the transparency log (node.logcheck) ---
log_pending = Table(
    "node_log_pending",
    metadata,
    # Applied feed events the log's checkpoint did not cover yet: their leaf hashes, compared with the
    # log's leaves at a later sync (the accepted checkpoint itself is in node_config, log_*).
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("leaf_hash", LargeBinary, nullable=False),
    Column("added_at", Float, nullable=False),
)

# --- request ids (#23) ---
entry_requests = Table(
    "node_entry_requests",
    metadata,
    # The platform's request that made the last change to each entry applied from a delta (the delta
    # line's request_id): a decision that matches the entry logs it, so one id leads from the platform's
    # form to this node's answer. A snapshot carries none and empties the table.
    Column("entry_id", String(64), primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("request_id", String(64), nullable=False),
    Index("ix_node_entry_requests_seq", "seq"),
    sqlite_with_rowid=False,
)

IN_FORCE_STATUSES = frozenset({"published", "disputed"})  # blacklist.lifecycle.IN_FORCE
# config: the measures the enterprise's own rulebook excludes (JSON code → clause), as the platform last
# said at a sync (node.sync.sync_rulebook); the node's decisions leave them out (node.sdk).
RULEBOOK_KEY = "rulebook_excluded"
SEP = "\x1f"  # joins keys and behaviours in one column (never inside a tag, code or canonical identifier)
RS = "\x1e"  # joins the records' SEP-joined lists in a decision-log chunk (never inside one either)
CHUNK_MAX = 10_000  # records in one decision-log chunk at most
ENTRY_COLUMNS = (
    "entry_id, seq, in_force, keys, subject_kind, severity, behaviours, status, max_end_on, liable_role, "
    "measures, record"
)
BULK_INDEXES = {  # dropped before a snapshot's bulk insert and built after it (a sort beats random inserts)
    "ux_node_entries_entry": "CREATE UNIQUE INDEX ux_node_entries_entry ON node_entries (entry_id)",
    "ix_node_entries_seq": "CREATE INDEX ix_node_entries_seq ON node_entries (seq)",
}


# Tables added since the first nodes: a store made before them gets them when opened.
_ADDED_TABLES = (decision_log_chunks, decision_log_batches, hits, hit_state, live_tags, log_pending)


class StoreError(RuntimeError):
    """The store is missing, not initialised, or not a node store."""


def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see _on_begin)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA cache_size=-65536")
    cur.close()


def _on_begin(conn: Connection) -> None:
    # writers take the lock at BEGIN (no upgrade deadlocks); readers get a consistent WAL snapshot
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("fcx_write") else "BEGIN")


class Store:
    """One node's SQLite file. Cheap to open; safe to share between threads (a connection per use)."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = False) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise StoreError(f"no node store at {self.path}: run `fcx node init` first")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(f"sqlite:///{self.path}")
        event.listen(self.engine, "connect", _on_connect)
        event.listen(self.engine, "begin", _on_begin)
        if create:
            metadata.create_all(self.engine)
            self._add_missing_tables()  # a store file from an older node: its decision-log rows moved
            with contextlib.suppress(OSError):
                os.chmod(self.path, 0o600)  # it holds the API key and the node secret
        elif not self.initialised():
            raise StoreError(f"{self.path} is not an initialised node store: run `fcx node init` first")
        else:
            self._add_missing_tables()

    def _add_missing_tables(self) -> None:
        """A store made by an older node lacks the tables added since; IF NOT EXISTS, so that two
        processes opening the store at once both succeed."""
        with self.read() as conn:
            have = {
                name for (name,) in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type='table'")
            }
        missing = [t for t in (*_ADDED_TABLES, entry_requests) if t.name not in have]
        if not missing and OLD_DECISION_LOG not in have:
            return
        with self.transaction() as conn:
            for table in missing:
                conn.execute(CreateTable(table, if_not_exists=True))
                for index in table.indexes:
                    conn.execute(CreateIndex(index, if_not_exists=True))
            conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_node_users_tag ON node_users (tag)")
            _move_decision_log_rows(self, conn)

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``: all or nothing, one writer at a time."""
        with self.engine.connect() as conn:
            conn.execution_options(fcx_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    def initialised(self) -> bool:
        try:
            with self.read() as c:
                return (
                    c.exec_driver_sql("SELECT 1 FROM node_config WHERE name='platform_url'").first()
                    is not None
                )
        except Exception:
            return False

    def checkpoint(self) -> None:
        """Fold the WAL into the database file now (after a snapshot), not in the next small commit."""
        raw = self.engine.raw_connection()
        try:
            raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()

    # --- config -----------------------------------------------------------------------------------------

    def get_config(self, conn: Connection | None = None) -> dict[str, str]:
        if conn is None:
            with self.read() as c:
                return self.get_config(c)
        return {name: value for name, value in conn.exec_driver_sql("SELECT name, value FROM node_config")}

    @staticmethod
    def set_config(conn: Connection, **values: object) -> None:
        conn.exec_driver_sql(
            "INSERT INTO node_config(name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in values.items()],
        )

    def state(self) -> dict[str, Any]:
        """Head, snapshot sequence, generation, last verified sync (Unix seconds or None)."""
        cfg = self.get_config()
        return {
            "head": int(cfg.get("head", "0")),
            "snapshot_seq": int(cfg.get("snapshot_seq", "0")),
            "generation": int(cfg.get("generation", "0")),
            "last_sync_at": float(cfg["last_sync_at"]) if cfg.get("last_sync_at") else None,
        }

    # --- counts (status, tests) --------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        with self.read() as c:
            return {
                "entries_in_force": c.exec_driver_sql(
                    "SELECT count(*) FROM node_entries WHERE in_force=1"
                ).scalar_one(),
                "entries_total": c.exec_driver_sql("SELECT count(*) FROM node_entries").scalar_one(),
                "users": c.exec_driver_sql("SELECT count(DISTINCT user_ref) FROM node_users").scalar_one(),
                "user_tags": c.exec_driver_sql("SELECT count(*) FROM node_users").scalar_one(),
                "outbox_queued": c.exec_driver_sql(
                    "SELECT count(*) FROM node_outbox WHERE status='queued'"
                ).scalar_one(),
                "decisions_unsent": count_after(
                    c, int(self.get_config(c).get("decision_log_sent_upto", "0"))
                ),
            }


# --- decision-log chunks -----------------------------------------------------------------------------------

# A decision-log record as read back: (record number, at, purpose, scene, verdict, entry ids joined by SEP,
# feed seq, tags joined by SEP, identifiers asked about, of them absent).
LogRow = tuple[int, float, str | None, str, str, str, int, str, int, int]
OLD_DECISION_LOG = "node_decision_log"  # one row per record, before the chunks
_HEAD = struct.Struct("<BI")  # format version, header length


def _array(code: str, values: Iterable[Any]) -> bytes:
    a = array(code, values)
    if sys.byteorder == "big":
        a.byteswap()
    return a.tobytes()


def _unarray(code: str, data: bytes) -> list[Any]:
    a = array(code)
    a.frombytes(data)
    if sys.byteorder == "big":
        a.byteswap()
    return a.tolist()


def _int_code(values: Sequence[int]) -> str:
    """The narrowest array type for these counts (most are 0 or 1: a byte each, not eight)."""
    low, high = (min(values), max(values)) if values else (0, 0)
    if low < 0:
        return "q"
    return "B" if high < 256 else "I" if high < 2**32 else "q"


def _dictionary(values: Sequence[Any]) -> tuple[list[Any], str, bytes]:
    """A column of few distinct values (scene, verdict, purpose) as those values and an index each."""
    distinct = list(dict.fromkeys(values))
    index = dict(zip(distinct, range(len(distinct)), strict=True))
    code = "B" if len(distinct) < 256 else "I"
    return distinct, code, _array(code, map(index.__getitem__, values))


def encode_chunk(
    at: Sequence[float],
    purpose: Sequence[str | None],
    scene: Sequence[str],
    verdict: Sequence[str],
    entry_ids: Sequence[str],
    feed_seq: Sequence[int],
    tags: Sequence[str],
    identifiers: Sequence[int],
    absent: Sequence[int],
) -> bytes:
    """A chunk's body from its records' columns (entry ids and tags already joined by SEP). Column-wise,
    so that a flush touches each record in C, not in Python (a decision costs microseconds, and so would
    encoding it row by row), and small (writing the store costs by the byte): the numbers as
    little-endian arrays of the narrowest type, scene, verdict and purpose as their few distinct values
    and an index each, entry ids and tags joined by RS. A JSON header says how to read the rest."""
    columns: list[bytes] = []
    header: dict[str, Any] = {"count": len(at), "numbers": [], "dictionaries": [], "texts": []}
    for code, numbers in (
        ("d", at), (_int_code(feed_seq), feed_seq), (_int_code(identifiers), identifiers),
        (_int_code(absent), absent),
    ):  # fmt: skip
        header["numbers"].append(code)
        columns.append(_array(code, numbers))
    for values in (purpose, scene, verdict):
        distinct, code, data = _dictionary(values)
        header["dictionaries"].append([code, distinct])
        columns.append(data)
    for text in (entry_ids, tags):
        columns.append(RS.join(text).encode())
        header["texts"].append(len(columns[-1]))
    head = _encode(header).encode()
    return b"".join([_HEAD.pack(1, len(head)), head, *columns])


def decode_chunk(first_seq: int, body: bytes) -> list[LogRow]:
    """The records of a chunk (:func:`encode_chunk`), record numbers from ``first_seq``."""
    version, size = _HEAD.unpack_from(body)
    if version != 1:
        raise StoreError(f"decision-log chunk {first_seq}: unknown format {version}")
    pos = _HEAD.size
    header = json.loads(body[pos : pos + size])
    pos += size
    n = int(header["count"])
    columns: list[list[Any]] = []
    for code in header["numbers"]:
        end = pos + array(code).itemsize * n
        columns.append(_unarray(code, body[pos:end]))
        pos = end
    for code, distinct in header["dictionaries"]:
        end = pos + array(code).itemsize * n
        columns.append([distinct[i] for i in _unarray(code, body[pos:end])])
        pos = end
    for length in header["texts"]:
        text = body[pos : pos + length].decode()
        pos += length
        columns.append(text.split(RS) if n else [])
    at, feed_seq, identifiers, absent, purpose, scene, verdict, entry_ids, tags = columns
    return list(
        zip(
            range(first_seq, first_seq + n), at, purpose, scene, verdict, entry_ids, feed_seq, tags,
            identifiers, absent, strict=True,
        )
    )  # fmt: skip


def encode_rows(rows: Sequence[LogRow]) -> bytes:
    """A chunk's body from records as read back (their numbers are the chunk's, not kept in the body)."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * 10
    return encode_chunk(*columns[1:])


def count_after(conn: Connection, after: int) -> int:
    """How many records are numbered above ``after`` (the unsent ones, above the sent watermark)."""
    return int(
        conn.exec_driver_sql(
            "SELECT coalesce(sum(count - max(0, ? - first_seq + 1)), 0) FROM node_decision_log_chunks "
            "WHERE first_seq > ? AND first_seq + count - 1 > ?",
            (after, after - CHUNK_MAX, after),
        ).scalar_one()
    )


def _move_decision_log_rows(store: Store, conn: Connection) -> None:
    """Move the rows of a store from before the chunks into chunks (consecutive record numbers, at most
    CHUNK_MAX a chunk) and drop the old table; the record numbers carry on above the highest it used."""
    if not conn.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (OLD_DECISION_LOG,)
    ).first():
        return  # another process moved them first
    high = int(store.get_config(conn).get("decision_log_next_seq", "1")) - 1
    used = conn.exec_driver_sql("SELECT seq FROM sqlite_sequence WHERE name=?", (OLD_DECISION_LOG,)).first()
    high = max(high, int(used[0]) if used else 0)
    rows = conn.exec_driver_sql(  # read as it goes (one connection): millions may wait unsent
        "SELECT n, at, purpose, scene, verdict, entry_ids, feed_seq, tags, identifiers, absent "
        f"FROM {OLD_DECISION_LOG} ORDER BY n"
    )
    run: list[LogRow] = []

    def write() -> None:
        conn.exec_driver_sql(
            "INSERT INTO node_decision_log_chunks(first_seq, count, created_at, body) VALUES (?, ?, ?, ?)",
            (run[0][0], len(run), now(), encode_rows(run)),
        )
        run.clear()

    for r in rows:
        row: LogRow = tuple(r)
        if run and (row[0] != run[-1][0] + 1 or len(run) >= CHUNK_MAX):
            write()
        run.append(row)
        high = max(high, row[0])
    if run:
        write()
    store.set_config(conn, decision_log_next_seq=str(high + 1))
    conn.exec_driver_sql(f"DROP TABLE {OLD_DECISION_LOG}")


def record_keys(record: dict[str, Any]) -> list[str]:
    """The index keys of a shared record: its tags, and a unit's public ``type:value`` identifiers."""
    keys = list(record.get("tags") or ())
    keys.extend(record.get("identifiers") or ())
    return list(dict.fromkeys(keys))


_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def entry_row(seq: int, record: dict[str, Any], in_force: bool) -> tuple[Any, ...]:
    """The node_entries row of a shared record (ENTRY_COLUMNS order)."""
    return (
        record["entry_id"],
        seq,
        1 if in_force else 0,
        SEP.join(record_keys(record)),
        str(record.get("subject_kind") or ""),
        str(record.get("severity") or ""),
        SEP.join(record.get("behaviours") or ()),
        str(record.get("status") or ""),
        (str(record["max_end_on"])[:10] if record.get("max_end_on") else None),
        record.get("liable_role"),
        # records are parsed from canonical JSON (sorted keys), so this is canonical too: equal measures,
        # equal text
        _encode(record.get("measures") or []),
        _encode(record),
    )


def crypto_profile(cfg: dict[str, str]) -> crypto.Profile:
    """The crypto profile this node verifies the platform under: the one its manifest stated at ``fcx node
    init``; a store made before the profiles existed (#18) was pinned to an international platform."""
    return crypto.profile(cfg.get("crypto_profile") or "international")


def id_hmac_profile(cfg: dict[str, str]) -> crypto.Profile:
    """The profile of the store's identifier HMACs (set once, when the store is first initialised)."""
    return crypto.profile(cfg.get("id_hmac_profile") or "international")


def now() -> float:
    return time.time()
