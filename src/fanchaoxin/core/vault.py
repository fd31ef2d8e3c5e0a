"""Personal data at rest (个人信息加密存储): the data key ring, authenticated encryption and blind indexes.

Resident IDs, phones, e-mail addresses and names of natural persons, and evidence files, are stored
encrypted with the crypto profile's AEAD (``core.crypto``: AES-256-GCM, or SM4-GCM under ``gm``) under
the data key ring kept in ``FCX_DATA_KEY_FILE`` (mode 0600):

    {"format": "fcx-data-keys/1", "profile": "gm", "active": "d2",
     "keys": {"d1": "<base64 of 16 bytes>", "d2": "<base64 of 16 bytes>"},
     "index_key": "<base64 of 32 bytes>"}

``profile`` says which algorithms the keys are for (a file without it is ``international``: 32-byte
AES-256 keys); a ring of the other profile than the platform's is refused, never used with the wrong
cipher. Changing profile is :func:`migrate_profile` (``fcx crypto migrate``).

A stored value reads ``fcx1:<key id>:<base64(nonce ‖ ciphertext ‖ tag)>``; the key id says which key
opens it, so a rotation (``fcx keys rotate-data``) adds a key, makes it active and re-encrypts rows in
the background while both keys open what they sealed. The column's name is the associated data: a value
moved to another column does not open.

Exact-match look-ups go through keyed blind indexes (``blind``): the profile's MAC (HMAC-SHA256 |
HMAC-SM3) under ``index_key``, with a domain per use, so equal plain values have equal indexes and
nothing else can be learnt from them. The index key is not rotated with the data keys (that would mean
re-indexing every row); a change of profile re-indexes every row (:func:`migrate_profile`), which finds
the index columns by their ``info`` (:data:`BLIND_INDEX`).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import json
import logging
import math
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Engine,
    LargeBinary,
    Table,
    Text,
    and_,
    case,
    cast,
    column,
    func,
    inspect,
    literal,
    not_,
    select,
    table,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnClause
from sqlalchemy.types import TypeDecorator

from fanchaoxin.core.crypto import CryptoError, DecryptionFailed, Profile, active, profile
from fanchaoxin.core.db import Base, unavailable
from fanchaoxin.core.settings import get_settings

log = logging.getLogger(__name__)

FORMAT = "fcx-data-keys/1"
PREFIX = "fcx1"
INDEX_KEY_BYTES = 32  # the blind-index MAC key, under either profile
NONCE_BYTES = 12  # GCM's nonce, AES and SM4 alike
BLOB_MAGIC = b"FCXE1\x00"
# Key ids travel inside stored values (``fcx1:<id>:…``, the blob header) and are read back by SQL at
# start: letters, digits, ``-`` and ``_`` only.
KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")


class DataKeyError(RuntimeError):
    """The data key file cannot be used, or a stored value needs a key the ring does not hold.

    The message names the file (and the key id); callers that know the row add its table and id."""


@dataclass
class DataKeyRing:
    path: Path
    active: str
    keys: dict[str, bytes]
    index_key: bytes
    # The crypto profile the keys are for (the file's ``profile``; absent: international)
    profile: str = "international"

    @functools.cached_property
    def crypto(self) -> Profile:
        return profile(self.profile)

    @functools.cached_property
    def index_mac(self) -> Any:
        """The blind-index MAC keyed once; ``copy()`` it per value."""
        return self.crypto.mac_hasher(self.index_key)

    def key(self, key_id: str) -> bytes:
        key = self.keys.get(key_id)
        if key is None:
            raise DataKeyError(
                f"data key {key_id!r} is not in {self.path}: restore the key file that holds it "
                "(a rotated-away key is still needed by rows not yet re-encrypted)"
            )
        return key

    def seal(self, plain: bytes, context: str) -> bytes:
        """``nonce ‖ ciphertext ‖ tag`` under the active key, ``context`` bound as associated data."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce + self.crypto.aead_encrypt(self.key(self.active), nonce, plain, context.encode())

    def open(self, key_id: str, raw: bytes, context: str) -> bytes:
        """Raises DecryptionFailed (a CryptoError) when the value does not open."""
        return self.crypto.aead_decrypt(
            self.key(key_id), raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode()
        )

    def blind(self, domain: str, value: str) -> str:
        mac = self.index_mac.copy()  # keyed once per ring: a copy is half the cost of a new MAC
        mac.update(f"{domain}\x00{value}".encode())
        return bytes(mac.finalize()).hex()

    def document(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "profile": self.profile,
            "active": self.active,
            "keys": {k: base64.b64encode(v).decode() for k, v in self.keys.items()},
            "index_key": base64.b64encode(self.index_key).decode(),
        }


