"""The transparency log of the list (透明日志, #19): leaves, checkpoints, tiles, proofs, witnesses.

Every change the feed carries is appended as a leaf in the transaction of the feed event
(:func:`append_feed_event`, called by ``sharing.changes.append``), and the audit chain's head is
committed periodically (:func:`commit_audit_head`); the tree is ``core.tlog``'s RFC 9162 tree under the
log's hash (the platform's crypto profile when the log was created: SHA-256 or SM3).

* **Leaves** are canonical JSON without plain personal data: ``{"type":"feed","seq":s,"event":<the
  shared record with tags, as the feed carries it>}`` or ``{"type":"audit_head","seq":n,"hash":<hex>}``.
* **Checkpoints** are C2SP signed notes signed by the log's own key (``log.json`` beside the sharing
  keys, apart from the feed key; rotatable, the retired keys' verifier keys kept so old checkpoints
  still verify). Witnesses (nodes, departments) cosign them with their enrolled keys; the served
  checkpoint carries the cosignatures gathered for it.
* **Tiles**: the C2SP tlog-tiles files, from the tree each process keeps in memory (rebuilt from the
  stored leaf hashes at first use, caught up from the database on each read); full tiles are
  immutable and also stored once complete (``tlog_tiles``).
* **Verification**: :func:`audit_log` checks a whole log as an outside auditor does (every leaf re-hashed,
  every tile recomputed, the root against the signed checkpoint, consistency with an older checkpoint);
  :func:`verify_audit_anchored` checks the audit chain against the heads committed in the log.
* **Statements** (:func:`make_statement`, :func:`verify_statement`): a signed note, checkable offline,
  that a subject has no entry in force as of a time, or that an entry was revoked/repaired on a date,
  carrying the checkpoint and the inclusion proofs of the leaves it rests on.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import functools
import json
import os
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from fanchaoxin.blacklist.lifecycle import IN_FORCE
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.core import tlog
from fanchaoxin.core.audit import AuditChainHead, AuditEvent
from fanchaoxin.core.audit import latest_checkpoint as latest_audit_checkpoint
from fanchaoxin.core.audit import verify as verify_audit_chain
from fanchaoxin.core.crypto import CryptoError, active, profile, profile_of_public_key
from fanchaoxin.core.db import utcnow
from fanchaoxin.core.settings import get_settings
from fanchaoxin.sharing import feed, service
from fanchaoxin.sharing.models import FeedEvent, IdentifierTag
from fanchaoxin.sharing.protocol import canonical_json
from fanchaoxin.sharing.translog_models import LogCheckpoint, LogCosignature, LogHead, LogLeaf, LogTile
from fanchaoxin.subjects.models import SubjectIdentifier

LOG_FILE: Final = "log.json"
LOG_KEY_FORMAT: Final = "fcx-log-key/1"
DEFAULT_ORIGIN: Final = "fanchaoxin.local/log"
STATEMENT_HEADER: Final = "fcx-log-statement/v1"
_LIFTED = ("revoked", "repaired", "expired")


class LogError(RuntimeError):
    """Something about the log was refused; the message names what failed (file, key, size, leaf)."""


# --- the log's key (its own file, apart from the feed key) -----------------------------------------------


@dataclass(frozen=True)
class LogKeys:
    """The log's origin, the profile its tree hashes with, its current signer and its retired keys."""

    origin: str
    hash_profile: str
    signer: tlog.NoteSigner
    retired: tuple[tlog.NoteVerifier, ...]
    path: Path

    @functools.cached_property
    def hash_fn(self) -> tlog.HashFn:
        # looked up once per key file (the append hashes every leaf with it): the profile's hasher
        return profile(self.hash_profile).digest

    @property
    def hash_name(self) -> str:
        return profile(self.hash_profile).hash_algorithm

    @property
    def vkey(self) -> str:
        return self.signer.verifier.vkey()

    @property
    def profile(self) -> str:
        return profile_of_public_key(self.signer.private_key.public_bytes()).name

    @property
    def verifiers(self) -> list[tlog.NoteVerifier]:
        return [self.signer.verifier, *self.retired]

    def public(self) -> dict[str, Any]:
        """``GET /v1/log/key``: what a verifier pins; the retired keys verify the checkpoints they signed."""
        return {
            "origin": self.origin,
            "profile": self.profile,
            "vkeys": [v.vkey() for v in self.verifiers],
            "hash": self.hash_name,
        }

    def manifest_entry(self) -> dict[str, Any]:
        """The ``log`` member of the signed manifest: nodes pin the log key from there, and take the
        tree's hash from ``hash`` (after a profile change the key is the new profile's, the tree's hash
        stays the one the log began with)."""
        return {"origin": self.origin, "vkey": self.vkey, "profile": self.profile, "hash": self.hash_name}


def _key_path(directory: str | Path | None) -> Path:
    base = Path(directory) if directory is not None else Path(get_settings().sharing_key_dir)
    return base.resolve() / LOG_FILE


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _write_atomic(path: Path, document: dict[str, Any], *, exclusive: bool) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".log-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(document, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        if exclusive:
            try:
                os.link(tmp, path)  # two workers creating the key at once keep the first one's
            except FileExistsError:
                return False
        else:
            os.replace(tmp, path)
            tmp = ""
        return True
    finally:
        if tmp:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def _new_key_document(origin: str, profile_name: str) -> dict[str, Any]:
    p = profile(profile_name)
    key = p.generate_signing_key()
    private = getattr(key, "private_bytes", None)
    if private is None:  # pragma: no cover - a module-held key is configured, not generated here
        raise LogError("the log key must be an in-process key to be written to a file")
    return {
        "profile": p.name,
        "private": _b64(private()),
        "public": _b64(key.public_bytes()),
        "created_at": datetime.now(UTC).isoformat(),
    }


