"""The enterprise node (`fcx node`): init, sync (verify before apply, atomic), enroll, decide, serve, relay.

Unit tests against the small fake platform in test_node_support.py (feed files from
protocol.write_feed_file, a real OPRF key ring); test_node_e2e.py runs against the real platform.
"""

from __future__ import annotations

import csv
import gzip
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from fanchaoxin.cli import app as cli
from fanchaoxin.core.identifiers import IdentifierError
from fanchaoxin.node import Node
from fanchaoxin.node import sync as sync_mod
from fanchaoxin.node.app import create_node_app
from fanchaoxin.node.client import PlatformClient
from fanchaoxin.node.enroll import EnrollError, enroll, read_rows
from fanchaoxin.node.sdk import BadIdentifier, NotSynced
from fanchaoxin.node.store import SEP, Store
from fanchaoxin.node.sync import InitError, SyncRefused, apply_delta, initialise, sync
from fanchaoxin.sharing import oprf
from fanchaoxin.sharing import protocol as P
from tests.node.test_node_support import OTHER_SIGNING, SIGNING, FakePlatform, record

PHONES = ["13812345678", "13912345678", "13712345678"]


@pytest.fixture
def fake():
    f = FakePlatform()
    yield f
    f.close()


@pytest.fixture
def store_path(tmp_path: Path, fake: FakePlatform) -> str:
    path = str(tmp_path / "node.db")
    initialise(path, fake.url, "fcx_test_key", fingerprint=P.fingerprint(SIGNING.public))
    return path


def _csv(tmp_path: Path, rows: list[tuple[str, str]], name: str = "users.csv") -> Path:
    p = tmp_path / name
    with p.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["user_id", "phone"])
        w.writerows(rows)
    return p


def _enroll(store: Store, tmp_path: Path, rows: list[tuple[str, str]]) -> None:
    enroll(store, read_rows(_csv(tmp_path, rows), "user_id", "phone", "phone"))


def _snapshot_state(path: str) -> tuple[int, list[tuple], list[tuple]]:
    s = Store(path)
    try:
        with s.read() as c:
            entries = sorted(c.exec_driver_sql("SELECT entry_id, seq, in_force FROM node_entries").all())
            rows = c.exec_driver_sql("SELECT keys, entry_id FROM node_entries WHERE in_force=1").all()
            keys = sorted((k, eid) for joined, eid in rows for k in joined.split(SEP) if k)
        return s.state()["head"], entries, keys
    finally:
        s.dispose()


# --- init -------------------------------------------------------------------------------------------------


def test_init_pins_the_signing_key_and_refuses_a_wrong_fingerprint(
    tmp_path: Path, fake: FakePlatform
) -> None:
    with pytest.raises(InitError, match="fingerprint"):
        initialise(str(tmp_path / "x.db"), fake.url, "k", fingerprint="00" * 16)
    assert not (tmp_path / "x.db").exists()
    path = str(tmp_path / "n.db")
    pinned = initialise(path, fake.url, "k")
    assert pinned["fingerprint"] == P.fingerprint(SIGNING.public)
    cfg = Store(path).get_config()
    assert P.unb64(cfg["signing_public_key"], "pk") == SIGNING.public
    assert len(P.unb64(cfg["node_secret"], "secret")) == 32
    # the platform now shows another key: re-init refuses unless --repin
    fake.key = OTHER_SIGNING
    with pytest.raises(InitError, match="pinned"):
        initialise(path, fake.url, "k")


def test_cli_init_sync_status(tmp_path: Path, fake: FakePlatform) -> None:
    fake.publish(record("e1", tags=[fake.tag("phone", PHONES[0])]))
    store = str(tmp_path / "cli.db")
    runner = CliRunner()
    r = runner.invoke(cli, ["node", "init", "--platform", fake.url, "--key", "k", "--store", store])
    assert r.exit_code == 0, r.output
    assert P.fingerprint(SIGNING.public) in r.output
    r = runner.invoke(cli, ["node", "sync", "--store", store])
    assert r.exit_code == 0, r.output
    assert "head 0 → 1" in r.output
    r = runner.invoke(cli, ["node", "status", "--store", store])
    assert "entries in force 1" in r.output
    r = runner.invoke(cli, ["node", "sync", "--store", str(tmp_path / "missing.db")])
    assert r.exit_code == 1 and "run `fcx node init` first" in " ".join(r.output.split())


