"""The sharing wire formats, in one place: signed feed files, the signed manifest, webhook MACs, and the
decision request that the platform and every enterprise node answer.

The platform writes these and every receiver (enterprise node, department receiver) reads them with
the same functions, so a rule (what is signed, what is refused) cannot drift between the two sides.

Feed files (``fcx-feed-snapshot/2`` and ``fcx-feed-delta/2``)
-------------------------------------------------------------
gzip-compressed JSON Lines. Line 1 is the header, then one line per record, then one signature
line::

    {"format": "fcx-feed-delta/2", "from": 120, "to": 130, "count": 10, "key_id": "s1", ...}
    {"seq": 121, "event": "published", "at": "...", "record": {...}}
    ...
    {"signature": "<base64 signature over feed_body_message(format, digest of every byte above this line)>"}

A delta's line may carry ``"request_id"`` (#23): the request that made the change, for the receiver's
logs; it is optional (events from before it, and from jobs of old platforms, have none), outside the
record and so outside the transparency log's leaf, and a receiver that does not know it ignores it.

The body is every byte above the signature line, header and newlines included; the signature covers
``b"fcx-feed-body/2\\n" + format + b"\\n" + digest(body)`` (:func:`feed_body_message`), the digest the
signing key's profile's. So the writer hashes the body as it streams out and signs ~70 bytes once (a
million-entry snapshot is never read back), and a receiver hashes the body once and verifies one short
message. Format ``/1`` (``fcx-feed-snapshot/1``, ``fcx-feed-delta/1``), whose signature covers the body
itself, is still read and verified (a platform not yet upgraded); the platform writes ``/2`` only.

The signature is the platform's crypto profile's (``core.crypto``): Ed25519 (64 raw bytes) under
``international``, SM2 with SM3 (DER ``SEQUENCE {r, s}``, the default signer ID) under ``gm``. The header
names the profile (``crypto_profile``), and a receiver verifies with the profile it learnt from the
manifest at ``fcx node init``, never with a profile the file claims.

A snapshot's records are the current records of the entries in force (``{"record": {...}}``) at
sequence ``seq`` of its header; a delta holds the feed events ``from`` < seq ≤ ``to``, consecutive.
Because the signature covers the exact bytes (through their digest), a forged, truncated or reordered
file is refused, and :func:`read_feed_file` checks the header's count and (for deltas) that sequence
numbers run from ``from + 1`` to ``to`` without a gap. Whether a delta *fits* a receiver's store
(``from`` equals its head: no replay, no skip) is the receiver's check, with :func:`check_delta_fits`.

Manifest
--------
``{"manifest": {...}, "key_id": "s1", "signature": "<b64>"}``, the signature over
:func:`canonical_json` of the manifest object, which states the profile it is signed under
(``crypto_profile``, ``signature_algorithm``, ``hash_algorithm``, ``mac_algorithm``) and the snapshot's
digest under it (``snapshot.digest``; ``snapshot.sha256`` too under ``international``, for nodes that
predate the profiles).

Webhooks
--------
Headers ``X-FCX-Event-Id``, ``X-FCX-Timestamp`` (Unix seconds) and
``X-FCX-Signature: v1=<hex MAC(secret, timestamp + "." + event_id + "." + body)>``, the MAC of the
platform's profile (HMAC-SHA256 under ``international``, HMAC-SM3 under ``gm``: the manifest's
``mac_algorithm`` says which).
Receivers refuse a bad MAC, a timestamp more than :data:`WEBHOOK_TOLERANCE_SECONDS` away from their
clock, and an event id they have already accepted (:func:`verify_webhook` with a seen-set).

Decision requests
-----------------
``POST /v1/decisions`` takes :class:`DecisionRequest` on the platform and on a node alike, and both refuse
a bad identifier with the same 422 naming its field (:func:`identifier_keys`, :func:`identifier_problem`).
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import io
import json
import os
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote, unquote

import yaml
from pydantic import Field, model_validator

from fanchaoxin.core import crypto
from fanchaoxin.core.catalogue import CATALOGUE_DIR
from fanchaoxin.core.errors import ValidationProblem
from fanchaoxin.core.identifiers import IdentifierError, IdentifierType, normalise
from fanchaoxin.core.schemas import StrictModel

SNAPSHOT_FORMAT = "fcx-feed-snapshot/2"
DELTA_FORMAT = "fcx-feed-delta/2"
MANIFEST_FORMAT = "fcx-feed-manifest/1"
WEBHOOK_TOLERANCE_SECONDS = 300


class ProtocolError(ValueError):
    """A file, manifest or webhook that must not be applied. The message says what is wrong."""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise ProtocolError(f"{what}: expected base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        raise ProtocolError(f"{what}: not valid base64") from None


def canonical_json(obj: Any) -> bytes:
    """The bytes that get signed: sorted keys, no spaces, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# --- signing keys -----------------------------------------------------------------------------------


