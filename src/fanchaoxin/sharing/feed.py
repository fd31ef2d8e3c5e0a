"""The shared feed: records with identifier tags, snapshots, deltas and the signed manifest.

Every record that leaves the platform for an enterprise goes through ONE function, :func:`share_record`:
the change feed's record (``sharing.changes.record``, already without a person's name or plain
identifier) plus ``tags`` — each identifier of the subject under each active OPRF key — and, for a
personal subject kind, neither ``subject_name`` nor ``identifiers`` nor ``subject_id`` even if present.

Tags are cached per ``(key id, identifier type, blind index of the value)`` in
``sharing_identifier_tags`` (the plain value is only in ``subject_identifiers``, encrypted), filled
incrementally (:func:`ensure_tags`; in bulk on a pool of processes), so a snapshot never recomputes
the tags of subjects it has seen before.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import logging
import multiprocessing
import os
import threading
import time
import uuid as _uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import and_, delete, exists, func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from fanchaoxin.blacklist.lifecycle import IN_FORCE
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.core import crypto, vault
from fanchaoxin.core.audit import AuditEvent
from fanchaoxin.core.db import Database, utcnow
from fanchaoxin.sharing import changes, oprf, protocol, translog
from fanchaoxin.sharing.keys import SharingKeys
from fanchaoxin.sharing.models import FeedEvent, IdentifierTag, Snapshot
from fanchaoxin.subjects.models import Subject, SubjectIdentifier
from fanchaoxin.subjects.service import is_personal

log = logging.getLogger(__name__)

# Least disclosure (#14): of a natural person's entry an enterprise learns what it must apply — the
# measures, severity, periods and status, by tag — not the person's name, identifiers, behaviours or role;
# those stay behind the need-to-know route (purpose, audited).
PERSONAL_FIELDS = ("subject_name", "identifiers", "subject_id", "behaviours", "role", "liable_role")
DELTA_MAX = 50_000
# Below this many missing tags they are computed in the calling process; above, on the pool.
POOL_THRESHOLD = 20_000
_CHUNK = 5_000


# --- the one record transformation ----------------------------------------------------------------------


def share_record(
    record: dict[str, Any],
    identifiers: Iterable[tuple[str, str]],
    keyring: oprf.KeyRing | None = None,
    *,
    tags: Iterable[str] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The record an enterprise receives. ``identifiers`` are the subject's canonical ``(type, value)``;
    ``tags`` are their tags if already known (from the cache), else computed with ``keyring``."""
    shared = dict(record)
    if is_personal(str(record["subject_kind"])):
        for name in PERSONAL_FIELDS:
            shared.pop(name, None)
    if tags is None:
        if keyring is None:
            raise ValueError("share_record needs the key ring or the tags")
        keys = keyring.active(now)
        tags = [k.tag(oprf.identifier_input(t, v, normalised=True)) for t, v in identifiers for k in keys]
    shared["tags"] = sorted(set(tags))
    return shared


# --- the tag cache --------------------------------------------------------------------------------------

_WORKER_KEYS: list[tuple[str, bytes, int]] = []


def _init_worker(keys: list[tuple[str, bytes, int]]) -> None:
    global _WORKER_KEYS
    _WORKER_KEYS = keys


def _tag_chunk(items: list[tuple[str, str]]) -> list[tuple[str, str, str, str]]:
    out = []
    for key_id, sk, mode in _WORKER_KEYS:
        for t, v in items:
            output = oprf.evaluate(sk, oprf.identifier_input(t, v, normalised=True), mode)
            out.append((key_id, t, v, oprf.tag(key_id, output)))
    return out


def compute_tags(
    keys: list[oprf.OPRFKey], items: list[tuple[str, str]], *, workers: int = 1
) -> Iterator[list[tuple[str, str, str, str]]]:
    """``(key_id, type, value, tag)`` for every item under every key, in chunks; a process pool when
    ``workers`` > 1 and the list is long (libsodium does the group work; each process takes chunks)."""
    spec = [(k.key_id, k.sk, k.mode) for k in keys]
    chunks = [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]
    if workers <= 1 or len(items) < POOL_THRESHOLD:
        _init_worker(spec)
        for chunk in chunks:
            yield _tag_chunk(chunk)
        return
    # spawn: the API process has threads, and a forked child could inherit a held lock.
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers, initializer=_init_worker, initargs=(spec,)) as pool:
        yield from pool.imap_unordered(_tag_chunk, chunks)