def init_log_key(directory: str | Path | None = None, *, origin: str | None = None) -> tuple[LogKeys, bool]:
    """Create the log key file if there is none; ``(keys, created)``. An existing one is never replaced."""
    path = _key_path(directory)
    created = False
    if not path.exists():
        name = origin or DEFAULT_ORIGIN
        doc = {
            "format": LOG_KEY_FORMAT,
            "origin": name,
            "hash": active().name,
            "current": _new_key_document(name, active().name),
            "retired": [],
        }
        created = _write_atomic(path, doc, exclusive=True)
    return load_log_keys(path.parent, create=False), created


_key_cache: dict[Path, tuple[tuple[int, int], LogKeys]] = {}
_key_lock = threading.Lock()


def load_log_keys(directory: str | Path | None = None, *, create: bool = True) -> LogKeys:
    """The log key in ``<sharing key dir>/log.json`` (created on first use if ``create``)."""
    path = _key_path(directory)
    try:
        st = path.stat()
    except FileNotFoundError:
        if not create:
            raise LogError(f"no log key {path}; run `fcx log init`") from None
        return init_log_key(path.parent)[0]
    stamp = (st.st_ino, st.st_mtime_ns)
    with _key_lock:
        hit = _key_cache.get(path)
        if hit is not None and hit[0] == stamp:
            return hit[1]
    keys = _parse_key_file(path)
    with _key_lock:
        _key_cache[path] = (stamp, keys)
    return keys


def _parse_key_file(path: Path) -> LogKeys:
    try:
        doc = json.loads(path.read_text())
        if doc.get("format") != LOG_KEY_FORMAT:
            raise LogError(f"{path}: format is {doc.get('format')!r}, expected {LOG_KEY_FORMAT!r}")
        origin, current = doc["origin"], doc["current"]
        p = profile(current["profile"])
        key = p.load_signing_key(base64.b64decode(current["private"]), base64.b64decode(current["public"]))
        signer = tlog.NoteSigner(origin, key)
        retired = tuple(tlog.NoteVerifier.from_vkey(r["vkey"]) for r in doc.get("retired", []))
        profile(doc["hash"])
    except (KeyError, TypeError, ValueError) as exc:
        raise LogError(f"{path}: not a usable log key file ({exc})") from None
    return LogKeys(origin, doc["hash"], signer, retired, path)


def rotate_log_key(directory: str | Path | None = None) -> tuple[str, str]:
    """A fresh signing key of the active profile becomes current; the old one's verifier key is kept
    (``GET /v1/log/key`` lists it) so the checkpoints it signed still verify. ``(old vkey, new vkey)``."""
    path = _key_path(directory)
    if not path.exists():
        raise LogError(f"no log key {path}; run `fcx log init`")
    with open(path.parent / ".log.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        doc = json.loads(path.read_text())
        old = _parse_key_file(path)
        doc["retired"] = [
            *doc.get("retired", []),
            {
                "vkey": old.vkey,
                "created_at": doc["current"].get("created_at"),
                "retired_at": datetime.now(UTC).isoformat(),
            },
        ]
        doc["current"] = _new_key_document(old.origin, active().name)
        _write_atomic(path, doc, exclusive=False)
    new = _parse_key_file(path)
    return old.vkey, new.vkey


def keys_for(directory: str | Path | None = None) -> LogKeys:
    return load_log_keys(directory)


# --- the tree in memory ----------------------------------------------------------------------------------


@dataclass
class _Tree:
    log: tlog.MerkleLog
    lock: threading.Lock = field(default_factory=threading.Lock)


_trees: dict[tuple[str, str], _Tree] = {}
_trees_lock = threading.Lock()


def _db_key(session: Session) -> str:
    return str(session.get_bind().engine.url)


def stored_size(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(LogLeaf)) or 0)


def tree(session: Session, keys: LogKeys) -> tlog.MerkleLog:
    """The log's tree as the database holds it now: the process's copy, caught up with the leaves
    appended since (rebuilt from the stored leaf hashes when the database no longer starts with it)."""
    k = (_db_key(session), keys.hash_profile)
    with _trees_lock:
        held = _trees.get(k)
        if held is None:
            held = _trees[k] = _Tree(tlog.MerkleLog(keys.hash_fn))
    with held.lock:
        log = held.log
        conn = session.connection()
        # One query: the tree's last leaf again (is the database still what the tree was built from?)
        # and every leaf after it.
        start = max(log.size - 1, 0)
        rows = iter(
            conn.execute(
                select(LogLeaf.idx, LogLeaf.leaf_hash).where(LogLeaf.idx >= start).order_by(LogLeaf.idx)
            )
        )
        if log.size:
            first = next(rows, None)
            if first is None or first[0] != start or bytes(first[1]) != log.leaf_hash(start):
                log = held.log = _cut_back(session, log, keys)
                rows = iter(
                    conn.execute(
                        select(LogLeaf.idx, LogLeaf.leaf_hash)
                        .where(LogLeaf.idx >= log.size)
                        .order_by(LogLeaf.idx)
                    )
                )
        elif _load_full_tiles(session, log):
            rows = iter(
                conn.execute(
                    select(LogLeaf.idx, LogLeaf.leaf_hash)
                    .where(LogLeaf.idx >= log.size)
                    .order_by(LogLeaf.idx)
                )
            )
        append = log.append_hash
        for _idx, h in rows:
            append(bytes(h))
        return log


def _cut_back(session: Session, log: tlog.MerkleLog, keys: LogKeys) -> tlog.MerkleLog:
    """The tree is ahead of this view (another transaction's leaves, not committed or rolled back) or
    differs from it: cut back to what the database holds if it starts with the same leaves (no rebuild),
    else start again (then filled from the stored tiles and leaves)."""
    top = session.scalar(select(func.max(LogLeaf.idx)))
    stored = 0 if top is None else int(top) + 1
    if 0 < stored < log.size and _agrees(session, log, stored):
        log.truncate(stored)
        return log
    fresh = tlog.MerkleLog(keys.hash_fn)
    _load_full_tiles(session, fresh)
    return fresh


