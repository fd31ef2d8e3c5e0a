"""The enterprise node's own SQLite store (its own metadata: nothing here touches the platform's schema).

What it keeps
-------------
* ``node_config``: name → value: the platform URL and API key, the pinned Ed25519 feed-signing public key
  and its fingerprint, the OPRF public keys last fetched, the node secret (keys the identifier HMAC), the
  feed head, the snapshot sequence number, a generation number bumped by every snapshot, the time of the
  last verified sync.
* ``node_entries``: entry id → the shared record (JSON, tags only for persons), the sequence number of the
  event that last touched it, and whether it is in force (revoked entries stay as tombstones so that an
  in-memory index can follow the store by sequence number).
* ``node_users``: enrolled users: ``user_ref`` (the enterprise's own user id), ``id_hmac`` =
  HMAC-SHA256(node secret, ``"type:normalised value"``), the OPRF key id and the tag. Never a plain
  personal identifier.
* ``node_outbox``: instruction acknowledgements and feedback waiting for the platform.
* ``node_webhook_events``: webhook event ids already accepted (replay refusal).
* ``node_decision_log``: the decisions this node answered (:mod:`.decision_log`): time, purpose, scene,
  verdict, entry ids, feed position and the identifiers' tags (never a plain value), until relayed to the
  platform and a few days after; ``node_decision_log_batches``: the batches relayed (record ranges).

Writes go through :meth:`Store.transaction`, which opens ``BEGIN IMMEDIATE``: one writer at a time, and
everything inside commits or nothing does (a process killed inside leaves the store as before).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator
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
    create_engine,
    event,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.schema import CreateTable

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

decision_log = Table(
    "node_decision_log",
    metadata,
    # Insertion order, never reused (AUTOINCREMENT): with the store's prefix it makes the record id the
    # platform keeps (decision_log.record_id). Append-only with no other index: a record costs one insert.
    Column("n", Integer, primary_key=True),
    Column("at", Float, nullable=False),
    Column("purpose", Text),
    Column("scene", String(64), nullable=False),
    Column("verdict", String(16), nullable=False),
    Column("entry_ids", Text, nullable=False),  # joined by SEP
    Column("feed_seq", Integer, nullable=False),
    Column("tags", Text, nullable=False),  # the identifiers' tags, joined by SEP
    Column("identifiers", Integer, nullable=False),  # how many identifiers were asked about
    Column("absent", Integer, nullable=False),  # of them without a tag: a count, never a value
    sqlite_autoincrement=True,
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

IN_FORCE_STATUSES = frozenset({"published", "disputed"})  # blacklist.lifecycle.IN_FORCE
SEP = "\x1f"  # joins keys and behaviours in one column (never inside a tag, code or canonical identifier)
ENTRY_COLUMNS = (
    "entry_id, seq, in_force, keys, subject_kind, severity, behaviours, status, max_end_on, liable_role, "
    "measures, record"
)
BULK_INDEXES = {  # dropped before a snapshot's bulk insert and built after it (a sort beats random inserts)
    "ux_node_entries_entry": "CREATE UNIQUE INDEX ux_node_entries_entry ON node_entries (entry_id)",
    "ix_node_entries_seq": "CREATE INDEX ix_node_entries_seq ON node_entries (seq)",
}


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
        missing = [t for t in (decision_log, decision_log_batches) if t.name not in have]
        if not missing:
            return
        with self.engine.connect() as conn:
            conn.execution_options(fcx_write=True)
            with conn.begin():
                for table in missing:
                    conn.execute(CreateTable(table, if_not_exists=True))

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
                "decisions_unsent": c.exec_driver_sql(
                    "SELECT count(*) FROM node_decision_log WHERE n > ?",
                    (int(self.get_config(c).get("decision_log_sent_upto", "0")),),
                ).scalar_one(),
            }


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


def now() -> float:
    return time.time()