def _store_tags(
    session: Session, rows: list[tuple[str, str, str, str]], index: Mapping[tuple[str, str], str]
) -> None:
    """Cache computed tags under the blind index of their identifier (``index``: (type, value) → it)."""
    if not rows:
        return
    values = [{"key_id": k, "type": t, "value_index": index[(t, v)], "tag": g} for k, t, v, g in rows]
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        stmt = pg_insert(IdentifierTag).on_conflict_do_nothing()
    else:
        stmt = sqlite_insert(IdentifierTag).on_conflict_do_nothing()
    for i in range(0, len(values), _CHUNK):
        session.execute(stmt, values[i : i + _CHUNK])


def ensure_tags(
    session: Session, pairs: Iterable[tuple[str, str]], keys: list[oprf.OPRFKey], *, workers: int = 1
) -> dict[tuple[str, str], list[str]]:
    """Tags of ``pairs`` under ``keys``: from the cache, the missing ones computed and stored.
    Returns ``{(type, value): [tag per key]}``."""
    pairs = sorted(set(pairs))
    found: dict[tuple[str, str], list[str]] = {p: [] for p in pairs}
    if not pairs or not keys:
        return found
    key_ids = [k.key_id for k in keys]
    have: set[tuple[str, str, str]] = set()
    index = {p: vault.identifier_index(*p) for p in pairs}
    pair_of = {(p[0], ix): p for p, ix in index.items()}
    indexes = sorted(set(index.values()))
    for i in range(0, len(indexes), 500):
        rows = session.execute(
            select(
                IdentifierTag.key_id, IdentifierTag.type, IdentifierTag.value_index, IdentifierTag.tag
            ).where(IdentifierTag.key_id.in_(key_ids), IdentifierTag.value_index.in_(indexes[i : i + 500]))
        )
        for kid, t, ix, tag in rows:
            pair = pair_of.get((t, ix))
            if pair is not None:
                found[pair].append(tag)
                have.add((kid, *pair))
    for key in keys:
        missing = [p for p in pairs if (key.key_id, *p) not in have]
        for chunk in compute_tags([key], missing, workers=workers):
            _store_tags(session, chunk, index)
            for _kid, t, v, tag in chunk:
                found[(t, v)].append(tag)
    return found


def fill_tags(db: Database, keys: list[oprf.OPRFKey], *, workers: int = 2) -> int:
    """Compute the missing tags of every identifier of a subject with an entry in force (snapshots
    then only read the cache). Committed chunk by chunk, so an interrupted run keeps its work."""
    in_force = [s.value for s in IN_FORCE]
    total = 0
    for key in keys:
        index: dict[tuple[str, str], str] = {}
        with db.session() as session:
            # (type, value_index) is unique: each row is a distinct identifier.
            for t, v, ix in session.execute(
                select(SubjectIdentifier.type, SubjectIdentifier.value, SubjectIdentifier.value_index).where(
                    SubjectIdentifier.subject_id.in_(
                        select(Entry.subject_id).where(Entry.status.in_(in_force))
                    ),
                    ~exists().where(
                        IdentifierTag.key_id == key.key_id,
                        IdentifierTag.type == SubjectIdentifier.type,
                        IdentifierTag.value_index == SubjectIdentifier.value_index,
                    ),
                )
            ):
                index[(t, v)] = ix
        missing = list(index)
        if not missing:
            continue
        started = time.perf_counter()
        batch: list[tuple[str, str, str, str]] = []
        for chunk in compute_tags([key], missing, workers=workers):
            batch.extend(chunk)
            if len(batch) >= 50_000:
                with db.session() as session:
                    _store_tags(session, batch, index)
                batch = []
        with db.session() as session:
            _store_tags(session, batch, index)
        total += len(missing)
        log.info(
            "sharing: %d tags under %s in %.1f s", len(missing), key.key_id, time.perf_counter() - started
        )
    return total


