"""Backup and restore of one consistent set (备份与恢复, #23): the database, the keys, a manifest of digests.

What a set holds
----------------
* the database: SQLite through the online backup API (``sqlite3.Connection.backup``), PostgreSQL with
  ``pg_dump --format=custom`` of the schema in use. Evidence files, case attachments and signed agreement
  PDFs are rows of the database (``evidence_blobs``, sealed columns), so they travel with it;
* the keys: the data key ring (``FCX_DATA_KEY_FILE``), the sharing keys (``oprf.json``: the OPRF ring;
  ``signing.json``: the feed-signing key, which also signs the audit chain's pruning checkpoints) and the
  transparency log's key (``log.json``), all from ``FCX_SHARING_KEY_DIR``. Either sealed under a key
  derived from the operator's passphrase (scrypt then AES-256-GCM; PBKDF2-HMAC-SM3 then SM4-GCM under the
  国密 profile, through ``core.crypto``), or exported plain (mode 0600) to a separate place. Plain keys
  next to the database are refused: whoever holds the set would hold every personal identifier in it;
* ``manifest.json``: every file with its size and digest (SHA-256, SM3 under 国密), the schema revision,
  the feed head, the audit chain's head, the crypto profile, the platform version and the time.

Built snapshots of the shared feed (``FCX_SHARING_DIR``) are not saved: they are a cache of the database,
rebuilt on the first manifest request after a restore (``sharing.feed.current_snapshot``).

Why the set is consistent while the platform writes
---------------------------------------------------
* The database is ONE snapshot: SQLite's backup is copied in a single step, under one read transaction
  (WAL: writers go on, the copy sees none of their commits); PostgreSQL's dump runs in a REPEATABLE READ
  transaction whose snapshot was exported (``pg_export_snapshot``) by the transaction that read the
  manifest's facts, so the revision, feed head and audit head in the manifest are those of the dump.
* Nothing the database refers to lives in a file, except keys by id (data keys, OPRF keys, signing keys).
  Keys are only added (rotation) or dropped once no row needs them (``fcx keys retire-data``). The key
  files are read before the database snapshot and again after it; when both reads agree, the keys saved
  were the keys in place during the whole snapshot, so every key id a row of the snapshot names is in
  the set. When they differ (a rotation ran meanwhile) the whole set is taken again (3 tries).
* A set is written into ``.partial-<name>`` and renamed into place once complete; a folder without its
  manifest is never a set.

Restore
-------
Every digest is checked and the keys are opened (wrong passphrase: refused) before anything is written.
The installation must be empty — its database has no table (SQLite: no file, or a file without tables;
PostgreSQL: no table in the schema of the URL's ``search_path``, ``public`` otherwise) and none of the
four key files exists — unless ``force``. Then the database, then the keys; then the checks of
``fcx audit verify`` and of the data keys, and the fact "restored from the set taken at feed head N" is
recorded in the audit chain. The signed feed manifest carries that fact (``sharing.feed.manifest``,
``restored``): a node that had followed the platform past N takes the platform's snapshot again instead
of refusing a head lower than its own.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from fanchaoxin import __version__
from fanchaoxin.core import audit, crypto, vault
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.db import Database, normalise_url, unavailable
from fanchaoxin.core.hostlock import host_lock
from fanchaoxin.core.settings import Settings
from fanchaoxin.sharing import feed, translog
from fanchaoxin.sharing import keys as sharing_keys
from fanchaoxin.sharing.protocol import fingerprint
from fanchaoxin.workflows.jobs import audit_signing_keys

log = logging.getLogger(__name__)

FORMAT = "fcx-backup/1"
KEY_FORMAT = "fcx-backup-key/1"
MANIFEST = "manifest.json"
MANIFEST_SIGNATURE = "manifest.sig"
PARTIAL = ".partial-"
LOCK = ".backup.lock"
SET_PREFIX = "fcx-backup-"
RESTORED_ACTION = feed.RESTORED_ACTION
KEY_TRIES = 3
_CHUNK = 1 << 20

# scrypt (international) and PBKDF2-HMAC-SM3 (国密): a passphrase guessed offline costs this much each.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
PBKDF2_SM3_ITERATIONS = 310_000


class BackupError(Exception):
    """A backup or restore that was refused or failed; the message says which file or step, in Chinese
    first, and that nothing was written (or what was)."""


# --- where things live ------------------------------------------------------------------------------------


KEY_NAMES = ("data.json", "sharing/oprf.json", "sharing/signing.json", "sharing/log.json")


def key_locations(settings: Settings) -> dict[str, Path]:
    """The key files of an installation, by their name in a set."""
    key_dir = sharing_keys.key_dir(settings.sharing_key_dir)
    return {
        "data.json": (Path.cwd() / settings.data_key_file).resolve(),
        "sharing/oprf.json": key_dir / sharing_keys.OPRF_FILE,
        "sharing/signing.json": key_dir / sharing_keys.SIGNING_FILE,
        "sharing/log.json": key_dir / translog.LOG_FILE,
    }


@dataclass(frozen=True)
class Target:
    """The database of ``FCX_DATABASE_URL``: SQLite's file, or PostgreSQL's URL and schema."""

    url: str
    backend: str
    sqlite_path: Path | None = None
    schema: str | None = None

    @classmethod
    def of(cls, url: str, schema: str | None = None) -> Target:
        url = normalise_url(url)
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            if not parsed.database or parsed.database == ":memory:":
                raise BackupError(
                    f"数据库 {url} 在内存中，无法备份或恢复 — an in-memory database has no file"
                )
            return cls(url, "sqlite", sqlite_path=Path(parsed.database).resolve())
        if parsed.get_backend_name() != "postgresql":
            raise BackupError(f"不支持的数据库 {parsed.get_backend_name()} — unsupported database")
        return cls(url, "postgresql", schema=schema or _search_path_schema(url))

    def libpq(self) -> tuple[str, dict[str, str]]:
        """A libpq URI for pg_dump / pg_restore (the password goes in the environment, not the command
        line, where `ps` would show it)."""
        parsed = make_url(self.url)
        env = dict(os.environ)
        if parsed.password:
            env["PGPASSWORD"] = str(parsed.password)
        query = {k: v for k, v in parsed.query.items() if k != "options"}
        plain = parsed.set(drivername="postgresql", password=None, query=query)
        return plain.render_as_string(hide_password=False), env


def _search_path_schema(url: str) -> str:
    options = make_url(url).query.get("options")
    for part in str(options or "").split():
        if part.startswith("-csearch_path="):
            return part.split("=", 1)[1].split(",")[0].strip().strip('"') or "public"
    return "public"


def target_of(settings: Settings, schema: str | None = None) -> Target:
    return Target.of(settings.database_url, schema)


# --- digests and the key envelope -------------------------------------------------------------------------


def file_digest(path: Path, profile: crypto.Profile) -> str:
    h = profile.hasher()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.finalize().hex()


def _derive(passphrase: bytes, kdf: dict[str, Any], profile: crypto.Profile) -> bytes:
    salt = base64.b64decode(kdf["salt"])
    if kdf["name"] == "scrypt":
        return Scrypt(salt=salt, length=profile.aead_key_size, n=kdf["n"], r=kdf["r"], p=kdf["p"]).derive(
            passphrase
        )
    if kdf["name"] == "pbkdf2-hmac-sm3":
        return PBKDF2HMAC(hashes.SM3(), profile.aead_key_size, salt, kdf["iterations"]).derive(passphrase)
    raise BackupError(f"manifest.json：未知的密钥派生算法 {kdf['name']!r} — unknown key derivation")


def new_kdf(profile: crypto.Profile) -> dict[str, Any]:
    salt = base64.b64encode(os.urandom(16)).decode()
    if profile.name == "gm":
        return {"name": "pbkdf2-hmac-sm3", "iterations": PBKDF2_SM3_ITERATIONS, "salt": salt}
    return {"name": "scrypt", "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P, "salt": salt}


def seal_key(plain: bytes, name: str, key: bytes, profile: crypto.Profile) -> bytes:
    nonce = os.urandom(profile.aead_nonce_size)
    # The file's name in the set is bound to it: a sealed signing key cannot be swapped for the OPRF ring.
    sealed = profile.aead_encrypt(key, nonce, plain, f"{KEY_FORMAT}:{name}".encode())
    doc = {
        "format": KEY_FORMAT,
        "name": name,
        "aead": profile.aead_algorithm,
        "nonce": base64.b64encode(nonce).decode(),
        "sealed": base64.b64encode(sealed).decode(),
    }
    return json.dumps(doc, indent=1).encode()


def open_key(data: bytes, name: str, key: bytes, profile: crypto.Profile) -> bytes:
    try:
        doc = json.loads(data)
        nonce = base64.b64decode(doc["nonce"])
        sealed = base64.b64decode(doc["sealed"])
    except (ValueError, KeyError, TypeError):
        raise BackupError(f"keys/{name}.enc：不是加密的密钥文件 — not a sealed key file") from None
    try:
        return profile.aead_decrypt(key, nonce, sealed, f"{KEY_FORMAT}:{name}".encode())
    except crypto.DecryptionFailed:
        raise BackupError(
            f"口令不对（keys/{name}.enc 无法解密），未写入任何内容 — wrong passphrase: keys/{name}.enc does "
            "not open; nothing written"
        ) from None


def read_passphrase(path: Path) -> bytes:
    try:
        data = path.read_bytes().rstrip(b"\r\n")
    except OSError as exc:
        raise BackupError(
            f"--passphrase-file：读不到口令文件 {path}（{exc.strerror}） — cannot read it"
        ) from None
    if len(data) < 12:
        raise BackupError(
            f"--passphrase-file：{path} 中的口令太短（至少 12 个字符） — the passphrase is shorter than 12 "
            "characters"
        )
    return data


# --- taking a set -----------------------------------------------------------------------------------------


@dataclass
class Taken:
    path: Path
    manifest: dict[str, Any]
    keys_path: Path | None = None

    @property
    def size(self) -> int:
        return sum(int(f["size"]) for f in self.manifest["files"])


def _read_keys(locations: dict[str, Path]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for name, path in locations.items():
        with contextlib.suppress(FileNotFoundError):
            out[name] = path.read_bytes()
    return out


def _database_snapshot_taken() -> None:
    """Called between the database snapshot and the second read of the keys (tests write here)."""


def _facts(conn: Any) -> dict[str, Any]:
    """The manifest's facts, read in the snapshot (a DB-API connection or a SQLAlchemy one)."""

    def one(sql: str) -> Any:
        cur = conn.execute(text(sql) if not isinstance(conn, sqlite3.Connection) else sql)
        return cur.fetchone()

    revision = one("SELECT version_num FROM alembic_version")
    feed_head = one("SELECT seq FROM feed_head WHERE id = 1")
    audit_head = one("SELECT seq, hash FROM audit_chain_head WHERE id = 1")
    return {
        "revision": revision[0] if revision else None,
        "feed_head": int(feed_head[0]) if feed_head else 0,
        "audit_head": {"seq": int(audit_head[0]), "hash": audit_head[1]} if audit_head else None,
    }


