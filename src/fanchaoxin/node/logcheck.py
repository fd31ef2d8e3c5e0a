"""The node's check of the transparency log (透明日志, #19), and witness cosigning (见证副署).

At every sync (:class:`SyncLog`, called from :mod:`.sync`):

1. **the checkpoint** (``GET /v1/log/checkpoint``, a C2SP signed note) is opened with the log key pinned
   from the signed manifest (``manifest["log"]``: origin, verifier key, profile); a note signed by no
   pinned key, or whose pinned signature fails, is refused;
2. **consistency** with the last checkpoint this node accepted (``GET /v1/log/proof/consistency``,
   ``core.tlog.verify_consistency``): a log that shrank, forked or rewrote a leaf is refused. Equal
   sizes need equal roots (two roots for one size is a split view);
3. **witnesses**: cosignatures on the checkpoint by witnesses the enterprise configured
   (``log_witnesses``, verifier keys) are verified; one that fails is refused by name, and with
   ``log_quorum`` set, a checkpoint with fewer verified cosignatures is refused (a split view shown to
   this node lacks the cosignatures of the witnesses who saw the other tree);
4. **inclusion** of each applied feed event: the leaf is rebuilt from the event as the platform builds
   it (:func:`feed_leaf`) and compared with the log's leaf of that feed seq, read from the entry bundles
   (``tile/entries/…``) and authenticated against the checkpoint's root through the hash tiles
   (``core.tlog.TileReader``): one bundle and one tile per 256 events, never a request per event. The
   log's feed leaves must follow one another (seq s, then s + 1): a dropped or repeated event is
   refused. Events the checkpoint does not cover yet wait in ``node_log_pending`` and are checked at a
   later sync;
5. after all that, the node **cosigns** the checkpoint (C2SP tlog-cosignature, with its enrolled node key)
   and posts it to ``POST /v1/log/cosignature``; a cosignature the platform does not take costs a log
   line, never the sync.

A failure raises :class:`LogRefused` (a ``ProtocolError``, so the sync refuses it as it refuses a bad
delta); the message says what failed and is kept in ``log_alarm`` for ``fcx node status``. The accepted
state (size, root, the note) moves only when everything verified, so every later sync checks again
against the last good checkpoint.

A department is a witness too (:func:`witness_once`, ``fcx node witness``): the same checkpoint and
consistency checks, with the state in a small JSON file, and its own key.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fanchaoxin.core import crypto
from fanchaoxin.core import tlog as T
from fanchaoxin.node import relay
from fanchaoxin.node.client import PlatformClient, PlatformRefused, PlatformUnavailable
from fanchaoxin.node.store import Store, now
from fanchaoxin.sharing import protocol as P

log = logging.getLogger("fanchaoxin.node.logcheck")

CHECKPOINT = "/v1/log/checkpoint"
CONSISTENCY = "/v1/log/proof/consistency"
INCLUSION = "/v1/log/proof/inclusion"
COSIGNATURE = "/v1/log/cosignature"
LOG_KEY = "/v1/log/key"
NODE_KEYS = "/v1/nodes/keys"  # where a department enrols its witness key (as a node enrols its own)
TILES = "/v1/log/"

# node_config names (the accepted state; pending events are rows of node_log_pending)
C_ORIGIN = "log_origin"
C_VKEY = "log_vkey"
C_PROFILE = "log_profile"
C_HASH = "log_hash"
C_SIZE = "log_size"
C_ROOT = "log_root"
C_NOTE = "log_checkpoint"
C_CURSOR = "log_cursor"  # the next leaf index to read
C_FEED_SEQ = "log_feed_seq"  # the feed seq of the last feed leaf read (events up to it are checked)
C_ANCHOR = "log_anchor_seq"  # a feed seq whose leaf must be found before reading on (snapshot, first use)
C_ALARM = "log_alarm"
C_CHECKED_AT = "log_checked_at"
C_COSIGNED = "log_cosigned"  # "<size> <root b64>" of the last checkpoint this node cosigned
C_WITNESSES = "log_witnesses"  # JSON list of witness verifier keys the enterprise trusts
C_QUORUM = "log_quorum"
C_WITNESS_NAME = "log_witness_name"
C_BEGINS = "log_begins_at_feed_seq"  # set when the log began after the feed (older events predate it)


class LogRefused(P.ProtocolError):
    """The log's checkpoint, a proof, a tile, a leaf or a cosignature was refused; the message says which."""