@runtime_checkable
class _Exportable(Protocol):
    """An in-process key whose secret can be written to a key file (a 密码机's key cannot)."""

    def private_bytes(self) -> bytes: ...


@dataclass(frozen=True)
class SigningKey:
    """A feed-signing or node key: an id and a ``core.crypto`` signing key handle of one profile.

    ``public`` is what receivers pin; ``key`` the handle (in process, or a 密码机's through PKCS#11);
    ``profile`` the crypto profile whose signature algorithm it is."""

    key_id: str
    key: crypto.SigningKey
    profile: crypto.Profile

    def __post_init__(self) -> None:
        self.profile.public_key_of(self.key)  # WrongKeyError: a key of the other profile's algorithm

    @classmethod
    def generate(cls, key_id: str, profile: crypto.Profile | None = None) -> SigningKey:
        """A fresh key of ``profile`` (the platform's, :func:`core.crypto.active`, unless given)."""
        prof = profile or crypto.active()
        return cls(key_id, prof.generate_signing_key(), prof)

    @classmethod
    def load(cls, key_id: str, private: bytes, public: bytes | None, profile: crypto.Profile) -> SigningKey:
        """The key from its stored bytes (the Ed25519 seed; the SM2 scalar with its point, required)."""
        return cls(key_id, profile.load_signing_key(private, public), profile)

    @classmethod
    def from_seed(cls, key_id: str, seed: bytes) -> SigningKey:
        """An Ed25519 key from its 32-byte seed (``international``; tests and keys of before #18)."""
        prof = crypto.profile("international")
        return cls(key_id, prof.load_signing_key(seed), prof)

    @property
    def public(self) -> bytes:
        return self.key.public_bytes()

    @property
    def algorithm(self) -> str:
        return self.key.algorithm

    def private_bytes(self) -> bytes:
        if not isinstance(self.key, _Exportable):
            raise crypto.WrongKeyError(f"signing key {self.key_id} is held in a module: no secret to export")
        return self.key.private_bytes()

    def with_id(self, key_id: str) -> SigningKey:
        return SigningKey(key_id, self.key, self.profile)

    def sign(self, message: bytes) -> bytes:
        return self.profile.sign(self.key, message)

    def __repr__(self) -> str:
        return f"SigningKey({self.key_id!r}, {self.profile.name}, {fingerprint(self.public)})"


def fingerprint(public_key: bytes) -> str:
    """A short, comparable form of a public key for pinning and display: the first 32 hex digits of the
    digest of the key's own profile (SHA-256 of an Ed25519 key, SM3 of an SM2 point), so the platform and
    a node compute the same one from the key alone."""
    return key_profile(public_key, "public key").hexdigest(bytes(public_key))[:32]


def key_profile(public_key: bytes, what: str) -> crypto.Profile:
    """The profile whose algorithm a public key is (``ProtocolError`` for a key of neither)."""
    try:
        return crypto.profile_of_public_key(public_key)
    except crypto.WrongKeyError as exc:
        raise ProtocolError(f"{what}: {exc}") from None


def profile_named(name: object, what: str) -> crypto.Profile:
    """The crypto profile a manifest, header or store names (``ProtocolError`` for an unknown one)."""
    try:
        return crypto.profile(str(name))
    except crypto.UnknownProfile as exc:
        raise ProtocolError(f"{what}: {exc}") from None


def profile_facts(prof: crypto.Profile) -> dict[str, str]:
    """What a manifest states about the profile it is signed under (the receiver checks, never trusts)."""
    return {
        "crypto_profile": prof.name,
        "signature_algorithm": prof.signature_algorithm,
        "hash_algorithm": prof.hash_algorithm,
        "mac_algorithm": prof.mac_algorithm,
    }