def prune_tags(session: Session, keys: SharingKeys) -> int:
    """Drop cached tags of keys that are no longer active (their tags have left the feed)."""
    active = [k.key_id for k in keys.ring.active()]
    return session.execute(delete(IdentifierTag).where(IdentifierTag.key_id.not_in(active))).rowcount or 0


# --- records from the database --------------------------------------------------------------------------


def subject_identifiers(session: Session, subject_ids: Iterable[str]) -> dict[str, list[tuple[str, str]]]:

    ids = sorted({str(s) for s in subject_ids if s})
    out: dict[str, list[tuple[str, str]]] = {s: [] for s in ids}
    for i in range(0, len(ids), 500):
        chunk = [_uuid.UUID(s) for s in ids[i : i + 500]]
        for sid, t, v in session.execute(
            select(SubjectIdentifier.subject_id, SubjectIdentifier.type, SubjectIdentifier.value).where(
                SubjectIdentifier.subject_id.in_(chunk)
            )
        ):
            out[str(sid)].append((t, v))
    return out


def shared_event_records(
    session: Session, events: list[FeedEvent], keys: SharingKeys, now: datetime | None = None
) -> list[dict[str, Any]]:
    """The shared record of each feed event (the event's record, tags of the subject's identifiers now)."""
    active = keys.ring.active(now)
    idents = subject_identifiers(session, (e.record.get("subject_id") for e in events))
    tags = ensure_tags(session, {p for ps in idents.values() for p in ps}, active)
    out = []
    for ev in events:
        pairs = idents.get(str(ev.record.get("subject_id")), [])
        out.append(share_record(ev.record, pairs, tags=[t for p in pairs for t in tags.get(p, [])]))
    return out


# --- deltas ---------------------------------------------------------------------------------------------


@dataclass
class FeedBytes:
    data: bytes
    header: dict[str, Any]
    # the digest of the signed content, not of the bytes: an SM2 signature is randomised, so the same
    # delta signed twice differs, and an ETag of the bytes would never match again
    content_digest: str

    @property
    def etag(self) -> str:
        return '"' + self.content_digest + '"'


class DeltaGone(Exception):
    """The events after ``after`` are no longer kept; the receiver must take a snapshot."""


def oldest_after(session: Session) -> int:
    """The smallest ``after`` a delta can start from (events are kept from the first on)."""
    first = session.scalar(select(func.min(FeedEvent.seq)))
    return int(first) - 1 if first is not None else changes.head(session)


def _delta_line(ev: FeedEvent, rec: dict[str, Any]) -> dict[str, Any]:
    line = {"seq": ev.seq, "event": ev.event, "at": ev.at.isoformat(), "record": rec}
    if ev.request_id:
        # Optional, outside the record and the log leaf (#23): a node logs the change under the request
        # that made it; nodes that predate it ignore the field, and the signature covers it like the rest.
        line["request_id"] = ev.request_id
    return line


def delta(session: Session, keys: SharingKeys, after: int, limit: int) -> FeedBytes:
    head = changes.head(session)
    if after < oldest_after(session):
        raise DeltaGone(f"events after {after} are no longer kept; take the snapshot")
    events = changes.events_after(session, after, min(limit, DELTA_MAX)) if after < head else []
    records = shared_event_records(session, events, keys)
    # Each event as the transparency log holds it (#19), so that a node can check it against its leaf.
    logged = translog.logged_events(session, [ev.seq for ev in events])
    records = [logged.get(ev.seq, rec) for ev, rec in zip(events, records, strict=True)]
    lines = [_delta_line(ev, rec) for ev, rec in zip(events, records, strict=True)]
    to = events[-1].seq if events else after
    header = {
        "from": after,
        "to": to,
        "count": len(lines),
        "head": head,
        "oprf_key_ids": [k.key_id for k in keys.ring.active()],
    }
    data, digest = protocol.write_feed_file_digest(protocol.DELTA_FORMAT, header, lines, keys.signing)
    return FeedBytes(data, header, digest)