# --- the log's key and leaves ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LogKey:
    """The log as the signed manifest names it: origin, the checkpoint signer, the profile of its key and
    the profile its tree hashes with (the same unless the platform changed profile: the tree keeps its
    hash, the key becomes the new profile's). ``previous``: the key this node accepted checkpoints from
    before a rotation, still good for the checkpoints it signed."""

    origin: str
    verifier: T.NoteVerifier
    profile: crypto.Profile
    hash_profile: crypto.Profile
    previous: tuple[T.NoteVerifier, ...] = ()

    @property
    def vkey(self) -> str:
        return self.verifier.vkey()

    @property
    def verifiers(self) -> list[T.NoteVerifier]:
        return [self.verifier, *(v for v in self.previous if v.key_id != self.verifier.key_id)]

    def hash_fn(self, data: bytes) -> bytes:
        return self.hash_profile.digest(data)

    @property
    def hash_size(self) -> int:
        return self.hash_profile.digest_size


_HASH_PROFILES = {"SHA-256": "international", "SM3": "gm"}


def log_key(
    document: dict[str, Any] | None, *, where: str = "manifest", previous_vkey: str | None = None
) -> LogKey | None:
    """The ``log`` object of the manifest (or ``/v1/log/key``'s answer): None when absent. Its ``hash``
    ("SHA-256" or "SM3") when given, else the key's profile's hash."""
    if not document:
        return None
    try:
        origin, vkey, name = str(document["origin"]), str(document["vkey"]), str(document["profile"])
    except (KeyError, TypeError):
        raise LogRefused(f"{where}: its log names no origin, vkey and profile") from None
    hash_name = document.get("hash")
    if hash_name is not None and hash_name not in _HASH_PROFILES:
        raise LogRefused(f"{where}: the log's hash {hash_name!r} is neither SHA-256 nor SM3")
    try:
        key_profile = crypto.profile(name)
        hash_profile = crypto.profile(_HASH_PROFILES[hash_name]) if hash_name else key_profile
        previous = (T.NoteVerifier.from_vkey(previous_vkey),) if previous_vkey else ()
        return LogKey(origin, T.NoteVerifier.from_vkey(vkey), key_profile, hash_profile, previous)
    except (T.TlogError, crypto.CryptoError) as exc:
        raise LogRefused(f"{where}: the log key: {exc}") from None


def feed_leaf(line: dict[str, Any]) -> bytes:
    """The log leaf of one feed event as a delta carries it (``{"seq", "event", "at", "record"}``).

    As the platform appends it (sharing.translog): canonical JSON of
    ``{"type": "feed", "seq": <feed seq>, "event": <the shared record with its tags>}``.
    """
    return P.canonical_json({"type": "feed", "seq": int(line["seq"]), "event": line["record"]})


def _b64(value: object, what: str) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (ValueError, binascii.Error):
        raise LogRefused(f"{what} is not base64") from None


# --- witness cosignatures (c2sp.org/tlog-cosignature) -----------------------------------------------------

# A witness is core.tlog's cosigner verifier: Ed25519 cosignatures are tlog-cosignature's type 0x04, SM2
# ones (the gm profile) signed-note's escape 0xff with core.tlog's identifier (NOTE_COSIGNATURE_SM2).


def witness(name: str, public_key: bytes) -> T.NoteVerifier:
    try:
        return T.NoteVerifier(name, public_key, cosigner=True)
    except T.TlogError as exc:
        raise LogRefused(f"witness {name!r}: {exc}") from None


def witness_from_vkey(vkey: str) -> T.NoteVerifier:
    try:
        verifier = T.NoteVerifier.from_vkey(vkey.strip())
    except T.TlogError as exc:
        raise LogRefused(f"witness key: {exc}") from None
    if not verifier.cosigner:
        raise LogRefused(f"witness key {verifier.name!r} is a note key, not a cosignature key (type 0x04)")
    return verifier


def cosign(text: str, name: str, key: crypto.SigningKey, timestamp: int | None = None) -> str:
    """The cosignature line (``— <name> base64(key ID ‖ u64 time ‖ signature)``, with its newline)."""
    clock = time.time if timestamp is None else (lambda: float(timestamp))
    try:
        return T.NoteSigner(name, key, cosigner=True, clock=clock).signature_line(text.encode())
    except T.TlogError as exc:
        raise LogRefused(f"cosigning as {name!r}: {exc}") from None


