"""Sharing, platform side: keys, signed manifest/snapshot/deltas with tags, blinded evaluation, quotas."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.blacklist.schemas import EntryIn
from fanchaoxin.cli import app as cli
from fanchaoxin.core import crypto
from fanchaoxin.core.audit import Actor, AuditEvent
from fanchaoxin.core.errors import TooManyRequests
from fanchaoxin.core.roles import Role
from fanchaoxin.core.settings import get_settings
from fanchaoxin.orgs.models import DecisionLogRecord, Organisation
from fanchaoxin.sharing import keys as sharing_keys
from fanchaoxin.sharing import oprf, protocol
from fanchaoxin.sharing.evaluate import EvaluationBuckets
from fanchaoxin.sharing.feed import share_record
from fanchaoxin.sharing.models import EvaluationQuota
from fanchaoxin.workflows.entries import take_step
from tests.blacklist.registry_helpers import RID_A, USCC_A, judicial, person_entry

REVIEWER = Actor("test:reviewer")
PHONE = "+8613800138000"


@pytest.fixture
def settings(settings, monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    """The suite's settings with a key directory of this test's own."""
    monkeypatch.setenv("FCX_SHARING_KEY_DIR", str(tmp_path / "keys"))
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def publish(db, org_id, body):  # type: ignore[no-untyped-def]
    with db.session() as s:
        e = registry.submit(s, REVIEWER, org_id, EntryIn.model_validate(body))
        take_step(s, REVIEWER, e, Action.start_review)
        if body["basis"] == "enterprise_finding":
            take_step(s, REVIEWER, e, Action.open_notice)
            e.notice_ends_on = date.today() - timedelta(days=1)
        take_step(s, REVIEWER, e, Action.publish)
        return e.id


@pytest.fixture
def market(world):  # type: ignore[no-untyped-def]
    return {
        "platform": world.platform(),
        "shop": world.enterprise("电商"),
        "ride": world.enterprise("出行"),
        "dept": world.department("市场监管局"),
    }


def pinned(client, headers):  # type: ignore[no-untyped-def]
    body = client.get("/v1/sharing/keys", headers=headers).json()
    return base64.b64decode(body["signing"]["public_key"]), body


def blinded_tags(client, headers, identifiers, key_id=None):  # type: ignore[no-untyped-def]
    """What a node does: blind, ask the platform, verify the proof, finalize → tags."""
    _, keys_doc = pinned(client, headers)
    inputs = [oprf.identifier_input(t, v) for t, v in identifiers]
    blinds, blinded = oprf.blind_batch(inputs)
    body = {"blinded": [base64.b64encode(b).decode() for b in blinded]}
    if key_id:
        body["key_id"] = key_id
    r = client.post("/v1/sharing/evaluate", headers=headers, json=body)
    assert r.status_code == 200, r.text
    answer = r.json()
    pk = next(base64.b64decode(k["public_key"]) for k in keys_doc["oprf"] if k["key_id"] == answer["key_id"])
    outputs = oprf.finalize_batch(
        inputs,
        blinds,
        [base64.b64decode(e) for e in answer["evaluated"]],
        blinded=blinded,
        proof=base64.b64decode(answer["proof"]),
        pk=pk,
    )
    return [oprf.tag(answer["key_id"], o) for o in outputs]


def snapshot(client, headers, public):  # type: ignore[no-untyped-def]
    r = client.get("/v1/sharing/manifest", headers=headers)
    assert r.status_code == 200, r.text
    manifest = protocol.verify_manifest(r.json(), public)
    s = client.get(manifest["snapshot"]["url"], headers=headers)
    assert s.status_code == 200

    assert crypto.active().hexdigest(s.content) == manifest["snapshot"]["digest"]
    assert manifest["crypto_profile"] == crypto.active().name
    return manifest, protocol.read_feed_file(s.content, public, expect=protocol.SNAPSHOT_FORMAT), s.content


def test_share_record_never_carries_a_persons_name_or_identifier():
    ring = oprf.KeyRing()
    ring.generate("k1")
    record = {
        "entry_id": "e",
        "subject_id": "s",
        "subject_kind": "individual",
        "subject_name": "张小三",
        "identifiers": [f"phone:{PHONE}"],
        "behaviours": ["fake_orders"],
        "role": "organiser",
        "liable_role": "legal_representative",
        "severity": "serious",
        "status": "published",
    }
    shared = share_record(record, [("phone", PHONE)], ring)
    # Least disclosure: what to apply (severity, status, measures by tag), not what the person did or was.
    assert set(shared) == {"entry_id", "subject_kind", "severity", "status", "tags"}
    assert shared["tags"] == [ring.tag(oprf.identifier_input("phone", PHONE, normalised=True))]
    unit = share_record({**record, "subject_kind": "unit"}, [("uscc", USCC_A)], ring)
    assert unit["subject_name"] == "张小三" and unit["identifiers"] == [f"phone:{PHONE}"]
    assert unit["behaviours"] == ["fake_orders"] and unit["liable_role"] == "legal_representative"


def test_keys_cli_init_show_rotate(tmp_path):
    runner = CliRunner()
    d = str(tmp_path / "k")
    r = runner.invoke(cli, ["sharing", "keys", "show", "--key-dir", d])
    assert r.exit_code == 1 and "fcx sharing keys init" in " ".join(r.output.split())
    r = runner.invoke(cli, ["sharing", "keys", "init", "--key-dir", d])
    assert r.exit_code == 0, r.output
    first = json.loads(r.stdout)
    assert [k["key_id"] for k in first["oprf"]] == ["k1"]
    assert oct((tmp_path / "k" / "oprf.json").stat().st_mode & 0o777) == "0o600"
    stored = json.loads((tmp_path / "k" / "oprf.json").read_text())["keys"][0]["sk"]
    seed = json.loads((tmp_path / "k" / "signing.json").read_text())["private"]
    assert stored not in r.stdout and seed not in r.stdout and '"sk"' not in r.stdout
    r = runner.invoke(cli, ["sharing", "keys", "init", "--key-dir", d])
    assert json.loads(r.stdout)["signing"] == first["signing"]  # never replaced
    r = runner.invoke(cli, ["sharing", "keys", "rotate", "--key-dir", d, "--overlap-days", "3"])
    assert r.exit_code == 0, r.output
    shown = json.loads(runner.invoke(cli, ["sharing", "keys", "show", "--key-dir", d]).stdout)
    assert [(k["key_id"], k["current"]) for k in shown["oprf"]] == [("k2", True), ("k1", False)]
    assert shown["oprf"][1]["active_until"] is not None


def test_feed_snapshot_deltas_and_blinded_tags_end_to_end(client, market, db):
    node = market["shop"].headers(Role.enterprise_node)
    person = publish(db, market["shop"].org.id, person_entry())
    unit = publish(db, market["shop"].org.id, judicial())
    public, keys_doc = pinned(client, node)
    assert keys_doc["signing"]["fingerprint"] == protocol.fingerprint(public)

    manifest, snap, raw = snapshot(client, node, public)
    assert manifest["head"] == snap.header["seq"] >= 2 and manifest["oprf_key_ids"] == ["k1"]
    by_entry = {r["record"]["entry_id"]: r["record"] for r in snap.records}
    assert set(by_entry) >= {str(person), str(unit)}

    # No plain identifier or name of the person anywhere in the file (any spelling of the phone number).
    text = gzip.decompress(raw).decode()
    for secret in ("张小三", RID_A, "13800138000", 'subject_name":"张'):
        assert secret not in text
    rec = by_entry[str(person)]
    assert "identifiers" not in rec and "subject_name" not in rec and "subject_id" not in rec
    # The node's blinded evaluation of its own user's phone gives exactly the published tag.
    mine = blinded_tags(
        client, node, [("phone", "138 0013 8000"), ("resident_id", RID_A), ("phone", "13900000000")]
    )
    assert mine[0] in rec["tags"] and mine[1] in rec["tags"] and mine[2] not in rec["tags"]
    # A unit's registration data is public and may appear in plain.
    assert by_entry[str(unit)]["identifiers"] == [f"uscc:{USCC_A}"]

    # Deltas: every event after 0, verified and consecutive; after the head, an empty delta.
    d = client.get("/v1/sharing/deltas?after=0", headers=node)
    assert d.status_code == 200
    delta = protocol.read_feed_file(d.content, public, expect=protocol.DELTA_FORMAT)
    assert delta.header["from"] == 0 and delta.header["to"] == manifest["head"]
    assert all("张小三" not in json.dumps(x, ensure_ascii=False) for x in delta.records)
    person_events = [x for x in delta.records if x["record"]["entry_id"] == str(person)]
    assert person_events and set(mine[:2]) <= set(person_events[-1]["record"]["tags"])
    protocol.check_delta_fits(delta.header, 0)
    assert (
        client.get(
            "/v1/sharing/deltas?after=0", headers={**node, "If-None-Match": d.headers["etag"]}
        ).status_code
        == 304
    )
    empty = client.get(f"/v1/sharing/deltas?after={manifest['head']}", headers=node)
    e = protocol.read_feed_file(empty.content, public)
    assert (e.header["from"], e.header["to"], e.header["count"]) == (manifest["head"], manifest["head"], 0)
    assert client.get("/v1/sharing/deltas?after=-1", headers=node).status_code == 422

    # Manifest ETag: unchanged feed → 304; a new event → a new manifest.
    r = client.get("/v1/sharing/manifest", headers=node)
    assert (
        client.get("/v1/sharing/manifest", headers={**node, "If-None-Match": r.headers["etag"]}).status_code
        == 304
    )
    publish(
        db,
        market["ride"].org.id,
        person_entry(
            subject={
                "kind": "individual",
                "name": "李四",
                "identifiers": [{"type": "phone", "value": "13700000000"}],
            }
        ),
    )
    r2 = client.get("/v1/sharing/manifest", headers={**node, "If-None-Match": r.headers["etag"]})
    assert r2.status_code == 200 and r2.json()["manifest"]["head"] == manifest["head"] + 1

    # A tampered file does not verify.
    body = bytearray(gzip.decompress(d.content))
    body[body.index(b'"event"') + 9] ^= 1
    with pytest.raises(protocol.ProtocolError):
        protocol.read_feed_file(gzip.compress(bytes(body)), public)

    # Reads of feed files are audited; nothing about the identifiers is in the audit detail.
    with db.session() as s:
        actions = [a for (a,) in s.execute(select(AuditEvent.action))]
    assert "sharing.snapshot.read" in actions and "sharing.delta.read" in actions


def test_rotation_overlap(client, market, db, settings):
    node = market["shop"].headers(Role.enterprise_node)
    person = publish(db, market["shop"].org.id, person_entry())
    public, _ = pinned(client, node)
    old_tag = blinded_tags(client, node, [("phone", PHONE)])[0]
    sharing_keys.rotate(settings.sharing_key_dir, overlap=timedelta(days=1))

    manifest, snap, _ = snapshot(client, node, public)  # the key set changed: a new snapshot
    assert manifest["oprf_key_ids"] == ["k2", "k1"] and snap.header["oprf_key_ids"] == ["k2", "k1"]
    rec = next(r["record"] for r in snap.records if r["record"]["entry_id"] == str(person))
    new_tag = blinded_tags(client, node, [("phone", PHONE)])[0]
    assert new_tag.startswith("k2:") and old_tag.startswith("k1:")
    assert {old_tag, new_tag} <= set(rec["tags"])
    # Until the window ends, the old key still answers evaluations.
    assert blinded_tags(client, node, [("phone", PHONE)], key_id="k1") == [old_tag]

    sharing_keys.set_active_until(settings.sharing_key_dir, "k1", datetime.now(UTC) - timedelta(seconds=1))
    blinded = base64.b64encode(oprf.blind(b"phone:x")[1]).decode()
    r = client.post("/v1/sharing/evaluate", headers=node, json={"key_id": "k1", "blinded": [blinded]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "key_id"
    assert "retired" in r.json()["errors"][0]["message"]
    manifest, snap, _ = snapshot(client, node, public)
    rec = next(r["record"] for r in snap.records if r["record"]["entry_id"] == str(person))
    assert manifest["oprf_key_ids"] == ["k2"] and rec["tags"] == [
        t for t in rec["tags"] if t.startswith("k2:")
    ]
    assert new_tag in rec["tags"]


def _elements(n):  # type: ignore[no-untyped-def]
    return [base64.b64encode(oprf.blind(b"phone:%d" % i)[1]).decode() for i in range(n)]


def _evaluation_counts(client, db) -> list[int]:  # type: ignore[no-untyped-def]
    client.app.state.decision_log.flush()
    with db.session() as s:
        records = s.scalars(
            select(DecisionLogRecord)
            .where(DecisionLogRecord.kind == "evaluation")
            .order_by(DecisionLogRecord.at)
        ).all()
    return [r.identifier_count for r in records]


def test_quota_429_with_retry_after_and_the_log_counts_only(client, market, db, settings):
    settings.sharing_min_daily_evaluations = 5
    shop = market["shop"]
    node = shop.headers(Role.enterprise_node)
    admin = market["platform"].headers(Role.platform_admin)
    r = client.put(f"/v1/sharing/quotas/{shop.org.id}", headers=admin, json={"declared_users": 1})
    assert r.status_code == 200 and r.json()["daily"] == 5  # max(5, 1 × 3)
    assert (
        client.post("/v1/sharing/evaluate", headers=node, json={"blinded": _elements(3)}).status_code == 200
    )
    r = client.post("/v1/sharing/evaluate", headers=node, json={"blinded": _elements(3)})
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1 and r.json()["remaining"] == 2
    assert (
        client.post("/v1/sharing/evaluate", headers=node, json={"blinded": _elements(2)}).status_code == 200
    )
    # A bigger declared user count raises the quota; another enterprise has its own bucket.
    r = client.put(f"/v1/sharing/quotas/{shop.org.id}", headers=admin, json={"declared_users": 1000})
    assert r.json()["daily"] == 3000
    other = market["ride"].headers(Role.enterprise_node)
    assert (
        client.post("/v1/sharing/evaluate", headers=other, json={"blinded": _elements(5)}).status_code == 200
    )
    assert client.get(f"/v1/sharing/quotas/{shop.org.id}", headers=other).status_code == 404
    # Each batch answered is one decision-log record holding its count; no audit event per batch.
    assert _evaluation_counts(client, db) == [3, 2, 5]
    with db.session() as s:
        assert not s.scalars(select(AuditEvent).where(AuditEvent.action == "sharing.evaluate")).all()
        # The decision log's flush wrote what was taken into the bucket rows.
        row = s.get(EvaluationQuota, shop.org.id)
        assert row is not None and row.tokens == pytest.approx(0, abs=0.5)
        ride_daily = client.get(f"/v1/sharing/quotas/{market['ride'].org.id}", headers=other).json()["daily"]
        row = s.get(EvaluationQuota, market["ride"].org.id)
        assert row is not None and row.tokens == pytest.approx(ride_daily - 5, abs=1)


def test_malformed_element_is_named_and_nothing_counted(client, market, db):
    node = market["shop"].headers(Role.enterprise_node)
    good = _elements(2)
    cases = {
        "not base64!": "base64",
        base64.b64encode(b"short").decode(): "32 bytes",
        base64.b64encode(bytes(32)).decode(): "identity",
        base64.b64encode(b"\xff" * 32).decode(): "ristretto255",
    }
    for bad, why in cases.items():
        r = client.post("/v1/sharing/evaluate", headers=node, json={"blinded": [good[0], bad, good[1]]})
        assert r.status_code == 422, r.text
        assert r.json()["errors"] == [
            {
                "in": "body",
                "field": "blinded[1]",
                "type": "value_error",
                "message": r.json()["errors"][0]["message"],
                "code": "input.value_error",
                "params": {},
            }
        ]
        assert why in r.json()["errors"][0]["message"]
    assert client.post("/v1/sharing/evaluate", headers=node, json={"blinded": []}).status_code == 422
    r = client.post("/v1/sharing/evaluate", headers=node, json={"blinded": _elements(1) * 1001})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "blinded"
    r = client.post("/v1/sharing/evaluate", headers=node, json={"blinded": good, "key_id": "k9"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "key_id"
    quota = client.get(f"/v1/sharing/quotas/{market['shop'].org.id}", headers=node).json()
    assert quota["remaining"] == quota["daily"]
    assert _evaluation_counts(client, db) == []


def test_entry_details_need_a_purpose_and_are_audited(client, market, db):
    node = market["shop"].headers(Role.enterprise_node)
    person = publish(db, market["ride"].org.id, person_entry())
    r = client.get(f"/v1/sharing/entries/{person}", headers=node)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "X-FCX-Purpose"
    r = client.get(
        f"/v1/sharing/entries/{person}", headers={**node, "X-FCX-Purpose": "matched user 42 at sign-up"}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert "张小三" not in json.dumps(body, ensure_ascii=False) and RID_A not in json.dumps(body)
    assert body["entry"]["facts"] is None and isinstance(body["measures"], list)
    with db.session() as s:
        ev = s.scalars(select(AuditEvent).where(AuditEvent.action == "pii.read")).one()
    assert ev.detail["purpose"] == "matched user 42 at sign-up" and ev.target_id == str(person)
    # a Chinese purpose travels percent-encoded (header values are Latin-1) and is audited as written
    purpose = "注册时匹配到用户 42，核实身份"
    r = client.get(
        f"/v1/sharing/entries/{person}", headers={**node, "X-FCX-Purpose": protocol.encode_purpose(purpose)}
    )
    assert r.status_code == 200, r.text
    with db.session() as s:
        purposes = [
            e.detail["purpose"] for e in s.scalars(select(AuditEvent).where(AuditEvent.action == "pii.read"))
        ]
    assert purpose in purposes
    r = client.get(f"/v1/sharing/entries/{person}", headers={**node, "X-FCX-Purpose": "%E6%B3"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "X-FCX-Purpose"
    with db.session() as s:
        e = registry.submit(s, REVIEWER, market["ride"].org.id, EntryIn.model_validate(person_entry()))
        unpublished = e.id
    r = client.get(f"/v1/sharing/entries/{unpublished}", headers={**node, "X-FCX-Purpose": "x"})
    assert r.status_code == 404


def test_access_rules_of_sharing_routes(client, market):
    op = market["shop"].headers(Role.enterprise_operator)
    dept = market["dept"].headers()
    auditor = market["platform"].headers(Role.auditor)
    assert client.get("/v1/sharing/keys").status_code == 401
    assert client.get("/v1/sharing/manifest").status_code == 401
    assert client.post("/v1/sharing/evaluate", headers=op, json={"blinded": _elements(1)}).status_code == 403
    assert (
        client.post("/v1/sharing/evaluate", headers=auditor, json={"blinded": _elements(1)}).status_code
        == 403
    )
    # The feed's machinery carries the market-shared list: never a department's (lists.yaml, #15).
    for path in ("/v1/sharing/keys", "/v1/sharing/manifest", "/v1/feed"):
        assert client.get(path, headers=dept).status_code == 403, path
    assert client.get("/v1/sharing/keys", headers=op).status_code == 200
    assert (
        client.get("/v1/sharing/entries/00000000-0000-0000-0000-000000000000", headers=dept).status_code
        == 403
    )
    assert client.get("/v1/sharing/dead-letters", headers=op).status_code == 403
    assert client.get("/v1/sharing/dead-letters", headers=auditor).status_code == 200
    assert client.post("/v1/sharing/dead-letters/1/replay", headers=auditor).status_code == 403
    assert (
        client.put(
            f"/v1/sharing/quotas/{market['shop'].org.id}", headers=op, json={"declared_users": 1}
        ).status_code
        == 403
    )
    r = client.put(
        f"/v1/sharing/quotas/{market['dept'].org.id}",
        headers=market["platform"].headers(Role.platform_admin),
        json={"declared_users": 1},
    )
    assert r.status_code == 422


def test_evaluation_buckets_hold_across_processes_to_within_one_flush(db, market, settings):
    """Two processes (two buckets on one database): each takes in memory; the flush writes the takings
    and reads the other's back; a failed flush gives its takings back to the next one."""
    settings.sharing_min_daily_evaluations = 10
    with db.session() as s:
        org = s.get(Organisation, market["shop"].org.id)
        org.declared_users = 1
    clock = [datetime(2026, 12, 5, 8, tzinfo=UTC)]
    a = EvaluationBuckets(settings, clock=lambda: clock[0])
    b = EvaluationBuckets(settings, clock=lambda: clock[0])
    with db.session() as s:
        org = s.get(Organisation, market["shop"].org.id)
        assert a.take(s, org, 6).tokens == 4
        assert b.take(s, org, 3).tokens == 7  # b has not seen a's takings yet
        with pytest.raises(TooManyRequests):
            a.take(s, org, 5)  # a alone is exact
    with db.session() as s:
        a.written(a.sync(s))
    with db.session() as s:
        b.written(b.sync(s))
        b.read_back(s)
    with db.session() as s:
        org = s.get(Organisation, market["shop"].org.id)
        assert b.bucket(s, org).tokens == pytest.approx(1)  # 10 − 6 − 3
        assert s.get(EvaluationQuota, org.id).tokens == pytest.approx(1)
        # A flush that rolls back keeps its takings for the next one.
        clock[0] += timedelta(hours=12)  # half a day refills 5 of 10
        a.read_back(s)
        assert a.take(s, org, 2).tokens == pytest.approx(4)
    taken = None
    with pytest.raises(RuntimeError), db.session() as s:
        taken = a.sync(s)
        raise RuntimeError("the flush's transaction failed")
    a.failed(taken)  # as the decision log's writer does after a rollback
    assert a.has_news()
    with db.session() as s:
        a.written(a.sync(s))
    with db.session() as s:
        assert s.get(EvaluationQuota, market["shop"].org.id).tokens == pytest.approx(4)
        assert not a.has_news()