def _snapshot_sqlite(target: Target, out: Path, timeout: float) -> dict[str, Any]:
    assert target.sqlite_path is not None
    if not target.sqlite_path.exists():
        raise BackupError(f"数据库文件 {target.sqlite_path} 不存在 — the database file does not exist")
    src = sqlite3.connect(target.sqlite_path, timeout=timeout)
    dst = sqlite3.connect(out)
    try:
        src.backup(dst)  # pages=-1: one step, one read transaction — one snapshot
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        facts = _facts(dst)
    finally:
        dst.close()
        src.close()
    return facts


def _run(args: list[str], env: dict[str, str], what: str) -> None:
    try:
        done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise BackupError(
            f"找不到 {args[0]}（PostgreSQL 客户端工具），未写入任何内容 — {args[0]} is not installed "
            "(PostgreSQL client tools); nothing written"
        ) from None
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise BackupError(f"{what}失败 — {args[0]} failed: {detail[-1] if detail else done.returncode}")


def _snapshot_postgres(target: Target, out: Path, db: Database) -> dict[str, Any]:
    uri, env = target.libpq()
    with db.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            conn.execute(text("SET TRANSACTION READ ONLY"))
            snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            facts = _facts(conn)
            # The dump sees exactly this transaction's snapshot: the facts above are the dump's.
            _run(
                [
                    "pg_dump",
                    "--format=custom",
                    f"--schema={target.schema}",
                    "--no-owner",
                    "--no-privileges",
                    f"--snapshot={snapshot}",
                    f"--file={out}",
                    f"--dbname={uri}",
                ],
                env,
                "数据库导出 ",
            )
    return facts