def split_note(note: bytes) -> tuple[str, list[tuple[str, bytes]]]:
    """A signed note's text and its signature lines as ``(name, key ID ‖ signature)``."""
    try:
        return T.split_note(note)
    except T.TlogError as exc:
        raise LogRefused(f"checkpoint: {exc}") from None


@dataclass(frozen=True)
class Cosignatures:
    verified: tuple[str, ...]  # names of known witnesses whose cosignature verified
    unknown: tuple[str, ...]  # lines by a known witness name with another key ID


def check_cosignatures(note: bytes, witnesses: Sequence[T.NoteVerifier], quorum: int = 0) -> Cosignatures:
    """Verify the cosignatures of known ``witnesses`` on ``note``; refuse a bad one, or too few."""
    text, lines = split_note(note)
    known = {(w.name, w.key_id): w for w in witnesses}
    names = {w.name for w in witnesses}
    verified: list[str] = []
    unknown: list[str] = []
    for name, blob in lines:
        w = known.get((name, blob[:4]))
        if w is None:
            if name in names:
                unknown.append(f"{name} (key {blob[:4].hex()})")
            continue
        if not w.verify(text.encode(), blob[4:]):
            raise LogRefused(f"checkpoint: the cosignature by witness {name!r} does not verify")
        verified.append(name)
    if len(set(verified)) < quorum:
        detail = f"; cosignatures from an unknown key: {', '.join(unknown)}" if unknown else ""
        raise LogRefused(
            f"checkpoint: {len(set(verified))} of the {quorum} witness cosignatures required "
            f"(verified: {', '.join(verified) or 'none'}){detail}"
        )
    return Cosignatures(tuple(verified), tuple(unknown))


def signing_key_of(key: object) -> crypto.SigningKey:
    """A core.crypto key handle for the node key (:func:`relay.ensure_node_key` gives it)."""
    if isinstance(key, crypto.SigningKey):
        return key
    held = getattr(key, "key", None)
    if isinstance(held, crypto.SigningKey):  # sharing.protocol's SigningKey (#18): id, handle, profile
        return held
    seed, public = getattr(key, "seed", None), getattr(key, "public", None)
    if isinstance(seed, bytes) and isinstance(public, bytes):  # sharing.protocol's Ed25519 key
        return crypto.profile_of_public_key(public).load_signing_key(seed, public)
    raise LogRefused(f"the node key ({type(key).__name__}) cannot sign cosignatures")


# --- the log, read over HTTP -----------------------------------------------------------------------------


def _get(client: PlatformClient, url: str, what: str) -> bytes:
    try:
        return client.get_bytes(url)
    except PlatformRefused as exc:
        raise LogRefused(f"{what}: {exc}") from None


def _get_json(client: PlatformClient, url: str, what: str) -> dict[str, Any]:
    data = _get(client, url, what)
    try:
        body = json.loads(data)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise LogRefused(f"{what}: not a JSON object")
    return body


def open_checkpoint(key: LogKey, note: bytes) -> T.Checkpoint:
    try:
        return T.open_checkpoint(note, key.origin, key.verifiers, key.hash_size)
    except T.TlogError as exc:
        raise LogRefused(f"checkpoint: {exc}") from None


def check_consistency(
    client: PlatformClient, key: LogKey, old_size: int, old_root: bytes, new: T.Checkpoint
) -> None:
    """That the tree ``old_size``/``old_root`` is a prefix of ``new`` (a proof fetched when needed)."""
    if new.size < old_size:
        raise LogRefused(
            f"consistency: the log shrank from size {old_size} to {new.size} (history dropped or rolled back)"
        )
    proof: list[bytes] = []
    if 0 < old_size < new.size:
        body = _get_json(client, f"{CONSISTENCY}?from={old_size}&to={new.size}", "consistency proof")
        if body.get("from") != old_size or body.get("to") != new.size:
            raise LogRefused(
                f"consistency proof: asked {old_size}→{new.size}, got {body.get('from')}→{body.get('to')}"
            )
        proof = [_b64(h, "consistency proof") for h in body.get("proof") or []]
    try:
        T.verify_consistency(old_size, new.size, old_root, new.root_hash, proof, key.hash_fn)
    except T.ProofError as exc:
        if old_size == new.size:
            raise LogRefused(
                f"split view: the log shows size {new.size} with another root than the one accepted before"
            ) from None
        raise LogRefused(f"consistency proof {old_size}→{new.size}: {exc}") from None


