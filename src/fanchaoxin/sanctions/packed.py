"""The packed decision index: one read-only file per host, memory-mapped by every API worker.

A dictionary index of a million entries costs each worker over a gigabyte (Python objects per entry and
per key); with several workers per host that is the host's memory. The packed base holds the same
entries as fixed-width records in one file, built once per host and mapped by every worker, so the pages
are shared between processes and a worker's own memory is the few distinct entry shapes it derives
from the file, plus the changes since the file was built (`PackedIndex`'s overlay).

File layout (native byte order, every array 8-byte aligned):

- header (`_HEADER`): magic, format, counts, the change-feed position it reflects, when it was built,
  and a BLAKE2b checksum of everything after the header. A file whose checksum, size or counts do not
  agree is never used (`CorruptIndex`): it is rebuilt.
- meta (JSON): the database fingerprint (the feed event at `seq`), and the distinct entry shapes
  (subject kind, severity, behaviours, disputed, liable role, graded measures): few, shared by most
  entries. Each worker derives its per-scene tables once with `decide.index_entry`, so a changed
  measure catalogue is picked up on load without a rebuild.
- keys: the 16-byte BLAKE2b digest of each identifier key, sorted, as two uint64 columns (`hi`, `lo`),
  then `offsets` (uint32, one more than the keys) into `postings` (uint32 entry slots). A look-up is a
  binary search in C (`bisect` over a memoryview) on `hi`.
- entries: entry id (36 ASCII bytes), shape id (uint32), maximum end (int32 date ordinal, 0: none).

Keys are the platform's blind indexes (already HMAC digests); with a 128-bit digest of them two different
keys match falsely with a chance of 2^-128 per pair, so verdicts are the same as the dictionary index's.

`IndexStore` keeps the file of one database in a directory: written to a temporary name and renamed
(readers see the old file or the new one, never half of one), one builder per host at a time
(`fcntl.flock` on a lock file), in a child process of its own; the others map what it wrote.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import json
import logging
import mmap
import os
import struct
import subprocess
import sys
import time
import uuid
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fanchaoxin.blacklist.lifecycle import IN_FORCE
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.core.db import Database
from fanchaoxin.core.hostlock import host_lock
from fanchaoxin.sanctions.decide import DecisionIndex, IndexedEntry, index_entry
from fanchaoxin.sanctions.policy import measure_catalogue
from fanchaoxin.sharing.changes import head
from fanchaoxin.sharing.models import FeedEvent
from fanchaoxin.subjects.models import Subject, SubjectIdentifier

log = logging.getLogger(__name__)

MAGIC = b"FCXIDX\x00\x01"
FORMAT = 1
# magic, format, byte-order probe, seq, built_at (unix s), entries, keys, postings, meta bytes, checksum
_HEADER = struct.Struct("=8sII q d QQQQ 32s")
_ORDER_PROBE = 0x01020304
_ID_WIDTH = 36  # str(uuid.UUID)


class CorruptIndex(Exception):
    """The file is not a whole packed index of this format (truncated, altered, another version)."""


def key_digest(key: str) -> bytes:
    return hashlib.blake2b(key.encode(), digest_size=16).digest()


def _pad(n: int) -> int:
    return (-n) % 8


@dataclass(frozen=True)
class BaseRow:
    """One entry in force as the builder takes it."""

    entry_id: str
    keys: Sequence[str]
    subject_kind: str
    severity: str
    behaviours: Sequence[str]
    disputed: bool
    max_end_on: date | None
    liable_role: str | None
    measures: list[dict[str, Any]]


def write_base(
    path: Path,
    rows: Iterable[BaseRow],
    *,
    seq: int,
    fingerprint: dict[str, Any],
    built_at: float | None = None,
) -> None:
    """Write the packed index of `rows` to `path` (via a temporary file in the same directory, renamed)."""
    ids = bytearray()
    shape_ids = array("I")
    ends = array("i")
    shapes: dict[str, int] = {}
    # digest (16) + slot (4, big-endian) records, by the digest's first byte: each bucket is sorted on
    # its own, so that no list of millions of small objects is made (the builder is an API worker).
    buckets = [bytearray() for _ in range(256)]
    for slot, row in enumerate(rows):
        eid = row.entry_id.encode("ascii")
        if len(eid) != _ID_WIDTH:
            raise ValueError(f"entry id {row.entry_id!r} is not a UUID")
        ids += eid
        shape = json.dumps(
            [
                row.subject_kind,
                row.severity,
                list(row.behaviours),
                row.disputed,
                row.liable_role,
                row.measures,
            ],
            sort_keys=True,
            ensure_ascii=False,
        )
        sid = shapes.get(shape)
        if sid is None:
            sid = shapes[shape] = len(shapes)
        shape_ids.append(sid)
        ends.append(row.max_end_on.toordinal() if row.max_end_on is not None else 0)
        tail = slot.to_bytes(4, "big")
        for k in dict.fromkeys(row.keys):
            digest = key_digest(k)
            buckets[digest[0]] += digest + tail
    hi, lo, offsets, postings = array("Q"), array("Q"), array("I"), array("I")
    previous = bytearray()
    for n, bucket in enumerate(buckets):
        records = sorted(bucket[i : i + 20] for i in range(0, len(bucket), 20))
        buckets[n] = bytearray()
        for r in records:
            key = r[:16]
            if key != previous:
                hi.append(int.from_bytes(key[:8], "big"))
                lo.append(int.from_bytes(key[8:], "big"))
                offsets.append(len(postings))
                previous = key
            postings.append(int.from_bytes(r[16:], "big"))
    offsets.append(len(postings))
    meta = json.dumps(
        {"fingerprint": fingerprint, "shapes": [json.loads(s) for s in shapes]}, ensure_ascii=False
    ).encode()
    parts = [meta, hi.tobytes(), lo.tobytes(), offsets.tobytes(), postings.tobytes(), bytes(ids)]
    parts.append(shape_ids.tobytes())
    parts.append(ends.tobytes())
    body = hashlib.blake2b(digest_size=32)
    chunks: list[bytes] = []
    for p in parts:
        chunks.append(p)
        chunks.append(b"\0" * _pad(len(p)))
    for c in chunks:
        body.update(c)
    header = _HEADER.pack(
        MAGIC,
        FORMAT,
        _ORDER_PROBE,
        seq,
        time.time() if built_at is None else built_at,
        len(shape_ids),
        len(hi),
        len(postings),
        len(meta),
        body.digest(),
    )
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(header + b"\0" * _pad(len(header)))
            for c in chunks:
                f.write(c)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


class PackedBase:
    """A packed index file, mapped read-only and checked whole before use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            self.identity = (st.st_dev, st.st_ino)
            if st.st_size < _HEADER.size:
                raise CorruptIndex(f"{path}: {st.st_size} bytes, shorter than the header")
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        # A file that fails a check raises CorruptIndex; its mapping goes with the last view of it.
        self._open(path)

    def _open(self, path: Path) -> None:
        view = memoryview(self._map)
        try:
            magic, fmt, probe, seq, built_at, n_entries, n_keys, n_postings, n_meta, checksum = (
                _HEADER.unpack_from(view)
            )
        except struct.error as exc:
            raise CorruptIndex(f"{path}: unreadable header ({exc})") from exc
        if magic != MAGIC or fmt != FORMAT or probe != _ORDER_PROBE:
            raise CorruptIndex(f"{path}: not a packed decision index of format {FORMAT} on this host")
        sizes = [n_meta, 8 * n_keys, 8 * n_keys, 4 * (n_keys + 1), 4 * n_postings]
        sizes += [_ID_WIDTH * n_entries, 4 * n_entries, 4 * n_entries]
        start = _HEADER.size + _pad(_HEADER.size)
        expected = start + sum(s + _pad(s) for s in sizes)
        if len(view) != expected:
            raise CorruptIndex(f"{path}: {len(view)} bytes where the header announces {expected}")
        if hashlib.blake2b(view[start:], digest_size=32).digest() != checksum:
            raise CorruptIndex(f"{path}: checksum mismatch")
        sections = []
        at = start
        for s in sizes:
            sections.append(view[at : at + s])
            at += s + _pad(s)
        meta_raw, hi, lo, offsets, postings, ids, shape_ids, ends = sections
        try:
            meta = json.loads(bytes(meta_raw))
        except ValueError as exc:
            raise CorruptIndex(f"{path}: unreadable shapes ({exc})") from exc
        self.seq: int = seq
        self.built_at: float = built_at
        self.entry_count: int = n_entries
        self.key_count: int = n_keys
        self.fingerprint: dict[str, Any] = meta["fingerprint"]
        self._hi = hi.cast("Q")
        self._lo = lo.cast("Q")
        self._offsets = offsets.cast("I")
        self._postings = postings.cast("I")
        self._ids = ids
        self._shape_ids = shape_ids.cast("I")
        self._ends = ends.cast("i")
        self._shapes = _derive_shapes(meta["shapes"])
        if self._offsets[n_keys] != n_postings:
            raise CorruptIndex(f"{path}: the key offsets do not end at the last posting")

    def slots(self, key: str) -> range:
        d = key_digest(key)
        hi = int.from_bytes(d[:8], "big")
        his = self._hi
        i = bisect.bisect_left(his, hi)
        n = len(his)
        if i < n and his[i] == hi:
            lo = int.from_bytes(d[8:], "big")
            los = self._lo
            while i < n and his[i] == hi:
                if los[i] == lo:
                    return range(self._offsets[i], self._offsets[i + 1])
                i += 1
        return range(0)

    def entry_id(self, slot: int) -> str:
        return bytes(self._ids[slot * _ID_WIDTH : (slot + 1) * _ID_WIDTH]).decode("ascii")

    def entry(self, slot: int) -> IndexedEntry:
        t = self._shapes[self._shape_ids[slot]]
        end = self._ends[slot]
        return IndexedEntry(
            self.entry_id(slot),
            t.subject_kind,
            t.severity,
            t.behaviours,
            t.disputed,
            date.fromordinal(end) if end else None,
            t.liable_role,
            t.by_scene,
        )

    def entries_for(self, key: str) -> list[IndexedEntry]:
        postings = self._postings
        return [self.entry(postings[p]) for p in self.slots(key)]

    def iter_entries(self) -> Iterator[IndexedEntry]:
        for slot in range(self.entry_count):
            yield self.entry(slot)