def test_the_node_leaves_out_what_its_rulebook_excludes(
    store_path: str, fake: FakePlatform, tmp_path: Path
) -> None:
    """#22: the enterprise's rulebook is read at every sync; its decisions leave an excluded measure out
    and say so with the clause, as the platform's do. A platform without the route keeps the last one."""
    fake.publish(record("e1", tags=[fake.tag("phone", PHONES[0])]))
    store = Store(store_path)
    node = Node(store, refresh_seconds=None, live=False)
    sync(store)  # this platform has no rulebook route (404): nothing excluded, the sync goes on
    _enroll(store, tmp_path, [("u1", PHONES[0])])
    node.refresh()
    d = node.decide([("phone", PHONES[0])], "account_registration")
    assert d["verdict"] == "deny" and "not_applicable_by_rules" not in d
    fake.rulebook = {"rules": [
        {"measure": "deny_new_account", "applicable": False, "clause": "《用户协议》第8条"},
        {"measure": "block_or_delete_account", "applicable": True, "clause": "第9条"},
    ]}  # fmt: skip
    sync(store)
    node.refresh()
    d = node.decide([("phone", PHONES[0])], "account_registration")
    assert d["verdict"] == "allow" and d["measures"] == []  # measure 2 does not act on registration
    assert d["not_applicable_by_rules"] == [
        {"code": "deny_new_account", "number": 1, "zh": "限制新设立账户", "en": "Refuse new accounts",
         "clause": "《用户协议》第8条"}
    ]  # fmt: skip
    assert (
        node.decide([("phone", PHONES[0])], "account_review")["verdict"] == "deny"
    )  # measure 2 still applies
    fake.rulebook = None
    sync(store)  # the platform cannot say now: the last rulebook stays
    node.refresh()
    assert node.decide([("phone", PHONES[0])], "account_registration")["verdict"] == "allow"
    store.dispose()


# --- sync ---------------------------------------------------------------------------------------------------


def test_snapshot_then_deltas_and_the_index_follows(
    store_path: str, fake: FakePlatform, tmp_path: Path
) -> None:
    fake.publish(record("e1", tags=[fake.tag("phone", PHONES[0])]))
    fake.publish(record("e2", tags=[fake.tag("phone", PHONES[1])]))
    fake.build_snapshot()
    fake.publish(record("e3", identifiers=["uscc:91110000600037341L"], subject_kind="unit",
                        tags=[fake.tag("uscc", "91110000600037341L")]))  # fmt: skip
    store = Store(store_path)
    node = Node(store, refresh_seconds=None)
    with pytest.raises(NotSynced):
        node.decide([("phone", PHONES[0])], "account_registration")
    result = sync(store)
    assert (result.snapshot, result.deltas, result.head_after) == (2, 1, 3)
    _enroll(store, tmp_path, [("u1", PHONES[0]), ("u2", PHONES[2])])
    node.refresh()
    d = node.decide([("phone", PHONES[0])], "account_registration")
    assert d["verdict"] == "deny" and d["entry_ids"] == ["e1"] and d["feed_seq"] == 3
    assert d["feed_age_seconds"] is not None and d["not_enrolled"] == []
    assert node.decide([{"type": "phone", "value": PHONES[2]}], "account_registration")["verdict"] == "allow"
    # not enrolled: its tag is evaluated live (#16), then held
    d = node.decide(["phone:" + PHONES[1]], "account_registration")
    assert d["verdict"] == "deny" and d["not_enrolled"] == [] and d["live_tag"] == "evaluated"
    # with live tags off: stated, and only a public unit identifier can match
    d = Node(store, refresh_seconds=None, live=False).decide(["phone:" + PHONES[1]], "account_registration")
    assert d["verdict"] == "allow" and d["not_enrolled"] == ["identifiers[0]"] and d["live_tag"] is None
    assert node.decide([("uscc", "91110000600037341L")], "account_registration")["entry_ids"] == ["e3"]
    # a bad identifier is an IdentifierError that says where it stands; an unknown scene a ValueError
    with pytest.raises(IdentifierError, match=r"phone\.length") as bad:
        node.decide_many(
            [[("phone", PHONES[0])], [("phone", PHONES[1]), ("phone", "12")]], "account_registration"
        )
    assert isinstance(bad.value, BadIdentifier) and bad.value.field == "subjects[1].identifiers[1]"
    with pytest.raises(BadIdentifier) as unknown:
        node.decide(["fax:1"], "account_registration")
    assert unknown.value.rule == "type.unknown" and unknown.value.given_type == "fax"
    assert unknown.value.field == "identifiers[0]"
    with pytest.raises(ValueError, match="unknown scene"):
        node.decide([("phone", PHONES[0])], "nowhere")
    # a revocation and a dispute arrive as deltas; the index follows
    fake.revoke("e1")
    fake.append("disputed", record("e3", identifiers=["uscc:91110000600037341L"], subject_kind="unit",
                                   status="disputed"))  # fmt: skip
    assert sync(store).deltas == 1
    node.refresh()
    assert node.decide([("phone", PHONES[0])], "account_registration")["verdict"] == "allow"
    d = node.decide([("uscc", "91110000600037341L")], "account_registration")
    assert d["verdict"] == "restrict" and d["disputed"] is True  # a disputed entry never denies
    # the SDK follows the store by itself once a second
    sdk = Node(store_path, refresh_seconds=0)
    assert sdk.feed_seq == 5 and len(sdk.index) == 2
    fake.publish(record("e4", tags=[fake.tag("phone", PHONES[2])]))
    sync(store)
    d = sdk.decide([("phone", PHONES[2])], "account_registration")
    assert d["verdict"] == "deny" and d["feed_seq"] == 6
    assert sync(store).events == 0  # up to date: nothing fetched beyond the manifest