@dataclass
class LeafReader:
    """The leaves of the tree of one checkpoint, read from entry bundles and authenticated by its tiles."""

    client: PlatformClient
    key: LogKey
    checkpoint: T.Checkpoint
    bundles: dict[int, list[bytes]] = field(default_factory=dict)
    tiles: T.TileReader | None = None

    def __post_init__(self) -> None:
        self.tiles = T.TileReader(
            self.checkpoint.size, self._fetch_tile, self.key.hash_fn, root=self.checkpoint.root_hash
        )

    def _fetch_tile(self, path: str) -> bytes:
        return _get(self.client, TILES + path, f"tile {path}")

    def leaf(self, index: int) -> tuple[bytes, bytes]:
        """Leaf ``index``'s bytes and hash, refused unless the checkpoint's tiles commit to that hash."""
        n, at = divmod(index, T.TILE_WIDTH)
        if n not in self.bundles:
            width = min(T.TILE_WIDTH, self.checkpoint.size - n * T.TILE_WIDTH)
            path = T.entries_path(n, width)
            try:
                entries = T.parse_entry_bundle(_get(self.client, TILES + path, f"entry bundle {path}"))
            except T.TileError as exc:
                raise LogRefused(f"entry bundle {path}: {exc}") from None
            if len(entries) != width:
                raise LogRefused(f"entry bundle {path} holds {len(entries)} entries, expected {width}")
            self.bundles[n] = entries
        data = self.bundles[n][at]
        assert self.tiles is not None
        try:
            committed = self.tiles.node(0, index)
        except T.TlogError as exc:
            raise LogRefused(f"tile: {exc}") from None
        if T.leaf_hash(data, self.key.hash_fn) != committed:
            raise LogRefused(f"leaf {index} of the entry bundles does not hash to the checkpoint's tile")
        return data, committed


def _parse_leaf(index: int, data: bytes) -> dict[str, Any]:
    try:
        leaf = json.loads(data)
    except ValueError:
        leaf = None
    if not isinstance(leaf, dict) or not isinstance(leaf.get("type"), str):
        raise LogRefused(f"leaf {index} of the log is not a JSON object with a type")
    return leaf


# --- at every sync -----------------------------------------------------------------------------------------


def _witnesses(cfg: dict[str, str]) -> list[T.NoteVerifier]:
    try:
        return [witness_from_vkey(v) for v in json.loads(cfg.get(C_WITNESSES) or "[]")]
    except ValueError as exc:
        raise LogRefused(f"the node's {C_WITNESSES}: {exc}") from None


class NoLog:
    """The platform names no log in its manifest (a platform from before #19): nothing to check."""

    def check(self, feed: P.FeedFile) -> None:
        pass

    def close(self) -> None:
        pass


