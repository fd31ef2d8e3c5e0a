"""The node's log check against the real platform (#19): the routes of sharing.translog_views, entries
published and revoked through the workflow, the node syncing, verifying and cosigning; history rewritten
in the platform's tables caught at the next sync; the platform's inclusion proof accepted by the
independent script in docs/. Under the run's profile (gm: SM3 tree, SM2 checkpoint)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.blacklist.schemas import EntryIn
from fanchaoxin.cli import app as cli
from fanchaoxin.core import crypto
from fanchaoxin.core import tlog as T
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.roles import Role
from fanchaoxin.core.settings import get_settings
from fanchaoxin.node import cli as node_cli
from fanchaoxin.node import logcheck, relay
from fanchaoxin.node import status as node_status
from fanchaoxin.node.client import PlatformClient
from fanchaoxin.node.store import Store
from fanchaoxin.node.sync import SyncRefused, initialise, sync
from fanchaoxin.sharing import protocol as P
from fanchaoxin.sharing import translog
from fanchaoxin.workflows.entries import take_step
from tests.blacklist.registry_helpers import RID_B, USCC_B, judicial, person_entry

REVIEWER = Actor("test:reviewer")
SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "verify_log.py"


@pytest.fixture
def settings(settings, monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FCX_SHARING_KEY_DIR", str(tmp_path / "keys"))
    get_settings.cache_clear()
    translog.forget_trees()
    yield get_settings()
    get_settings.cache_clear()
    translog.forget_trees()


def _publish(db, org_id, body):  # type: ignore[no-untyped-def]
    with db.session() as s:
        e = registry.submit(s, REVIEWER, org_id, EntryIn.model_validate(body))
        take_step(s, REVIEWER, e, Action.start_review)
        if body["basis"] == "enterprise_finding":
            take_step(s, REVIEWER, e, Action.open_notice)
            e.notice_ends_on = date.today() - timedelta(days=1)
        take_step(s, REVIEWER, e, Action.publish)
        return e.id


def _checkpoint(db) -> None:  # type: ignore[no-untyped-def]
    """What the periodic job does (workflows.jobs): commit the audit head, sign a checkpoint."""
    with db.session() as s:
        translog.run_jobs(s)


def _node(app, tmp_path: Path, api_key: str) -> tuple[Store, PlatformClient]:  # type: ignore[no-untyped-def]
    client = PlatformClient("http://testserver", api_key)
    client.http.close()
    client.http = TestClient(app, base_url="http://testserver", headers={"X-API-Key": api_key})
    path = str(tmp_path / "node.db")
    initialise(path, "http://testserver", api_key, client=client)
    return Store(path), client


def test_the_node_verifies_and_cosigns_the_platforms_log(app, db, world, tmp_path) -> None:  # type: ignore[no-untyped-def]
    shop = world.enterprise("电商")
    store, client = _node(app, tmp_path, shop.keys[Role.enterprise_node])
    relay.ensure_node_key(store)
    relay.enrol_node_key(store, client)
    person = _publish(db, shop.org.id, person_entry())
    unit = _publish(
        db,
        shop.org.id,
        judicial(
            subject={"kind": "unit", "name": "杭州某公司", "identifiers": [{"type": "uscc", "value": USCC_B}]}
        ),
    )
    _checkpoint(db)
    # a department witnesses the log too (its round reads only the public routes)
    dept = world.department("市场监管局")
    dept_client = PlatformClient("http://testserver", dept.keys[Role.department_officer])
    dept_client.http.close()
    dept_client.http = TestClient(app, base_url="http://testserver")
    dept_key = logcheck.load_witness_key(tmp_path / "dept.key")
    first = logcheck.witness_once(
        dept_client, tmp_path / "dept.json", dept_key, "dept.example/w1", post=False
    )
    assert first.size == 3  # two feed events and the audit head the job committed
    result = sync(store, client)
    st = logcheck.status(store)
    assert st["alarm"] is None and st["events_waiting"] == 0
    assert st["checked_up_to_feed_seq"] == result.head_after == 2
    # the node's cosignature was taken and is served with the checkpoint
    key = relay.enrolled_node_key(store)
    assert key is not None
    note = client.get_bytes("/v1/log/checkpoint")
    cosigned = logcheck.check_cosignatures(note, [logcheck.witness(f"fcx-node/{key.key_id}", key.public)], 1)
    assert cosigned.verified == (f"fcx-node/{key.key_id}",)

    # a revocation: the event waits for a checkpoint, then is checked
    with db.session() as s:
        take_step(s, REVIEWER, s.get(Entry, unit), Action.revoke, reason="wrongly listed")
    sync(store, client)
    _checkpoint(db)
    sync(store, client)
    st = logcheck.status(store)
    assert st["checked_up_to_feed_seq"] == 3 and st["events_waiting"] == 0 and st["alarm"] is None

    # the listed person's proof, checked by the independent script (standard library only)
    proof = client.request("GET", f"/v1/log/proof/inclusion?entry={person}").json()
    vkey = client.request("GET", "/v1/log/key").json()["vkeys"][0]
    (tmp_path / "proof.json").write_text(json.dumps({"confirmation": {"log_proof": proof}}))
    done = subprocess.run(
        [sys.executable, "-I", str(SCRIPT), str(tmp_path / "proof.json"), "--vkey", vkey],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "status published) is in the log" in done.stdout

    # an insider edits an old leaf and rebuilds the tree: the next sync refuses
    with db.session() as s:
        row = s.execute(text("SELECT idx, leaf FROM tlog_leaves ORDER BY idx LIMIT 1")).one()
        edited = bytes(row.leaf).replace(b'"published"', b'"revoked"', 1)
        h = T.leaf_hash(edited, logcheck.log_key(client_manifest_log(client)).hash_fn)  # type: ignore[union-attr]
        s.execute(
            text("UPDATE tlog_leaves SET leaf = :leaf, leaf_hash = :h WHERE idx = :i"),
            {"leaf": edited, "h": h, "i": row.idx},
        )
        s.execute(text("DELETE FROM tlog_cosignatures"))
        s.execute(text("DELETE FROM tlog_checkpoints"))
        s.execute(text("DELETE FROM tlog_tiles"))
    translog.forget_trees()
    second = {"kind": "individual", "name": "李四", "identifiers": [{"type": "resident_id", "value": RID_B}]}
    _publish(db, shop.org.id, person_entry(subject=second))
    _checkpoint(db)
    with pytest.raises(SyncRefused, match=r"the transparency log: consistency proof \d+→\d+"):
        sync(store, client)
    # and the department's next round refuses to cosign the rewritten log
    with pytest.raises(logcheck.LogRefused, match=r"consistency proof 3→\d+"):
        logcheck.witness_once(dept_client, tmp_path / "dept.json", dept_key, "dept.example/w1", post=False)
    dept_client.close()
    assert "consistency proof" in (logcheck.status(store)["alarm"] or "")
    store.dispose()
    client.close()


def client_manifest_log(client: PlatformClient) -> dict[str, object]:
    doc = client.manifest()
    assert isinstance(doc, dict)
    return dict(doc["manifest"]["log"])


def _in_process(app):  # type: ignore[no-untyped-def]
    """``PlatformClient(url, key)`` answered by the app in process (what the CLI builds)."""

    def make(url: str, api_key: str) -> PlatformClient:
        client = PlatformClient("http://testserver", api_key)
        client.http.close()
        client.http = TestClient(app, base_url="http://testserver", headers={"X-API-Key": api_key})
        return client

    return make


def test_a_department_enrols_its_witness_key_and_cosigns(app, db, world, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """`fcx log witness` (= `fcx node witness`) as a department officer, against the platform: the key is
    made of the platform's profile, enrolled (POST /v1/nodes/keys), its cosignature taken and served."""
    shop = world.enterprise("电商")
    _publish(db, shop.org.id, person_entry())
    _checkpoint(db)
    dept = world.department("市场监管局")
    monkeypatch.setattr(node_cli, "PlatformClient", _in_process(app))
    args = [
        "log", "witness", "--url", "http://testserver", "--key", dept.keys[Role.department_officer],
        "--name", "dept.example/w1", "--witness-key", str(tmp_path / "w.key"), "--state", str(tmp_path / "w.json"),
    ]  # fmt: skip
    out = CliRunner().invoke(cli, args)
    assert out.exit_code == 0, out.output
    key = logcheck.load_witness_key(tmp_path / "w.key")
    key_id = P.fingerprint(key.public_bytes())
    assert key.algorithm == crypto.active().signature_algorithm
    assert f"witness key {key_id} enrolled" in out.output and ", posted" in out.output
    api = TestClient(app)
    mine = api.get("/v1/nodes/keys", headers=dept.headers(Role.department_officer)).json()["keys"]
    assert [(k["key_id"], k["owner_org_id"], k["label"]) for k in mine] == [
        (key_id, str(dept.org.id), "dept.example/w1")
    ]
    assert api.get("/v1/nodes/keys", headers=shop.headers(Role.enterprise_operator)).json()["keys"] == []
    witness = logcheck.witness("dept.example/w1", key.public_bytes())
    note = api.get("/v1/log/checkpoint").content
    assert logcheck.check_cosignatures(note, [witness], 1).verified == ("dept.example/w1",)

    # the next round, on a grown log: consistent, cosigned, not enrolled again
    second = {"kind": "individual", "name": "李四", "identifiers": [{"type": "resident_id", "value": RID_B}]}
    _publish(db, shop.org.id, person_entry(subject=second))
    _checkpoint(db)
    out = CliRunner().invoke(cli, ["node", *args[1:]])
    assert out.exit_code == 0, out.output
    assert "enrolled" not in out.output
    note = api.get("/v1/log/checkpoint").content
    assert T.open_note(note, [witness]).text.splitlines()[1] == str(
        json.loads((tmp_path / "w.json").read_text())["size"]
    )

    # a key the department did not enrol (or another organisation's) is refused, naming it
    stranger = crypto.active().generate_signing_key()
    line = logcheck.cosign(T.split_note(note)[0], "dept.example/w2", stranger)
    r = api.post(
        "/v1/log/cosignature",
        json={"checkpoint": note.decode(), "cosignature": line},
        headers=dept.headers(Role.department_officer),
    )
    assert r.status_code == 403 and "unknown witness key" in r.text
    # the platform's admin revokes the key: the department's next cosignature is refused
    platform = world.platform()
    r = api.post(
        f"/v1/nodes/keys/{key_id}/revoke",
        json={"reason": "witness retired"},
        headers=platform.headers(Role.platform_admin),
    )
    assert r.status_code == 200, r.text
    out = CliRunner().invoke(cli, args)
    assert out.exit_code == 1 and "403" in out.output


def test_the_node_reports_a_refused_checkpoint(app, db, world, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The status report carries the log check's alarm and events waiting (node.status ``log``); a
    platform that does not take the member gets the report without it."""
    shop = world.enterprise("电商")
    store, client = _node(app, tmp_path, shop.keys[Role.enterprise_node])
    _publish(db, shop.org.id, person_entry())
    sync(store, client)
    body = node_status.build_report(store, interval=60)
    assert body["log"] == {"alarm": None, "events_waiting": 0, "size": 1, "checked_up_to_feed_seq": 1}
    logcheck.alarm(store, "consistency proof 3→4 fails: the log was rewritten")
    body = node_status.build_report(store, interval=60)
    assert body["log"]["alarm"] == "consistency proof 3→4 fails: the log was rewritten"
    answer = node_status.report(store, client, interval=60)
    assert answer["node_id"] == body["node_id"]
    store.dispose()
    client.close()