def check_public_key(prof: crypto.Profile, public_key: bytes, what: str) -> None:
    """Refuse a public key that is not one of ``prof``'s algorithm (an Ed25519 key under ``gm``, an SM2
    point under ``international``, a wrong size, an SM2 point off the curve), with a plain reason."""
    try:
        other = crypto.profile_of_public_key(public_key)
    except crypto.WrongKeyError as exc:
        raise ProtocolError(f"{what}: {exc}") from None
    if other.name != prof.name:
        raise ProtocolError(
            f"{what}: a {other.signature_algorithm} key of the {other.name} crypto profile, but the "
            f"{prof.name} profile signs with {prof.signature_algorithm} (a key of the wrong algorithm)"
        )
    try:
        # a well-formed signature by another key: the profile checks the key itself first (an SM2 point
        # off the curve is a WrongKeyError), then answers BadSignature
        prof.verify(public_key, _PROBE, _probe_signature(prof.name))
    except crypto.BadSignature:
        return
    except crypto.CryptoError as exc:
        raise ProtocolError(f"{what}: {exc}") from None


_PROBE = b"fcx public key check"


@cache
def _probe_signature(name: str) -> bytes:
    prof = crypto.profile(name)
    return prof.sign(prof.generate_signing_key(), _PROBE)


def verify_signature(
    public_key: bytes, message: bytes, signature: bytes, what: str, profile: crypto.Profile | None = None
) -> None:
    """Verify under ``profile`` (what the receiver learnt); the key's own profile when not given (a
    receipt or checkpoint verified against the key enrolled for it)."""
    prof = profile or key_profile(public_key, what)
    try:
        prof.verify(public_key, message, signature)
    except crypto.BadSignature:
        raise ProtocolError(f"{what}: signature does not verify") from None
    except crypto.CryptoError as exc:
        raise ProtocolError(f"{what}: {exc}") from None


# --- feed files -----------------------------------------------------------------------------------------

# Format /1 (before #18's performance work) signed the whole body; /2 signs a short message naming the
# body's digest. Nodes still read /1 files (a platform not yet upgraded); the platform writes /2 only.
SNAPSHOT_FORMAT_V1 = "fcx-feed-snapshot/1"
DELTA_FORMAT_V1 = "fcx-feed-delta/1"
_KIND_OF_FORMAT = {
    SNAPSHOT_FORMAT: SNAPSHOT_FORMAT,
    SNAPSHOT_FORMAT_V1: SNAPSHOT_FORMAT,
    DELTA_FORMAT: DELTA_FORMAT,
    DELTA_FORMAT_V1: DELTA_FORMAT,
}
# The /2 signed message starts with this line. No feed body, manifest, receipt or checkpoint starts with
# it (they are JSON, "{"...), so a /2 signature can never be taken for a signature over one of them.
FEED_BODY_DOMAIN = b"fcx-feed-body/2\n"
# Lines are serialised into chunks of about this size before they are hashed and written: one digest
# update and one gzip write per chunk rather than per line (a million lines).
_CHUNK_BYTES = 1 << 20


def feed_body_message(fmt: str, body_digest: bytes) -> bytes:
    """What a /2 feed file's signature covers: the domain line, the file's format, the body's digest
    under the signing key's profile (header line included, signature line excluded)."""
    return FEED_BODY_DOMAIN + fmt.encode("ascii") + b"\n" + body_digest


def _header_line(fmt: str, header: dict[str, Any], key: SigningKey) -> bytes:
    return canonical_json({**header, "format": fmt, "key_id": key.key_id, "crypto_profile": key.profile.name})