class SyncLog:
    """One sync's check of the log: :meth:`open` before anything is applied, :meth:`check` for each
    snapshot and delta before it is applied, :meth:`close` after the last (then the node cosigns)."""

    def __init__(
        self, store: Store, client: PlatformClient, key: LogKey, checkpoint: T.Checkpoint, note: bytes
    ) -> None:
        self.store, self.client, self.key = store, client, key
        self.checkpoint, self.note = checkpoint, note
        self.reader = LeafReader(client, key, checkpoint)
        cfg = store.get_config()
        self.cursor: int | None = int(cfg[C_CURSOR]) if cfg.get(C_CURSOR) else None
        self.feed_seq: int | None = int(cfg[C_FEED_SEQ]) if cfg.get(C_FEED_SEQ) else None
        self.anchor: int | None = int(cfg[C_ANCHOR]) if cfg.get(C_ANCHOR) else None
        if self.cursor is None and self.anchor is None:  # first contact: from the local head on
            self.anchor = int(cfg.get("head", "0"))
        self.records: dict[int, Any] = {}  # this sync's events as sent, to say how one differs
        with store.read() as conn:
            self.pending: dict[int, bytes] = dict(
                conn.exec_driver_sql("SELECT seq, leaf_hash FROM node_log_pending").all()
            )

    @classmethod
    def open(cls, store: Store, client: PlatformClient, manifest: dict[str, Any]) -> SyncLog | NoLog:
        """Fetch and check the checkpoint: signature, witnesses, consistency; then the events that waited."""
        cfg = store.get_config()
        try:
            # the key accepted before stays good for what it signed: after a rotation the latest checkpoint
            # may still be the old key's until the platform signs the next
            key = log_key(manifest.get("log"), previous_vkey=cfg.get(C_VKEY) or None)
            if key is None:
                if cfg.get(C_SIZE):
                    raise LogRefused("the manifest names no log any more, but this node has followed one")
                return NoLog()
            if cfg.get(C_ORIGIN) and cfg[C_ORIGIN] != key.origin:
                raise LogRefused(
                    f"the manifest names log {key.origin!r}, this node follows {cfg[C_ORIGIN]!r}"
                )
            note = _get(client, CHECKPOINT, "checkpoint")
            checkpoint = open_checkpoint(key, note)
            check_cosignatures(note, _witnesses(cfg), int(cfg.get(C_QUORUM) or 0))
            if cfg.get(C_SIZE):
                old_root = _b64(cfg[C_ROOT], f"the node's {C_ROOT}")
                check_consistency(client, key, int(cfg[C_SIZE]), old_root, checkpoint)
            checked = cls(store, client, key, checkpoint, note)
            checked._read()
        except LogRefused as exc:
            alarm(store, str(exc))
            raise
        return checked

    def check(self, feed: P.FeedFile) -> None:
        """Before a snapshot or a delta is applied: its events are in the log, or wait for it."""
        try:
            if feed.format == P.SNAPSHOT_FORMAT:
                # A snapshot's records are the state at its seq, not events: what the log can show is
                # that the feed reached that seq. The events after it are checked one by one.
                self.anchor, self.cursor, self.feed_seq = int(feed.header["seq"]), None, None
                self.pending = {s: h for s, h in self.pending.items() if s > self.anchor}
            else:
                for line in feed.records:
                    seq = int(line["seq"])
                    if self.feed_seq is not None and seq <= self.feed_seq:
                        continue  # before the log's first event (a log begun after the feed)
                    self.pending[seq] = T.leaf_hash(feed_leaf(line), self.key.hash_fn)
                    self.records[seq] = line["record"]
            self._read()
        except LogRefused as exc:
            alarm(self.store, str(exc))
            raise
        self._save()

    def close(self) -> None:
        """Everything verified: keep the checkpoint as the last one seen, and cosign it."""
        self._save(accepted=True)
        try:
            self._cosign()
        except (LogRefused, PlatformRefused, PlatformUnavailable, crypto.CryptoError) as exc:
            log.warning("the log checkpoint of size %s was not cosigned: %s", self.checkpoint.size, exc)

    # --- reading the leaves -------------------------------------------------------------------------------

    def _find_anchor(self) -> bool:
        """Locate the leaf of feed seq ``anchor``; False while the checkpoint does not cover it yet."""
        assert self.anchor is not None
        if self.anchor > 0:
            try:
                body = _get_json(
                    self.client, f"{INCLUSION}?feed_seq={self.anchor}", f"feed event {self.anchor}"
                )
            except LogRefused:
                body = None  # no leaf for it (404): the log may begin after it
            if body is not None:
                leaves = body.get("leaves") or []
                index = int(leaves[0].get("index", -1)) if leaves and isinstance(leaves[0], dict) else -1
                if not 0 <= index < self.checkpoint.size:
                    return False  # not covered by this checkpoint yet: at a later sync
                leaf = _parse_leaf(index, self.reader.leaf(index)[0])
                if leaf.get("type") != "feed" or leaf.get("seq") != self.anchor:
                    raise LogRefused(
                        f"the platform names leaf {index} for feed event {self.anchor}, it is another"
                    )
                self._anchored(index + 1, self.anchor)
                return True
        first = self._first_feed_leaf()
        if first is None:  # no feed leaf in this checkpoint yet
            if self.anchor == 0:
                self._anchored(0, 0)
                return True
            return False
        index, begins = first
        if begins <= self.anchor:
            raise LogRefused(
                f"the log has no leaf for feed event {self.anchor}, though it holds feed event {begins}"
            )
        if begins > 1:
            # A log added to a platform that already had a feed begins at its first logged event; the
            # events before it predate the log and cannot be checked (said once, and in the status).
            log.warning(
                "the transparency log begins at feed event %s: the events before it are not in it", begins
            )
            with self.store.transaction() as conn:
                self.store.set_config(conn, **{C_BEGINS: str(begins)})
        self._anchored(index, begins - 1)
        return True

    def _anchored(self, cursor: int, feed_seq: int) -> None:
        self.cursor, self.feed_seq, self.anchor = cursor, feed_seq, None
        self.pending = {s: h for s, h in self.pending.items() if s > feed_seq}

    def _first_feed_leaf(self) -> tuple[int, int] | None:
        """The index and seq of the log's first feed leaf (past audit-head leaves, a few bundles at most)."""
        for index in range(min(self.checkpoint.size, 4 * T.TILE_WIDTH)):
            leaf = _parse_leaf(index, self.reader.leaf(index)[0])
            if leaf["type"] == "feed":
                seq = leaf.get("seq")
                if not isinstance(seq, int) or seq < 1:
                    raise LogRefused(f"leaf {index} of the log is a feed event without a sequence number")
                return index, seq
        return None

    def _read(self) -> None:
        """Read the log's leaves from the cursor while they cover events this node applied."""
        if self.anchor is not None and not self._find_anchor():
            return
        assert self.cursor is not None and self.feed_seq is not None
        last_pending = max(self.pending, default=self.feed_seq)
        index = self.cursor
        while index < self.checkpoint.size and self.feed_seq < last_pending:
            data, hashed = self.reader.leaf(index)
            leaf = _parse_leaf(index, data)
            if leaf["type"] == "feed":
                seq = leaf.get("seq")
                if seq != self.feed_seq + 1:
                    raise LogRefused(
                        f"leaf {index} of the log is feed event {seq}, expected {self.feed_seq + 1} "
                        "(the log skips, repeats or reorders feed events)"
                    )
                applied = self.pending.pop(seq, None)
                if applied is not None and applied != hashed:
                    raise LogRefused(
                        f"feed event {seq} as the platform sent it differs from leaf {index} of the log "
                        f"({self._difference(seq, leaf)})"
                    )
                self.feed_seq = seq
            index += 1
        self.cursor = index

    def _difference(self, seq: int, leaf: dict[str, Any]) -> str:
        sent, logged = self.records.get(seq), leaf.get("event")
        if not isinstance(sent, dict) or not isinstance(logged, dict):
            return "an event edited, or shown differently to this node"
        fields = sorted(k for k in set(sent) | set(logged) if sent.get(k) != logged.get(k))
        if fields == ["tags"]:
            return (
                "only its tags differ: a listing shown to this node under other identifiers, or the "
                "platform's OPRF keys or the subject's identifiers changed after it was logged"
            )
        return f"fields that differ: {', '.join(fields)}"

    # --- state -------------------------------------------------------------------------------------------

    def _save(self, *, accepted: bool = False) -> None:
        values: dict[str, object] = {
            C_CURSOR: "" if self.cursor is None else str(self.cursor),
            C_FEED_SEQ: "" if self.feed_seq is None else str(self.feed_seq),
            C_ANCHOR: "" if self.anchor is None else str(self.anchor),
        }
        if accepted:
            values.update(
                {
                    C_ORIGIN: self.key.origin,
                    C_VKEY: self.key.vkey,
                    C_PROFILE: self.key.profile.name,
                    C_HASH: self.key.hash_profile.hash_algorithm,
                    C_SIZE: str(self.checkpoint.size),
                    C_ROOT: base64.b64encode(self.checkpoint.root_hash).decode(),
                    C_NOTE: self.note.decode(),
                    C_CHECKED_AT: repr(now()),
                    C_ALARM: "",
                }
            )
        with self.store.transaction() as conn:
            conn.exec_driver_sql("DELETE FROM node_log_pending")
            if self.pending:
                t = now()
                conn.exec_driver_sql(
                    "INSERT INTO node_log_pending(seq, leaf_hash, added_at) VALUES (?, ?, ?)",
                    [(s, h, t) for s, h in sorted(self.pending.items())],
                )
            self.store.set_config(conn, **values)

    def _cosign(self) -> None:
        key = relay.enrolled_node_key(self.store)
        if key is None:
            return  # receipts and cosignatures need the node key the platform enrolled
        state = f"{self.checkpoint.size} {base64.b64encode(self.checkpoint.root_hash).decode()}"
        cfg = self.store.get_config()
        if cfg.get(C_COSIGNED) == state:
            return
        name = cfg.get(C_WITNESS_NAME) or f"fcx-node/{cfg.get(relay.NODE_KEY_ID)}"
        text = self.checkpoint.text()
        line = cosign(text, name, signing_key_of(key))
        self.client.request("POST", COSIGNATURE, json={"checkpoint": self.note.decode(), "cosignature": line})
        with self.store.transaction() as conn:
            self.store.set_config(conn, **{C_COSIGNED: state})