def _derive_shapes(raw: list[Any]) -> list[IndexedEntry]:
    """Each distinct shape's entry without id and end, its per-scene table computed once per distinct
    (measures, disputed)."""
    cat = measure_catalogue()
    scenes: dict[tuple[str, bool], Any] = {}
    out = []
    try:
        for kind, severity, behaviours, disputed, liable_role, measures in raw:
            signature = (json.dumps(measures, sort_keys=True), bool(disputed))
            by_scene = scenes.get(signature)
            if by_scene is None:
                by_scene = scenes[signature] = index_entry(
                    entry_id="",
                    subject_kind="",
                    severity="",
                    behaviours=(),
                    disputed=bool(disputed),
                    max_end_on=None,
                    liable_role=None,
                    measures=measures,
                    catalogue=cat,
                ).by_scene
            out.append(
                IndexedEntry(
                    "", kind, severity, tuple(behaviours), bool(disputed), None, liable_role, by_scene
                )
            )
    except (TypeError, ValueError, KeyError) as exc:
        raise CorruptIndex(f"unreadable entry shape ({exc})") from exc
    return out


class PackedIndex:
    """The packed base plus the changes since it was built (an in-memory overlay), as decide() reads it.

    An entry changed or removed since the base is shadowed there; its current state, if still in force,
    is in the overlay. The change feed is applied with `put` and `remove`, like a DecisionIndex."""

    def __init__(self, base: PackedBase) -> None:
        self.base = base
        self.overlay = DecisionIndex()
        self.shadowed: set[str] = set()
        self.seq = base.seq

    def entries_for(self, key: str) -> Sequence[IndexedEntry]:
        base = self.base
        slots = base.slots(key)
        extra = self.overlay.by_key.get(key)
        if not slots:
            return extra or ()
        postings = base._postings
        if self.shadowed:
            shadowed = self.shadowed
            found = [base.entry(postings[p]) for p in slots if base.entry_id(postings[p]) not in shadowed]
        else:
            found = [base.entry(postings[p]) for p in slots]
        if extra:
            found.extend(extra)
        return found

    def put(self, keys: Iterable[str], entry: IndexedEntry) -> None:
        self.shadowed.add(entry.entry_id)
        self.overlay.put(keys, entry)

    def remove(self, entry_id: str) -> None:
        self.shadowed.add(entry_id)
        self.overlay.remove(entry_id)

    @property
    def changed_since_base(self) -> int:
        return len(self.shadowed)