def _write_body(
    fmt: str,
    header: dict[str, Any],
    lines: Iterable[dict[str, Any]],
    key: SigningKey,
    sink: Callable[[bytes], object],
) -> bytes:
    """Serialise the body into ``sink`` chunk by chunk, hashing each chunk as it goes out (no second
    pass over the body); returns the body's digest."""
    if fmt not in (SNAPSHOT_FORMAT, DELTA_FORMAT):
        raise ValueError(f"unknown feed format {fmt}")
    hasher = key.profile.hasher()
    pending = [_header_line(fmt, header, key) + b"\n"]
    size = len(pending[0])
    n = 0
    for line in lines:
        encoded = canonical_json(line)
        pending.append(encoded)
        pending.append(b"\n")
        size += len(encoded) + 1
        n += 1
        if size >= _CHUNK_BYTES:
            chunk = b"".join(pending)
            hasher.update(chunk)
            sink(chunk)
            pending.clear()
            size = 0
    if n != header["count"]:
        raise ValueError(f"header says {header['count']} records, {n} written")
    chunk = b"".join(pending)
    hasher.update(chunk)
    sink(chunk)
    return hasher.finalize()


def _signature_line(fmt: str, body_digest: bytes, key: SigningKey) -> bytes:
    # one signature over ~70 bytes, whatever the body's size (an SM2 signature costs milliseconds)
    return canonical_json({"signature": b64(key.sign(feed_body_message(fmt, body_digest)))}) + b"\n"


def write_feed_file(
    fmt: str, header: dict[str, Any], lines: Iterable[dict[str, Any]], key: SigningKey
) -> bytes:
    """Serialise, sign and gzip a snapshot or delta. ``header`` must carry ``count``. One signature for
    the whole file, never one per record."""
    return write_feed_file_digest(fmt, header, lines, key)[0]


def write_feed_file_digest(
    fmt: str, header: dict[str, Any], lines: Iterable[dict[str, Any]], key: SigningKey
) -> tuple[bytes, str]:
    """:func:`write_feed_file` and the hex digest (the key's profile's) of the body, the signed content
    without its signature: the same content gives the same digest though an SM2 signature differs every
    time (it is randomised, an Ed25519 one is not), so it is what an ETag is made of."""
    raw = io.BytesIO()
    body_digest = _write_body(fmt, header, lines, key, raw.write)
    raw.write(_signature_line(fmt, body_digest, key))
    return gzip.compress(raw.getvalue(), compresslevel=6, mtime=0), body_digest.hex()


class _HashingSink(io.RawIOBase):
    """The file a gzip stream writes to, hashing the compressed bytes on their way (the manifest's digest
    of the file)."""

    def __init__(self, out: io.BufferedWriter, hasher: Any) -> None:
        super().__init__()
        self._out = out
        self._hasher = hasher

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self._hasher.update(b)
        return self._out.write(b)


def write_feed_file_to(
    path: str | os.PathLike[str],
    fmt: str,
    header: dict[str, Any],
    lines: Iterable[dict[str, Any]],
    key: SigningKey,
) -> tuple[str, int]:
    """:func:`write_feed_file` for files too large to hold in memory (a million-entry snapshot).

    The body is hashed and gzipped into ``path`` as it is produced, then the signature over its digest is
    appended: no temporary copy, no second read. It decompresses to the same bytes as
    :func:`write_feed_file`'s output for the same input, save the signature (SM2's is randomised).
    Returns ``(hex digest, size)`` of the gzip file, the digest under the key's profile (SHA-256 or SM3).
    Nothing is left at ``path`` if the lines fail (or do not number ``header["count"]``).
    """
    if fmt not in (SNAPSHOT_FORMAT, DELTA_FORMAT):
        raise ValueError(f"unknown feed format {fmt}")
    path = os.fspath(path)
    file_digest = key.profile.hasher()
    try:
        with open(path, "wb") as out:
            sink = _HashingSink(out, file_digest)
            with gzip.GzipFile(filename="", mode="wb", compresslevel=6, fileobj=sink, mtime=0) as gz:
                body_digest = _write_body(fmt, header, lines, key, gz.write)
                gz.write(_signature_line(fmt, body_digest, key))
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        raise
    return file_digest.finalize().hex(), os.path.getsize(path)


@dataclass
class FeedFile:
    header: dict[str, Any]
    records: list[dict[str, Any]]

    @property
    def format(self) -> str:
        """The kind of file, as the current format names it (:data:`SNAPSHOT_FORMAT` or
        :data:`DELTA_FORMAT`) whichever version it came in; :attr:`wire_format` is the version's."""
        return _KIND_OF_FORMAT[str(self.header["format"])]

    @property
    def wire_format(self) -> str:
        return str(self.header["format"])