def alarm(store: Store, message: str) -> None:
    """Log the refusal and keep it for ``fcx node status`` (cleared by the next sync that verifies)."""
    log.error("transparency log: %s", message)
    with store.transaction() as conn:
        store.set_config(conn, **{C_ALARM: message})


def status(store: Store) -> dict[str, Any]:
    """Where the node stands with the log (for ``fcx node status``)."""
    cfg = store.get_config()
    with store.read() as conn:
        pending, oldest = conn.exec_driver_sql("SELECT count(*), min(added_at) FROM node_log_pending").one()
    return {
        "origin": cfg.get(C_ORIGIN) or None,
        "size": int(cfg[C_SIZE]) if cfg.get(C_SIZE) else None,
        "root": cfg.get(C_ROOT) or None,
        "checked_at": float(cfg[C_CHECKED_AT]) if cfg.get(C_CHECKED_AT) else None,
        "checked_up_to_feed_seq": int(cfg[C_FEED_SEQ]) if cfg.get(C_FEED_SEQ) else None,
        "events_waiting": int(pending),
        "oldest_waiting_since": oldest,
        "alarm": cfg.get(C_ALARM) or None,
        "log_begins_at_feed_seq": int(cfg[C_BEGINS]) if cfg.get(C_BEGINS) else None,
        "cosigned": cfg.get(C_COSIGNED) or None,
        "witnesses": [witness_from_vkey(v).name for v in json.loads(cfg.get(C_WITNESSES) or "[]")],
        "quorum": int(cfg.get(C_QUORUM) or 0),
    }