def _set_name(now: datetime) -> str:
    return f"{SET_PREFIX}{now.astimezone(UTC):%Y%m%dT%H%M%S%fZ}"


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def take(
    settings: Settings,
    to: Path,
    *,
    passphrase: bytes | None = None,
    keys_to: Path | None = None,
    db: Database | None = None,
    now: datetime | None = None,
    locked: bool = False,
) -> Taken:
    """Write one consistent set into a new folder under ``to``; returns it with its manifest. The folder's
    lock is held meanwhile (``locked``: the caller holds it), so that a prune never takes a set being
    written for an abandoned one."""
    if passphrase is None and keys_to is None:
        raise BackupError(
            "拒绝备份：密钥不能以明文和数据库放在一起（谁拿到这份备份，谁就能解开其中每一个身份标识）。请用 "
            "--passphrase-file 加密密钥，或用 --keys-to 把密钥导出到另一个位置 — refused: plain keys next "
            "to the database would open every personal identifier in it; seal them with --passphrase-file "
            "or export them elsewhere with --keys-to"
        )
    if passphrase is not None and keys_to is not None:
        raise BackupError("--passphrase-file 与 --keys-to 只能选一个 — choose one of them")
    to = to.resolve()
    if keys_to is not None and (_inside(keys_to, to) or _inside(to, keys_to)):
        raise BackupError(
            f"--keys-to：{keys_to} 与备份目录 {to} 重叠，明文密钥会和数据库放在一起 — it overlaps the "
            "backup folder: plain keys would lie next to the database"
        )
    target = target_of(settings)
    if target.backend == "postgresql" and shutil.which("pg_dump") is None:
        raise BackupError("找不到 pg_dump（PostgreSQL 客户端工具） — pg_dump is not installed")
    now = now or datetime.now(UTC)
    profile = crypto.profile(settings.crypto_profile)
    locations = key_locations(settings)
    name = _set_name(now)
    to.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = to / f"{PARTIAL}{name}"
    final = to / name
    if final.exists():
        raise BackupError(f"{final} 已存在 — already exists")
    guard = contextlib.ExitStack()
    if not locked:
        guard.enter_context(_locked(to, wait=True))
    own_db = db is None
    database = db or Database(settings.database_url)
    started = time.perf_counter()
    keys_path: Path | None = None
    try:
        for attempt in range(1, KEY_TRIES + 1):
            shutil.rmtree(partial, ignore_errors=True)
            (partial / "database").mkdir(parents=True, mode=0o700)
            before = _read_keys(locations)
            if target.backend == "sqlite":
                db_file = partial / "database" / "fcx.sqlite3"
                facts = _snapshot_sqlite(target, db_file, database.timeouts.sqlite_busy)
            else:
                db_file = partial / "database" / "fcx.pgdump"
                facts = _snapshot_postgres(target, db_file, database)
            _database_snapshot_taken()
            key_bytes = _read_keys(locations)
            if key_bytes == before:
                break
            log.warning("backup: the key files changed during the database snapshot (try %d)", attempt)
        else:
            raise BackupError(
                "密钥文件在备份期间反复变化（正在轮换密钥？），请稍后再备份 — the key files kept changing "
                "during the backup (a rotation running?); run it again later"
            )
        if "data.json" not in key_bytes:
            log.warning("backup: no data key file at %s", locations["data.json"])
        files: list[dict[str, Any]] = [
            {"path": f"database/{db_file.name}", "kind": "database", **_described(db_file, profile)}
        ]
        keys_doc: dict[str, Any]
        if passphrase is not None:
            kdf = new_kdf(profile)
            key = _derive(passphrase, kdf, profile)
            for kname, data in sorted(key_bytes.items()):
                path = partial / "keys" / f"{kname}.enc"
                _write_private(path, seal_key(data, kname, key, profile))
                files.append(
                    {"path": f"keys/{kname}.enc", "kind": "key", "key": kname, **_described(path, profile)}
                )
            keys_doc = {"mode": "sealed", "kdf": kdf, "aead": profile.aead_algorithm}
        else:
            assert keys_to is not None
            keys_path = keys_to.resolve() / name
            external: list[dict[str, Any]] = []
            for kname, data in sorted(key_bytes.items()):
                path = keys_path / kname
                _write_private(path, data)
                external.append({"path": kname, "key": kname, **_described(path, profile)})
            keys_doc = {"mode": "exported", "exported_to": str(keys_path), "files": external}
        manifest = {
            "format": FORMAT,
            "name": name,
            "created_at": now.astimezone(UTC).isoformat(),
            "platform_version": __version__,
            "crypto_profile": profile.name,
            "digest": profile.hash_algorithm,
            "database": {"backend": target.backend, "schema": target.schema, **facts},
            "keys": keys_doc,
            "files": files,
            "took_seconds": round(time.perf_counter() - started, 3),
        }
        manifest_bytes = json.dumps(manifest, indent=1, ensure_ascii=False).encode()
        _write_private(partial / MANIFEST, manifest_bytes)
        signature = _sign_manifest(settings, key_bytes.get("sharing/signing.json"), manifest_bytes)
        if signature is not None:
            _write_private(partial / MANIFEST_SIGNATURE, json.dumps(signature, indent=1).encode())
        os.rename(partial, final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        if keys_path is not None:  # the plain keys of a set that was not finished
            shutil.rmtree(keys_path, ignore_errors=True)
        raise
    finally:
        if own_db:
            database.dispose()
        guard.close()
    return Taken(final, manifest, keys_path)


def _signing_public(saved: bytes) -> tuple[str, bytes] | None:
    """The key id and public key of a saved ``signing.json`` (None: a key file of before #18, seed only)."""
    try:
        doc = json.loads(saved)
        return str(doc["key_id"]), base64.b64decode(doc["public"])
    except (ValueError, KeyError, TypeError):
        return None


def _sign_manifest(settings: Settings, saved: bytes | None, manifest_bytes: bytes) -> dict[str, Any] | None:
    """The manifest signed with the platform's feed-signing key — the key nodes pin — when the set holds
    it: whoever changes a file and its digest in the manifest cannot sign again."""
    facts = _signing_public(saved) if saved is not None else None
    if facts is None:
        return None
    try:
        signing = sharing_keys.load(
            settings.sharing_key_dir, create=False, profile=settings.crypto_profile
        ).signing
    except sharing_keys.KeyFileError:
        return None
    if (signing.key_id, signing.public) != facts:  # replaced after it was read: the set holds the other
        log.warning("backup: the feed-signing key changed meanwhile; the manifest is not signed")
        return None
    return {
        "key_id": signing.key_id,
        "public_key": base64.b64encode(signing.public).decode(),
        "fingerprint": fingerprint(signing.public),
        "signature": base64.b64encode(signing.sign(manifest_bytes)).decode(),
    }


def check_signature(folder: Path, manifest: dict[str, Any], key_bytes: dict[str, bytes]) -> str | None:
    """Check the manifest's signature with the feed-signing key the set holds (opened); the key's
    fingerprint, or None when the set holds no such key. A set that holds it must be signed by it."""
    saved = key_bytes.get("sharing/signing.json")
    facts = _signing_public(saved) if saved is not None else None
    if facts is None:
        return None
    key_id, public = facts
    try:
        doc = json.loads((folder / MANIFEST_SIGNATURE).read_bytes())
        signature = base64.b64decode(doc["signature"])
    except FileNotFoundError:
        raise BackupError(
            f"{MANIFEST_SIGNATURE}：缺失，但备份中有签名密钥 {key_id}，未写入任何内容 — missing "
            "although the set holds the feed-signing key; nothing written"
        ) from None
    except (ValueError, KeyError, TypeError):
        raise BackupError(
            f"{MANIFEST_SIGNATURE}：格式不对，未写入任何内容 — malformed; nothing written"
        ) from None
    try:
        crypto.profile(manifest["crypto_profile"]).verify(public, (folder / MANIFEST).read_bytes(), signature)
    except crypto.CryptoError:
        raise BackupError(
            f"manifest.json：签名不对（不是备份中的签名密钥 {key_id} 所签），未写入任何内容 — its "
            "signature does not verify under the set's feed-signing key; nothing written"
        ) from None
    return fingerprint(public)


def _described(path: Path, profile: crypto.Profile) -> dict[str, Any]:
    return {"size": path.stat().st_size, "digest": file_digest(path, profile)}


# --- reading and checking a set ---------------------------------------------------------------------------


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise BackupError(
            f"{path}：没有 manifest.json，这不是一份完整的备份 — not a complete backup set"
        ) from None
    except ValueError:
        raise BackupError(f"{path}：manifest.json 不是有效的 JSON — not valid JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BackupError(f"{path}：格式不是 {FORMAT} — not a backup manifest of this platform")
    return doc


def _check_files(folder: Path, entries: list[dict[str, Any]], profile: crypto.Profile, where: str) -> None:
    for f in entries:
        rel = str(f["path"])
        path = (folder / rel).resolve()
        if not _inside(path, folder):
            raise BackupError(f"{where}{rel}：路径超出备份目录 — the path leaves the set")
        if not path.is_file():
            raise BackupError(f"{where}{rel}：文件缺失，未写入任何内容 — missing; nothing written")
        if path.stat().st_size != int(f["size"]):
            raise BackupError(
                f"{where}{rel}：大小与清单不符（{path.stat().st_size} ≠ {f['size']} 字节），未写入任何内容 — "
                "its size differs from the manifest; nothing written"
            )
        if file_digest(path, profile) != f["digest"]:
            raise BackupError(
                f"{where}{rel}：{profile.hash_algorithm} 摘要与清单不符（被改动或损坏），未写入任何内容 — "
                "its digest differs from the manifest (changed or damaged); nothing written"
            )


def resolve_set(folder: Path) -> Path:
    """A set's folder: ``folder`` itself, or the newest complete set in it."""
    if (folder / MANIFEST).exists():
        return folder
    sets = list_sets(folder)
    complete = [s for s in sets if s.complete]
    if not complete:
        raise BackupError(f"{folder}：没有 manifest.json，也没有完整的备份 — no backup set here")
    return complete[0].path


def verify(folder: Path, *, keys_from: Path | None = None) -> dict[str, Any]:
    """Check every digest of a set (and of its exported keys when ``keys_from`` is given)."""
    manifest = read_manifest(folder)
    profile = crypto.profile(manifest["crypto_profile"])
    _check_files(folder, manifest["files"], profile, "")
    if keys_from is not None and manifest["keys"]["mode"] == "exported":
        _check_files(keys_from, manifest["keys"]["files"], profile, f"{keys_from}/")
    return manifest


@dataclass
class SetInfo:
    path: Path
    created_at: datetime | None
    complete: bool
    size: int = 0
    manifest: dict[str, Any] | None = field(default=None, repr=False)
    problem: str | None = None


def list_sets(folder: Path) -> list[SetInfo]:
    """The sets under ``folder``, newest first; a set is complete when its manifest reads and each of
    its files is there with its size (digests: :func:`verify`)."""
    out: list[SetInfo] = []
    if not folder.is_dir():
        return out
    for child in folder.iterdir():
        if not child.is_dir() or not child.name.startswith(SET_PREFIX):
            continue
        try:
            manifest = read_manifest(child)
            created = datetime.fromisoformat(manifest["created_at"])
            problem = None
            for f in manifest["files"]:
                p = child / f["path"]
                if not p.is_file() or p.stat().st_size != int(f["size"]):
                    problem = f"{f['path']}：缺失或大小不符 — missing or of another size"
                    break
            size = sum(int(f["size"]) for f in manifest["files"])
            out.append(SetInfo(child, created, problem is None, size, manifest, problem))
        except (BackupError, KeyError, ValueError, TypeError) as exc:
            out.append(SetInfo(child, None, False, problem=str(exc)))
    epoch = datetime.min.replace(tzinfo=UTC)
    out.sort(key=lambda s: (s.created_at or epoch, s.path.name), reverse=True)
    return out


def prune(folder: Path, keep: int) -> list[Path]:
    """Remove all but the ``keep`` newest sets; the newest complete set is always kept, and unfinished
    ``.partial-`` folders are removed only when no backup is running (the lock is free)."""
    if keep < 1:
        raise BackupError("--keep 至少为 1 — keep at least one set")
    with _locked(folder, wait=True):
        sets = list_sets(folder)
        kept = {s.path for s in sets[:keep]}
        newest_good = next((s for s in sets if s.complete), None)
        if newest_good is not None:
            kept.add(newest_good.path)
        removed = []
        for s in sets:
            if s.path not in kept:
                exported = ((s.manifest or {}).get("keys") or {}).get("exported_to")
                shutil.rmtree(s.path)
                removed.append(s.path)
                if exported and Path(exported).name == s.path.name:  # its plain keys, exported apart
                    shutil.rmtree(exported, ignore_errors=True)
        for child in folder.iterdir():
            if child.is_dir() and child.name.startswith(PARTIAL):
                shutil.rmtree(child)
                removed.append(child)
    return removed


@contextlib.contextmanager
def _locked(folder: Path, *, wait: bool) -> Iterator[bool]:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    with host_lock(folder / LOCK, wait=wait) as held:
        yield held


# --- restore ----------------------------------------------------------------------------------------------


@dataclass
class Restored:
    manifest: dict[str, Any]
    audit_ok: bool
    audit_checked: int
    audit_problem: str | None
    anchored: bool | None  # None: no transparency log key in the set
    anchor_problems: list[str]
    data_keys: list[str]
    written_keys: list[str]
    signed_by: str | None = None  # the fingerprint of the feed-signing key that signed the manifest


def emptiness(settings: Settings, target: Target) -> list[str]:
    """What makes the installation not empty (nothing: it is empty)."""
    found: list[str] = []
    if target.backend == "sqlite":
        assert target.sqlite_path is not None
        if target.sqlite_path.exists() and target.sqlite_path.stat().st_size > 0:
            con = sqlite3.connect(f"file:{target.sqlite_path}?mode=ro", uri=True)
            try:
                n = con.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
            finally:
                con.close()
            if n:
                found.append(f"数据库 {target.sqlite_path} 已有 {n} 张表 — the database has {n} tables")
    else:
        n = len(_pg_tables(target))
        if n:
            found.append(f"数据库 schema {target.schema} 已有 {n} 张表 — the schema has {n} tables")
    for name, path in key_locations(settings).items():
        if path.exists():
            found.append(f"密钥文件 {path} 已存在 — key file {name} exists")
    return found


def _pg_tables(target: Target) -> list[str]:
    db = Database(target.url)
    try:
        with db.engine.connect() as conn:
            return list(inspect(conn).get_table_names(schema=target.schema))
    except Exception as exc:
        if not unavailable(exc):
            raise
        raise BackupError(
            f"连不上目标数据库（FCX_DATABASE_URL），未写入任何内容 — the target database does not answer: "
            f"{str(exc).splitlines()[0]}"
        ) from None
    finally:
        db.dispose()


def open_set_keys(
    folder: Path, manifest: dict[str, Any], passphrase: bytes | None, keys_from: Path | None
) -> dict[str, bytes]:
    profile = crypto.profile(manifest["crypto_profile"])
    doc = manifest["keys"]
    out: dict[str, bytes] = {}
    named = [f["key"] for f in manifest["files"] if f["kind"] == "key"] + [
        f["key"] for f in doc.get("files", [])
    ]
    unknown = sorted(set(named) - set(KEY_NAMES))
    if unknown:
        raise BackupError(
            f"manifest.json：未知的密钥文件 {', '.join(unknown)} — unknown key files; nothing written"
        )
    if doc["mode"] == "sealed":
        if passphrase is None:
            raise BackupError(
                "这份备份的密钥用口令加密：请给出 --passphrase-file — the keys of this set are sealed: give "
                "--passphrase-file"
            )
        key = _derive(passphrase, doc["kdf"], profile)
        for f in manifest["files"]:
            if f["kind"] == "key":
                out[f["key"]] = open_key((folder / f["path"]).read_bytes(), f["key"], key, profile)
        return out
    if keys_from is None:
        raise BackupError(
            f"这份备份的密钥导出在别处（{doc['exported_to']}）：请用 --keys-from 指出 — the keys of this set "
            "were exported elsewhere: give --keys-from"
        )
    _check_files(keys_from, doc["files"], profile, f"{keys_from}/")
    for f in doc["files"]:
        out[f["key"]] = (keys_from / f["path"]).read_bytes()
    return out


def _restore_sqlite(target: Target, source: Path) -> None:
    assert target.sqlite_path is not None
    path = target.sqlite_path
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{path}{suffix}")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.restore-")
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _restore_postgres(target: Target, dump: Path, manifest: dict[str, Any], *, force: bool) -> None:
    dumped = manifest["database"].get("schema") or "public"
    if dumped != target.schema:
        raise BackupError(
            f"备份来自 schema {dumped}，目标是 schema {target.schema}；"
            f"请在 FCX_DATABASE_URL 的 search_path 中使用 {dumped}，未写入任何内容 — the set holds schema "
            f"{dumped}, the target is {target.schema}; nothing written"
        )
    uri, env = target.libpq()
    listing = subprocess.run(["pg_restore", "--list", str(dump)], capture_output=True, text=True, check=False)
    if listing.returncode != 0:
        raise BackupError(f"database/{dump.name}：pg_restore 读不了它 — pg_restore cannot read it")
    # The schema is made here (it may exist, empty, as `public` always does): its own entry is left out.
    lines = [ln for ln in listing.stdout.splitlines() if f" SCHEMA - {dumped} " not in f"{ln} "]
    db = Database(target.url)
    try:
        with db.engine.begin() as conn:
            if force:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{dumped}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{dumped}"'))
    finally:
        db.dispose()
    with tempfile.NamedTemporaryFile("w", suffix=".list", delete=False) as fh:
        fh.write("\n".join(lines) + "\n")
        list_file = fh.name
    try:
        _run(
            [
                "pg_restore",
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "--single-transaction",
                f"--use-list={list_file}",
                f"--dbname={uri}",
                str(dump),
            ],
            env,
            "数据库恢复（整体回滚，未写入） ",
        )
    finally:
        os.unlink(list_file)


def restore(
    settings: Settings,
    source: Path,
    *,
    passphrase: bytes | None = None,
    keys_from: Path | None = None,
    force: bool = False,
    actor: Actor | None = None,
    now: datetime | None = None,
) -> Restored:
    """Bring a set back into the installation the settings name (see the module's docstring)."""
    folder = resolve_set(source)
    manifest = verify(folder)
    if manifest["crypto_profile"] != settings.crypto_profile:
        raise BackupError(
            f"备份的密码配置是 {manifest['crypto_profile']}，"
            f"本机是 {settings.crypto_profile}（FCX_CRYPTO_PROFILE），未写入任何内容 — the set is of the "
            f"{manifest['crypto_profile']} crypto profile, this installation {settings.crypto_profile}; "
            "nothing written"
        )
    key_bytes = open_set_keys(folder, manifest, passphrase, keys_from)
    signed_by = check_signature(folder, manifest, key_bytes)
    target = target_of(settings)
    if manifest["database"]["backend"] != target.backend:
        raise BackupError(
            f"备份的数据库是 {manifest['database']['backend']}，目标是 {target.backend}，"
            f"未写入任何内容 — the set holds a {manifest['database']['backend']} database, the target is "
            f"{target.backend}"
        )
    if target.backend == "postgresql" and shutil.which("pg_restore") is None:
        raise BackupError(
            "找不到 pg_restore（PostgreSQL 客户端工具），未写入任何内容 — pg_restore is not installed"
        )
    not_empty = emptiness(settings, target)
    if not_empty and not force:
        raise BackupError(
            "目标安装不是空的，未写入任何内容（确认要覆盖时加 --force）："
            + "；".join(not_empty)
            + " — the installation is not empty; nothing written (--force overwrites it)"
        )
    db_entry = next(f for f in manifest["files"] if f["kind"] == "database")
    if target.backend == "sqlite":
        _restore_sqlite(target, folder / db_entry["path"])
    else:
        _restore_postgres(target, folder / db_entry["path"], manifest, force=force)
    locations = key_locations(settings)
    written = []
    for name, data in sorted(key_bytes.items()):
        path = locations[name]
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.restore-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
        written.append(name)
    vault.forget()
    translog.forget_trees()
    done = _check_restored(settings, manifest, written, actor or audit.SYSTEM, now or datetime.now(UTC))
    done.signed_by = signed_by
    return done


def _check_restored(
    settings: Settings, manifest: dict[str, Any], written: list[str], actor: Actor, now: datetime
) -> Restored:
    """The checks of `fcx audit verify` and of the data keys on the restored installation; then the fact
    of the restore in the audit chain (which the feed manifest carries to the nodes)."""
    db = Database(settings.database_url)
    try:
        with db.session() as session:
            result = audit.verify(session, trusted_keys=audit_signing_keys())
            try:
                log_keys = translog.load_log_keys(settings.sharing_key_dir, create=False)
            except translog.LogError:
                log_keys = None
            anchored = (
                translog.verify_audit_anchored(session, log_keys, trusted_keys=audit_signing_keys())
                if log_keys is not None and result.ok
                else None
            )
        with vault.pinned(vault.read_ring(vault.key_file())) if "data.json" in written else _nothing():
            ring = vault.check_database(db.engine) if "data.json" in written else None
        with db.session() as session:
            audit.record(
                session,
                actor,
                RESTORED_ACTION,
                "backup",
                manifest["name"],
                detail={
                    "epoch": uuid.uuid4().hex,
                    "restored_at": now.astimezone(UTC).isoformat(),
                    "backup_created_at": manifest["created_at"],
                    "feed_head": manifest["database"]["feed_head"],
                    "audit_head": manifest["database"]["audit_head"],
                },
            )
    except vault.DataKeyError as exc:
        raise BackupError(f"数据密钥检查未通过 — data keys: {exc}") from None
    finally:
        db.dispose()
    return Restored(
        manifest=manifest,
        audit_ok=result.ok,
        audit_checked=result.checked,
        audit_problem=None if result.ok else f"event {result.broken_at}: {result.reason}",
        anchored=None if anchored is None else anchored.ok,
        anchor_problems=list(anchored.problems) if anchored is not None else [],
        data_keys=sorted(ring.keys) if ring is not None else [],
        written_keys=written,
    )


@contextlib.contextmanager
def _nothing() -> Iterator[None]:
    yield


# --- scheduled --------------------------------------------------------------------------------------------


def due(folder: Path, every: timedelta, now: datetime) -> bool:
    newest = next((s for s in list_sets(folder) if s.complete), None)
    return newest is None or newest.created_at is None or now - newest.created_at >= every


def run_scheduled(db: Database, settings: Settings, *, now: datetime | None = None) -> dict[str, Any]:
    """The jobs loop's backup: a set when the newest complete one is ``FCX_BACKUP_EVERY_HOURS`` old, then
    retention (``FCX_BACKUP_KEEP``). One worker at a time (a lock file in the folder); the others skip."""
    if not settings.backup_dir:
        return {"backup": None}
    folder = Path(settings.backup_dir)
    now = now or datetime.now(UTC)
    with _locked(folder, wait=False) as got:
        if not got or not due(folder, timedelta(hours=settings.backup_every_hours), now):
            return {"backup": None}
        passphrase = (
            read_passphrase(Path(settings.backup_passphrase_file))
            if settings.backup_passphrase_file
            else None
        )
        keys_to = Path(settings.backup_keys_to) if settings.backup_keys_to else None
        taken = take(settings, folder, passphrase=passphrase, keys_to=keys_to, db=db, now=now, locked=True)
    removed = prune(folder, settings.backup_keep)
    log.info("backup: %s (%d bytes); %d old sets removed", taken.path, taken.size, len(removed))
    return {"backup": str(taken.path), "pruned": len(removed)}