def test_410_means_take_the_snapshot(store_path: str, fake: FakePlatform) -> None:
    store = Store(store_path)
    fake.publish(record("e1"))
    sync(store)
    for i in range(2, 6):
        fake.publish(record(f"e{i}"))
    fake.revoke("e1")
    fake.build_snapshot()
    fake.oldest_after = 4
    result = sync(store)
    assert result.snapshot == 6 and result.head_after == 6
    assert store.counts()["entries_in_force"] == 4


def test_big_backlog_is_fetched_in_several_deltas(store_path: str, fake: FakePlatform, monkeypatch) -> None:
    monkeypatch.setattr(sync_mod, "DELTA_LIMIT", 3)
    store = Store(store_path)
    sync(store)
    for i in range(8):
        fake.publish(record(f"e{i}"))
    result = sync(store)
    assert (result.deltas, result.head_after, result.events) == (3, 8, 8)


def _refused(store_path: str, caplog, match: str) -> None:
    before = _snapshot_state(store_path)
    caplog.clear()
    with (
        caplog.at_level(logging.ERROR, logger="fanchaoxin.node.sync"),
        pytest.raises(SyncRefused, match=match),
    ):
        sync(Store(store_path))
    assert any("nothing applied" in r.message for r in caplog.records), caplog.text
    assert _snapshot_state(store_path) == before