def _agrees(session: Session, log: tlog.MerkleLog, size: int) -> bool:
    """Whether leaf ``size - 1`` in the database is the tree's (each leaf hash commits to its bytes;
    the stored hash chain of the tree is the process's own)."""
    last = session.scalar(select(LogLeaf.leaf_hash).where(LogLeaf.idx == size - 1))
    return last is not None and bytes(last) == log.leaf_hash(size - 1)


def _load_full_tiles(session: Session, log: tlog.MerkleLog) -> bool:
    """Start an empty tree from the stored full level-0 tiles (256 leaf hashes a row) while they run
    on from leaf 0, rather than from a million leaf rows; the leaves after them are read one by one.
    Whether any was loaded."""
    hs = log.hash_size
    n = 0
    while True:
        paths = [tlog.tile_path(0, i) for i in range(n, n + 256)]
        found = dict(session.execute(select(LogTile.path, LogTile.data).where(LogTile.path.in_(paths))).all())
        for path in paths:
            data = found.get(path)
            if data is None or len(data) != tlog.TILE_WIDTH * hs:
                return log.size > 0
            data = bytes(data)
            for j in range(tlog.TILE_WIDTH):
                log.append_hash(data[j * hs : (j + 1) * hs])
        n += 256


def forget_trees() -> None:
    """Drop the processes' cached trees (tests that rewrite the tables underneath)."""
    with _trees_lock:
        _trees.clear()


# --- appending -----------------------------------------------------------------------------------------


def feed_leaf(seq: int, shared: dict[str, Any]) -> bytes:
    return canonical_json({"type": "feed", "seq": seq, "event": shared})


def audit_leaf(seq: int, chain_hash: str) -> bytes:
    return canonical_json({"type": "audit_head", "seq": seq, "hash": chain_hash})


@dataclass(frozen=True)
class NewLeaf:
    kind: str
    leaf: bytes
    feed_seq: int | None = None
    audit_seq: int | None = None
    entry_id: uuid.UUID | None = None


_LEAF_COLUMNS: Final = ("idx", "kind", "feed_seq", "audit_seq", "entry_id", "leaf", "leaf_hash", "at")


@dataclass(frozen=True)
class _RawSql:
    """The two statements of an append, for the driver itself: the feed appends one leaf per event
    and SQLAlchemy's per-statement work was most of an append's cost. Values go through each column
    type's own bind processor, so they are stored exactly as the ORM stores them."""

    take: str
    insert: str
    processors: tuple[Callable[[Any], Any] | None, ...]


_raw_sql: dict[str, _RawSql] = {}


def _raw(session: Session) -> _RawSql:
    held = session.info.get("tlog_raw_sql")
    if held is not None:  # a session keeps its engine: the statements are its dialect's
        return held  # type: ignore[no-any-return]
    dialect = session.get_bind().dialect
    known = _raw_sql.get(dialect.name)
    if known is None:
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        table = LogLeaf.__table__
        known = _raw_sql[dialect.name] = _RawSql(
            f"UPDATE tlog_head SET size = size + {mark} WHERE id = 1 RETURNING size",
            f"INSERT INTO tlog_leaves ({', '.join(_LEAF_COLUMNS)}) VALUES ({', '.join([mark] * 8)})",
            tuple(table.c[c].type.bind_processor(dialect) for c in _LEAF_COLUMNS),
        )
    session.info["tlog_raw_sql"] = known
    return known


def _take(session: Session, cursor: Any, sql: _RawSql, n: int) -> int:
    """Reserve ``n`` indices under the head row's lock (held to the end of the transaction)."""
    cursor.execute(sql.take, (n,))
    row = cursor.fetchone()
    if row is None:
        session.add(LogHead(id=1, size=stored_size(session)))
        session.flush()
        cursor.execute(sql.take, (n,))
        row = cursor.fetchone()
    return int(row[0]) - n


def append_leaves(session: Session, leaves: Sequence[NewLeaf], keys: LogKeys | None = None) -> int:
    """Append ``leaves`` in order in the caller's transaction; returns the first one's index."""
    if not leaves:
        return stored_size(session)
    keys = keys or load_log_keys()
    hash_fn, now = keys.hash_fn, utcnow()
    sql = _raw(session)
    cursor = session.connection().connection.cursor()
    procs = sql.processors
    at = now if procs[7] is None else procs[7](now)  # one timestamp per call, bound once
    try:
        first = _take(session, cursor, sql, len(leaves))
        rows = []
        for i, leaf in enumerate(leaves):
            values = (
                first + i,
                leaf.kind,
                leaf.feed_seq,
                leaf.audit_seq,
                leaf.entry_id,
                leaf.leaf,
                hash_fn(tlog.LEAF_PREFIX + leaf.leaf),
            )
            rows.append(
                (*(v if p is None or v is None else p(v) for v, p in zip(values, procs[:7], strict=True)), at)
            )
        if len(rows) == 1:
            cursor.execute(sql.insert, rows[0])
        else:
            cursor.executemany(sql.insert, rows)
    finally:
        cursor.close()
    return first


def append_feed_event(session: Session, event: FeedEvent) -> int:
    """The leaf of one feed event, in the event's transaction (``sharing.changes.append``'s hook)."""
    settings = get_settings()
    sharing_keys = service.load_keys(settings)
    shared = feed.shared_event_records(session, [event], sharing_keys)[0]
    leaf = NewLeaf("feed", feed_leaf(event.seq, shared), feed_seq=event.seq, entry_id=event.entry_id)
    return append_leaves(session, [leaf], load_log_keys(sharing_keys.directory))