def _unverified_format(first_line: bytes) -> str:
    """The format the header line names, read BEFORE the signature is checked: it only chooses what the
    signature must cover (each version's message is domain-separated), nothing else is taken from it."""
    try:
        header = json.loads(first_line)
    except ValueError:
        raise ProtocolError("feed file: the first line is not a JSON header") from None
    fmt = header.get("format") if isinstance(header, dict) else None
    if fmt not in _KIND_OF_FORMAT:
        raise ProtocolError(f"feed file: unknown format {fmt!r}")
    return str(fmt)


def read_feed_file(
    data: bytes, public_key: bytes, *, expect: str | None = None, profile: crypto.Profile | None = None
) -> FeedFile:
    """Verify and parse a feed file under ``profile`` (the receiver's: learnt from the manifest at init;
    the pinned key's own when not given). Raises :class:`ProtocolError`; nothing is returned unverified.

    A /2 file's signature is checked over :func:`feed_body_message` of the body's digest (one pass over
    the body), a /1 file's over the body itself. ``expect`` names a kind (:data:`SNAPSHOT_FORMAT` or
    :data:`DELTA_FORMAT`); a file of that kind in either version fits it."""
    try:
        raw = gzip.decompress(data)
    except (OSError, EOFError, gzip.BadGzipFile):
        raise ProtocolError("feed file: not a complete gzip stream (truncated or corrupt)") from None
    if not raw.endswith(b"\n"):
        raise ProtocolError("feed file: truncated (no final newline)")
    # split once (no copy of the body): header, records, signature line, and the empty tail
    lines = raw.split(b"\n")
    if len(lines) < 3:
        raise ProtocolError("feed file: no signature line")
    last = lines[-2]
    try:
        sig_line = json.loads(last)
    except ValueError:
        raise ProtocolError("feed file: last line is not the signature line") from None
    if not isinstance(sig_line, dict) or set(sig_line) != {"signature"}:
        raise ProtocolError("feed file: last line is not the signature line (truncated?)")
    signature = unb64(sig_line["signature"], "feed file signature")
    expected = profile or key_profile(public_key, "feed file")
    wire = _unverified_format(lines[0])
    body_end = len(raw) - len(last) - 1
    with memoryview(raw) as view, view[:body_end] as body:
        if wire in (SNAPSHOT_FORMAT, DELTA_FORMAT):
            message = feed_body_message(wire, expected.digest(body))  # type: ignore[arg-type]
        else:
            message = bytes(body)  # /1: the signature covers the body itself
    verify_signature(public_key, message, signature, "feed file", expected)
    del message
    header = json.loads(lines[0])
    claimed = header.get("crypto_profile", "international")
    if claimed != expected.name:
        raise ProtocolError(
            f"feed file: signed under the {claimed} crypto profile, this receiver verifies {expected.name}"
        )
    fmt = _KIND_OF_FORMAT[wire]
    if expect is not None and fmt != _KIND_OF_FORMAT.get(expect, expect):
        raise ProtocolError(f"feed file: expected {expect}, got {wire}")
    records = [json.loads(line) for line in lines[1:-2]]
    if len(records) != header.get("count"):
        raise ProtocolError(f"feed file: header says {header.get('count')} records, file has {len(records)}")
    if fmt == DELTA_FORMAT:
        start, end = int(header["from"]), int(header["to"])
        seqs = [r.get("seq") for r in records]
        if seqs != list(range(start + 1, end + 1)):
            raise ProtocolError(f"feed file: delta {start}..{end} is not consecutive (reordered or gapped)")
    return FeedFile(header, records)


def check_delta_fits(header: dict[str, Any], local_head: int) -> None:
    """A delta must start exactly at the receiver's head: an older one is a replay, a later one a skip."""
    start = int(header["from"])
    if start < local_head:
        raise ProtocolError(f"delta from {start} replays events already applied (local head {local_head})")
    if start > local_head:
        raise ProtocolError(
            f"delta from {start} skips events {local_head + 1}..{start} (local head {local_head})"
        )


# --- manifest -------------------------------------------------------------------------------------------