def test_forged_truncated_reordered_and_wrong_key_files_are_refused(
    store_path: str, fake: FakePlatform, caplog
) -> None:
    fake.publish(record("e1"))
    sync(Store(store_path))
    fake.publish(record("e2"))
    fake.publish(record("e3"))

    def forge(path: str, body: bytes) -> bytes:
        if "/deltas" in path:
            return gzip.compress(gzip.decompress(body).replace(b'"e2"', b'"e9"'))
        return body

    fake.tamper = forge
    _refused(store_path, caplog, "signature does not verify")

    def truncate(path: str, body: bytes) -> bytes:
        return body[: len(body) // 2] if "/deltas" in path else body

    fake.tamper = truncate
    _refused(store_path, caplog, "truncated|gzip")

    def reorder(path: str, body: bytes) -> bytes:
        if "/deltas" not in path:
            return body
        lines = gzip.decompress(body).split(b"\n")
        lines[1], lines[2] = lines[2], lines[1]
        return gzip.compress(b"\n".join(lines))

    fake.tamper = reorder
    _refused(store_path, caplog, "signature does not verify")

    def other_key(path: str, body: bytes) -> bytes:
        if "/deltas" not in path:
            return body
        f = P.read_feed_file(body, SIGNING.public)
        return P.write_feed_file(P.DELTA_FORMAT, f.header, f.records, OTHER_SIGNING)

    fake.tamper = other_key
    _refused(store_path, caplog, "signature does not verify")

    def manifest_other_key(path: str, body: bytes) -> bytes:
        if "/manifest" not in path:
            return body
        return json.dumps(P.sign_manifest(json.loads(body)["manifest"], OTHER_SIGNING)).encode()

    fake.tamper = manifest_other_key
    _refused(store_path, caplog, "manifest: signature does not verify")
    fake.tamper = None
    assert sync(Store(store_path)).head_after == 3


def test_replayed_skipped_and_rolled_back_feeds_are_refused(
    store_path: str, fake: FakePlatform, caplog
) -> None:
    for i in range(3):
        fake.publish(record(f"e{i}"))
    sync(Store(store_path))
    fake.publish(record("e3"))
    fake.publish(record("e4"))

    def replay(path: str, body: bytes) -> bytes:  # an old, genuinely signed delta
        return fake.delta(1, 2) if "/deltas" in path else body

    fake.tamper = replay
    _refused(store_path, caplog, "replays")

    def skip(path: str, body: bytes) -> bytes:
        return fake.delta(4, 1) if "/deltas" in path else body

    fake.tamper = skip
    _refused(store_path, caplog, "skips")

    fake.tamper = None
    sync(Store(store_path))
    old_manifest = None

    def rollback(path: str, body: bytes) -> bytes:
        return old_manifest if "/manifest" in path else body

    events, fake.events = fake.events, fake.events[:2]
    old_manifest = json.dumps(fake.manifest()).encode()
    fake.events = events
    fake.tamper = rollback
    _refused(store_path, caplog, "behind the local head")

    # a replayed delta is refused by apply_delta itself too (the check inside the transaction)
    f = P.read_feed_file(fake.delta(2, 1), SIGNING.public)
    with pytest.raises(P.ProtocolError, match="replays"):
        apply_delta(Store(store_path), f)


def test_snapshot_with_a_wrong_hash_is_refused(store_path: str, fake: FakePlatform, caplog) -> None:
    fake.publish(record("e1"))
    fake.build_snapshot()
    good = fake.snapshot_bytes
    fake.snapshot_bytes = P.write_feed_file(P.SNAPSHOT_FORMAT, {"seq": 1, "count": 0}, [], SIGNING)

    def serve_good_hash(path: str, body: bytes) -> bytes:  # manifest advertises the real file
        if "/manifest" in path:
            m = json.loads(body)["manifest"]
            m["snapshot"]["digest"] = fake.key.profile.hexdigest(good)
            return json.dumps(P.sign_manifest(m, SIGNING)).encode()
        return body

    fake.tamper = serve_good_hash
    _refused(store_path, caplog, "digest differs")


@pytest.mark.parametrize("kind", ["delta", "snapshot"])
def test_killed_mid_apply_leaves_the_store_before_or_after(
    store_path: str, fake: FakePlatform, tmp_path: Path, kind: str
) -> None:
    """A `fcx node sync` process killed inside the apply transaction: nothing lost, nothing doubled."""
    fake.publish(record("e0", tags=["k1:aaa"]))
    if kind == "delta":
        sync(Store(store_path))
    for i in range(1, 200):
        fake.publish(record(f"e{i}", tags=[f"k1:t{i}", f"k1:u{i}"]))
    fake.revoke("e0")
    if kind == "snapshot":
        fake.build_snapshot()
    before = _snapshot_state(store_path)
    env = dict(os.environ, FCX_NODE_TEST_APPLY_PAUSE="60")
    proc = subprocess.Popen(
        [sys.executable, "-m", "fanchaoxin", "node", "sync", "--store", store_path],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        for line in proc.stderr:  # type: ignore[union-attr]
            if "paused inside the" in line:
                break
        else:
            pytest.fail(f"the sync never reached the apply transaction (rc {proc.wait()})")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _snapshot_state(store_path) == before  # killed inside: as before
    result = sync(Store(store_path))
    head, entries, keys = _snapshot_state(store_path)
    assert head == 201 and result.head_after == 201
    in_force = [e for e in entries if e[2] == 1]
    assert sorted(e[0] for e in in_force) == sorted(f"e{i}" for i in range(1, 200))
    assert len(keys) == 2 * 199 and len(set(keys)) == len(keys)  # nothing doubled


# --- enroll -------------------------------------------------------------------------------------------------


def test_enroll_blinded_keeps_only_hmac_and_tag(store_path: str, fake: FakePlatform, tmp_path: Path) -> None:
    store = Store(store_path)
    rows = [(f"u{i}", f"1381234{i:04d}") for i in range(2500)]
    rows.append(("u0", "138 1234 0000"))  # the same identifier, written differently: enrolled once
    result = enroll(store, read_rows(_csv(tmp_path, rows), "user_id", "phone", "phone"), batch_size=1000)
    assert (result.enrolled, result.batches, result.distinct) == (2500, 3, 2500)
    # the platform received blinded elements only, never a phone number
    posted = b"".join(body for method, _p, body in fake.requests if method == "POST")
    assert posted and not any(p.encode() in posted for _u, p in rows[:2500])
    assert not any(b"+86" + p.encode() in posted for _u, p in rows[:2500]) and b"phone:" not in posted
    # tags equal the platform's own tags for the same identifiers
    with store.read() as c:
        got = dict(c.exec_driver_sql("SELECT user_ref, tag FROM node_users").all())
    assert got["u7"] == fake.tag("phone", "13812340007")
    # the store file holds no plain identifier
    store.dispose()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("node.db*"))
    assert b"13812340007" not in raw and b"+8613812340007" not in raw
    # re-running resumes: nothing evaluated twice
    n = len(fake.requests)
    again = enroll(Store(store_path), read_rows(_csv(tmp_path, rows), "user_id", "phone", "phone"))
    assert again.enrolled == 0 and again.already == 2500 and len(fake.requests) == n + 1  # /keys only


def test_enroll_names_the_bad_row_and_sends_nothing(
    store_path: str, fake: FakePlatform, tmp_path: Path
) -> None:
    path = _csv(tmp_path, [("u1", PHONES[0]), ("u2", "12345")])
    with pytest.raises(EnrollError, match=r"users.csv line 3, column phone") as exc:
        read_rows(path, "user_id", "phone", "phone")
    assert "12345" not in str(exc.value)
    with pytest.raises(EnrollError, match=r"--value-col: .* no column 'mobile'"):
        read_rows(path, "user_id", "phone", "mobile")
    with pytest.raises(EnrollError, match="--type"):
        read_rows(path, "user_id", "telephone", "phone")
    r = CliRunner().invoke(
        cli, ["node", "enroll", str(path), "--id-col", "user_id", "--type", "phone", "--value-col", "phone",
              "--store", store_path],
    )  # fmt: skip
    assert r.exit_code == 1 and "line 3" in " ".join(r.output.split())
    assert not [p for m, p, _b in fake.requests if m == "POST"]


def test_enroll_honours_429_retry_after(store_path: str, fake: FakePlatform, tmp_path: Path) -> None:
    fake.quota_429 = 2
    slept: list[float] = []
    rows = read_rows(_csv(tmp_path, [("u1", PHONES[0])]), "user_id", "phone", "phone")
    result = enroll(Store(store_path), rows, sleep=slept.append)
    assert slept == [7.0, 7.0] and result.enrolled == 1
    fake.quota_429 = 1
    rows = read_rows(_csv(tmp_path, [("u2", PHONES[1])], "b.csv"), "user_id", "phone", "phone")
    with pytest.raises(EnrollError, match="--max-wait"):
        enroll(Store(store_path), rows, sleep=slept.append, max_wait=5)


def test_enroll_refuses_a_proof_for_another_key(store_path: str, fake: FakePlatform, tmp_path: Path) -> None:

    other = oprf.KeyRing()
    other.derive("k1", b"another seed entirely", b"k1")
    real_ring, fake.ring = fake.ring, other
    keys_of_real = {"oprf": [{"key_id": "k1", "public_key": P.b64(real_ring.current.pk), "current": True}]}

    class PinnedKeys(PlatformClient):  # the node knows the real public key; the evaluator uses another
        def keys(self):  # type: ignore[no-untyped-def]
            return keys_of_real

    rows = read_rows(_csv(tmp_path, [("u1", PHONES[0])]), "user_id", "phone", "phone")
    with pytest.raises(EnrollError, match="proof does not verify"):
        enroll(Store(store_path), rows, client=PinnedKeys(fake.url, "k"))
    assert Store(store_path).counts()["user_tags"] == 0


# --- serve --------------------------------------------------------------------------------------------------


@pytest.fixture
def served(store_path: str, fake: FakePlatform, tmp_path: Path):
    fake.publish(record("e1", tags=[fake.tag("phone", PHONES[0])]))
    _enroll(Store(store_path), tmp_path, [("u1", PHONES[0]), ("u2", PHONES[1])])
    app = create_node_app(store_path, sync_interval=3600)
    with TestClient(app) as client:
        assert client.post("/v1/sync").json()["ready"] is True
        yield client


def test_http_decisions_in_the_platform_shape(served: TestClient, fake: FakePlatform) -> None:
    body = {"scene": "account_registration", "identifiers": [{"type": "phone", "value": PHONES[0]}]}
    r = served.post("/v1/decisions", json=body)
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["verdict"] == "deny" and d["entry_ids"] == ["e1"] and d["scene"] == "account_registration"
    assert {"measures", "labels", "reasons", "disputed", "feed_seq", "feed_age_seconds"} <= set(d)
    batch = {
        "scene": "listing_publication",
        "subjects": [{"identifiers": [{"type": "phone", "value": p}]} for p in PHONES[:2]],
    }
    r = served.post("/v1/decisions", json=batch)
    assert [x["verdict"] for x in r.json()["results"]] == ["deny", "allow"] and r.json()["feed_seq"] == 1
    # bad input: the platform's problem, naming the field
    r = served.post(
        "/v1/decisions",
        json={"scene": "account_registration", "identifiers": [{"type": "phone", "value": "12"}]},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "identifiers[0].value"
    r = served.post(
        "/v1/decisions", json={**batch, "subjects": [{"identifiers": [{"type": "fax", "value": "1"}]}]}
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "subjects[0].identifiers[0].type"
    r = served.post("/v1/decisions", json={"scene": "nowhere", "identifiers": body["identifiers"]})
    assert r.status_code == 422 and "scene" in r.text
    r = served.post("/v1/decisions", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert served.get("/readyz").json()["feed_seq"] == 1
    assert served.get("/healthz").json() == {"status": "ok"}


def test_not_ready_before_the_first_sync(store_path: str, fake: FakePlatform) -> None:
    fake.down = True
    with TestClient(create_node_app(store_path, sync_interval=3600)) as client:
        assert client.get("/readyz").status_code == 503
        r = client.post(
            "/v1/decisions",
            json={"scene": "account_registration", "identifiers": [{"type": "phone", "value": PHONES[0]}]},
        )
        assert r.status_code == 503 and r.headers["retry-after"] == "5"
        fake.down = False
        client.post("/v1/sync")
        assert client.get("/readyz").status_code == 200


def test_keeps_answering_through_an_outage_and_catches_up(served: TestClient, fake: FakePlatform) -> None:
    ask = {"scene": "account_registration", "identifiers": [{"type": "phone", "value": PHONES[1]}]}
    fake.down = True
    fake.publish(record("e2", tags=[fake.tag("phone", PHONES[1])]))
    ready = served.post("/v1/sync").json()
    assert ready["platform_reachable"] is False and ready["feed_seq"] == 1
    r = served.post("/v1/decisions", json=ask)
    assert r.status_code == 200 and r.json()["verdict"] == "allow" and r.json()["feed_seq"] == 1
    assert served.get("/readyz").status_code == 200
    fake.down = False
    served.post("/v1/sync")
    assert served.post("/v1/decisions", json=ask).json()["verdict"] == "deny"


def test_instruction_feedback_is_relayed_and_queued_while_down(
    served: TestClient, fake: FakePlatform
) -> None:
    r = served.post("/v1/instructions/i1/ack")
    assert r.status_code == 200 and fake.instructions == [("i1", "ack", None)]
    r = served.post("/v1/instructions/unknown/ack")
    assert r.status_code == 404
    r = served.post("/v1/instructions/i1/feedback", json={"outcome": "executed", "reason": "done"})
    assert r.status_code == 200 and fake.instructions[-1] == (
        "i1",
        "feedback",
        {"outcome": "executed", "reason": "done"},
    )
    assert served.post("/v1/instructions/i1/feedback", json={"bogus": 1}).status_code == 422
    fake.down = True
    r = served.post("/v1/instructions/i2/ack")
    assert r.status_code == 202 and r.json()["queued"] is True
    r = served.post("/v1/instructions/i2/feedback", json={"outcome": "executed"})
    assert r.status_code == 202
    assert [i["status"] for i in served.get("/v1/outbox").json()["items"]] == ["queued", "queued"]
    fake.down = False
    served.post("/v1/sync")
    assert fake.instructions[-2:] == [("i2", "ack", None), ("i2", "feedback", {"outcome": "executed"})]
    assert [i["status"] for i in served.get("/v1/outbox").json()["items"]] == ["sent", "sent"]


def test_feed_webhook_is_verified(served: TestClient, store_path: str) -> None:
    body = json.dumps({"event_id": "ev1", "seq": 2}).encode()
    assert served.post("/v1/webhooks/feed", content=body).status_code == 503  # no secret configured
    s = Store(store_path)
    with s.transaction() as conn:
        s.set_config(conn, webhook_secret="whsec")
    headers = P.webhook_headers(b"whsec", "ev1", body)
    assert served.post("/v1/webhooks/feed", content=body, headers=headers).json() == {"accepted": "ev1"}
    r = served.post("/v1/webhooks/feed", content=body, headers=headers)
    assert r.status_code == 401 and "replay" in r.text
    bad = P.webhook_headers(b"other", "ev2", body)
    assert served.post("/v1/webhooks/feed", content=body, headers=bad).status_code == 401
    old = P.webhook_headers(b"whsec", "ev3", body, now=time.time() - 3600)
    assert "stale" in served.post("/v1/webhooks/feed", content=body, headers=old).text


def test_node_token_is_required_when_set(store_path: str, fake: FakePlatform) -> None:
    with TestClient(create_node_app(store_path, sync_interval=3600, token="t0k")) as client:
        ask = {"scene": "account_registration", "identifiers": [{"type": "phone", "value": PHONES[0]}]}
        assert client.post("/v1/decisions", json=ask).status_code == 401
        assert client.post("/v1/sync").status_code == 401
        client.post("/v1/sync", headers={"Authorization": "Bearer t0k"})
        assert (
            client.post("/v1/decisions", json=ask, headers={"Authorization": "Bearer t0k"}).status_code == 200
        )


def test_entry_details_for_a_match_only(served: TestClient, fake: FakePlatform) -> None:
    assert served.get("/v1/entries/e1").status_code == 422  # no purpose given
    assert served.get("/v1/entries/e9", headers={"X-FCX-Purpose": "support check"}).status_code == 404
    r = served.get("/v1/entries/e1", headers={"X-FCX-Purpose": "support check"})
    assert r.status_code == 404  # the fake platform has no details route: its 404 is passed back
    assert ("GET", "/v1/sharing/entries/e1") in [(m, p) for m, p, _b in fake.requests]


def test_an_oprf_key_rotation_takes_a_new_snapshot(store_path: str, fake: FakePlatform, caplog) -> None:
    fake.publish(record("e1", tags=[fake.tag("phone", PHONES[0])]))
    store = Store(store_path)
    assert sync(store).head_after == 1
    assert sync(store).snapshot is None  # up to date, same keys: nothing more
    # the platform rotates: both keys active, entries re-tagged under both in a rebuilt snapshot
    fake.ring.derive("k2", b"fake-oprf-seed-2" * 3, b"k2")
    both = [fake.ring.tag(oprf.identifier_input("phone", PHONES[0]), key_id=k) for k in ("k1", "k2")]
    fake.current["e1"] = dict(fake.current["e1"], tags=both)
    fake.build_snapshot()
    with caplog.at_level("WARNING"):
        result = sync(store)
    assert result.snapshot == fake.head and "re-enrol" in caplog.text
    with store.read() as c:
        keys = c.exec_driver_sql("SELECT keys FROM node_entries WHERE entry_id='e1'").scalar_one()
    assert sorted(keys.split(SEP)) == sorted(both)
    assert sync(store).snapshot is None  # the new key set is remembered