# --- snapshots ------------------------------------------------------------------------------------------


def sharing_dir(keys_dir: Path, setting: str | None = None) -> Path:
    path = Path(setting).resolve() if setting else keys_dir.parent / "sharing"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


@contextlib.contextmanager
def _build_lock(directory: Path) -> Iterator[None]:
    with open(directory / ".build.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def latest_snapshot(session: Session) -> Snapshot | None:
    return session.scalar(select(Snapshot).order_by(Snapshot.seq.desc(), Snapshot.built_at.desc()).limit(1))


def _consistent_read(session: Session) -> None:
    """Head, count and records from one snapshot of the database."""
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        session.execute(text("SET TRANSACTION READ ONLY"))


def _snapshot_lines(session: Session, active_ids: list[str]) -> Iterator[dict[str, Any]]:
    """Every entry in force, by subject: two ordered streams (entries; identifiers with their cached
    tags) merged on the subject id, each record made by ``changes.record`` and ``share_record``."""
    in_force = [s.value for s in IN_FORCE]
    cols = [Entry.__table__.c[n] for n in _ENTRY_COLUMNS]
    entries = session.execute(
        select(*cols, Subject.kind, Subject.name)
        .join(Subject, Subject.id == Entry.subject_id)
        .where(Entry.status.in_(in_force))
        .order_by(Entry.subject_id, Entry.id)
        .execution_options(yield_per=10_000)
    )
    in_force_subjects = select(Entry.subject_id).where(Entry.status.in_(in_force))
    idents = session.execute(
        select(
            SubjectIdentifier.subject_id, SubjectIdentifier.type, SubjectIdentifier.value, IdentifierTag.tag
        )
        .outerjoin(
            IdentifierTag,
            and_(
                IdentifierTag.type == SubjectIdentifier.type,
                IdentifierTag.value_index == SubjectIdentifier.value_index,
                IdentifierTag.key_id.in_(active_ids),
            ),
        )
        .where(SubjectIdentifier.subject_id.in_(in_force_subjects))
        .order_by(SubjectIdentifier.subject_id)
        .execution_options(yield_per=20_000)
    )
    ident_iter = iter(idents)
    pending = next(ident_iter, None)
    current_sid = None
    pairs: list[SimpleNamespace] = []
    tags: list[str] = []
    for row in entries:
        sid = row.subject_id
        if sid != current_sid:
            current_sid = sid
            seen: dict[tuple[str, str], SimpleNamespace] = {}
            tags = []
            while pending is not None and pending[0] < sid:  # identifiers of subjects not in this stream
                pending = next(ident_iter, None)
            while pending is not None and pending[0] == sid:
                _, t, v, tag = pending
                seen.setdefault((t, v), SimpleNamespace(type=t, value=v))
                if tag is not None:
                    tags.append(tag)
                pending = next(ident_iter, None)
            pairs = list(seen.values())
        subject = SimpleNamespace(kind=row.kind, name=row.name, identifiers=pairs)
        entry = SimpleNamespace(subject=subject, **{n: getattr(row, n) for n in _ENTRY_COLUMNS})
        record = changes.record(entry)  # type: ignore[arg-type]
        yield {"record": share_record(record, (), tags=tags)}


_ENTRY_COLUMNS = (
    "id",
    "subject_id",
    "behaviours",
    "role",
    "severity",
    "basis",
    "status",
    "published_at",
    "min_end_on",
    "max_end_on",
    "parent_entry_id",
    "liable_role",
    "policy_version",
    "measures",
)


def build_snapshot(db: Database, keys: SharingKeys, directory: Path, *, workers: int = 2) -> Snapshot:
    """Build, sign and record a snapshot of the entries in force (streamed; the file is the cache)."""
    active = keys.ring.active()
    active_ids = [k.key_id for k in active]
    started = time.perf_counter()
    with _build_lock(directory):
        fill_tags(db, active, workers=workers)
        tagged = time.perf_counter()
        with db.session() as session:
            _consistent_read(session)
            head = changes.head(session)
            in_force = [s.value for s in IN_FORCE]
            count = int(
                session.scalar(select(func.count()).select_from(Entry).where(Entry.status.in_(in_force)))
            )
            name = f"snapshot-{head:012d}-{int(time.time() * 1000)}.jsonl.gz"
            header = {"seq": head, "count": count, "oprf_key_ids": active_ids}
            gc_was = gc.isenabled()
            gc.disable()
            try:
                digest, size = protocol.write_feed_file_to(
                    directory / name,
                    protocol.SNAPSHOT_FORMAT,
                    header,
                    _snapshot_lines(session, active_ids),
                    keys.signing,
                )
            finally:
                if gc_was:
                    gc.enable()
        with db.session() as session:
            old = session.get(Snapshot, head)
            if old is not None:
                _remove_file(directory, old.filename)
                session.delete(old)
                session.flush()
            _remember(directory / name, digest)
            snap = Snapshot(
                seq=head,
                count=count,
                digest=digest,
                size=size,
                key_ids=active_ids,
                signing_key_id=keys.signing.key_id,
                filename=name,
                built_at=utcnow(),
            )
            session.add(snap)
            # Keep the newest two (a node may be downloading the previous one right now).
            for stale in session.scalars(select(Snapshot).order_by(Snapshot.seq.desc()).offset(2)):
                _remove_file(directory, stale.filename)
                session.delete(stale)
    log.info(
        "sharing: snapshot at %d, %d records, %d bytes in %.1f s (tags %.1f s)",
        head,
        count,
        size,
        time.perf_counter() - started,
        tagged - started,
    )
    return snap


def _remove_file(directory: Path, filename: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(directory / filename)


# --- is the file on disk the file that was built? ---------------------------------------------------------

# Re-hash a file whose stat is unchanged after this long: corruption on disk (a bad sector, a restore
# that kept the times) changes no stat field, and a kernel's coarse timestamps can hide a quick rewrite.
REVERIFY_SECONDS = 3600.0
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class _Verified:
    stat: tuple[int, int, int, int, int]  # device, inode, size, mtime_ns, ctime_ns
    digest: str
    at: float  # time.monotonic() of the hashing


_verified: dict[str, _Verified] = {}
_verified_lock = threading.Lock()


def _stat_key(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def file_digest(path: Path, profile: crypto.Profile | None = None) -> str:
    """Hex digest of a file under ``profile`` (the platform's unless given): SHA-256 or SM3."""
    digest = (profile or crypto.active()).hasher()
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.finalize().hex()


def _store(key: str, verified: _Verified) -> None:
    with _verified_lock:
        _verified[key] = verified
        if len(_verified) > 32:  # one entry per snapshot built: forget the files that are gone
            for gone in [k for k in _verified if not os.path.exists(k)]:
                del _verified[gone]


def _remember(path: Path, digest: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        _store(str(path), _Verified(_stat_key(path.stat()), digest, time.monotonic()))


def snapshot_file_intact(
    snap: Snapshot, directory: Path, *, clock: Callable[[], float] = time.monotonic
) -> bool:
    """Whether the snapshot's file is there with the size and digest recorded when it was built (under
    the platform's profile: a snapshot built under another one no longer matches and is rebuilt).

    The manifest promises that digest to every node; a node that downloads a file that does not match
    cannot sync at all. Hashing a large snapshot takes a while, so a digest is remembered with the
    file's stat and computed again only when the stat changes or ``REVERIFY_SECONDS`` have passed.
    """
    path = directory / snap.filename
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    if st.st_size != snap.size:
        log.warning(
            "sharing: snapshot %s is %d bytes, %d were built; not serving it", path, st.st_size, snap.size
        )
        return False
    key = str(path)
    with _verified_lock:
        known = _verified.get(key)
    now = clock()
    if known is None or known.stat != _stat_key(st) or now - known.at > REVERIFY_SECONDS:
        try:
            digest = file_digest(path)
        except FileNotFoundError:
            return False
        known = _Verified(_stat_key(st), digest, now)
        _store(key, known)
    if known.digest != snap.digest:
        log.warning(
            "sharing: snapshot %s has digest %s, %s was built and signed; not serving it",
            path,
            known.digest,
            snap.digest,
        )
        return False
    return True


def snapshot_is_current(snap: Snapshot | None, keys: SharingKeys, directory: Path) -> bool:
    return (
        snap is not None
        and snap.key_ids == [k.key_id for k in keys.ring.active()]
        and snap.signing_key_id == keys.signing.key_id
        and snapshot_file_intact(snap, directory)
    )


def current_snapshot(db: Database, keys: SharingKeys, directory: Path, *, workers: int = 2) -> Snapshot:
    """The snapshot the manifest names: the newest one, built now if there is none usable (none yet, the
    key set changed with a rotation, or its file is missing on this machine or no longer matches its
    digest)."""
    with db.session() as session:
        snap = latest_snapshot(session)
    if snapshot_is_current(snap, keys, directory):
        return snap  # type: ignore[return-value]
    with _build_lock(directory):  # another worker may be building it right now
        with db.session() as session:
            snap = latest_snapshot(session)
        if snapshot_is_current(snap, keys, directory):
            return snap  # type: ignore[return-value]
    return build_snapshot(db, keys, directory, workers=workers)


def maybe_rebuild(db: Database, keys: SharingKeys, directory: Path, every: int, *, workers: int = 2) -> bool:
    """Scheduled: a new snapshot when the head has moved ``every`` events past the last one."""
    with db.session() as session:
        snap = latest_snapshot(session)
        head = changes.head(session)
    if snapshot_is_current(snap, keys, directory) and head - snap.seq < every:  # type: ignore[union-attr]
        return False
    build_snapshot(db, keys, directory, workers=workers)
    return True


# --- manifest -------------------------------------------------------------------------------------------


# A restore from a backup (operations.backup) is a fact of the audit chain. The feed's sequence numbers
# after the restored head are given again to other events, so the manifest carries the latest restore: a
# node that had followed the platform past that head takes the (signed) snapshot again instead of refusing
# a head lower than its own for ever.
RESTORED_ACTION = "platform.restored"


def restored(session: Session) -> dict[str, Any] | None:
    """The latest restore of this platform from a backup: its epoch, when, and the feed head it restored."""
    detail = session.scalar(
        select(AuditEvent.detail)
        .where(AuditEvent.action == RESTORED_ACTION)
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )
    if not isinstance(detail, dict):
        return None
    return {k: detail.get(k) for k in ("epoch", "restored_at", "feed_head")}


def manifest(session: Session, keys: SharingKeys, snap: Snapshot) -> tuple[dict[str, Any], str]:
    """The signed manifest and its ETag (over everything but ``generated_at``). It states the crypto
    profile (``protocol.sign_manifest``); the snapshot's ``digest`` is under it (``sha256`` is repeated
    under ``international`` for nodes that predate the profiles)."""
    prof = keys.signing.profile
    snapshot: dict[str, Any] = {
        "seq": snap.seq,
        "count": snap.count,
        "digest": snap.digest,
        "size": snap.size,
        "url": f"/v1/sharing/snapshots/{snap.seq}",
    }
    if prof.name == "international":
        snapshot["sha256"] = snap.digest
    body = {
        "head": changes.head(session),
        "snapshot": snapshot,
        "oprf_key_ids": [k.key_id for k in keys.ring.active()],
        "signing_key_id": keys.signing.key_id,
        "delta_url": "/v1/sharing/deltas?after={seq}",
        "oldest_delta_after": oldest_after(session),
        "delta_max": DELTA_MAX,
        # The transparency log's key, pinned by nodes from here (#19).
        "log": translog.load_log_keys(keys.directory).manifest_entry(),
    }
    fact = restored(session)
    if fact is not None:
        body["restored"] = fact
    etag = '"' + prof.hexdigest(protocol.canonical_json({**body, **protocol.profile_facts(prof)})) + '"'
    signed = protocol.sign_manifest({**body, "generated_at": datetime.now(UTC).isoformat()}, keys.signing)
    return signed, etag
