"""Personal data at rest (个人信息加密存储): the data key ring, authenticated encryption and blind indexes.

Resident IDs, phones, e-mail addresses and names of natural persons, and evidence files, are stored
encrypted with AES-256-GCM (``cryptography``'s AEAD; no cipher code of ours) under the data key ring
kept in ``FCX_DATA_KEY_FILE`` (mode 0600):

    {"format": "fcx-data-keys/1", "active": "d2",
     "keys": {"d1": "<base64 of 32 bytes>", "d2": "<base64 of 32 bytes>"},
     "index_key": "<base64 of 32 bytes>"}

A stored value reads ``fcx1:<key id>:<base64(nonce ‖ ciphertext ‖ tag)>``; the key id says which key
opens it, so a rotation (``fcx keys rotate-data``) adds a key, makes it active and re-encrypts rows in
the background while both keys open what they sealed. The column's name is the associated data: a value
moved to another column does not open.

Exact-match look-ups go through keyed blind indexes (``blind``): HMAC-SHA256 under ``index_key``, with
a domain per use, so equal plain values have equal indexes and nothing else can be learnt from them.
The index key is not rotated with the data keys (that would mean re-indexing every row).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import LargeBinary, Text
from sqlalchemy.types import TypeDecorator

from fanchaoxin.core.settings import get_settings

FORMAT = "fcx-data-keys/1"
PREFIX = "fcx1"
KEY_BYTES = 32
NONCE_BYTES = 12
BLOB_MAGIC = b"FCXE1\x00"


class DataKeyError(RuntimeError):
    """The data key file cannot be used, or a stored value needs a key the ring does not hold.

    The message names the file (and the key id); callers that know the row add its table and id."""


@dataclass
class DataKeyRing:
    path: Path
    active: str
    keys: dict[str, bytes]
    index_key: bytes
    _aead: dict[str, AESGCM] = field(default_factory=dict, repr=False)

    def aead(self, key_id: str) -> AESGCM:
        cipher = self._aead.get(key_id)
        if cipher is None:
            key = self.keys.get(key_id)
            if key is None:
                raise DataKeyError(
                    f"data key {key_id!r} is not in {self.path}: restore the key file that holds it "
                    "(a rotated-away key is still needed by rows not yet re-encrypted)"
                )
            cipher = self._aead[key_id] = AESGCM(key)
        return cipher

    def document(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "active": self.active,
            "keys": {k: base64.b64encode(v).decode() for k, v in self.keys.items()},
            "index_key": base64.b64encode(self.index_key).decode(),
        }


def _decode_key(value: object, where: str) -> bytes:
    try:
        raw = base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        raise DataKeyError(f"{where}: not base64") from None
    if len(raw) != KEY_BYTES:
        raise DataKeyError(f"{where}: a data key is {KEY_BYTES} bytes, this one is {len(raw)}")
    return raw


def read_ring(path: Path) -> DataKeyRing:
    """Load and check a key ring file; every problem is a DataKeyError naming the file."""
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
    keys = {str(k): _decode_key(v, f"data key file {path}: key {k!r}") for k, v in keys_in.items()}
    active = str(data.get("active"))
    if active not in keys:
        raise DataKeyError(f"data key file {path}: the active key {active!r} is not among the keys")
    index_key = _decode_key(data.get("index_key"), f"data key file {path}: index_key")
    return DataKeyRing(path, active, keys, index_key)


def new_ring(path: Path) -> DataKeyRing:
    return DataKeyRing(path, "d1", {"d1": secrets.token_bytes(KEY_BYTES)}, secrets.token_bytes(KEY_BYTES))


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
_ring_stamp: tuple[str, float] | None = None


def key_file() -> Path:
    return Path(get_settings().data_key_file).resolve()


def ring() -> DataKeyRing:
    """The key ring of ``FCX_DATA_KEY_FILE``, re-read when the file changes (a rotation reaches running
    workers). A missing file is created only by :func:`ensure_ring`; here it is an error."""
    global _ring, _ring_stamp
    path = key_file()
    try:
        stamp = (str(path), path.stat().st_mtime)
    except FileNotFoundError:
        stamp = (str(path), -1.0)
    current = _ring
    if current is not None and _ring_stamp == stamp:
        return current
    with _lock:
        if _ring is None or _ring_stamp != stamp:
            _ring = read_ring(path)
            _ring_stamp = stamp
        return _ring


def ensure_ring() -> tuple[DataKeyRing, bool]:
    """The ring, created if its file is missing (a new platform). True when this call created it."""
    path = key_file()
    created = False
    if not path.exists():
        created = write_ring(new_ring(path), exclusive=True)
    return ring(), created


def forget() -> None:
    """Drop the loaded ring (tests that switch key files, and after a rotation in this process)."""
    global _ring, _ring_stamp
    with _lock:
        _ring = None
        _ring_stamp = None


# --- values -----------------------------------------------------------------------------------------


def encrypt(plain: str, context: str) -> str:
    """Seal ``plain`` under the active key; ``context`` (the column) is bound as associated data."""
    r = ring()
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = r.aead(r.active).encrypt(nonce, plain.encode("utf-8"), context.encode())
    return f"{PREFIX}:{r.active}:{base64.b64encode(nonce + sealed).decode()}"


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
        return ring().aead(kid).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode()).decode()
    except InvalidTag:
        raise DataKeyError(f"{context}: a value sealed under key {kid!r} does not open (altered?)") from None


def encrypt_bytes(plain: bytes, context: str) -> bytes:
    """Seal a file's bytes: ``FCXE1\\0`` ‖ key id ‖ ``\\0`` ‖ nonce ‖ ciphertext ‖ tag."""
    r = ring()
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = r.aead(r.active).encrypt(nonce, plain, context.encode())
    return BLOB_MAGIC + r.active.encode() + b"\x00" + nonce + sealed


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
        return ring().aead(kid).decrypt(rest[:NONCE_BYTES], rest[NONCE_BYTES:], context.encode())
    except InvalidTag:
        raise DataKeyError(f"{context}: a file sealed under key {kid!r} does not open (altered?)") from None


def blind(domain: str, value: str) -> str:
    """Keyed blind index (HMAC-SHA256, hex) of ``value`` for one ``domain`` (``identifier``, ``name``,
    ``decision-log`` …): equal values give equal indexes within a domain, unlinkable across domains."""
    return hmac.new(ring().index_key, f"{domain}\x00{value}".encode(), hashlib.sha256).hexdigest()


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
