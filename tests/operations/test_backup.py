"""Backup and restore (#23): a set taken while the platform writes restores into a new installation where
the audit verifies, the public query answers and a node syncs; a set that was tampered with, a wrong
passphrase and an installation that is not empty are refused with nothing written; retention keeps the
newest sets. Through the CLI, as an operator runs it, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import shutil
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner, Result

from fanchaoxin.app import create_app
from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.blacklist.schemas import EntryIn
from fanchaoxin.cli import app as fcx
from fanchaoxin.core import audit, crypto, vault
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.db import Database
from fanchaoxin.core.roles import Role
from fanchaoxin.core.settings import Settings, get_settings
from fanchaoxin.node.client import PlatformClient
from fanchaoxin.node.store import Store
from fanchaoxin.node.sync import initialise, sync
from fanchaoxin.operations import backup
from fanchaoxin.sharing import feed, translog
from fanchaoxin.sharing import keys as sharing_keys
from fanchaoxin.workflows.entries import take_step
from tests.blacklist.registry_helpers import USCC_B, judicial
from tests.conftest import POSTGRES_URL, Backend
from tests.console.console_helpers import csrf_of

REVIEWER = Actor("test:reviewer")
PASSPHRASE = "正确的口令 correct horse battery staple"
UNIT_NAME = "杭州某刷单网络有限公司"

def run(*args: str) -> Result:
    """`fcx backup …` / `fcx restore …` as operators type them."""
    return CliRunner().invoke(fcx, list(args))


@pytest.fixture
def settings(settings, monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    """The platform's own key folder (sharing and log keys); the data key ring is the run's."""
    monkeypatch.setenv("FCX_SHARING_KEY_DIR", str(tmp_path / "platform" / "keys"))
    get_settings.cache_clear()
    translog.forget_trees()
    yield get_settings()
    get_settings.cache_clear()
    translog.forget_trees()
    vault.forget()


@pytest.fixture
def passphrase_file(tmp_path: Path) -> Path:
    p = tmp_path / "passphrase"
    p.write_text(PASSPHRASE + "\n")
    return p


def publish(db: Database, org_id: Any, body: dict[str, Any]) -> str:
    with db.session() as s:
        e = registry.submit(s, REVIEWER, org_id, EntryIn.model_validate(body))
        take_step(s, REVIEWER, e, Action.start_review)
        take_step(s, REVIEWER, e, Action.publish)
        return str(e.id)


def person(n: int) -> dict[str, Any]:
    return judicial(
        subject={
            "kind": "individual",
            "name": f"刷单者{n}",
            "identifiers": [{"type": "phone", "value": f"139{n:08d}"}],
        },
        role="participant",
    )


def checkpoint(db: Database) -> None:
    """What the periodic job does: commit the audit head to the transparency log and sign a checkpoint."""
    with db.session() as s:
        translog.run_jobs(s)


def node_client(app: Any, api_key: str) -> PlatformClient:
    client = PlatformClient("http://testserver", api_key)
    client.http.close()
    client.http = TestClient(app, base_url="http://testserver", headers={"X-API-Key": api_key})
    return client


def feed_head(db: Database) -> int:
    with db.session() as s:
        return int(s.execute(text("SELECT seq FROM feed_head WHERE id = 1")).scalar_one())


@dataclass
class Installation:
    """A new machine: its database (empty) and where its keys go, set in the environment as `fcx` reads it."""

    url: str
    root: Path


@pytest.fixture
def new_installation(backend: Backend, tmp_path: Path) -> Iterator[Installation]:
    root = tmp_path / "new-machine"
    if backend.name == "sqlite":
        yield Installation(f"sqlite:///{root / 'fcx.db'}", root)
        return
    # A new database on the server, the schema of the same name as the platform's (search_path).
    name = f"fcx_restore_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield Installation(f"{url}?options=-csearch_path%3D{backend.db.schema}", root)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def switch_to(monkeypatch: pytest.MonkeyPatch, inst: Installation) -> None:
    monkeypatch.setenv("FCX_DATABASE_URL", inst.url)
    monkeypatch.setenv("FCX_DATA_KEY_FILE", str(inst.root / "keys" / "data.json"))
    monkeypatch.setenv("FCX_SHARING_KEY_DIR", str(inst.root / "keys"))
    get_settings.cache_clear()
    vault.forget()
    translog.forget_trees()


class Writer(threading.Thread):
    """Publishes entries (feed events, audit events) one after another until stopped."""

    def __init__(self, db: Database, org_id: Any) -> None:
        super().__init__(daemon=True)
        self.db, self.org_id = db, org_id
        self.written = 0
        self.stop = threading.Event()
        self.progress = threading.Condition()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                publish(self.db, self.org_id, person(1000 + self.written))
                with self.progress:
                    self.written += 1
                    self.progress.notify_all()
        except BaseException as exc:  # pragma: no cover - reported by the test
            self.error = exc
            with self.progress:
                self.progress.notify_all()

    def wait_for(self, n: int) -> None:
        with self.progress:
            assert self.progress.wait_for(lambda: self.written >= n or self.error is not None, timeout=120)
        assert self.error is None, self.error


# --- the done-when ------------------------------------------------------------------------------------------


def test_a_backup_under_write_load_restores_where_audit_public_query_and_node_work(  # type: ignore[no-untyped-def]
    app, db, world, backend, tmp_path, passphrase_file, new_installation, monkeypatch
) -> None:
    shop = world.enterprise("电商")
    node_key = shop.keys[Role.enterprise_node]
    publish(
        db,
        shop.org.id,
        judicial(
            subject={"kind": "unit", "name": UNIT_NAME, "identifiers": [{"type": "uscc", "value": USCC_B}]}
        ),
    )
    checkpoint(db)
    store_path = str(tmp_path / "node.db")
    client = node_client(app, node_key)
    initialise(store_path, "http://testserver", node_key, client=client)
    store = Store(store_path)
    assert sync(store, client).head_after == 1

    writer = Writer(db, shop.org.id)
    writer.start()
    writer.wait_for(1)

    def after_snapshot() -> None:  # the platform keeps writing after the database snapshot
        writer.wait_for(writer.written + 2)

    monkeypatch.setattr(backup, "_database_snapshot_taken", after_snapshot)
    before = writer.written  # committed before the backup began: in the set
    try:
        r = run("backup", "--to", str(tmp_path / "backups"), "--passphrase-file", str(passphrase_file))
    finally:
        writer.stop.set()
        writer.join()
    assert writer.error is None
    assert r.exit_code == 0, r.output
    assert "备份完成" in r.output
    (taken,) = backup.list_sets(tmp_path / "backups")
    manifest = json.loads((taken.path / "manifest.json").read_text())
    # one snapshot: the entries published after it are not in the set, and its facts are the snapshot's
    assert 1 + before <= manifest["database"]["feed_head"] < feed_head(db)
    assert manifest["database"]["revision"] == db.head_revision()
    assert {f["path"] for f in manifest["files"] if f["kind"] == "key"} == {
        "keys/data.json.enc",
        "keys/sharing/oprf.json.enc",
        "keys/sharing/signing.json.enc",
        "keys/sharing/log.json.enc",
    }
    assert b"blind_index" not in (taken.path / "keys" / "data.json.enc").read_bytes()  # sealed, not plain

    switch_to(monkeypatch, new_installation)
    r = run("restore", "--from", str(tmp_path / "backups"), "--passphrase-file", str(passphrase_file))
    assert r.exit_code == 0, r.output
    assert "恢复完成" in r.output and "审计链完好" in r.output and "已锚定" in r.output
    assert "清单签名有效" in r.output
    assert (new_installation.root / "keys" / "data.json").stat().st_mode & 0o777 == 0o600
    r = CliRunner().invoke(fcx, ["audit", "verify"])  # as the operator checks it afterwards
    assert r.exit_code == 0 and "Audit chain intact" in r.output and "Anchored" in r.output, r.output

    restored_db = Database(new_installation.url)
    try:
        assert feed_head(restored_db) == manifest["database"]["feed_head"]
        restored_app = create_app(get_settings(), db=restored_db)
        with TestClient(restored_app) as web:
            token = csrf_of(web.get("/console/public").text)
            page = web.post("/console/public", data={"csrf_token": token, "q": USCC_B})
            assert page.status_code == 200
            assert UNIT_NAME in page.text.split('id="results"')[1]
        # the node that synced before the backup follows the restored platform, its log checks included
        checkpoint(restored_db)
        after = sync(store, node_client(restored_app, node_key))
        assert after.head_after == manifest["database"]["feed_head"]
        assert store.get_config().get("log_alarm") in (None, "")
        with restored_db.session() as s:
            fact = feed.restored(s)
        assert fact is not None and fact["feed_head"] == manifest["database"]["feed_head"]
    finally:
        store.dispose()
        restored_db.dispose()


def in_force(store: Store) -> set[str]:
    with store.read() as conn:
        return {r[0] for r in conn.exec_driver_sql("SELECT entry_id FROM node_entries WHERE in_force = 1")}


def test_a_node_that_followed_past_the_backup_takes_the_snapshot_again(  # type: ignore[no-untyped-def]
    app, db, world, tmp_path, passphrase_file, new_installation, monkeypatch
) -> None:
    """After a restore the platform's feed numbers after the set's head are given to other events: a node
    that had applied events past it re-takes the (signed) snapshot instead of refusing for ever, and ends
    with exactly what the restored platform holds (needs /tmp/fcx/patches/backup-node.diff)."""
    shop = world.enterprise("电商")
    node_key = shop.keys[Role.enterprise_node]
    unit = publish(
        db,
        shop.org.id,
        judicial(
            subject={"kind": "unit", "name": UNIT_NAME, "identifiers": [{"type": "uscc", "value": USCC_B}]}
        ),
    )
    checkpoint(db)
    r = run("backup", "--to", str(tmp_path / "backups"), "--passphrase-file", str(passphrase_file))
    assert r.exit_code == 0, r.output
    lost = publish(db, shop.org.id, person(1))  # after the backup: lost with the platform
    checkpoint(db)
    client = node_client(app, node_key)
    initialise(str(tmp_path / "node.db"), "http://testserver", node_key, client=client)
    store = Store(str(tmp_path / "node.db"))
    assert sync(store, client).head_after == 2
    assert in_force(store) == {unit, lost}

    switch_to(monkeypatch, new_installation)
    r = run("restore", "--from", str(tmp_path / "backups"), "--passphrase-file", str(passphrase_file))
    assert r.exit_code == 0, r.output
    restored_db = Database(new_installation.url)
    try:
        again = publish(restored_db, shop.org.id, person(2))  # feed seq 2 again, another event
        checkpoint(restored_db)
        restored_app = create_app(get_settings(), db=restored_db)
        client = node_client(restored_app, node_key)
        result = sync(store, client)
        assert result.snapshot is not None and result.head_after == feed_head(restored_db) == 2
        assert in_force(store) == {unit, again}
        assert store.get_config().get("log_alarm") in (None, "")
        third = publish(restored_db, shop.org.id, person(3))
        checkpoint(restored_db)
        result = sync(store, client)  # the restore was followed once: deltas again, log checked
        assert result.snapshot is None and result.head_after == 3
        assert in_force(store) == {unit, again, third}
    finally:
        store.dispose()
        restored_db.dispose()


# --- refusals ----------------------------------------------------------------------------------------------


@pytest.fixture
def one_set(app, db, world, settings, tmp_path, passphrase_file) -> Path:  # type: ignore[no-untyped-def]
    sharing_keys.init(settings.sharing_key_dir)
    shop = world.enterprise("电商")
    publish(
        db,
        shop.org.id,
        judicial(
            subject={"kind": "unit", "name": UNIT_NAME, "identifiers": [{"type": "uscc", "value": USCC_B}]}
        ),
    )
    checkpoint(db)
    r = run("backup", "--to", str(tmp_path / "backups"), "--passphrase-file", str(passphrase_file))
    assert r.exit_code == 0, r.output
    return backup.list_sets(tmp_path / "backups")[0].path


def _nothing_written(inst: Installation, backend: Backend) -> None:
    assert not (inst.root / "keys").exists()
    if backend.name == "sqlite":
        assert not (inst.root / "fcx.db").exists()
    else:
        engine = create_engine(inst.url)
        with engine.connect() as conn:
            n = conn.execute(
                text("SELECT count(*) FROM information_schema.tables WHERE table_schema = :s"),
                {"s": backend.db.schema},
            ).scalar_one()
        engine.dispose()
        assert n == 0


def test_a_tampered_or_missing_file_is_named_and_nothing_is_written(  # type: ignore[no-untyped-def]
    one_set, backend, new_installation, passphrase_file, monkeypatch, tmp_path
) -> None:
    switch_to(monkeypatch, new_installation)
    bad = tmp_path / "tampered"
    shutil.copytree(one_set, bad)
    sealed = bad / "keys" / "sharing" / "signing.json.enc"
    data = bytearray(sealed.read_bytes())
    data[len(data) // 2] ^= 1
    sealed.write_bytes(bytes(data))
    r = run("restore", "--from", str(bad), "--passphrase-file", str(passphrase_file))
    assert r.exit_code == 1
    assert "keys/sharing/signing.json.enc" in r.output and "摘要与清单不符" in r.output
    assert "Traceback" not in r.output
    db_file = next((bad / "database").iterdir())
    db_file.unlink()
    r = run("restore", "--from", str(bad), "--passphrase-file", str(passphrase_file))
    assert r.exit_code == 1 and f"database/{db_file.name}" in r.output and "文件缺失" in r.output
    r = run("backup", "verify", str(bad))
    assert r.exit_code == 1 and f"database/{db_file.name}" in r.output
    _nothing_written(new_installation, backend)
    r = run("backup", "verify", str(one_set), "--passphrase-file", str(passphrase_file))
    assert r.exit_code == 0 and "备份完好" in r.output and "密钥可以打开" in r.output, r.output
    assert "清单由签名密钥" in r.output
    # a file changed together with its digest in the manifest: the manifest's signature no longer verifies
    forged = tmp_path / "forged"
    shutil.copytree(one_set, forged)
    db_file = next((forged / "database").iterdir())
    db_file.write_bytes(db_file.read_bytes() + b"\0")
    manifest = json.loads((forged / "manifest.json").read_text())
    (entry,) = [f for f in manifest["files"] if f["kind"] == "database"]
    entry["size"] = db_file.stat().st_size
    entry["digest"] = backup.file_digest(db_file, crypto.profile(manifest["crypto_profile"]))
    (forged / "manifest.json").write_text(json.dumps(manifest))
    r = run("restore", "--from", str(forged), "--passphrase-file", str(passphrase_file))
    assert r.exit_code == 1 and "签名不对" in r.output, r.output
    (forged / "manifest.sig").unlink()
    r = run("restore", "--from", str(forged), "--passphrase-file", str(passphrase_file))
    assert r.exit_code == 1 and "manifest.sig" in r.output, r.output
    _nothing_written(new_installation, backend)


def test_a_wrong_passphrase_is_refused_and_nothing_is_written(  # type: ignore[no-untyped-def]
    one_set, backend, new_installation, monkeypatch, tmp_path
) -> None:
    switch_to(monkeypatch, new_installation)
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase at all")
    r = run("restore", "--from", str(one_set), "--passphrase-file", str(wrong))
    assert r.exit_code == 1 and "口令不对" in r.output, r.output
    r = run("restore", "--from", str(one_set))
    assert r.exit_code == 1 and "--passphrase-file" in r.output
    _nothing_written(new_installation, backend)


def test_an_installation_that_is_not_empty_is_refused_unless_forced(  # type: ignore[no-untyped-def]
    one_set, db, backend, new_installation, passphrase_file, monkeypatch
) -> None:
    switch_to(monkeypatch, new_installation)
    (new_installation.root / "keys").mkdir(parents=True)
    (new_installation.root / "keys" / "oprf.json").write_text("{}")
    r = run("restore", "--from", str(one_set), "--passphrase-file", str(passphrase_file))
    assert r.exit_code == 1 and "不是空的" in r.output and "oprf.json" in r.output
    assert (new_installation.root / "keys" / "oprf.json").read_text() == "{}"
    r = run("restore", "--from", str(one_set), "--passphrase-file", str(passphrase_file), "--force")
    assert r.exit_code == 0, r.output
    # now it holds tables: a second restore is refused, naming the database
    (new_installation.root / "keys" / "oprf.json").unlink()
    r = run("restore", "--from", str(one_set), "--passphrase-file", str(passphrase_file))
    assert r.exit_code == 1 and "张表" in r.output


def test_plain_keys_next_to_the_database_are_refused_and_exported_keys_restore(  # type: ignore[no-untyped-def]
    app, db, world, backend, tmp_path, new_installation, monkeypatch
) -> None:
    world.enterprise("电商")
    r = run("backup", "--to", str(tmp_path / "backups"))
    assert r.exit_code == 1 and "明文" in r.output and "--keys-to" in r.output
    r = run("backup", "--to", str(tmp_path / "backups"), "--keys-to", str(tmp_path / "backups" / "keys"))
    assert r.exit_code == 1 and "重叠" in r.output
    assert backup.list_sets(tmp_path / "backups") == []
    r = run("backup", "--to", str(tmp_path / "backups"), "--keys-to", str(tmp_path / "vault"))
    assert r.exit_code == 0, r.output
    (taken,) = backup.list_sets(tmp_path / "backups")
    assert not (taken.path / "keys").exists()
    exported = tmp_path / "vault" / taken.path.name
    assert (exported / "data.json").stat().st_mode & 0o777 == 0o600
    switch_to(monkeypatch, new_installation)
    r = run("restore", "--from", str(taken.path))
    assert r.exit_code == 1 and "--keys-from" in r.output
    r = run("restore", "--from", str(taken.path), "--keys-from", str(exported))
    assert r.exit_code == 0 and "审计链完好" in r.output, r.output


def test_a_key_rotation_during_the_snapshot_makes_the_set_taken_again(  # type: ignore[no-untyped-def]
    app, db, world, settings, tmp_path, monkeypatch
) -> None:
    """The keys saved are those in place during the whole database snapshot: read before and after it."""
    world.enterprise("电商")
    ring = backup.key_locations(settings)["sharing/oprf.json"]
    sharing_keys.init(settings.sharing_key_dir)
    rotations: list[bytes] = []

    def rotate_once() -> None:
        if not rotations:
            rotations.append(ring.read_bytes() + b" ")  # still the same ring to JSON, other bytes
            ring.write_bytes(rotations[0])

    monkeypatch.setattr(backup, "_database_snapshot_taken", rotate_once)
    taken = backup.take(settings, tmp_path / "backups", passphrase=PASSPHRASE.encode())
    sealed = backup.open_set_keys(taken.path, taken.manifest, PASSPHRASE.encode(), None)
    assert sealed["sharing/oprf.json"] == rotations[0]  # the second try, after the rotation

    monkeypatch.setattr(
        backup, "_database_snapshot_taken", lambda: ring.write_bytes(ring.read_bytes() + b" ")
    )
    with pytest.raises(backup.BackupError, match="反复变化"):
        backup.take(settings, tmp_path / "backups", passphrase=PASSPHRASE.encode())
    assert len(backup.list_sets(tmp_path / "backups")) == 1
    assert not [p for p in (tmp_path / "backups").iterdir() if p.name.startswith(backup.PARTIAL)]


# --- schedule and retention ---------------------------------------------------------------------------------


def test_the_scheduled_backup_runs_when_due_and_retention_keeps_the_newest(  # type: ignore[no-untyped-def]
    app, db, world, tmp_path, passphrase_file, monkeypatch
) -> None:
    world.enterprise("电商")
    folder = tmp_path / "scheduled"
    monkeypatch.setenv("FCX_BACKUP_DIR", str(folder))
    monkeypatch.setenv("FCX_BACKUP_EVERY_HOURS", "24")
    monkeypatch.setenv("FCX_BACKUP_KEEP", "2")
    monkeypatch.setenv("FCX_BACKUP_PASSPHRASE_FILE", str(passphrase_file))
    get_settings.cache_clear()
    s = get_settings()
    t0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    taken = [backup.run_scheduled(db, s, now=t0 + timedelta(hours=h))["backup"] for h in (0, 1, 23, 24, 48)]
    assert [t is not None for t in taken] == [True, False, False, True, True]
    # the third set pruned the first: two newest kept
    sets = backup.list_sets(folder)
    assert [x.created_at for x in sets] == [t0 + timedelta(hours=48), t0 + timedelta(hours=24)]
    # a newer set that is broken does not count as the newest good one: retention keeps the good one too
    broken = folder / f"{backup.SET_PREFIX}20261210T000000000000Z"
    shutil.copytree(sets[0].path, broken)
    manifest = json.loads((broken / "manifest.json").read_text())
    manifest["created_at"] = datetime(2026, 12, 10, tzinfo=UTC).isoformat()
    (broken / "manifest.json").write_text(json.dumps(manifest))
    next((broken / "database").iterdir()).unlink()
    r = run("backup", "prune", str(folder), "--keep", "1")
    assert r.exit_code == 0, r.output
    left = backup.list_sets(folder)
    assert [(x.path.name, x.complete) for x in left] == [(broken.name, False), (sets[0].path.name, True)]
    r = run("backup", "list", str(folder), "--json")
    assert r.exit_code == 0
    assert [x["complete"] for x in json.loads(r.output)] == [False, True]
    # the restore of a folder takes its newest complete set
    assert backup.resolve_set(folder) == sets[0].path


def test_restore_records_the_epoch_the_signed_manifest_carries(  # type: ignore[no-untyped-def]
    one_set, client, db, world
) -> None:
    """The platform side of a node's recovery: after a restore the signed manifest names it."""
    shop = world.enterprise("电商2")
    headers = {"X-API-Key": shop.keys[Role.enterprise_node]}
    assert "restored" not in client.get("/v1/sharing/manifest", headers=headers).json()["manifest"]
    with db.session() as s:
        audit.record(
            s,
            REVIEWER,
            backup.RESTORED_ACTION,
            "backup",
            one_set.name,
            detail={"epoch": "e1", "restored_at": date(2026, 12, 6).isoformat(), "feed_head": 1},
        )
    doc = client.get("/v1/sharing/manifest", headers=headers).json()
    assert doc["manifest"]["restored"] == {"epoch": "e1", "restored_at": "2026-12-06", "feed_head": 1}


def test_a_scheduled_backup_without_a_place_for_its_keys_is_refused_at_start(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FCX_BACKUP_DIR", "/srv/backups")
    monkeypatch.delenv("FCX_BACKUP_PASSPHRASE_FILE", raising=False)
    monkeypatch.delenv("FCX_BACKUP_KEYS_TO", raising=False)
    with pytest.raises(ValueError, match="FCX_BACKUP_PASSPHRASE_FILE 或 FCX_BACKUP_KEYS_TO"):
        Settings()
    monkeypatch.setenv("FCX_BACKUP_KEYS_TO", "/mnt/keyvault")
    assert Settings().backup_keys_to == "/mnt/keyvault"
