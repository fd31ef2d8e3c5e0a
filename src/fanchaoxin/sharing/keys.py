"""The platform's sharing keys, kept as files under ``FCX_SHARING_KEY_DIR`` (mode 0600, dir 0700).

* ``oprf.json`` — the OPRF key ring (RFC 9497 ristretto255-SHA512, mode 1): every key with its secret
  scalar, creation time and the end of its rotation overlap (``active_until``, null while current).
* ``signing.json`` — the feed-signing key of the platform's crypto profile (``core.crypto``): the Ed25519
  seed under ``international``, the SM2 scalar with its public point under ``gm``; the file names its
  ``crypto_profile`` and ``algorithm``, and a key of the other profile is refused at load. Its public key
  is what nodes pin. Keys retired by a profile change (``fcx crypto migrate``) stay in the file as public
  keys only, so that what they signed (audit checkpoints, old manifests) can still be checked.

Every API worker loads them from there (re-read when a file changes, so ``fcx sharing keys rotate``
reaches running workers). They are created on first use, or by ``fcx sharing keys init``. The first
creation is exclusive (written to a temporary file, then hard-linked into place), so two workers
starting together end up with the same keys.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fanchaoxin.core import crypto
from fanchaoxin.core.settings import get_settings
from fanchaoxin.sharing import oprf
from fanchaoxin.sharing.protocol import SigningKey, fingerprint

OPRF_FILE = "oprf.json"
SIGNING_FILE = "signing.json"
OPRF_FORMAT = "fcx-oprf-keys/1"
SIGNING_FORMAT = "fcx-signing-key/2"
SIGNING_FORMAT_V1 = "fcx-signing-key/1"  # an Ed25519 seed, before the crypto profiles (#18)


class KeyFileError(RuntimeError):
    """A key file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class RetiredSigningKey:
    """A feed-signing key replaced by a profile change: its public half only, to check old signatures."""

    key_id: str
    public: bytes
    crypto_profile: str
    retired_at: datetime | None

    def document(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "public_key": base64.b64encode(self.public).decode(),
            "fingerprint": fingerprint(self.public),
            "crypto_profile": self.crypto_profile,
            "retired_at": _iso(self.retired_at),
        }


@dataclass
class SharingKeys:
    """``signing`` is a :class:`protocol.SigningKey`: ``.key_id``, ``.public`` (bytes), ``.key`` (the
    ``core.crypto`` signing key handle), ``.profile`` and ``.sign(message)``."""

    ring: oprf.KeyRing
    signing: SigningKey
    directory: Path
    retired: tuple[RetiredSigningKey, ...] = ()

    def verification_keys(self) -> dict[str, bytes]:
        """Key id → public key of the current feed-signing key and every retired one (audit checkpoints
        signed before a profile change keep verifying; ``profile_of_public_key`` tells the algorithm)."""
        out = {k.key_id: k.public for k in self.retired}
        out[self.signing.key_id] = self.signing.public
        return out

    def public(self, now: datetime | None = None) -> dict[str, Any]:
        """``GET /v1/sharing/keys``: what nodes pin (signing) and verify proofs with (OPRF)."""
        current = self.ring.current.key_id
        return {
            "signing": {
                "key_id": self.signing.key_id,
                "public_key": base64.b64encode(self.signing.public).decode(),
                "fingerprint": fingerprint(self.signing.public),
                "algorithm": self.signing.algorithm,
                "crypto_profile": self.signing.profile.name,
            },
            "retired_signing": [k.document() for k in self.retired],
            "oprf": [
                {
                    "key_id": k.key_id,
                    "public_key": base64.b64encode(k.pk).decode(),
                    "created_at": k.created_at.isoformat(),
                    "active_until": k.active_until.isoformat() if k.active_until else None,
                    "current": k.key_id == current,
                }
                for k in self.ring.active(now)
            ],
            "suite": oprf.SUITE,
            "mode": self.ring.mode,
        }


def key_dir(directory: str | Path | None = None) -> Path:
    if directory is None:
        directory = get_settings().sharing_key_dir
    return Path(directory).resolve()


# --- files ----------------------------------------------------------------------------------------------


