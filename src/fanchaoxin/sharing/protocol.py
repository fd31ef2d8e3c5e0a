"""The sharing wire formats, in one place: signed feed files, the signed manifest, webhook MACs, and the
decision request that the platform and every enterprise node answer.

The platform writes these and every receiver (enterprise node, department receiver) reads them with
the same functions, so a rule (what is signed, what is refused) cannot drift between the two sides.

Feed files (``fcx-feed-snapshot/1`` and ``fcx-feed-delta/1``)
-------------------------------------------------------------
gzip-compressed JSON Lines. Line 1 is the header, then one line per record, then one signature
line::

    {"format": "fcx-feed-delta/1", "from": 120, "to": 130, "count": 10, "key_id": "s1", ...}
    {"seq": 121, "event": "published", "at": "...", "record": {...}}
    ...
    {"signature": "<base64 Ed25519 over every byte above this line, newlines included>"}

A snapshot's records are the current records of the entries in force (``{"record": {...}}``) at
sequence ``seq`` of its header; a delta holds the feed events ``from`` < seq ≤ ``to``, consecutive.
Because the signature covers the exact bytes, a forged, truncated or reordered file is refused, and
:func:`read_feed_file` checks the header's count and (for deltas) that sequence numbers run from
``from + 1`` to ``to`` without a gap. Whether a delta *fits* a receiver's store (``from`` equals its
head: no replay, no skip) is the receiver's check, with :func:`check_delta_fits`.

Manifest
--------
``{"manifest": {...}, "key_id": "s1", "signature": "<b64>"}``, the signature over
:func:`canonical_json` of the manifest object.

Webhooks
--------
Headers ``X-FCX-Event-Id``, ``X-FCX-Timestamp`` (Unix seconds) and
``X-FCX-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + event_id + "." + body)>``.
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
import ctypes
import gzip
import hashlib
import hmac
import io
import json
import mmap
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any
from urllib.parse import quote, unquote

import pysodium
import yaml
from pydantic import Field, model_validator

from fanchaoxin.core.catalogue import CATALOGUE_DIR
from fanchaoxin.core.errors import ValidationProblem
from fanchaoxin.core.identifiers import IdentifierError, IdentifierType, normalise
from fanchaoxin.core.schemas import StrictModel

SNAPSHOT_FORMAT = "fcx-feed-snapshot/1"
DELTA_FORMAT = "fcx-feed-delta/1"
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


# --- Ed25519 --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    """The platform's Ed25519 feed-signing key (libsodium). ``public`` is what receivers pin."""

    key_id: str
    secret: bytes  # libsodium's 64-byte secret key (seed || public)

    @classmethod
    def generate(cls, key_id: str) -> SigningKey:
        _pk, sk = pysodium.crypto_sign_keypair()
        return cls(key_id, sk)

    @classmethod
    def from_seed(cls, key_id: str, seed: bytes) -> SigningKey:
        _pk, sk = pysodium.crypto_sign_seed_keypair(seed)
        return cls(key_id, sk)

    @property
    def public(self) -> bytes:
        return pysodium.crypto_sign_sk_to_pk(self.secret)

    @property
    def seed(self) -> bytes:
        return pysodium.crypto_sign_sk_to_seed(self.secret)

    def sign(self, message: bytes) -> bytes:
        return pysodium.crypto_sign_detached(message, self.secret)


def fingerprint(public_key: bytes) -> str:
    """A short, comparable form of a public key for pinning and display: hex SHA-256, first 32 digits."""
    return hashlib.sha256(public_key).hexdigest()[:32]


def verify_signature(public_key: bytes, message: bytes, signature: bytes, what: str) -> None:
    if len(signature) != pysodium.crypto_sign_BYTES:
        raise ProtocolError(f"{what}: signature has the wrong length")
    try:
        pysodium.crypto_sign_verify_detached(signature, message, public_key)
    except ValueError:
        raise ProtocolError(f"{what}: signature does not verify") from None


# --- feed files -----------------------------------------------------------------------------------------


def write_feed_file(
    fmt: str, header: dict[str, Any], lines: Iterable[dict[str, Any]], key: SigningKey
) -> bytes:
    """Serialise, sign and gzip a snapshot or delta. ``header`` must carry ``count``."""
    if fmt not in (SNAPSHOT_FORMAT, DELTA_FORMAT):
        raise ValueError(f"unknown feed format {fmt}")
    raw = io.BytesIO()
    raw.write(canonical_json({**header, "format": fmt, "key_id": key.key_id}) + b"\n")
    n = 0
    for line in lines:
        raw.write(canonical_json(line) + b"\n")
        n += 1
    if n != header["count"]:
        raise ValueError(f"header says {header['count']} records, {n} written")
    body = raw.getvalue()
    signed = body + canonical_json({"signature": b64(key.sign(body))}) + b"\n"
    return gzip.compress(signed, compresslevel=6, mtime=0)