def set_witnesses(store: Store, vkeys: Sequence[str], quorum: int) -> list[T.NoteVerifier]:
    """The witnesses this enterprise trusts and how many of them must have cosigned a checkpoint."""
    witnesses = [witness_from_vkey(v) for v in vkeys]
    if not 0 <= quorum <= len(witnesses):
        raise LogRefused(f"a quorum of {quorum} needs at least {quorum} witnesses, {len(witnesses)} given")
    with store.transaction() as conn:
        store.set_config(
            conn, **{C_WITNESSES: json.dumps([w.vkey() for w in witnesses]), C_QUORUM: str(quorum)}
        )
    return witnesses


def compare(store: Store, client: PlatformClient, note: bytes) -> T.Checkpoint:
    """A checkpoint obtained elsewhere (another enterprise, a department, a mirror), checked against this
    node's: same log key, known witnesses' cosignatures valid, and consistent with the one accepted here
    (same size, same root; else a consistency proof either way). A conflict is a split view: refused
    and kept as the alarm."""
    cfg = store.get_config()
    try:
        if not cfg.get(C_SIZE):
            raise LogRefused("this node has accepted no checkpoint yet: sync first")
        key = log_key(
            {
                "origin": cfg[C_ORIGIN],
                "vkey": cfg[C_VKEY],
                "profile": _profile_of(cfg),
                "hash": cfg.get(C_HASH),
            },
            where="node",
        )
        assert key is not None
        other = open_checkpoint(key, note)
        check_cosignatures(note, _witnesses(cfg))
        own_size, own_root = int(cfg[C_SIZE]), _b64(cfg[C_ROOT], C_ROOT)
        own = T.Checkpoint(key.origin, own_size, own_root)
        if other.size == own_size and other.root_hash != own_root:
            raise LogRefused(
                f"split view: a checkpoint of size {own_size} with another root than this node's "
                f"({base64.b64encode(other.root_hash).decode()} against {cfg[C_ROOT]})"
            )
        if other.size > own_size:
            check_consistency(client, key, own_size, own_root, other)
        else:
            check_consistency(client, key, other.size, other.root_hash, own)
    except LogRefused as exc:
        alarm(store, str(exc))
        raise
    return other


def _profile_of(cfg: dict[str, str]) -> str:
    return str(cfg.get(C_PROFILE) or crypto.active().name)


# --- a department's witness --------------------------------------------------------------------------------


@dataclass
class WitnessResult:
    size: int
    root: str
    cosignature: str
    posted: bool
    enrolled_key_id: str | None = None