def sign_manifest(manifest: dict[str, Any], key: SigningKey) -> dict[str, Any]:
    """The signed manifest; it states the key's crypto profile and that profile's algorithm names."""
    body = {**manifest, **profile_facts(key.profile), "format": MANIFEST_FORMAT}
    return {"manifest": body, "key_id": key.key_id, "signature": b64(key.sign(canonical_json(body)))}


def manifest_profile(document: object) -> str | None:
    """The crypto profile a manifest document claims, UNVERIFIED: only to explain a refusal (a platform
    that changed its profile signs with a key the node has not pinned). None when it names none."""
    if isinstance(document, dict) and isinstance(document.get("manifest"), dict):
        claimed = document["manifest"].get("crypto_profile")
        return str(claimed) if claimed is not None else None
    return None


def verify_manifest(
    document: object, public_key: bytes, profile: crypto.Profile | None = None
) -> dict[str, Any]:
    """The manifest body once its signature verifies under ``profile`` (the pinned key's own when not
    given) and the profile it states is that one (a manifest of before #18 states none: international)."""
    if not isinstance(document, dict) or not isinstance(document.get("manifest"), dict):
        raise ProtocolError("manifest: not a signed manifest document")
    body = document["manifest"]
    if body.get("format") != MANIFEST_FORMAT:
        raise ProtocolError(f"manifest: unknown format {body.get('format')!r}")
    prof = profile or key_profile(public_key, "manifest")
    verify_signature(
        public_key, canonical_json(body), unb64(document.get("signature"), "manifest"), "manifest", prof
    )
    stated = body.get("crypto_profile", "international")
    if stated != prof.name:
        raise ProtocolError(f"manifest: states the {stated} crypto profile, this node verifies {prof.name}")
    return dict(body)


def snapshot_digest(manifest_body: dict[str, Any]) -> str:
    """The digest of the snapshot file a manifest names (``digest``; ``sha256`` before #18)."""
    snap = manifest_body.get("snapshot") or {}
    value = snap.get("digest")
    if value is None and manifest_body.get("crypto_profile", "international") == "international":
        value = snap.get("sha256")
    if not isinstance(value, str) or not value:
        raise ProtocolError("manifest names no snapshot digest")
    return value


# --- webhooks -------------------------------------------------------------------------------------------


def mac_key(secret: bytes) -> bytes:
    """An HMAC key ``core.crypto`` takes (32 bytes at least) with the same MAC as ``secret``.

    A webhook secret is chosen by whoever configures the receiver and may be shorter. HMAC pads a key
    shorter than the hash's 64-byte block with zero bytes (RFC 2104 §2; SHA-256 and SM3 both have 64-byte
    blocks), so padding it to 32 bytes here gives the very MAC a receiver computes with the short secret:
    receivers keep working, and no shorter key reaches the module."""
    return secret if len(secret) >= 32 else secret.ljust(32, b"\0")


def webhook_mac(
    secret: bytes, timestamp: int, event_id: str, body: bytes, profile: crypto.Profile | None = None
) -> str:
    """``v1=<hex MAC>`` under ``profile`` (the platform's, :func:`core.crypto.active`, unless given)."""
    message = f"{timestamp}.{event_id}.".encode() + body
    return "v1=" + (profile or crypto.active()).mac(mac_key(secret), message).hex()


def webhook_headers(
    secret: bytes,
    event_id: str,
    body: bytes,
    *,
    now: float | None = None,
    profile: crypto.Profile | None = None,
) -> dict[str, str]:
    ts = int(now if now is not None else time.time())
    return {
        "Content-Type": "application/json",
        "X-FCX-Event-Id": event_id,
        "X-FCX-Timestamp": str(ts),
        "X-FCX-Signature": webhook_mac(secret, ts, event_id, body, profile),
    }