def logged_events(session: Session, seqs: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The shared record each feed event was logged with (its leaf's ``event``), by feed seq.

    For a delta that serves events exactly as logged: the delta computes tags when it is served, the
    leaf when the event was appended; they differ after a key or identifier change, and a node that
    checks each event against its leaf would then refuse an honest delta."""
    out: dict[int, dict[str, Any]] = {}
    wanted = sorted(set(seqs))
    for i in range(0, len(wanted), 1000):
        for seq, leaf in session.execute(
            select(LogLeaf.feed_seq, LogLeaf.leaf).where(LogLeaf.feed_seq.in_(wanted[i : i + 1000]))
        ):
            if seq is not None:
                out[int(seq)] = json.loads(bytes(leaf))["event"]
    return out


def commit_audit_head(session: Session, keys: LogKeys | None = None) -> int | None:
    """Append the audit chain's head as a leaf if it moved since the last one; its index, or None."""
    head = session.get(AuditChainHead, 1)
    if head is None or not head.seq:
        return None
    last = session.scalar(select(func.max(LogLeaf.audit_seq)))
    if last is not None and last >= head.seq:
        return None
    return append_leaves(
        session, [NewLeaf("audit_head", audit_leaf(head.seq, head.hash), audit_seq=head.seq)], keys
    )


# --- checkpoints -----------------------------------------------------------------------------------------


def latest_checkpoint(session: Session) -> LogCheckpoint | None:
    return session.scalar(select(LogCheckpoint).order_by(LogCheckpoint.id.desc()).limit(1))


def publish_checkpoint(session: Session, keys: LogKeys | None = None) -> LogCheckpoint:
    """Sign a checkpoint of the tree as it is, unless the latest one already is of this size and key;
    store the tiles that became full since."""
    keys = keys or load_log_keys()
    t = tree(session, keys)
    size = t.size
    latest = latest_checkpoint(session)
    if latest is not None and latest.size == size and latest.vkey == keys.vkey:
        return latest
    root = t.root(size)
    note = tlog.sign_checkpoint(tlog.Checkpoint(keys.origin, size, root), [keys.signer]).decode()
    cp = LogCheckpoint(size=size, root_hash=root.hex(), note=note, vkey=keys.vkey, at=utcnow())
    session.add(cp)
    _store_full_tiles(session, t, latest.size if latest is not None else 0, size)
    session.flush()
    return cp


def checkpoint_covering(session: Session, index: int, keys: LogKeys | None = None) -> LogCheckpoint:
    """The latest checkpoint if it includes leaf ``index``, else a new one signed now."""
    cp = latest_checkpoint(session)
    if cp is not None and cp.size > index:
        return cp
    return publish_checkpoint(session, keys)


def _store_full_tiles(session: Session, t: tlog.MerkleLog, old: int, new: int) -> None:
    candidates: dict[str, Callable[[], bytes]] = {}
    level = 0
    while (count := new >> (tlog.TILE_HEIGHT * level)) >= tlog.TILE_WIDTH:
        first = (old >> (tlog.TILE_HEIGHT * level)) // tlog.TILE_WIDTH
        for n in range(first, count // tlog.TILE_WIDTH):
            candidates[tlog.tile_path(level, n)] = functools.partial(tile_bytes, t, level, n, tlog.TILE_WIDTH)
        level += 1
    first_bundle, end_bundle = old // tlog.TILE_WIDTH, new // tlog.TILE_WIDTH
    bundles: dict[int, list[bytes]] = {}
    if end_bundle > first_bundle:
        rows = session.execute(
            select(LogLeaf.idx, LogLeaf.leaf)
            .where(LogLeaf.idx >= first_bundle * tlog.TILE_WIDTH, LogLeaf.idx < end_bundle * tlog.TILE_WIDTH)
            .order_by(LogLeaf.idx)
        )
        for idx, leaf in rows:
            bundles.setdefault(idx // tlog.TILE_WIDTH, []).append(bytes(leaf))
    for n in range(first_bundle, end_bundle):
        candidates[tlog.entries_path(n)] = functools.partial(_bundle_of, bundles, n)
    have: set[str] = set()
    names = list(candidates)
    for i in range(0, len(names), 500):
        have.update(session.scalars(select(LogTile.path).where(LogTile.path.in_(names[i : i + 500]))))
    rows_out = [{"path": path, "data": make()} for path, make in candidates.items() if path not in have]
    # Two workers may publish at once (a proof asked for a leaf no checkpoint holds yet): a tile is
    # the same bytes whoever stores it, so the second insert of a path is dropped.
    stmt = (pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert)(LogTile)
    for i in range(0, len(rows_out), 500):
        session.execute(stmt.on_conflict_do_nothing(), rows_out[i : i + 500])


def _bundle_of(bundles: dict[int, list[bytes]], n: int) -> bytes:
    return tlog.entry_bundle(bundles[n])


def with_cosignatures(session: Session, cp: LogCheckpoint) -> str:
    """The checkpoint's note with the witnesses' cosignature lines gathered for it."""
    lines = session.scalars(
        select(LogCosignature.line).where(LogCosignature.checkpoint_id == cp.id).order_by(LogCosignature.id)
    ).all()
    return cp.note + "".join(lines)


def current_checkpoint_note(session: Session, keys: LogKeys | None = None) -> str:
    """``GET /v1/log/checkpoint``: the latest checkpoint (one signed now if there is none yet)."""
    cp = latest_checkpoint(session) or publish_checkpoint(session, keys)
    return with_cosignatures(session, cp)


# --- tiles -----------------------------------------------------------------------------------------------


def tile_bytes(t: tlog.MerkleLog, level: int, index: int, width: int) -> bytes:
    height = tlog.TILE_HEIGHT * level
    first = index * tlog.TILE_WIDTH
    if (first + width) << height > t.size:
        raise LogError(f"tile {tlog.tile_path(level, index, width)} is beyond the log's {t.size} leaves")
    return b"".join(t.node(height, first + j) for j in range(width))


def entry_bundle(session: Session, index: int, width: int) -> bytes:
    first = index * tlog.TILE_WIDTH
    leaves = session.scalars(
        select(LogLeaf.leaf).where(LogLeaf.idx >= first, LogLeaf.idx < first + width).order_by(LogLeaf.idx)
    ).all()
    if len(leaves) != width:
        raise LogError(f"entry bundle {tlog.entries_path(index, width)} is beyond the log's leaves")
    return tlog.entry_bundle([bytes(x) for x in leaves])


def parse_tile_path(path: str) -> tuple[str, int, int, int]:
    """``tile/<L>/<N>[.p/<W>]`` or ``tile/entries/<N>[.p/<W>]`` as ``(kind, level, index, width)``."""
    parts = path.split("/")
    if len(parts) < 3 or parts[0] != "tile":
        raise tlog.TileError(f"not a tile path: {path!r}")
    kind = "entries" if parts[1] == "entries" else "hash"
    level = -1 if kind == "entries" else _decimal(parts[1], path)
    rest = parts[2:]
    width = tlog.TILE_WIDTH
    if len(rest) >= 2 and rest[-2].endswith(".p"):
        width = _decimal(rest[-1], path)
        rest = [*rest[:-2], rest[-2][:-2]]
    index = 0
    for i, group in enumerate(rest):
        last = i == len(rest) - 1
        digits = group if last else group.removeprefix("x")
        if len(digits) != 3 or not digits.isdigit() or (not last and not group.startswith("x")):
            raise tlog.TileError(f"not a tile path: {path!r} (index groups are x000/…/000)")
        index = index * 1000 + int(digits)
    if not 1 <= width <= tlog.TILE_WIDTH or (kind == "hash" and not 0 <= level <= 63):
        raise tlog.TileError(f"not a tile path: {path!r}")
    canonical = tlog.entries_path(index, width) if kind == "entries" else tlog.tile_path(level, index, width)
    if canonical != path:
        raise tlog.TileError(f"not a canonical tile path: {path!r} (expected {canonical!r})")
    return kind, level, index, width


def _decimal(s: str, path: str) -> int:
    if not s.isdigit() or (s != "0" and s.startswith("0")):
        raise tlog.TileError(f"not a tile path: {path!r}")
    return int(s)


def read_tile(session: Session, path: str, keys: LogKeys | None = None) -> tuple[bytes, bool]:
    """A tile's bytes and whether it is full (immutable); stored full tiles are read as stored."""
    kind, level, index, width = parse_tile_path(path)
    full = width == tlog.TILE_WIDTH
    if full:
        stored = session.get(LogTile, path)
        if stored is not None:
            return bytes(stored.data), True
    if kind == "entries":
        return entry_bundle(session, index, width), full
    t = tree(session, keys or load_log_keys())
    return tile_bytes(t, level, index, width), full


# --- proofs ----------------------------------------------------------------------------------------------


def _leaf_out(t: tlog.MerkleLog, row: LogLeaf, size: int) -> dict[str, Any]:
    return {
        "index": row.idx,
        "leaf": _b64(bytes(row.leaf)),
        "proof": [_b64(h) for h in t.inclusion_proof(row.idx, size)],
    }


def inclusion(
    session: Session,
    *,
    entry_id: uuid.UUID | None = None,
    index: int | None = None,
    feed_seq: int | None = None,
    keys: LogKeys | None = None,
) -> dict[str, Any]:
    """``GET /v1/log/proof/inclusion``: every leaf about an entry, or the leaf at an index or of a feed
    event, each with its inclusion proof in the latest checkpoint (one signed now if it lacks them)."""
    keys = keys or load_log_keys()
    q = select(LogLeaf).order_by(LogLeaf.idx)
    if entry_id is not None:
        q = q.where(LogLeaf.entry_id == entry_id)
    elif index is not None:
        q = q.where(LogLeaf.idx == index)
    elif feed_seq is not None:
        q = q.where(LogLeaf.feed_seq == feed_seq)
    else:
        raise LogError("give entry, index or feed_seq")
    rows = list(session.scalars(q))
    if not rows:
        raise LookupError("no leaf in the log for that " + ("entry" if entry_id else "index or feed event"))
    cp = checkpoint_covering(session, rows[-1].idx, keys)
    t = tree(session, keys)
    return {
        "tree_size": cp.size,
        "checkpoint": with_cosignatures(session, cp),
        "leaves": [_leaf_out(t, r, cp.size) for r in rows],
    }


def entry_proof(session: Session, entry_id: uuid.UUID, keys: LogKeys | None = None) -> dict[str, Any] | None:
    """For a record page or a confirmation (objection, correction, repair): the entry's leaves with their
    inclusion proofs and the checkpoint they are in (:func:`inclusion`), or None when it has no leaf
    (never published)."""
    try:
        return inclusion(session, entry_id=entry_id, keys=keys)
    except LookupError:
        return None


def consistency(session: Session, old: int, new: int, keys: LogKeys | None = None) -> dict[str, Any]:
    t = tree(session, keys or load_log_keys())
    if not 0 <= old <= new <= t.size:
        raise tlog.ProofError(f"no consistency proof from size {old} to size {new}: the log has {t.size}")
    return {"from": old, "to": new, "proof": [_b64(h) for h in t.consistency_proof(old, new)]}


# --- witnesses -------------------------------------------------------------------------------------------


class CosignatureRefused(ValueError):
    """A cosignature the platform does not take; ``unknown_key`` when no enrolled key of the caller's
    organisation has the line's name and key ID (403), else it names what failed (422)."""

    def __init__(self, message: str, *, unknown_key: bool = False) -> None:
        super().__init__(message)
        self.unknown_key = unknown_key


@dataclass(frozen=True)
class WitnessKey:
    key_id: str
    public_key: bytes


def add_cosignature(
    session: Session, org_id: uuid.UUID, checkpoint_note: str, line: str, witness_keys: Iterable[WitnessKey]
) -> LogCosignature:
    """Take a witness's cosignature of a checkpoint the platform issued; ``witness_keys``: the active
    keys the caller's organisation enrolled (node keys)."""
    # JSON bodies are often trimmed of their last newline; a note always ends with one.
    checkpoint_note = checkpoint_note if checkpoint_note.endswith("\n") else checkpoint_note + "\n"
    try:
        text_part, _sigs = tlog.split_note(checkpoint_note.encode())
        name, blob = tlog.parse_signature_line(line)
    except tlog.NoteError as exc:
        raise CosignatureRefused(f"cosignature refused: {exc}") from None
    cp = session.scalar(
        select(LogCheckpoint)
        .where(LogCheckpoint.note.startswith(text_part + "\n", autoescape=True))
        .order_by(LogCheckpoint.id.desc())
        .limit(1)
    )
    if cp is None:
        raise CosignatureRefused(
            "cosignature refused: the platform never issued this checkpoint (no checkpoint with this text)"
        )
    match = None
    for wk in witness_keys:
        try:
            v = tlog.NoteVerifier(name, wk.public_key, cosigner=True)
        except tlog.NoteError:
            continue
        if v.key_id == blob[:4]:
            match = (wk, v)
            break
    if match is None:
        raise CosignatureRefused(
            f"cosignature refused: unknown witness key: no active key enrolled by your organisation is "
            f"named {name!r} with key ID {blob[:4].hex()}",
            unknown_key=True,
        )
    wk, v = match
    if not v.verify(text_part.encode(), blob[4:]):
        raise CosignatureRefused(
            f"cosignature refused: the signature by {name!r} (key {wk.key_id}) does not verify over "
            f"checkpoint size {cp.size}"
        )
    ts = v.timestamp(blob[4:]) or 0
    existing = session.scalar(
        select(LogCosignature).where(
            LogCosignature.checkpoint_id == cp.id, LogCosignature.witness_key_id == wk.key_id
        )
    )
    if existing is not None:
        existing.line, existing.signed_at = tlog.signature_line(name, blob), datetime.fromtimestamp(ts, UTC)
        session.flush()
        return existing
    row = LogCosignature(
        checkpoint_id=cp.id,
        org_id=org_id,
        witness_key_id=wk.key_id,
        line=tlog.signature_line(name, blob),
        signed_at=datetime.fromtimestamp(ts, UTC),
        at=utcnow(),
    )
    session.add(row)
    session.flush()
    return row


# --- verifying the whole log (an auditor's check) -----------------------------------------------------------


@dataclass
class LogReport:
    ok: bool
    size: int = 0
    leaves_checked: int = 0
    tiles_checked: int = 0
    problems: list[str] = field(default_factory=list)
    checkpoint: tlog.Checkpoint | None = None


def audit_log(
    fetch: Callable[[str], bytes],
    verifiers: Sequence[tlog.NoteVerifier],
    origin: str,
    hash_fn: tlog.HashFn,
    *,
    old_checkpoint: bytes | None = None,
) -> LogReport:
    """Check a log as an outside auditor: ``fetch(path)`` returns ``checkpoint``, ``tile/…`` files and
    ``consistency/<m>/<n>`` (the JSON proof). Every leaf is re-hashed from the entry bundles, the tree
    rebuilt, every hash tile compared with the rebuilt one, the root with the signed checkpoint; with
    ``old_checkpoint`` (a note kept from before), the new tree must extend it (recomputed and by the
    served consistency proof). Each failure is named."""
    report = LogReport(ok=False)
    hs = len(hash_fn(b""))
    try:
        cp = tlog.open_checkpoint(fetch("checkpoint"), origin, verifiers, hs)
    except tlog.NoteError as exc:
        report.problems.append(f"checkpoint refused: {exc}")
        return report
    report.checkpoint, report.size = cp, cp.size
    rebuilt = tlog.MerkleLog(hash_fn)
    try:
        for n in range((cp.size + tlog.TILE_WIDTH - 1) // tlog.TILE_WIDTH):
            width = min(tlog.TILE_WIDTH, cp.size - n * tlog.TILE_WIDTH)
            path = tlog.entries_path(n, width)
            entries = tlog.parse_entry_bundle(fetch(path))
            if len(entries) != width:
                report.problems.append(f"entry bundle {path} holds {len(entries)} entries, expected {width}")
                return report
            for e in entries:
                rebuilt.append(e)
                report.leaves_checked += 1
    except (tlog.TlogError, LookupError, OSError) as exc:
        report.problems.append(f"entries: {exc}")
        return report
    for path, data in rebuilt.tiles(cp.size):
        try:
            served = fetch(path)
        except (LookupError, OSError) as exc:
            report.problems.append(f"tile {path} could not be read: {exc}")
            continue
        report.tiles_checked += 1
        if served != data:
            report.problems.append(
                f"tile {path} does not hash to the checkpoint (it differs from the leaves)"
            )
    root = rebuilt.root(cp.size)
    if root != cp.root_hash:
        report.problems.append(
            f"the leaves do not hash to the checkpoint's root at size {cp.size} (a leaf was altered, "
            "dropped or added)"
        )
    if old_checkpoint is not None:
        try:
            old = tlog.open_checkpoint(old_checkpoint, origin, verifiers, hs)
        except tlog.NoteError as exc:
            report.problems.append(f"the older checkpoint is refused: {exc}")
            old = None
        if old is not None:
            report.problems.extend(_consistency_problems(fetch, old, cp, rebuilt, hash_fn))
    report.ok = not report.problems
    return report


def _consistency_problems(
    fetch: Callable[[str], bytes],
    old: tlog.Checkpoint,
    new: tlog.Checkpoint,
    rebuilt: tlog.MerkleLog,
    hash_fn: tlog.HashFn,
) -> list[str]:
    if old.size > new.size:
        return [f"the log shrank: the older checkpoint has {old.size} leaves, the current one {new.size}"]
    problems = []
    if rebuilt.root(old.size) != old.root_hash:
        problems.append(
            f"consistency with the older checkpoint (size {old.size}) fails: the log's first {old.size} "
            "leaves no longer hash to its root (history was rewritten)"
        )
    try:
        doc = json.loads(fetch(f"consistency/{old.size}/{new.size}"))
        proof = [base64.b64decode(p) for p in doc["proof"]]
        tlog.verify_consistency(old.size, new.size, old.root_hash, new.root_hash, proof, hash_fn)
    except tlog.ProofError as exc:
        problems.append(f"the served consistency proof fails: {exc}")
    except (LookupError, OSError, ValueError, TypeError) as exc:
        problems.append(f"the consistency proof could not be read: {exc}")
    return problems


def local_fetcher(session: Session, keys: LogKeys) -> Callable[[str], bytes]:
    """``fetch`` over this platform's own database, through the same functions the routes serve."""

    def fetch(path: str) -> bytes:
        if path == "checkpoint":
            return current_checkpoint_note(session, keys).encode()
        if path.startswith("consistency/"):
            _, m, n = path.split("/")
            return json.dumps(consistency(session, int(m), int(n), keys)).encode()
        try:
            return read_tile(session, path, keys)[0]
        except LogError as exc:
            raise LookupError(str(exc)) from None

    return fetch


def verify_local(
    session: Session, keys: LogKeys | None = None, *, old_checkpoint: bytes | None = None
) -> LogReport:
    """``fcx log verify`` on the platform itself: its stored leaves and tiles against its checkpoint,
    and every stored leaf hash against its leaf."""
    keys = keys or load_log_keys()
    report = audit_log(
        local_fetcher(session, keys), keys.verifiers, keys.origin, keys.hash_fn, old_checkpoint=old_checkpoint
    )
    for idx, leaf, h in session.execute(select(LogLeaf.idx, LogLeaf.leaf, LogLeaf.leaf_hash)):
        if keys.hash_fn(tlog.LEAF_PREFIX + bytes(leaf)) != bytes(h):
            report.problems.append(f"leaf {idx}: its stored hash is not the hash of its bytes")
    report.ok = not report.problems
    return report


# --- the audit chain, anchored ----------------------------------------------------------------------------


@dataclass
class AnchorReport:
    ok: bool
    anchors_checked: int
    problems: list[str]
    chain_events: int = 0


def verify_audit_anchored(
    session: Session,
    keys: LogKeys | None = None,
    *,
    trusted_keys: dict[str, bytes] | None = None,
    checkpoint_note: bytes | None = None,
) -> AnchorReport:
    """``fcx audit verify``, anchored: the chain must verify on its own (core.audit.verify) AND hold
    every head committed in the log — event ``seq`` present with the committed hash. The log's leaves
    must themselves hash to its latest signed checkpoint (and to ``checkpoint_note``, one kept outside,
    if given), so deleting the audit rows, rewriting the chain head and the log's leaves is caught too.
    """
    keys = keys or load_log_keys()
    problems: list[str] = []
    chain = verify_audit_chain(session, trusted_keys=trusted_keys)
    if not chain.ok:
        problems.append(f"audit chain broken at event {chain.broken_at}: {chain.reason}")
    log_report = verify_local(session, keys, old_checkpoint=checkpoint_note)
    problems.extend(f"log: {p}" for p in log_report.problems)
    pruned = latest_audit_checkpoint(session)
    head = session.get(AuditChainHead, 1)
    checked = 0
    for idx, leaf in session.execute(
        select(LogLeaf.idx, LogLeaf.leaf).where(LogLeaf.kind == "audit_head").order_by(LogLeaf.idx)
    ):
        doc = json.loads(bytes(leaf))
        seq, committed = int(doc["seq"]), str(doc["hash"])
        checked += 1
        if pruned is not None and seq <= pruned.last_seq:
            if seq == pruned.last_seq and pruned.last_hash != committed:
                problems.append(
                    f"audit head {seq} committed in log leaf {idx} differs from the pruning checkpoint"
                )
            continue
        ev_hash = session.scalar(select(AuditEvent.hash).where(AuditEvent.id == seq))
        if ev_hash is None:
            have = head.seq if head is not None else 0
            problems.append(
                f"audit event {seq}, committed in log leaf {idx}, is missing: the chain ends at {have} "
                "(its last events were deleted)"
            )
        elif ev_hash != committed:
            problems.append(
                f"audit event {seq} differs from the head committed in log leaf {idx} (rewritten)"
            )
    return AnchorReport(not problems, checked, problems, chain.checked)


# --- statements (可离线验证的声明) -------------------------------------------------------------------------


class StatementRefused(ValueError):
    """The statement asked for is not true of the log (an entry still in force, no such revocation)."""


def _subject_entry_ids(session: Session, subject_id: uuid.UUID | None, tag: str | None) -> list[uuid.UUID]:
    if subject_id is not None:
        return list(session.scalars(select(Entry.id).where(Entry.subject_id == subject_id)))
    if tag is None:
        raise StatementRefused("give the subject's id or one of its tags")
    subjects = (
        select(SubjectIdentifier.subject_id)
        .join(
            IdentifierTag,
            (IdentifierTag.type == SubjectIdentifier.type)
            & (IdentifierTag.value_index == SubjectIdentifier.value_index),
        )
        .where(IdentifierTag.tag == tag)
    )
    return list(session.scalars(select(Entry.id).where(Entry.subject_id.in_(subjects))))


def make_statement(
    session: Session,
    *,
    subject_id: uuid.UUID | None = None,
    tag: str | None = None,
    entry_id: uuid.UUID | None = None,
    keys: LogKeys | None = None,
    now: datetime | None = None,
) -> str:
    """A signed statement (a signed note by the log key), checkable offline with the log's verifier key:

    * with ``entry_id``: "entry X was revoked/repaired/expired on D" — its last leaf shows it;
    * else, of a subject (its id, or a tag): "no entry on the public list as of T" — every leaf of
      its entries is carried, the last of each showing the entry ended (none at all: no leaf).

    Each leaf comes with its inclusion proof in the checkpoint carried; refused when untrue."""
    keys = keys or load_log_keys()
    now = now or utcnow()
    entry_ids = [entry_id] if entry_id is not None else _subject_entry_ids(session, subject_id, tag)
    rows = (
        list(session.scalars(select(LogLeaf).where(LogLeaf.entry_id.in_(entry_ids)).order_by(LogLeaf.idx)))
        if entry_ids
        else []
    )
    last: dict[uuid.UUID, LogLeaf] = {}
    for r in rows:
        if r.entry_id is not None:
            last[r.entry_id] = r
    if entry_id is not None:
        row = last.get(entry_id)
        if row is None:
            raise StatementRefused(f"entry {entry_id} has no leaf in the log")
        status = json.loads(bytes(row.leaf))["event"].get("status")
        if status not in _LIFTED:
            raise StatementRefused(
                f"entry {entry_id} is {status!r} in the log, not revoked, repaired or expired"
            )
        claim: dict[str, Any] = {
            "kind": "entry_ended",
            "entry_id": str(entry_id),
            "status": status,
            "on": row.at.date().isoformat(),
            "leaf_index": row.idx,
        }
    else:
        in_force = {
            str(eid): json.loads(bytes(r.leaf))["event"].get("status")
            for eid, r in last.items()
            if json.loads(bytes(r.leaf))["event"].get("status") in {s.value for s in IN_FORCE}
        }
        if in_force:
            raise StatementRefused(
                "the subject has entries in force in the log: " + ", ".join(sorted(in_force))
            )
        claim = {"kind": "no_entry_in_force", "as_of": now.isoformat()}
    cp = checkpoint_covering(session, max((r.idx for r in rows), default=-1), keys)
    t = tree(session, keys)
    body = {
        "claim": claim,
        "subject": {"subject_id": str(subject_id) if subject_id else None, "tag": tag},
        "issued_at": now.isoformat(),
        "origin": keys.origin,
        "checkpoint": with_cosignatures(session, cp),
        "leaves": [_leaf_out(t, r, cp.size) for r in rows],
    }
    text_ = f"{STATEMENT_HEADER}\n{canonical_json(body).decode()}\n"
    return tlog.sign_note(text_, [keys.signer]).decode()


def verify_statement(
    note: str | bytes, verifiers: Sequence[tlog.NoteVerifier], origin: str, hash_fn: tlog.HashFn
) -> dict[str, Any]:
    """The statement's body, once its signature, its checkpoint, every leaf's inclusion proof and the
    claim against the leaves are checked; :class:`tlog.TlogError` naming what failed otherwise."""
    raw = note.encode() if isinstance(note, str) else note
    opened = tlog.open_note(raw, verifiers)
    header, _, rest = opened.text.partition("\n")
    if header != STATEMENT_HEADER:
        raise tlog.NoteError(f"not a log statement (first line {header!r})")
    body = json.loads(rest)
    cp = tlog.open_checkpoint(body["checkpoint"].encode(), origin, verifiers, len(hash_fn(b"")))
    statuses: dict[str, str] = {}
    for leaf in body["leaves"]:
        data = base64.b64decode(leaf["leaf"])
        proof = [base64.b64decode(p) for p in leaf["proof"]]
        tlog.verify_inclusion(
            leaf["index"], cp.size, tlog.leaf_hash(data, hash_fn), proof, cp.root_hash, hash_fn
        )
        event = json.loads(data).get("event") or {}
        statuses[str(event.get("entry_id"))] = str(event.get("status"))
    claim = body["claim"]
    if claim["kind"] == "entry_ended":
        if statuses.get(claim["entry_id"]) != claim["status"] or claim["status"] not in _LIFTED:
            raise tlog.ProofError("the statement's leaves do not show the entry ended as claimed")
    elif claim["kind"] == "no_entry_in_force":
        live = [e for e, s in statuses.items() if s in {x.value for x in IN_FORCE}]
        if live:
            raise tlog.ProofError(f"the statement's leaves show entries in force: {', '.join(live)}")
    else:
        raise tlog.NoteError(f"unknown claim {claim['kind']!r}")
    return dict(body)


# --- scheduled --------------------------------------------------------------------------------------------


def run_jobs(session: Session) -> dict[str, Any]:
    """Commit the audit chain's head and publish a checkpoint when the log grew (workflows.jobs)."""
    keys = load_log_keys()
    committed = commit_audit_head(session, keys)
    before = latest_checkpoint(session)
    cp = publish_checkpoint(session, keys)
    return {
        "log_audit_head_committed": committed is not None,
        "log_checkpoint_published": before is None or cp.id != before.id,
        "log_size": cp.size,
    }


def profile_problem(keys: LogKeys) -> str | None:
    """Whether the log key is of the platform's profile (a profile change calls for `fcx log rotate-key`)."""
    try:
        if keys.signer.private_key.algorithm != active().signature_algorithm:
            return (
                f"the log key in {keys.path} is {keys.signer.private_key.algorithm}, the platform signs with "
                f"{active().signature_algorithm}: run `fcx log rotate-key`"
            )
    except CryptoError as exc:
        return str(exc)
    return None