def _decode_key(value: object, where: str, size: int, what: str) -> bytes:
    try:
        raw = base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        raise DataKeyError(f"{where}: not base64") from None
    if len(raw) != size:
        raise DataKeyError(f"{where}: {what} is {size} bytes, this one is {len(raw)}")
    return raw


def read_ring(path: Path, *, expect: str | None = None) -> DataKeyRing:
    """Load and check a key ring file; every problem is a DataKeyError naming the file.

    ``expect``: the crypto profile the ring must be for (the platform's); a ring of the other profile
    is refused, since its keys are for the other cipher."""
    if not path.exists():
        raise DataKeyError(
            f"data key file {path} is missing: restore it from the key backup, or create a new one with "
            "`fcx keys init-data` on a platform that holds no encrypted data yet"
        )
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise DataKeyError(f"data key file {path}: cannot be read as JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise DataKeyError(f"data key file {path}: format must be {FORMAT}")
    keys_in = data.get("keys")
    if not isinstance(keys_in, dict) or not keys_in:
        raise DataKeyError(f"data key file {path}: keys must be a non-empty object")
    name = data.get("profile", "international")
    try:
        crypto = profile(str(name))
    except CryptoError:
        raise DataKeyError(
            f"data key file {path}: profile {name!r} is not a crypto profile (international or gm)"
        ) from None
    if expect is not None and crypto.name != expect:
        raise DataKeyError(
            f"data key file {path} holds {crypto.aead_algorithm} keys of the {crypto.name!r} crypto "
            f"profile, but the platform runs under {expect!r}: a key of the wrong algorithm for the "
            f"profile. Restore the {expect} key file, or change profile with `fcx crypto migrate`"
        )
    what = f"an {crypto.aead_algorithm} data key ({crypto.name} profile)"
    keys = {
        str(k): _decode_key(v, f"data key file {path}: key {k!r}", crypto.aead_key_size, what)
        for k, v in keys_in.items()
    }
    for k in keys:
        if not KEY_ID.fullmatch(k):
            raise DataKeyError(
                f"data key file {path}: key id {k!r} must be 1 to 32 letters, digits, '-' or '_'"
            )
    active = str(data.get("active"))
    if active not in keys:
        raise DataKeyError(f"data key file {path}: the active key {active!r} is not among the keys")
    index_key = _decode_key(
        data.get("index_key"), f"data key file {path}: index_key", INDEX_KEY_BYTES, "the index key"
    )
    return DataKeyRing(path, active, keys, index_key, crypto.name)


def new_key(profile_name: str | None = None) -> bytes:
    """A fresh data key for the profile's AEAD (32 bytes AES-256, 16 bytes SM4)."""
    p = profile(profile_name) if profile_name else active()
    return secrets.token_bytes(p.aead_key_size)


def new_ring(path: Path, profile_name: str | None = None) -> DataKeyRing:
    """A ring of one fresh key for ``profile_name`` (default: the platform's profile)."""
    p = profile(profile_name) if profile_name else active()
    return DataKeyRing(path, "d1", {"d1": new_key(p.name)}, secrets.token_bytes(INDEX_KEY_BYTES), p.name)


def write_ring(ring: DataKeyRing, *, exclusive: bool) -> bool:
    """Write the ring to its file (mode 0600). ``exclusive``: only if no file is there (True if written)."""
    ring.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{ring.path.name}.", dir=ring.path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(ring.document(), fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        if exclusive:
            try:
                os.link(tmp, ring.path)
            except FileExistsError:
                return False
            return True
        os.replace(tmp, ring.path)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


_lock = threading.Lock()
_ring: DataKeyRing | None = None
_ring_stamp: tuple[str, int, int, int] | None = None
_checked_at = -math.inf
_checked_setting: str | None = None
RECHECK_SECONDS = 0.5


def key_file() -> Path:
    return _resolved(str(get_settings().data_key_file), os.getcwd())


@functools.lru_cache(maxsize=16)
def _resolved(setting: str, cwd: str) -> Path:
    # Path.resolve() costs more than the encryption itself; every sealed value asks for the ring.
    return (Path(cwd) / setting).resolve()


def ring(*, fresh: bool = False) -> DataKeyRing:
    """The key ring of ``FCX_DATA_KEY_FILE``, re-read when the file changes (a rotation reaches running
    workers within RECHECK_SECONDS; ``fresh``: look at the file now — start-up checks and key commands).
    A missing file is created only by :func:`ensure_ring`; here it is an error."""
    global _ring, _ring_stamp, _checked_at, _checked_setting
    held: DataKeyRing | None = getattr(_pinned, "ring", None)
    if held is not None:
        return held
    setting = get_settings().data_key_file
    current = _ring
    now = time.monotonic()
    # Every sealed value and blind index asks for the ring: the file is looked at twice a second at
    # most, not for each of them (a stat costs more than the HMAC).
    recent = setting == _checked_setting and now - _checked_at < RECHECK_SECONDS
    if current is not None and recent and not fresh:
        return current
    path = key_file()
    try:
        st = path.stat()
        # A rotation replaces the file (a new inode): caught even within one mtime tick.
        stamp = (str(path), st.st_mtime_ns, st.st_ino, st.st_size)
    except FileNotFoundError:
        stamp = (str(path), -1, -1, -1)
    with _lock:
        if _ring is None or _ring_stamp != stamp or _ring.profile != active().name:
            _ring = read_ring(path, expect=active().name)
            _ring_stamp = stamp
        _checked_at, _checked_setting = now, setting
        return _ring


_pinned = threading.local()


@contextlib.contextmanager
def pinned(held: DataKeyRing | None = None) -> Iterator[DataKeyRing]:
    """One ring for a batch of values in this thread (a bulk submission seals and indexes a few values
    per row): read once, not checked against the file for every value. A rotation meanwhile reaches
    the next batch. ``held``: this ring instead of the file's (a change of profile opens under the old
    ring and seals under the new one)."""
    previous = getattr(_pinned, "ring", None)
    _pinned.ring = held if held is not None else ring()
    try:
        yield _pinned.ring
    finally:
        _pinned.ring = previous


def key_file_explicit() -> bool:
    """Whether ``FCX_DATA_KEY_FILE`` was given (environment, .env or arguments), not left at its default."""
    return "data_key_file" in get_settings().model_fields_set


def ensure_ring(bind: Engine | Connection | Session | None = None) -> tuple[DataKeyRing, bool]:
    """The ring, created if its file is missing on a new platform. True when this call created it.

    Created only when the path was left at its default and the database (``bind``, when given) holds
    no encrypted value: a path given explicitly must exist, and a new key cannot open what a lost one
    sealed — both are a DataKeyError naming the file (and the first row that needs the lost key).
    """
    path = key_file()
    if path.exists():
        return ring(fresh=True), False
    if key_file_explicit():
        raise DataKeyError(
            f"data key file {path} is missing (FCX_DATA_KEY_FILE names it): restore it from the key "
            "backup, or create it with `fcx keys init-data` on a platform that holds no encrypted data yet"
        )
    if bind is not None:
        first = first_encrypted_row(bind)
        if first is not None:
            raise DataKeyError(
                f"data key file {path} is missing, but the database holds encrypted data ({first}): "
                "restore the key file from the key backup; a new key cannot open it"
            )
    created = write_ring(new_ring(path), exclusive=True)
    return ring(fresh=True), created


def forget() -> None:
    """Drop the loaded ring (tests that switch key files, and after a rotation in this process)."""
    global _ring, _ring_stamp, _checked_at
    with _lock:
        _ring = None
        _ring_stamp = None
        _checked_at = -math.inf


# --- values -----------------------------------------------------------------------------------------


def encrypt(plain: str, context: str) -> str:
    """Seal ``plain`` under the active key; ``context`` (the column) is bound as associated data."""
    r = ring()
    return f"{PREFIX}:{r.active}:{base64.b64encode(r.seal(plain.encode('utf-8'), context)).decode()}"


def key_id_of(stored: str) -> str | None:
    """The key id of a stored value; None for a value that is not sealed (plain, from before)."""
    if not stored.startswith(PREFIX + ":"):
        return None
    return stored.split(":", 2)[1]


def decrypt(stored: str, context: str) -> str:
    kid = key_id_of(stored)
    if kid is None:
        raise DataKeyError(f"{context}: the stored value is not encrypted")
    raw = base64.b64decode(stored.split(":", 2)[2])
    try:
        return ring().open(kid, raw, context).decode()
    except DecryptionFailed:
        raise DataKeyError(f"{context}: a value sealed under key {kid!r} does not open (altered?)") from None


def encrypt_bytes(plain: bytes, context: str) -> bytes:
    """Seal a file's bytes: ``FCXE1\\0`` ‖ key id ‖ ``\\0`` ‖ nonce ‖ ciphertext ‖ tag."""
    r = ring()
    return BLOB_MAGIC + r.active.encode() + b"\x00" + r.seal(plain, context)


def blob_key_id(stored: bytes) -> str | None:
    if not stored.startswith(BLOB_MAGIC):
        return None
    return stored[len(BLOB_MAGIC) :].split(b"\x00", 1)[0].decode()


def decrypt_bytes(stored: bytes, context: str) -> bytes:
    kid = blob_key_id(stored)
    if kid is None:
        raise DataKeyError(f"{context}: the stored file is not encrypted")
    rest = stored[len(BLOB_MAGIC) + len(kid) + 1 :]
    try:
        return ring().open(kid, rest, context)
    except DecryptionFailed:
        raise DataKeyError(f"{context}: a file sealed under key {kid!r} does not open (altered?)") from None


def blind(domain: str, value: str) -> str:
    """Keyed blind index (the profile's MAC, HMAC-SHA256 | HMAC-SM3, hex) of ``value`` for one
    ``domain`` (``identifier``, ``name``, ``decision-log`` …): equal values give equal indexes within a
    domain, unlinkable across domains."""
    return ring().blind(domain, value)


# --- blind-index columns, declared in the models -------------------------------------------------------
#
# Core names no table: a column that holds a blind index says so in its ``info``, with how to compute it
# from the other columns of its row, so that a change of profile (a new MAC) can re-index every row:
#
#     value_index = mapped_column(String(64), info={vault.BLIND_INDEX: vault.BlindIndexOf(
#         ("type", "value"), lambda row: vault.identifier_index(row["type"], row["value"]), "identifier")})
#
# A column that holds indexes whose plain source the platform does not keep (decision-log identifier
# digests, caches keyed by an index) declares ``RemappedIndex(domain)``: each value that is the old index
# of a value some ``BlindIndexOf`` column of that domain holds is replaced by the new one.

BLIND_INDEX = "fcx_blind_index"


@dataclass(frozen=True)
class BlindIndexOf:
    """A blind-index column computed from ``source`` columns of the same row (encrypted ones arrive
    decrypted). ``compute`` calls :func:`blind` / :func:`identifier_index` and may return the stored
    value unchanged (a unit's name key is not blinded) — it is given the row's current value too."""

    source: tuple[str, ...]
    compute: Callable[[Mapping[str, Any]], str]
    domain: str


@dataclass(frozen=True)
class RemappedIndex:
    """A column of blind indexes of ``domain`` without their plain source (see above)."""

    domain: str


def blind_index_columns() -> list[tuple[Table, Column[Any], BlindIndexOf | RemappedIndex]]:
    """Every column of ``Base.metadata`` declared as a blind index, in a stable order."""
    return [
        (t, c, c.info[BLIND_INDEX])
        for t in Base.metadata.sorted_tables
        for c in t.columns
        if isinstance(c.info.get(BLIND_INDEX), BlindIndexOf | RemappedIndex)
    ]


class Encrypted(TypeDecorator[str]):
    """A text column stored sealed (see module doc); reads give the plain text back.

    ``context`` names the column (``subject_identifiers.value``) and is bound into every value. Queries
    cannot compare such a column with a plain value: look up through a blind index column instead.
    """

    impl = Text
    cache_ok = True

    def __init__(self, context: str) -> None:
        super().__init__()
        self.context = context

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        if value is None:
            return None
        return encrypt(value, self.context)

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        if value is None:
            return None
        return decrypt(value, self.context)


class EncryptedJSON(TypeDecorator[Any]):
    """A JSON document stored sealed as text (submitted subjects, contact details)."""

    impl = Text
    cache_ok = True

    def __init__(self, context: str) -> None:
        super().__init__()
        self.context = context

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        return encrypt(json.dumps(value, ensure_ascii=False, sort_keys=True), self.context)

    def process_result_value(self, value: str | None, dialect: Any) -> Any:
        if value is None:
            return None
        return json.loads(decrypt(value, self.context))


class EncryptedBytes(TypeDecorator[bytes]):
    """Binary content stored sealed (files kept in the database)."""

    impl = LargeBinary
    cache_ok = True

    def __init__(self, context: str) -> None:
        super().__init__()
        self.context = context

    def process_bind_param(self, value: bytes | None, dialect: Any) -> bytes | None:
        if value is None:
            return None
        return encrypt_bytes(value, self.context)

    def process_result_value(self, value: bytes | None, dialect: Any) -> bytes | None:
        if value is None:
            return None
        return decrypt_bytes(value, self.context)


def identifier_index(type_: str, canonical: str) -> str:
    """The blind index of one canonical identifier: the look-up key of ``subject_identifiers`` and the
    digest the decision log keeps (never the plain value)."""
    return blind("identifier", f"{type_}:{canonical}")


# --- the database: which keys its rows need -----------------------------------------------------------
#
# Every column typed Encrypted / EncryptedJSON / EncryptedBytes in ``Base.metadata`` (filled by whoever
# imported the models: core names no table) is read here with plain SQL on the stored prefix, never
# decrypting: which key ids are in use, how many rows each, and which rows need a given key.

ENCRYPTED_TYPES = (Encrypted, EncryptedJSON, EncryptedBytes)


@dataclass(frozen=True)
class RowRef:
    """One stored value: its table, primary key and column (what an operator needs to find it)."""

    table: str
    key: str
    column: str

    def __str__(self) -> str:
        return f"table {self.table}, row {self.key}, column {self.column}"


@dataclass(frozen=True)
class KeyUse:
    """How many rows of one column are sealed under one key (``key_id`` None: not sealed at all)."""

    table: str
    column: str
    key_id: str | None
    rows: int


def encrypted_columns() -> list[tuple[Table, Column[Any]]]:
    """Every encrypted column of the schema, in a stable order (tables as they depend on each other)."""
    return [
        (t, c) for t in Base.metadata.sorted_tables for c in t.columns if isinstance(c.type, ENCRYPTED_TYPES)
    ]


@contextlib.contextmanager
def _connected(bind: Engine | Connection | Session) -> Iterator[Connection]:
    if isinstance(bind, Session):
        yield bind.connection()
    elif isinstance(bind, Connection):
        yield bind
    else:
        with bind.connect() as conn:
            yield conn


def _present(conn: Connection) -> list[tuple[Table, Column[Any]]]:
    """The encrypted columns this database has (an older schema, before its upgrade, lacks some)."""
    insp = inspect(conn)
    tables = set(insp.get_table_names())
    have: dict[str, set[str]] = {}
    out = []
    for t, c in encrypted_columns():
        if t.name not in tables:
            continue
        if t.name not in have:
            have[t.name] = {col["name"] for col in insp.get_columns(t.name)}
        if c.name in have[t.name]:
            out.append((t, c))
    return out


def stored_key_id(conn: Connection, t: Table, c: Column[Any]) -> tuple[Any, ColumnElement[Any], Any]:
    """SQL for one column: (the bare table, the key id of its stored value — NULL when the value is
    not sealed — and the bare column). Bare: no type, so nothing is decrypted."""
    bare_col: ColumnClause[Any] = column(c.name)
    bare = table(t.name, bare_col, *(column(pk.name) for pk in t.primary_key.columns))
    pg = conn.dialect.name == "postgresql"
    if isinstance(c.type, EncryptedBytes):
        n = len(BLOB_MAGIC)
        sealed = func.substr(bare_col, 1, n, type_=LargeBinary) == literal(BLOB_MAGIC, LargeBinary)
        if pg:
            # encode(…, 'escape') writes the NUL ending the key id as the four characters \\000.
            head = func.encode(func.substr(bare_col, n + 1, 64), literal("escape"), type_=Text)
            kid: ColumnElement[Any] = func.split_part(head, literal("\\000"), 1, type_=Text)
        else:
            rest = func.substr(bare_col, n + 1, type_=LargeBinary)
            nul = func.instr(rest, literal(b"\x00", LargeBinary))
            # As text: SQLite never finds a BLOB equal to a TEXT key id.
            kid = cast(func.substr(rest, 1, nul - 1, type_=LargeBinary), Text)
    else:
        n = len(PREFIX) + 1
        sealed = func.substr(bare_col, 1, n, type_=Text) == literal(PREFIX + ":", Text)
        if pg:
            kid = func.split_part(bare_col, literal(":"), 2, type_=Text)
        else:
            rest = func.substr(bare_col, n + 1, type_=Text)
            kid = func.substr(rest, 1, func.instr(rest, literal(":")) - 1, type_=Text)
    return bare, case((sealed, kid), else_=None), bare_col


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return bytes(value).decode("ascii", "replace") if isinstance(value, bytes | memoryview) else str(value)


def key_usage(bind: Engine | Connection | Session) -> list[KeyUse]:
    """Rows per key id per encrypted column (``fcx keys data-status``; the start-up check)."""
    out: list[KeyUse] = []
    with _connected(bind) as conn:
        for t, c in _present(conn):
            bare, kid, col = stored_key_id(conn, t, c)
            stmt = select(kid, func.count()).select_from(bare).where(col.is_not(None)).group_by(kid)
            for key_id, rows in conn.execute(stmt):
                out.append(KeyUse(t.name, c.name, _text(key_id), int(rows)))
    return out


def rows_needing(
    bind: Engine | Connection | Session,
    key_id: str | None,
    *,
    limit: int = 10,
    column_of: tuple[str, str] | None = None,
) -> list[RowRef]:
    """Up to ``limit`` rows whose stored value needs ``key_id`` (None: values that are not sealed),
    in every encrypted column or only in ``column_of`` (table, column)."""
    found: list[RowRef] = []
    with _connected(bind) as conn:
        for t, c in _present(conn):
            if len(found) >= limit:
                break
            if column_of is not None and (t.name, c.name) != column_of:
                continue
            bare, kid, col = stored_key_id(conn, t, c)
            pks = [bare.c[pk.name] for pk in t.primary_key.columns]
            cond = kid.is_(None) if key_id is None else kid == literal(key_id, Text)
            if key_id is None:
                cond = and_(col.is_not(None), cond)
            stmt = select(*pks).select_from(bare).where(cond).order_by(*pks).limit(limit - len(found))
            for row in conn.execute(stmt):
                found.append(RowRef(t.name, "/".join(str(v) for v in row), c.name))
    return found


def first_encrypted_row(bind: Engine | Connection | Session) -> RowRef | None:
    """The first row holding a sealed value, or None when the database holds none (a new platform)."""
    with _connected(bind) as conn:
        for t, c in _present(conn):
            bare, kid, _ = stored_key_id(conn, t, c)
            pks = [bare.c[pk.name] for pk in t.primary_key.columns]
            row = conn.execute(select(*pks).select_from(bare).where(not_(kid.is_(None))).limit(1)).first()
            if row is not None:
                return RowRef(t.name, "/".join(str(v) for v in row), c.name)
    return None


def check_database(bind: Engine | Connection | Session) -> DataKeyRing:
    """The start-up check: the ring loads, and every key id a stored value names is in it.

    Raises DataKeyError naming the file (missing, malformed, a key of the wrong size) or the first row
    that needs a key the ring lacks (table, primary key, column, key id), or that holds a value not
    sealed at all. Nothing is served while it fails (``fcx serve``, ``create_served_app``).
    """
    r = ring(fresh=True)
    usage = key_usage(bind)
    for use in usage:
        if use.key_id is None:
            row = rows_needing(bind, None, limit=1, column_of=(use.table, use.column))
            where = f"{row[0]}" if row else f"table {use.table}, column {use.column}"
            raise DataKeyError(
                f"{where}: the value is stored in plain text in an encrypted column "
                f"({use.rows} such rows): run `fcx db upgrade`, which encrypts them"
            )
    for use in usage:
        if use.key_id not in r.keys:
            row = rows_needing(bind, use.key_id, limit=1, column_of=(use.table, use.column))
            where = f"{row[0]}" if row else f"table {use.table}, column {use.column}"
            raise DataKeyError(
                f"{where}: needs data key {use.key_id!r}, which is not in {r.path} "
                f"({use.rows} rows of {use.table}.{use.column} need it): restore the key file that holds it"
            )
    return r


def check_served(bind: Engine | Connection | Session) -> None:
    """The check of a served application (``create_served_app``): as :func:`check_database`, except
    that a database not answering right now is left to the readiness probe (it answers 503 until the
    database is back), so that a worker restarted during an outage still starts."""
    ring(fresh=True)
    try:
        check_database(bind)
    except DataKeyError:
        raise
    except Exception as exc:
        if not unavailable(exc):
            raise
        log.warning(
            "data keys: the database does not answer (%s); its rows are checked at the next start", exc
        )