def verify_webhook(
    secret: bytes,
    headers: dict[str, str] | Any,
    body: bytes,
    *,
    seen: Callable[[str], bool] | None = None,
    now: float | None = None,
    tolerance: int = WEBHOOK_TOLERANCE_SECONDS,
    profile: crypto.Profile | None = None,
) -> str:
    """Check a received webhook; return its event id. ``seen(event_id)`` says whether it was accepted before.
    ``profile``: the MAC's (a node passes the one its manifest states; the platform's when not given).

    ``headers`` may be any case-insensitive mapping (Starlette's, httpx's) or a plain dict.
    """

    def header(name: str) -> str:
        value = headers.get(name) or headers.get(name.lower())
        if not value:
            raise ProtocolError(f"webhook: header {name} is missing")
        return str(value)

    event_id = header("X-FCX-Event-Id")
    try:
        ts = int(header("X-FCX-Timestamp"))
    except ValueError:
        raise ProtocolError("webhook: X-FCX-Timestamp is not an integer") from None
    expected = webhook_mac(secret, ts, event_id, body, profile)
    if not secrets.compare_digest(expected.encode(), header("X-FCX-Signature").encode()):
        raise ProtocolError("webhook: bad MAC in X-FCX-Signature")
    current = now if now is not None else time.time()
    if abs(current - ts) > tolerance:
        raise ProtocolError(
            f"webhook: timestamp {ts} is more than {tolerance} s from now (stale or replayed)"
        )
    if seen is not None and seen(event_id):
        raise ProtocolError(f"webhook: event {event_id} was already received (replay)")
    return event_id


# --- need-to-know purpose --------------------------------------------------------------------------------

PURPOSE_HEADER = "X-FCX-Purpose"


def encode_purpose(purpose: str) -> str:
    """HTTP header values are Latin-1, a purpose is usually Chinese: percent-encoded UTF-8 on the wire."""
    return quote(purpose.strip(), safe=" ")


def decode_purpose(value: str | None) -> str:
    """The purpose a caller sent (percent-encoded UTF-8, or plain ASCII, which decodes to itself)."""
    return unquote(value or "", errors="strict").strip()


def iter_jsonl(data: bytes) -> Iterator[dict[str, Any]]:
    for line in data.splitlines():
        if line.strip():
            yield json.loads(line)


# --- decision requests ----------------------------------------------------------------------------------

MAX_BATCH = 1000


@cache
def scene_codes() -> tuple[str, ...]:
    """The scenes of catalogues/scenes.yaml, in its order. Read here rather than from the platform's
    measure catalogue (sanctions.policy, which checks the file in full) because the wire format sits
    below the sanctions slice; both read the one file, so the two cannot disagree."""
    items = yaml.safe_load((CATALOGUE_DIR / "scenes.yaml").read_text(encoding="utf-8"))
    return tuple(str(item["code"]) for item in items)


class IdentifierIn(StrictModel):
    type: str
    value: str = Field(min_length=1, max_length=200)


class SubjectQuery(StrictModel):
    identifiers: list[IdentifierIn] = Field(min_length=1, max_length=20)