def platform_profile(client: PlatformClient) -> str:
    """The crypto profile the platform's log key is of (``GET /v1/log/key``): a department's witness key
    is made of it, since the platform enrols only keys of its own profile."""
    name = _get_json(client, LOG_KEY, "log key").get("profile")
    try:
        return crypto.profile(str(name)).name
    except crypto.CryptoError:
        raise LogRefused(f"log key: the platform names an unknown crypto profile {name!r}") from None


def enrol_witness_key(client: PlatformClient, key: crypto.SigningKey, *, label: str = "") -> str:
    """Enrol the witness key's public half with the platform (``POST /v1/nodes/keys``, open to department
    officers for this) so its cosignatures are taken; the key id (its fingerprint). Enrolling the same key
    again is answered as done; a key of another profile is refused by the platform, naming both."""
    public = key.public_bytes()
    expected = P.fingerprint(public)
    answer = client.request("POST", NODE_KEYS, json={"public_key": P.b64(public), "label": label}).json()
    got = answer.get("key_id") if isinstance(answer, dict) else None
    if got != expected:
        raise LogRefused(f"witness key: the platform enrolled key {got!r}, not this witness's {expected}")
    return expected


def load_witness_key(path: Path, profile_name: str | None = None) -> crypto.SigningKey:
    """The department witness key in ``path`` (JSON: profile, private, public), made if missing."""
    if path.exists():
        stored = json.loads(path.read_text())
        p = crypto.profile(str(stored["profile"]))
        return p.load_signing_key(_b64(stored["private"], "private"), _b64(stored["public"], "public"))
    p = crypto.profile(profile_name) if profile_name else crypto.active()
    key = p.generate_signing_key()
    private = getattr(key, "private_bytes", None)
    if private is None:
        raise LogRefused(f"a {p.name} key held outside the process cannot be written to {path}")
    body = {
        "profile": p.name,
        "private": base64.b64encode(private()).decode(),
        "public": base64.b64encode(key.public_bytes()).decode(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(body, fh)
    return key


def witness_once(
    client: PlatformClient,
    state_path: Path,
    key: crypto.SigningKey,
    name: str,
    *,
    log_vkey: str | None = None,
    post: bool = True,
    enrol: bool = False,
) -> WitnessResult:
    """A department's witness round: fetch the checkpoint, check it against the log key and the last one
    this witness cosigned (consistency; a split view is refused), cosign it, post the cosignature.

    The log key: ``log_vkey`` when given (checked out of band), else the one pinned in ``state_path`` at
    the first round (from ``GET /v1/log/key``). With ``enrol`` (and ``post``), the witness key is enrolled
    first unless ``state_path`` records it enrolled (:func:`enrol_witness_key`)."""
    state: dict[str, Any] = json.loads(state_path.read_text()) if state_path.exists() else {}
    enrolled = None
    if enrol and post and state.get("enrolled_key_id") != P.fingerprint(key.public_bytes()):
        enrolled = state["enrolled_key_id"] = enrol_witness_key(client, key, label=name)
    if log_vkey is not None or "vkey" not in state:
        published = _get_json(client, LOG_KEY, "log key")
        vkeys = [str(v) for v in published.get("vkeys") or []]
        chosen = log_vkey or (vkeys[0] if vkeys else None)
        if chosen is None:
            raise LogRefused("log key: the platform publishes no verifier key")
        if state.get("vkey") and state["vkey"] != chosen:  # a rotation: the old key's checkpoints stay good
            state["previous_vkey"] = state["vkey"]
        state.update(
            origin=str(published.get("origin")),
            vkey=chosen,
            profile=str(published.get("profile")),
            hash=published.get("hash"),
        )
    key_ = log_key(
        {k: state.get(k) for k in ("origin", "vkey", "profile", "hash")},
        where="witness",
        previous_vkey=state.get("previous_vkey"),
    )
    assert key_ is not None
    note = _get(client, CHECKPOINT, "checkpoint")
    checkpoint = open_checkpoint(key_, note)
    if "size" in state:
        check_consistency(client, key_, int(state["size"]), _b64(state["root"], "root"), checkpoint)
    line = cosign(checkpoint.text(), name, key)
    posted = False
    if post:
        client.request("POST", COSIGNATURE, json={"checkpoint": note.decode(), "cosignature": line})
        posted = True
    root = base64.b64encode(checkpoint.root_hash).decode()
    state.update(size=checkpoint.size, root=root, checkpoint=note.decode())
    tmp = state_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, ensure_ascii=False, indent=1))
    tmp.replace(state_path)
    return WitnessResult(checkpoint.size, root, line, posted, enrolled)