def write_feed_file_to(
    path: str | os.PathLike[str],
    fmt: str,
    header: dict[str, Any],
    lines: Iterable[dict[str, Any]],
    key: SigningKey,
) -> tuple[str, int]:
    """:func:`write_feed_file` for files too large to hold in memory (a million-entry snapshot).

    The body is written to ``path + ".body"`` as it is produced, signed from a memory map (Ed25519
    reads the message twice, so it cannot be signed as a stream), then gzipped into ``path``. It
    decompresses to the same bytes as :func:`write_feed_file`'s output for the same input. Returns
    ``(sha256 hex, size)`` of the gzip file.
    """
    if fmt not in (SNAPSHOT_FORMAT, DELTA_FORMAT):
        raise ValueError(f"unknown feed format {fmt}")
    path = os.fspath(path)
    body_path = path + ".body"
    try:
        n = 0
        with open(body_path, "wb") as raw:
            raw.write(canonical_json({**header, "format": fmt, "key_id": key.key_id}) + b"\n")
            for line in lines:
                raw.write(canonical_json(line) + b"\n")
                n += 1
        if n != header["count"]:
            raise ValueError(f"header says {header['count']} records, {n} written")
        with open(body_path, "r+b") as raw, mmap.mmap(raw.fileno(), 0) as mapped:
            view = (ctypes.c_char * len(mapped)).from_buffer(mapped)
            try:
                signature = pysodium.crypto_sign_detached(view, key.secret)
            finally:
                del view
        digest = hashlib.sha256()
        with open(body_path, "rb") as raw, open(path, "wb") as out:

            class _Hashing(io.RawIOBase):
                def writable(self) -> bool:
                    return True

                def write(self, b) -> int:  # type: ignore[no-untyped-def, override]
                    digest.update(b)
                    return out.write(b)

            sink = _Hashing()
            with gzip.GzipFile(filename="", mode="wb", compresslevel=6, fileobj=sink, mtime=0) as gz:
                while chunk := raw.read(1 << 20):
                    gz.write(chunk)
                gz.write(canonical_json({"signature": b64(signature)}) + b"\n")
        return digest.hexdigest(), os.path.getsize(path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(body_path)


@dataclass
class FeedFile:
    header: dict[str, Any]
    records: list[dict[str, Any]]

    @property
    def format(self) -> str:
        return str(self.header["format"])


def read_feed_file(data: bytes, public_key: bytes, *, expect: str | None = None) -> FeedFile:
    """Verify and parse a feed file. Raises :class:`ProtocolError`; nothing is returned unverified."""
    try:
        raw = gzip.decompress(data)
    except (OSError, EOFError, gzip.BadGzipFile):
        raise ProtocolError("feed file: not a complete gzip stream (truncated or corrupt)") from None
    if not raw.endswith(b"\n"):
        raise ProtocolError("feed file: truncated (no final newline)")
    cut = raw.rfind(b"\n", 0, len(raw) - 1)
    if cut < 0:
        raise ProtocolError("feed file: no signature line")
    body, last = raw[: cut + 1], raw[cut + 1 : -1]
    try:
        sig_line = json.loads(last)
    except ValueError:
        raise ProtocolError("feed file: last line is not the signature line") from None
    if not isinstance(sig_line, dict) or set(sig_line) != {"signature"}:
        raise ProtocolError("feed file: last line is not the signature line (truncated?)")
    verify_signature(public_key, body, unb64(sig_line["signature"], "feed file signature"), "feed file")
    lines = body.split(b"\n")[:-1]
    header = json.loads(lines[0])
    fmt = header.get("format")
    if fmt not in (SNAPSHOT_FORMAT, DELTA_FORMAT):
        raise ProtocolError(f"feed file: unknown format {fmt!r}")
    if expect is not None and fmt != expect:
        raise ProtocolError(f"feed file: expected {expect}, got {fmt}")
    records = [json.loads(line) for line in lines[1:]]
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
    body = {**manifest, "format": MANIFEST_FORMAT}
    return {"manifest": body, "key_id": key.key_id, "signature": b64(key.sign(canonical_json(body)))}


def verify_manifest(document: object, public_key: bytes) -> dict[str, Any]:
    if not isinstance(document, dict) or not isinstance(document.get("manifest"), dict):
        raise ProtocolError("manifest: not a signed manifest document")
    body = document["manifest"]
    if body.get("format") != MANIFEST_FORMAT:
        raise ProtocolError(f"manifest: unknown format {body.get('format')!r}")
    verify_signature(
        public_key, canonical_json(body), unb64(document.get("signature"), "manifest"), "manifest"
    )
    return body


# --- webhooks -------------------------------------------------------------------------------------------


def webhook_mac(secret: bytes, timestamp: int, event_id: str, body: bytes) -> str:
    message = f"{timestamp}.{event_id}.".encode() + body
    return "v1=" + hmac.new(secret, message, hashlib.sha256).hexdigest()


def webhook_headers(secret: bytes, event_id: str, body: bytes, *, now: float | None = None) -> dict[str, str]:
    ts = int(now if now is not None else time.time())
    return {
        "Content-Type": "application/json",
        "X-FCX-Event-Id": event_id,
        "X-FCX-Timestamp": str(ts),
        "X-FCX-Signature": webhook_mac(secret, ts, event_id, body),
    }


def verify_webhook(
    secret: bytes,
    headers: dict[str, str] | Any,
    body: bytes,
    *,
    seen: Callable[[str], bool] | None = None,
    now: float | None = None,
    tolerance: int = WEBHOOK_TOLERANCE_SECONDS,
) -> str:
    """Check a received webhook; return its event id. ``seen(event_id)`` says whether it was accepted before.

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
    expected = webhook_mac(secret, ts, event_id, body)
    if not hmac.compare_digest(expected, header("X-FCX-Signature")):
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
    signature: str = Field(min_length=1, max_length=200, description="base64 Ed25519 over the fields.")

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


def verify_receipt(public_key: bytes, receipt: ExecutionReceipt) -> None:
    """Raise :class:`ProtocolError` unless the receipt's signature verifies under ``public_key``."""
    signature = unb64(receipt.signature, "receipt.signature")
    verify_signature(public_key, receipt_message(receipt.model_dump()), signature, "receipt")


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