class DecisionRequest(StrictModel):
    """One subject (`identifiers`) or a batch (`subjects`, up to 1,000) in one scene."""

    scene: str
    identifiers: list[IdentifierIn] | None = Field(None, max_length=20)
    subjects: list[SubjectQuery] | None = None
    purpose: str | None = Field(None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _one_form(self) -> DecisionRequest:
        scenes = scene_codes()
        if self.scene not in scenes:
            raise ValueError(f"scene: unknown scene {self.scene!r}; one of {', '.join(scenes)}")
        if (self.identifiers is None) == (self.subjects is None):
            raise ValueError("identifiers: give either identifiers (one subject) or subjects (a batch)")
        if self.subjects is not None and len(self.subjects) > MAX_BATCH:
            raise ValueError(
                f"subjects: at most {MAX_BATCH} subjects in one request, got {len(self.subjects)}"
            )
        return self


def identifier_problem(given_type: str, error: IdentifierError, field: str) -> ValidationProblem:
    """The 422 for a bad identifier at ``field`` (``subjects[3].identifiers[1]``): an unknown type names
    the identifier's ``.type``, a value that breaks a rule of its type names its ``.value``."""
    if error.rule == "type.unknown":
        return ValidationProblem(
            f"Unknown identifier type {given_type!r}",
            errors=[
                {
                    "in": "body",
                    "field": f"{field}.type",
                    "type": "enum",
                    "message": "one of " + ", ".join(IdentifierType),
                }
            ],
        )
    return ValidationProblem(
        str(error),
        errors=[{"in": "body", "field": f"{field}.value", "type": error.rule, "message": str(error)}],
    )


def identifier_keys(identifiers: Sequence[IdentifierIn], path: str) -> list[str]:
    """The canonical ``type:value`` of each identifier; the first bad one raises
    :func:`identifier_problem` at ``{path}[i]``."""
    keys = []
    for i, ident in enumerate(identifiers):
        try:
            keys.append(f"{ident.type}:{normalise(ident.type, ident.value)}")
        except IdentifierError as exc:
            raise identifier_problem(ident.type, exc, f"{path}[{i}]") from exc
    return keys


# --- execution receipts (执行回执, #16) ---------------------------------------------------------------------

# What a node's receipt signs: canonical_json of these fields (sorted keys, no spaces), never an account.
RECEIPT_FIELDS = ("instruction_id", "outcome", "executed_at", "accounts_affected", "key_id")


# A node's signed statement that it carried out an instruction: which, with what outcome, when, and how many
# of the enterprise's accounts it touched. `key_id` is the fingerprint of the node key it is signed with.
class ExecutionReceipt(StrictModel):
    instruction_id: str = Field(min_length=1, max_length=64)
    outcome: str = Field(min_length=1, max_length=16)
    executed_at: str = Field(
        min_length=1, max_length=40, description="ISO 8601 with its offset, exactly as signed."
    )
    accounts_affected: int = Field(ge=0, le=2**31 - 1, description="A count, never the accounts.")
    key_id: str = Field(min_length=1, max_length=64, description="The node key's fingerprint.")
    signature: str = Field(
        min_length=1, max_length=200, description="base64 signature over the fields (Ed25519, or SM2 DER)."
    )

    @model_validator(mode="after")
    def _aware_time(self) -> ExecutionReceipt:
        receipt_time(self.executed_at)
        return self


def receipt_time(text: str) -> datetime:
    """A receipt's ``executed_at`` as a time; its offset is required (a bare local time is ambiguous)."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("executed_at: not an ISO 8601 time") from None
    if at.tzinfo is None:
        raise ValueError("executed_at: give the time with its UTC offset")
    return at


def receipt_message(fields: dict[str, Any]) -> bytes:
    """The bytes a receipt's signature covers."""
    return canonical_json({name: fields[name] for name in RECEIPT_FIELDS})


def sign_receipt(
    key: SigningKey, *, instruction_id: str, outcome: str, executed_at: str, accounts_affected: int
) -> dict[str, Any]:
    """A receipt signed with the node key (whose ``key_id`` is its fingerprint)."""
    fields: dict[str, Any] = {
        "instruction_id": instruction_id,
        "outcome": outcome,
        "executed_at": executed_at,
        "accounts_affected": accounts_affected,
        "key_id": key.key_id,
    }
    return {**fields, "signature": b64(key.sign(receipt_message(fields)))}


def verify_receipt(
    public_key: bytes, receipt: ExecutionReceipt, profile: crypto.Profile | None = None
) -> None:
    """Raise :class:`ProtocolError` unless the receipt's signature verifies under ``public_key`` (with
    ``profile``'s algorithm when given, else the enrolled key's own: a key enrolled before a profile change
    keeps verifying what it signed)."""
    signature = unb64(receipt.signature, "receipt.signature")
    verify_signature(public_key, receipt_message(receipt.model_dump()), signature, "receipt", profile)


# An addressee's report on an instruction (POST /v1/instructions/{id}/feedback), relayed by the node with
# its signed receipt. A comment, not a docstring: a docstring would become the schema's description.
class FeedbackIn(StrictModel):
    outcome: str = Field(description="executed | not_applicable | failed")
    reason: str = Field("", max_length=2000)
    executed_at: datetime | None = None
    confirmations: dict[str, bool | int | str | None] | None = Field(
        None,
        description="What was done, as the instruction's `feedback` fields ask (e.g. measure 6: "
        '{"marked": true, "integrity_file_ref": "CX-2026-0001"}); required to report executed.',
    )
    accounts_affected: int | None = Field(
        None,
        ge=0,
        le=2**31 - 1,
        description="How many of your accounts the execution touched: a count, never the accounts. The "
        "node signs it into the receipt.",
    )
    receipt: ExecutionReceipt | None = Field(
        None, description="The node's signed execution receipt (执行回执), added by `fcx node`."
    )