def _iso(at: datetime | None) -> str | None:
    return at.astimezone(UTC).isoformat() if at else None


def _parse_time(value: object, where: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(str(value)).astimezone(UTC)
    except ValueError:
        raise KeyFileError(f"{where}: not an ISO 8601 time: {value!r}") from None


def _ring_document(ring: oprf.KeyRing, all_keys: list[oprf.OPRFKey]) -> dict[str, Any]:
    return {
        "format": OPRF_FORMAT,
        "mode": ring.mode,
        "current": ring.current.key_id,
        "keys": [
            {
                "key_id": k.key_id,
                "sk": base64.b64encode(k.sk).decode(),
                "created_at": _iso(k.created_at),
                "active_until": _iso(k.active_until),
            }
            for k in all_keys
        ],
    }


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except ValueError as exc:
        raise KeyFileError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise KeyFileError(f"{path}: expected a JSON object")
    return data


def _load_ring(path: Path) -> tuple[oprf.KeyRing, list[oprf.OPRFKey]]:
    data = _read_json(path)
    if data.get("format") != OPRF_FORMAT:
        raise KeyFileError(f"{path}: format must be {OPRF_FORMAT}, not {data.get('format')!r}")
    ring = oprf.KeyRing(int(data.get("mode", oprf.MODE_VOPRF)))
    current = data.get("current")
    keys = data.get("keys")
    if not isinstance(keys, list) or not keys:
        raise KeyFileError(f"{path}: keys must be a non-empty list")
    for i, item in enumerate(keys):
        where = f"{path}: keys[{i}]"
        try:
            sk = base64.b64decode(item["sk"], validate=True)
            ring.add(
                item["key_id"],
                sk,
                current=item["key_id"] == current,
                created_at=_parse_time(item.get("created_at"), where),
                active_until=_parse_time(item.get("active_until"), where),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise KeyFileError(f"{where}: {exc}") from None
    if current not in ring:
        raise KeyFileError(f"{path}: current key {current!r} is not among the keys")
    # Keep every key, retired ones included, so that a retired id is answered "retired", not "unknown".
    return ring, [ring._keys[k] for k in ring._keys]


def _b64(item: dict[str, Any], name: str) -> bytes:
    return base64.b64decode(item[name], validate=True)


def _load_signing(path: Path, expect: str) -> tuple[SigningKey, tuple[RetiredSigningKey, ...]]:
    """The current key of ``signing.json`` (which must be of the ``expect`` profile) and the retired ones."""
    data = _read_json(path)
    fmt = data.get("format")
    if fmt not in (SIGNING_FORMAT, SIGNING_FORMAT_V1):
        raise KeyFileError(f"{path}: format must be {SIGNING_FORMAT}, not {fmt!r}")
    try:
        if fmt == SIGNING_FORMAT_V1:
            name, algorithm, private, public = "international", "ed25519", _b64(data, "seed"), None
        else:
            name, algorithm = str(data["crypto_profile"]), str(data["algorithm"])
            private, public = _b64(data, "private"), _b64(data, "public")
        retired = tuple(
            RetiredSigningKey(
                str(item["key_id"]),
                _b64(item, "public_key"),
                str(item["crypto_profile"]),
                _parse_time(item.get("retired_at"), f"{path}: retired[{i}]"),
            )
            for i, item in enumerate(data.get("retired") or [])
        )
        key_id = str(data["key_id"])
    except (KeyError, TypeError, ValueError) as exc:
        raise KeyFileError(f"{path}: {exc}") from None
    try:
        prof = crypto.profile(name)
    except crypto.UnknownProfile as exc:
        raise KeyFileError(f"{path}: {exc}") from None
    if algorithm != prof.signature_algorithm:
        raise KeyFileError(
            f"{path}: says crypto profile {name} but algorithm {algorithm}; the {name} profile signs with "
            f"{prof.signature_algorithm}"
        )
    if name != expect:
        want = crypto.profile(expect)
        raise KeyFileError(
            f"{path}: the feed-signing key {key_id} is an {algorithm} key of the {name} crypto profile, but "
            f"the platform runs under {expect} ({want.signature_algorithm}): a key of the wrong algorithm "
            f"for the profile. Set FCX_CRYPTO_PROFILE={name}, or change the profile with "
            f"`fcx crypto migrate --to {expect}`"
        )
    try:
        return SigningKey.load(key_id, private, public, prof), retired
    except crypto.CryptoError as exc:
        raise KeyFileError(f"{path}: the feed-signing key {key_id}: {exc}") from None


def _signing_document(
    key: SigningKey, retired: tuple[RetiredSigningKey, ...] = (), created_at: datetime | None = None
) -> dict[str, Any]:
    return {
        "format": SIGNING_FORMAT,
        "key_id": key.key_id,
        "crypto_profile": key.profile.name,
        "algorithm": key.algorithm,
        "private": base64.b64encode(key.private_bytes()).decode(),
        "public": base64.b64encode(key.public).decode(),
        "created_at": _iso(created_at or datetime.now(UTC)),
        "retired": [
            {
                "key_id": k.key_id,
                "public_key": base64.b64encode(k.public).decode(),
                "crypto_profile": k.crypto_profile,
                "retired_at": _iso(k.retired_at),
            }
            for k in retired
        ],
    }


def _write_new(path: Path, document: dict[str, Any]) -> bool:
    """Create ``path`` with ``document`` unless it exists (atomic, exclusive). True if this call made it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(document, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(tmp)


def _replace(path: Path, document: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(document, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    with open(directory / ".lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _ensure_dir(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)


def init(directory: str | Path | None = None, *, profile: str | None = None) -> tuple[SharingKeys, bool]:
    """Create the keys if they do not exist yet; ``(keys, created)``. Existing keys are never replaced.
    The signing key is of ``profile`` (the platform's, ``FCX_CRYPTO_PROFILE``, unless given)."""
    directory = key_dir(directory)
    prof = crypto.profile(profile) if profile is not None else crypto.active()
    _ensure_dir(directory)
    created = False
    if not (directory / OPRF_FILE).exists():
        ring = oprf.KeyRing()
        ring.generate("k1")
        created |= _write_new(directory / OPRF_FILE, _ring_document(ring, [ring.current]))
    if not (directory / SIGNING_FILE).exists():
        signing = SigningKey.generate("s1", prof)
        created |= _write_new(directory / SIGNING_FILE, _signing_document(signing))
    return load(directory, create=False, profile=prof.name), created


_cache: dict[Path, tuple[tuple[int, ...], SharingKeys]] = {}
_cache_lock = threading.Lock()


def load(
    directory: str | Path | None = None, *, create: bool = True, profile: str | None = None
) -> SharingKeys:
    """The keys in ``directory`` (the setting's unless given); created on first use if ``create``.

    The feed-signing key must be of ``profile`` (the platform's, :func:`core.crypto.active`, unless
    given): a key of the other profile raises :class:`KeyFileError` saying so."""
    directory = key_dir(directory)
    expect = profile if profile is not None else crypto.active().name
    oprf_path, signing_path = directory / OPRF_FILE, directory / SIGNING_FILE
    try:
        a, b = oprf_path.stat(), signing_path.stat()
        # A rewrite is a new file (os.replace), so the inode tells a change even within one clock tick.
        stamp = (a.st_ino, a.st_mtime_ns, b.st_ino, b.st_mtime_ns)
    except FileNotFoundError:
        if not create:
            raise KeyFileError(
                f"no sharing keys in {directory}; run `fcx sharing keys init` (or set FCX_SHARING_KEY_DIR)"
            ) from None
        return init(directory, profile=expect)[0]
    with _cache_lock:
        hit = _cache.get(directory)
        if hit is not None and hit[0] == stamp and hit[1].signing.profile.name == expect:
            return hit[1]
    ring, _all = _load_ring(oprf_path)
    signing, retired = _load_signing(signing_path, expect)
    keys = SharingKeys(ring, signing, directory, retired)
    with _cache_lock:
        _cache[directory] = (stamp, keys)
    return keys


def all_oprf_keys(directory: str | Path | None = None) -> list[oprf.OPRFKey]:
    """Every OPRF key in the file, retired ones included (for ``fcx sharing keys show``)."""
    return _load_ring(key_dir(directory) / OPRF_FILE)[1]


def _next_key_id(existing: list[str]) -> str:
    numbers = [int(m.group(1)) for k in existing if (m := re.fullmatch(r"k(\d+)", k))]
    return f"k{max(numbers, default=0) + 1}"


def rotate(
    directory: str | Path | None = None, *, overlap: timedelta, now: datetime | None = None
) -> tuple[oprf.OPRFKey, oprf.OPRFKey]:
    """Make a fresh OPRF key current; the previous one stays active for ``overlap``. ``(old, new)``."""
    directory = key_dir(directory)
    if not (directory / OPRF_FILE).exists():
        raise KeyFileError(f"no OPRF key ring in {directory}; run `fcx sharing keys init` first")
    with _locked(directory):
        ring, all_keys = _load_ring(directory / OPRF_FILE)
        old = ring.current
        new = ring.rotate(_next_key_id([k.key_id for k in all_keys]), overlap=overlap, now=now)
        _replace(directory / OPRF_FILE, _ring_document(ring, [ring._keys[k] for k in ring._keys]))
    return ring.get(old.key_id, now=now) if old.active(now) else old, new


def set_active_until(directory: str | Path | None, key_id: str, until: datetime) -> None:
    """End (or extend) a non-current key's overlap window, e.g. to retire it early after a leak."""
    directory = key_dir(directory)
    with _locked(directory):
        ring, _ = _load_ring(directory / OPRF_FILE)
        if key_id not in ring:
            raise KeyFileError(f"no OPRF key {key_id!r} in {directory}")
        if ring.current.key_id == key_id:
            raise KeyFileError(f"{key_id} is the current key; rotate first")

        ring._keys[key_id] = replace(ring._keys[key_id], active_until=until)
        _replace(directory / OPRF_FILE, _ring_document(ring, [ring._keys[k] for k in ring._keys]))


# --- a change of crypto profile (fcx crypto migrate) ------------------------------------------------------


@dataclass(frozen=True)
class ProfileRotation:
    """What :func:`rotate_for_profile` did: the new feed-signing key, and the one it retired."""

    old_key_id: str
    old_profile: str
    new_key_id: str
    new_profile: str
    public_key: bytes
    fingerprint: str
    changed: bool  # False when the key was already of the profile (nothing written)


def _next_signing_id(existing: list[str]) -> str:
    numbers = [int(m.group(1)) for k in existing if (m := re.fullmatch(r"s(\d+)", k))]
    return f"s{max(numbers, default=0) + 1}"


def rotate_for_profile(
    to: str, directory: str | Path | None = None, *, now: datetime | None = None
) -> ProfileRotation:
    """Replace the feed-signing key with a new key of profile ``to`` (``fcx crypto migrate --to``).

    The old key's public half stays in ``signing.json`` as retired (checkpoints and manifests it signed
    stay checkable); its secret is dropped. Run again, it does nothing (the key is already of ``to``).
    Afterwards the next manifest is signed with the new key and names the new profile, and the snapshot
    is rebuilt (:func:`sharing.service.republish`); every node must run ``fcx node init`` again."""
    new_profile = crypto.profile(to)  # UnknownProfile on a typo, before anything is written
    directory = key_dir(directory)
    path = directory / SIGNING_FILE
    if not path.exists():
        raise KeyFileError(f"no feed-signing key in {directory}; run `fcx sharing keys init` first")
    with _locked(directory):
        data = _read_json(path)
        current = str(data.get("crypto_profile", "international"))
        old, retired = _load_signing(path, current)
        if current == new_profile.name:
            return ProfileRotation(
                old.key_id, current, old.key_id, current, old.public, fingerprint(old.public), False
            )
        at = now or datetime.now(UTC)
        new = SigningKey.generate(_next_signing_id([old.key_id, *(k.key_id for k in retired)]), new_profile)
        kept = (*retired, RetiredSigningKey(old.key_id, old.public, current, at))
        _replace(path, _signing_document(new, kept, at))
    with _cache_lock:
        _cache.pop(directory, None)
    return ProfileRotation(
        old.key_id, current, new.key_id, new_profile.name, new.public, fingerprint(new.public), True
    )