# --- building from the database ----------------------------------------------------------------------


def fingerprint(session: Session, seq: int) -> dict[str, Any]:
    """What ties a file to one database: the feed event at its position (entry id and time), which
    another database (or this one emptied and refilled) does not have."""
    if seq <= 0:
        return {"seq": 0}
    row = session.execute(select(FeedEvent.entry_id, FeedEvent.at).where(FeedEvent.seq == seq)).first()
    if row is None:
        return {"seq": seq, "missing": True}
    return {"seq": seq, "entry_id": str(row.entry_id), "at": row.at.isoformat()}


def matches(session: Session, base: PackedBase) -> bool:
    """The file was built from this database (an empty feed proves nothing: such a file is rebuilt)."""
    if base.seq <= 0 or base.seq > head(session):
        return False
    now = fingerprint(session, base.seq)
    return "missing" not in now and now == base.fingerprint


def usable(session: Session, base: PackedBase, *, just_published: bool) -> bool:
    """`matches`, or a file another process of this host has just published at the feed's head: built
    from this database a moment ago, so taken even where the feed is empty and proves nothing (a new or
    bulk-loaded database) — otherwise every worker would build its own in turn, each replacing the last."""
    return matches(session, base) or (just_published and base.seq == head(session))


def rows_in_force(session: Session) -> Iterator[BaseRow]:
    """Every entry in force with its subject's keys: two streams ordered by subject, merged, so that
    no map of a million subjects' keys is held while the file is written."""
    in_force = [s.value for s in IN_FORCE]
    idents = session.execute(
        select(SubjectIdentifier.subject_id, SubjectIdentifier.value_index)
        .where(SubjectIdentifier.subject_id.in_(select(Entry.subject_id).where(Entry.status.in_(in_force))))
        .order_by(SubjectIdentifier.subject_id)
        .execution_options(yield_per=20000)
    )
    entries = session.execute(
        select(
            Entry.id, Entry.subject_id, Subject.kind, Entry.severity, Entry.behaviours, Entry.status,
            Entry.max_end_on, Entry.liable_role, Entry.measures,
        )
        .join(Subject, Subject.id == Entry.subject_id)
        .where(Entry.status.in_(in_force))
        .order_by(Entry.subject_id)
        .execution_options(yield_per=20000)
    )  # fmt: skip
    pending = next(idents, None)
    current: Any = None
    keys: list[str] = []
    for eid, subject_id, kind, severity, behaviours, status, max_end_on, liable_role, measures in entries:
        if subject_id != current:
            current, keys = subject_id, []
            while pending is not None and pending[0] < subject_id:
                pending = next(idents, None)
            while pending is not None and pending[0] == subject_id:
                keys.append(pending[1])
                pending = next(idents, None)
        yield BaseRow(
            str(eid),
            keys,
            kind,
            severity,
            tuple(behaviours or ()),
            status == "disputed",
            max_end_on,
            liable_role,
            measures or [],
        )


