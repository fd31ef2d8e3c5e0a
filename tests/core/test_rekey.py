"""Data key rotation, retirement and the start-up check (core.rekey, vault.check_database, `fcx keys`)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import select, text
from typer.testing import CliRunner

from fanchaoxin.app import create_served_app
from fanchaoxin.appeals.models import Report
from fanchaoxin.blacklist.models import EvidenceBlob
from fanchaoxin.cli import app as fcx
from fanchaoxin.core import rekey, vault
from fanchaoxin.core.settings import get_settings
from fanchaoxin.core.vault import DataKeyError

runner = CliRunner()


@pytest.fixture
def key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings) -> Path:  # type: ignore[no-untyped-def]
    """A ring of this test's own (FCX_DATA_KEY_FILE, explicit), over the backend's database."""
    path = tmp_path / "keys" / "data.json"
    vault.write_ring(vault.new_ring(path), exclusive=True)
    monkeypatch.setenv("FCX_DATA_KEY_FILE", str(path))
    get_settings.cache_clear()
    vault.forget()
    yield path
    get_settings.cache_clear()
    vault.forget()


def reports(db, n: int) -> list:  # type: ignore[no-untyped-def]
    with db.session() as s:
        rows = [
            Report(
                tracking_number=f"JB20260101-{i:08d}",
                secret_hash="0" * 64,
                status="received",
                channel="public",
                filed_by="public",
                description="组织刷单群。",
                behaviours=[],
                reported={"identifiers": [{"type": "phone", "value": f"+86138001{i:05d}"}]},
                contact_email=f"r{i}@example.cn",
                filed_on=date(2026, 1, 1),
            )
            for i in range(n)
        ]
        s.add_all(rows)
        s.add(EvidenceBlob(digest="a" * 64, size=3, media_type="text/plain", data=b"abc"))
        s.flush()
        return [r.id for r in rows]


def usage(db) -> dict[tuple[str, str, str | None], int]:  # type: ignore[no-untyped-def]
    return {(u.table, u.column, u.key_id): u.rows for u in vault.key_usage(db.engine)}


def test_rotation_moves_every_row_to_the_new_key_and_then_the_old_one_retires(db, key_file) -> None:  # type: ignore[no-untyped-def]
    ids = reports(db, 25)
    assert usage(db) == {
        ("reports", "contact_email", "d1"): 25,
        ("reports", "reported", "d1"): 25,
        ("evidence_blobs", "data", "d1"): 1,
    }
    ring = rekey.add_key()
    assert ring.active == "d2" and set(ring.keys) == {"d1", "d2"}
    assert vault.read_ring(key_file).active == "d2"  # in the file: every worker picks it up

    # Before the re-encryption the old key cannot go; the refusal names rows (table, id, column).
    with pytest.raises(rekey.KeyStillNeeded) as refused:
        rekey.retire(db.engine, "d1")
    assert refused.value.total == 51 and len(refused.value.rows) == 10
    assert f"table evidence_blobs, row {'a' * 64}, column data" in str(refused.value)
    assert "table reports, row" in str(refused.value)
    with pytest.raises(DataKeyError, match="'d2' is the active key"):
        rekey.retire(db.engine, "d2")

    seen: list[rekey.Progress] = []
    done = rekey.reencrypt(db.engine, batch=10, on_progress=seen.append)
    assert done == {
        ("reports", "contact_email"): 25,
        ("reports", "reported"): 25,
        ("evidence_blobs", "data"): 1,
    }
    assert [(p.table, p.column, p.done) for p in seen if p.table == "reports" and p.column == "reported"] == [
        ("reports", "reported", 10),
        ("reports", "reported", 20),
        ("reports", "reported", 25),
    ]
    assert usage(db) == {
        ("reports", "contact_email", "d2"): 25,
        ("reports", "reported", "d2"): 25,
        ("evidence_blobs", "data", "d2"): 1,
    }
    assert rekey.reencrypt(db.engine) == {}  # nothing left
    with db.session() as s:
        got = {r.id: (r.contact_email, r.reported) for r in s.scalars(select(Report))}
        assert s.get(EvidenceBlob, "a" * 64).data == b"abc"
    assert sorted(got) == sorted(ids)
    assert {email for email, _ in got.values()} == {f"r{i}@example.cn" for i in range(25)}

    ring = rekey.retire(db.engine, "d1")
    assert set(ring.keys) == {"d2"} and set(vault.read_ring(key_file).keys) == {"d2"}
    vault.check_database(db.engine)  # every row opens with the ring that is left


def test_a_row_under_a_key_the_ring_lacks_is_named_at_start(db, key_file) -> None:  # type: ignore[no-untyped-def]
    ids = reports(db, 3)
    vault.check_database(db.engine)
    rekey.add_key()
    ring = vault.read_ring(key_file)
    del ring.keys["d1"]  # a rotated-away key, removed by hand before the rows moved
    vault.write_ring(ring, exclusive=False)
    with pytest.raises(DataKeyError) as caught:
        vault.check_database(db.engine)
    message = str(caught.value)
    assert "needs data key 'd1'" in message and str(key_file) in message
    # the first row that needs it: table, primary key, column
    assert "table evidence_blobs, row " + "a" * 64 + ", column data" in message
    with db.session() as s:
        s.execute(text("DELETE FROM evidence_blobs"))
    with pytest.raises(DataKeyError) as caught:
        vault.check_database(db.engine)
    pg = db.engine.dialect.name == "postgresql"
    named = {f"table reports, row {i if pg else i.hex}, column " for i in ids}
    assert any(n in str(caught.value) for n in named), str(caught.value)


def test_a_plain_value_in_an_encrypted_column_is_named_at_start(db, key_file) -> None:  # type: ignore[no-untyped-def]
    reports(db, 1)
    with db.session() as s:
        s.execute(text("UPDATE reports SET contact_email = 'plain@example.cn'"))
    with pytest.raises(DataKeyError, match=r"table reports, row .*, column contact_email: .*plain text"):
        vault.check_database(db.engine)


def test_a_missing_default_key_file_is_not_replaced_when_the_database_holds_sealed_data(
    db, key_file, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    reports(db, 1)
    monkeypatch.delenv("FCX_DATA_KEY_FILE")
    monkeypatch.chdir(tmp_path / "keys")  # the default var/keys/data.json does not exist here
    get_settings.cache_clear()
    vault.forget()
    with pytest.raises(DataKeyError, match=r"is missing, but the database holds encrypted data \(table "):
        vault.ensure_ring(db.engine)
    assert not (tmp_path / "keys" / "var").exists()


def test_create_served_app_refuses_to_start_with_a_row_it_cannot_open(db, key_file) -> None:  # type: ignore[no-untyped-def]
    reports(db, 1)
    ring = vault.read_ring(key_file)
    vault.write_ring(
        vault.DataKeyRing(key_file, "d5", {"d5": vault.new_key()}, ring.index_key, ring.profile),
        exclusive=False,
    )
    with pytest.raises(DataKeyError, match="needs data key 'd1'"):
        create_served_app()


# --- the command line -------------------------------------------------------------------------------------


def _flat(result) -> str:  # type: ignore[no-untyped-def]
    return " ".join((result.stdout + result.stderr).split())


def test_keys_commands_rotate_show_and_retire(db, key_file) -> None:  # type: ignore[no-untyped-def]
    reports(db, 3)
    r = runner.invoke(fcx, ["keys", "init-data"])
    assert r.exit_code == 1 and "never overwritten" in _flat(r)
    r = runner.invoke(fcx, ["keys", "rotate-data", "--no-reencrypt"])
    assert r.exit_code == 0, _flat(r)
    assert "Data key d2 added" in _flat(r)
    r = runner.invoke(fcx, ["keys", "data-status"])
    assert r.exit_code == 0 and "active d2" in _flat(r) and "d1: 7" in _flat(r), _flat(r)
    r = runner.invoke(fcx, ["keys", "retire-data", "d1"])
    assert (
        r.exit_code == 1
        and "still needed by 7 stored values" in _flat(r)
        and "table reports, row" in _flat(r)
    )
    r = runner.invoke(fcx, ["keys", "rotate-data"])
    assert r.exit_code == 0 and "Re-encrypted 7 values under key d3" in _flat(r), _flat(r)
    r = runner.invoke(fcx, ["keys", "data-status"])
    assert "d3: 7" in _flat(r) and "d1:" not in _flat(r)
    for old in ("d1", "d2"):
        r = runner.invoke(fcx, ["keys", "retire-data", old])
        assert r.exit_code == 0, _flat(r)
    assert set(vault.read_ring(key_file).keys) == {"d3"}
    r = runner.invoke(fcx, ["keys", "retire-data", "d3"])
    assert r.exit_code == 1 and "is the active key" in _flat(r)


def test_init_data_creates_a_ring_once_and_only_on_an_empty_platform(db, key_file) -> None:  # type: ignore[no-untyped-def]
    key_file.unlink()
    r = runner.invoke(fcx, ["keys", "init-data"])
    assert r.exit_code == 0, _flat(r)
    assert vault.read_ring(key_file).active == "d1"
    reports(db, 1)
    key_file.unlink()
    r = runner.invoke(fcx, ["keys", "init-data"])
    assert r.exit_code == 1 and "restore" in _flat(r) and not key_file.exists()


def test_serve_names_the_row_and_serves_nothing(db, key_file, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    reports(db, 1)
    ring = vault.read_ring(key_file)
    vault.write_ring(
        vault.DataKeyRing(key_file, "d5", {"d5": vault.new_key()}, ring.index_key, ring.profile),
        exclusive=False,
    )
    served: list[object] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: served.append(a))
    r = runner.invoke(fcx, ["serve", "--port", "1"])
    assert r.exit_code == 2 and served == []
    assert "needs data key 'd1'" in _flat(r) and "Nothing is served" in _flat(r)


def test_serve_with_an_explicit_key_file_missing_exits_and_listens_nowhere(backend, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    missing = tmp_path / "nowhere" / "data.json"
    env = {**os.environ, "FCX_DATABASE_URL": backend.url, "FCX_DATA_KEY_FILE": str(missing)}
    done = subprocess.run(
        [sys.executable, "-m", "fanchaoxin", "serve", "--port", str(port)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    out = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 2, out
    assert f"data key file {missing} is missing" in out and "Nothing is served" in out
    assert not missing.exists()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