def build_file(session: Session, path: Path) -> None:
    seq = head(session)
    write_base(path, rows_in_force(session), seq=seq, fingerprint=fingerprint(session, seq))


class IndexStore:
    """The packed file of one database in `directory` (`<db>.fcxidx`, its lock `<db>.lock`).

    With `database`, a build runs in a child process (`python -m fanchaoxin.sanctions.packed`): the
    memory it takes to stream a million rows goes back to the system when it exits, where in the worker
    that built it the allocator would keep most of it."""

    def __init__(self, directory: Path, database_identity: str, *, database: Database | None = None) -> None:
        self.directory = directory
        self.database = database
        name = hashlib.blake2b(database_identity.encode(), digest_size=8).hexdigest()
        self.path = directory / f"decisions-{name}.fcxidx"
        self.lock_path = directory / f"decisions-{name}.lock"

    def current(self) -> PackedBase | None:
        """The file as it is now, checked whole; None if there is none or it cannot be trusted."""
        try:
            return PackedBase(self.path)
        except FileNotFoundError:
            return None
        except (CorruptIndex, OSError, ValueError) as exc:
            log.warning("decision index: %s is not used (%s); it will be rebuilt", self.path, exc)
            return None

    def replaced(self, base: PackedBase) -> bool:
        """Another file is at the path than the one `base` maps (a rebuild was published)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        return (st.st_dev, st.st_ino) != base.identity

    @contextlib.contextmanager
    def _locked(self, *, wait: bool) -> Iterator[bool]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with host_lock(self.lock_path, wait=wait) as held:
            yield held

    def open_or_build(self, session: Session) -> PackedBase:
        """The file of this database: mapped if one is there and matches, else built (one process of the
        host builds; the others wait for it and map what it wrote)."""
        base = self.current()
        if base is not None and matches(session, base):
            return base
        before = base.identity if base is not None else None
        with self._locked(wait=True):
            base = self.current()  # another process may have built it while this one waited
            if base is not None and usable(session, base, just_published=base.identity != before):
                return base
            return self._build(session)

    def rebuild(self, session: Session, *, unless_replaced: PackedBase | None = None) -> PackedBase | None:
        """Build a new file unless another process of the host is building one (None then). If the file
        is no longer the one `unless_replaced` maps (another process has just published one), that one."""
        with self._locked(wait=False) as held:
            if not held:
                return None
            if unless_replaced is not None and self.replaced(unless_replaced):
                base = self.current()
                if base is not None and usable(session, base, just_published=True):
                    return base
            return self._build(session)

    def _build(self, session: Session) -> PackedBase:
        started = time.monotonic()
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.database is None:
            build_file(session, self.path)
        else:
            self._build_in_child(self.database)
        base = PackedBase(self.path)
        log.info(
            "decision index: packed %d entries, %d keys at feed seq %d in %.1f s (%s)",
            base.entry_count,
            base.key_count,
            base.seq,
            time.monotonic() - started,
            self.path,
        )
        return base

    def _build_in_child(self, database: Database) -> None:
        # The URL by the environment, never the command line (where `ps` shows it with its password).
        env = {
            **os.environ,
            _URL_ENV: database.engine.url.render_as_string(hide_password=False),
            _SCHEMA_ENV: database.schema or "",
        }
        done = subprocess.run(
            [sys.executable, "-m", "fanchaoxin.sanctions.packed", str(self.path)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise BuildFailed(f"building {self.path} failed (exit code {done.returncode}): {tail[0]}")


class BuildFailed(OSError):
    """The child process that builds the packed file did not finish it."""


_URL_ENV = "FCX_DECISION_INDEX_BUILD_URL"
_SCHEMA_ENV = "FCX_DECISION_INDEX_BUILD_SCHEMA"


def _main(argv: list[str]) -> int:
    """`python -m fanchaoxin.sanctions.packed PATH`: build the packed file of the database named by the
    environment (IndexStore starts it)."""
    database = Database(os.environ[_URL_ENV], schema=os.environ.get(_SCHEMA_ENV) or None)
    try:
        with database.session() as s:
            build_file(s, Path(argv[0]))
    finally:
        database.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
