"""Continuous re-screening on the enterprise node (#16): the hits worklist, GET /v1/hits, the hits webhook
and `fcx node hits`, against the small fake platform of test_node_support.py."""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from fanchaoxin.cli import app as cli
from fanchaoxin.core.calendar import add_working_days, china_today
from fanchaoxin.node import cli as node_cli
from fanchaoxin.node import hits
from fanchaoxin.node import sync as sync_mod
from fanchaoxin.node.app import create_node_app
from fanchaoxin.node.enroll import enroll, read_rows
from fanchaoxin.node.store import Store, crypto_profile
from fanchaoxin.node.sync import InitError, apply_snapshot, initialise, read_feed, sync
from fanchaoxin.sharing import protocol as P
from tests.node.test_node_support import SIGNING, FakePlatform, record

PHONES = ["13812345678", "13912345678", "13712345678"]
TOKEN = "t0k"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def fake() -> Iterator[FakePlatform]:
    f = FakePlatform()
    yield f
    f.close()


@pytest.fixture
def store_path(tmp_path: Path, fake: FakePlatform) -> str:
    path = str(tmp_path / "node.db")
    initialise(path, fake.url, "fcx_test_key", fingerprint=P.fingerprint(SIGNING.public))
    return path


def _enroll(store_path: str, tmp_path: Path, rows: list[tuple[str, str]]) -> None:
    p = tmp_path / "users.csv"
    with p.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["user_id", "phone"])
        w.writerows(rows)
    store = Store(store_path)
    try:
        enroll(store, read_rows(p, "user_id", "phone", "phone"))
    finally:
        store.dispose()


def _all(store_path: str) -> list[dict[str, Any]]:
    store = Store(store_path)
    try:
        return hits.listing(store, limit=hits.PAGE_MAX)["items"]
    finally:
        store.dispose()


def _sync(store_path: str) -> None:
    store = Store(store_path)
    try:
        sync(store)
    finally:
        store.dispose()


def _brief(items: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    return [(i["kind"], i["user_ref"], i["entry_id"], i["reason"]) for i in items]


DEADLINE = add_working_days(china_today(), 3).isoformat()


# --- the worklist -------------------------------------------------------------------------------------------


def test_publication_hits_and_revocation_lifts_within_a_sync(
    store_path: str, fake: FakePlatform, tmp_path: Path
) -> None:
    """The issue's Done-when: after a revocation, GET /v1/hits lists the affected users as lifted."""
    fake.publish(record("e1", tags=[fake.tag("phone", PHONES[0])]))
    _enroll(store_path, tmp_path, [("u1", PHONES[0]), ("u2", PHONES[1]), ("u3", PHONES[2])])
    with TestClient(create_node_app(store_path, sync_interval=3600, token=TOKEN)) as client:
        assert client.get("/v1/hits").status_code == 401  # token-protected like every node route
        client.post("/v1/sync", headers=AUTH)  # the first sync takes the snapshot
        page = client.get("/v1/hits", headers=AUTH).json()
        assert _brief(page["items"]) == [("hit", "u1", "e1", "published")]
        hit = page["items"][0]
        assert hit["status"] == "published" and hit["deadline"] == DEADLINE and hit["feed_seq"] == 1
        assert hit["previous"] is None
        # the measures of the record, with parameters, their actions (as the record allows) and the lift
        assert [m["code"] for m in hit["measures"]] == ["deny_new_account", "block_or_delete_account"]
        block = hit["measures"][1]
        assert block["number"] == 2 and block["params"] == {} and block["zh"] and block["lift"]["zh"]
        actions = [a["code"] for a in block["actions"]]
        assert "delete_account" in actions and "ban_selling" not in actions  # serious, not general
        assert "cancel_abused_orders" in actions  # the record's behaviour: order brushing
        # a new publication arrives as a delta: hit at once
        fake.publish(record("e2", tags=[fake.tag("phone", PHONES[1]), fake.tag("phone", PHONES[2])]))
        client.post("/v1/sync", headers=AUTH)
        page = client.get("/v1/hits", params={"after": page["next_after"]}, headers=AUTH).json()
        assert _brief(page["items"]) == [("hit", "u2", "e2", "published"), ("hit", "u3", "e2", "published")]
        # the revocation: lifted within the one sync, naming the measures to undo
        fake.revoke("e1")
        client.post("/v1/sync", headers=AUTH)
        page = client.get("/v1/hits", params={"after": page["next_after"]}, headers=AUTH).json()
        assert _brief(page["items"]) == [("lifted", "u1", "e1", "revoked")]
        lifted = page["items"][0]
        assert lifted["status"] == "revoked" and lifted["deadline"] == DEADLINE and lifted["feed_seq"] == 3
        assert [m["code"] for m in lifted["measures"]] == ["deny_new_account", "block_or_delete_account"]
        assert lifted["previous"]["status"] == "published"
        assert page["head"] == page["next_after"] == 4
        # an up-to-date sync adds nothing
        client.post("/v1/sync", headers=AUTH)
        assert client.get("/v1/hits", params={"after": 4}, headers=AUTH).json()["items"] == []


def test_dispute_correction_and_unmatching_are_changes_and_lifts(
    store_path: str, fake: FakePlatform, tmp_path: Path
) -> None:
    tag0, tag1 = fake.tag("phone", PHONES[0]), fake.tag("phone", PHONES[1])
    rec = record("e1", tags=[tag0, tag1])
    fake.publish(rec)
    _enroll(store_path, tmp_path, [("u1", PHONES[0]), ("u2", PHONES[1])])
    _sync(store_path)
    assert _brief(_all(store_path)) == [("hit", "u1", "e1", "published"), ("hit", "u2", "e1", "published")]
    fake.append("disputed", dict(rec, status="disputed"))
    fake.append("undisputed", dict(rec, status="published"))  # both in one delta: the net change
    fake.append("updated", dict(rec, status="disputed"))
    _sync(store_path)
    items = _all(store_path)[2:]
    assert _brief(items) == [("changed", "u1", "e1", "disputed"), ("changed", "u2", "e1", "disputed")]
    assert items[0]["status"] == "disputed" and items[0]["previous"]["status"] == "published"
    fake.append("undisputed", dict(rec, status="published"))
    _sync(store_path)
    assert _brief(_all(store_path)[4:]) == [
        ("changed", "u1", "e1", "undisputed"),
        ("changed", "u2", "e1", "undisputed"),
    ]
    # a correction: other parameters, and one of the users' identifiers no longer in the entry
    corrected = dict(rec, tags=[tag0], measures=[{"code": "deduct_credit_points", "params": {"points": 12}}])
    fake.append("updated", corrected)
    _sync(store_path)
    items = _all(store_path)[6:]
    assert _brief(items) == [
        ("changed", "u1", "e1", "measures_changed"),
        ("lifted", "u2", "e1", "no_longer_matches"),
    ]
    assert items[0]["measures"][0]["code"] == "deduct_credit_points"
    assert items[0]["measures"][0]["params"] == {"points": 12}
    assert [m["code"] for m in items[0]["previous"]["measures"]] == [
        "deny_new_account",
        "block_or_delete_account",
    ]
    assert [m["code"] for m in items[1]["measures"]] == ["deny_new_account", "block_or_delete_account"]


def test_a_snapshot_applied_again_adds_no_hits_and_one_gone_lifts(
    store_path: str, fake: FakePlatform, tmp_path: Path
) -> None:
    fake.publish(record("e1", tags=[fake.tag("phone", PHONES[0])]))
    fake.publish(record("e2", tags=[fake.tag("phone", PHONES[1])]))
    fake.build_snapshot()
    _enroll(store_path, tmp_path, [("u1", PHONES[0]), ("u2", PHONES[1])])
    _sync(store_path)
    assert len(_all(store_path)) == 2
    feed = read_feed(fake.snapshot_bytes, SIGNING.public, P.SNAPSHOT_FORMAT)
    store = Store(store_path)
    try:
        apply_snapshot(store, feed)  # the same snapshot again (as after a 410)
        assert len(_all(store_path)) == 2
        # the deltas are gone and the new snapshot no longer has e2 (its revocation fell out of the window)
        fake.revoke("e2")
        fake.build_snapshot()
        fake.oldest_after = fake.head
        fake.publish(record("e3", tags=[fake.tag("phone", PHONES[0])]))
        with store.transaction() as conn:
            store.set_config(conn, head="1")  # as if the node had stopped after e1
        result = sync(store)
    finally:
        store.dispose()
    assert result.snapshot == 3
    # the snapshot lifts what it no longer holds; the delta after it hits
    assert _brief(_all(store_path)[2:]) == [
        ("lifted", "u2", "e2", "not_in_feed"),
        ("hit", "u1", "e3", "published"),
    ]


def test_users_enrolled_after_the_entry_are_hit_at_the_next_sync(
    store_path: str, fake: FakePlatform, tmp_path: Path
) -> None:
    fake.publish(record("e1", tags=[fake.tag("phone", PHONES[0])]))
    _sync(store_path)
    assert _all(store_path) == []
    _enroll(store_path, tmp_path, [("u1", PHONES[0])])
    fake.publish(record("e2", tags=["k1:" + "x" * 43]))  # a delta that concerns nobody enrolled
    _sync(store_path)
    assert _brief(_all(store_path)) == [("hit", "u1", "e1", "published")]


def test_business_types_choose_the_measures_named(fake: FakePlatform, tmp_path: Path) -> None:
    path = str(tmp_path / "logistics.db")
    with pytest.raises(InitError, match="--business-type"):
        initialise(path, fake.url, "k", business_types=["shipping"])
    with pytest.raises(InitError, match="--hits-webhook"):
        initialise(path, fake.url, "k", hits_webhook="ftp://x")
    initialise(path, fake.url, "k", business_types=["logistics"])
    both = [{"code": "restrict_listings", "params": {}}, {"code": "deny_new_account", "params": {}}]
    fake.publish(record("e1", tags=[fake.tag("phone", PHONES[0])], measures=both))
    only = [{"code": "restrict_listings", "params": {}}]  # ecommerce and sharing economy only
    fake.publish(record("e2", tags=[fake.tag("phone", PHONES[0])], measures=only))
    _enroll(path, tmp_path, [("u1", PHONES[0])])
    _sync(path)
    items = _all(path)
    assert _brief(items) == [("hit", "u1", "e1", "published")]
    assert [m["code"] for m in items[0]["measures"]] == ["deny_new_account"]


def test_a_failed_apply_keeps_no_hits(
    store_path: str, fake: FakePlatform, tmp_path: Path, monkeypatch
) -> None:
    """The hits are written in the apply's transaction: an apply that fails leaves neither."""
    fake.publish(record("e1", tags=[fake.tag("phone", PHONES[0])]))
    _enroll(store_path, tmp_path, [("u1", PHONES[0])])
    _sync(store_path)
    fake.revoke("e1")

    def crash(what: str) -> None:
        raise RuntimeError(f"killed inside the {what}")

    monkeypatch.setattr(sync_mod, "_pause_for_tests", crash)
    with pytest.raises(RuntimeError, match="killed"):
        _sync(store_path)
    assert _brief(_all(store_path)) == [("hit", "u1", "e1", "published")]
    monkeypatch.undo()
    _sync(store_path)
    assert _brief(_all(store_path))[1:] == [("lifted", "u1", "e1", "revoked")]


# --- paging -------------------------------------------------------------------------------------------------


def test_paging_and_a_cursor_from_the_future(store_path: str, fake: FakePlatform, tmp_path: Path) -> None:
    fake.publish(record("e1", tags=[fake.tag("phone", p) for p in PHONES]))
    _enroll(store_path, tmp_path, [("u1", PHONES[0]), ("u2", PHONES[1]), ("u3", PHONES[2])])
    with TestClient(create_node_app(store_path, sync_interval=3600)) as client:
        client.post("/v1/sync")
        first = client.get("/v1/hits", params={"limit": 2}).json()
        assert [i["user_ref"] for i in first["items"]] == ["u1", "u2"] and first["next_after"] == 2
        rest = client.get("/v1/hits", params={"after": first["next_after"], "limit": 2}).json()
        assert [i["user_ref"] for i in rest["items"]] == ["u3"] and rest["head"] == 3
        r = client.get("/v1/hits", params={"after": 4})
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "after" and "beyond the newest hit (3)" in r.text
        r = client.get("/v1/hits", params={"after": -1})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "after"
        r = client.get("/v1/hits", params={"limit": 0})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "limit"
        assert client.get("/v1/hits", params={"after": 3}).json()["items"] == []


# --- the webhook --------------------------------------------------------------------------------------------


class Receiver:
    """The enterprise's own system: records what it is posted; ``fail`` makes it answer 500."""

    def __init__(self) -> None:
        self.posts: list[tuple[bytes, str]] = []
        self.fail = False
        self.got = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if receiver.fail:
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                receiver.posts.append((body, self.headers.get(hits.SIGNATURE_HEADER, "")))
                receiver.got.set()
                self.send_response(204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hits"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_the_webhook_receives_signed_batches(
    store_path: str, fake: FakePlatform, tmp_path: Path, receiver: Receiver
) -> None:
    fake.publish(record("e1", tags=[fake.tag("phone", PHONES[0]), fake.tag("phone", PHONES[1])]))
    _enroll(store_path, tmp_path, [("u1", PHONES[0]), ("u2", PHONES[1])])
    app = create_node_app(store_path, sync_interval=3600, hits_webhook=receiver.url, hits_webhook_secret="s3")
    with TestClient(app) as client:
        client.post("/v1/sync")
        assert receiver.got.wait(10), "the hits webhook was never called"
    body, sig = receiver.posts[0]
    profile = crypto_profile(Store(store_path).get_config())  # the platform's, learnt at init
    assert sig == hits.signature(b"s3", body, profile)
    assert sig.startswith("hmac-sm3=" if profile.name == "gm" else "sha256=")
    page = json.loads(body)
    assert [(i["kind"], i["user_ref"]) for i in page["items"]] == [("hit", "u1"), ("hit", "u2")]
    # batches of at most `batch`, each signed (by default with the node secret); at least once: a batch
    # whose answer was not recorded (the app stopped in between) is sent again, the receiver goes by seq
    fake.revoke("e1")
    _sync(store_path)
    store = Store(store_path)
    try:
        cfg = store.get_config()
        secret = P.unb64(cfg["node_secret"], "secret")
        assert hits.webhook_secret(cfg) == secret
        pending = 4 - int(cfg.get("hits_webhook_delivered", "0"))
        before = len(receiver.posts)
        with httpx.Client() as http:
            assert hits.deliver(store, receiver.url, secret, http, batch=1) == pending
            assert hits.deliver(store, receiver.url, secret, http, batch=1) == 0
    finally:
        store.dispose()
    posts = receiver.posts[before:]
    for body, sig in posts:
        assert sig == hits.signature(secret, body, profile) and len(json.loads(body)["items"]) == 1
    assert [json.loads(b)["items"][0]["kind"] for b, _ in posts[-2:]] == ["lifted", "lifted"]
    assert [json.loads(b)["items"][0]["seq"] for b, _ in posts] == list(range(5 - pending, 5))


def test_a_failing_webhook_does_not_block_sync(
    store_path: str, fake: FakePlatform, tmp_path: Path, receiver: Receiver
) -> None:
    receiver.fail = True
    fake.publish(record("e1", tags=[fake.tag("phone", PHONES[0])]))
    _enroll(store_path, tmp_path, [("u1", PHONES[0])])
    initialise(store_path, fake.url, "fcx_test_key", hits_webhook=receiver.url)  # stored for `serve`
    with TestClient(create_node_app(store_path, sync_interval=3600)) as client:
        assert client.post("/v1/sync").json()["ready"] is True
        fake.revoke("e1")
        assert client.post("/v1/sync").status_code == 200
        assert [i["kind"] for i in client.get("/v1/hits").json()["items"]] == ["hit", "lifted"]
    store = Store(store_path)
    try:
        assert store.get_config().get("hits_webhook_delivered", "0") == "0"  # nothing taken, nothing lost
        with httpx.Client() as http:
            with pytest.raises(hits.WebhookFailed, match="500"):
                hits.deliver(store, receiver.url, b"k", http)
            receiver.fail = False
            assert hits.deliver(store, receiver.url, b"k", http) == 2
            fake.publish(record("e2", tags=[fake.tag("phone", PHONES[0])]))
            sync(store)
            with pytest.raises(hits.WebhookFailed, match="unreachable"):
                hits.deliver(store, "http://127.0.0.1:9/hits", b"k", http)  # nothing listens there
            assert store.get_config()["hits_webhook_delivered"] == "2"
    finally:
        store.dispose()


# --- fcx node hits ------------------------------------------------------------------------------------------


def test_cli_prints_the_hits(store_path: str, fake: FakePlatform, tmp_path: Path, monkeypatch) -> None:
    fake.publish(record("e1", tags=[fake.tag("phone", PHONES[0])],
                        measures=[{"code": "deduct_credit_points", "params": {"points": 12}}]))  # fmt: skip
    _enroll(store_path, tmp_path, [("u1", PHONES[0])])
    _sync(store_path)
    runner = CliRunner()
    monkeypatch.setattr(node_cli.console, "_width", 200)  # the table's cells on one line each
    r = runner.invoke(cli, ["node", "hits", "--store", store_path])
    assert r.exit_code == 0, r.output
    assert "u1" in r.output and "e1" in r.output and "hit" in r.output
    assert "deduct_credit_points" in r.output and '"points": 12' in r.output and DEADLINE in r.output
    r = runner.invoke(cli, ["node", "hits", "--store", store_path, "--after", "5"])
    assert r.exit_code == 1 and "after" in r.output and "beyond the newest hit" in r.output


def test_a_store_from_before_the_hits_gets_them(store_path: str, fake: FakePlatform, tmp_path: Path) -> None:
    store = Store(store_path)
    with store.transaction() as conn:
        for ddl in ("DROP TABLE node_hits", "DROP TABLE node_hit_state", "DROP INDEX ix_node_users_tag"):
            conn.exec_driver_sql(ddl)
    store.dispose()
    fake.publish(record("e1", tags=[fake.tag("phone", PHONES[0])]))
    _enroll(store_path, tmp_path, [("u1", PHONES[0])])  # opening the store adds what it lacks
    _sync(store_path)
    assert _brief(_all(store_path)) == [("hit", "u1", "e1", "published")]
    store = Store(store_path)
    try:
        with store.read() as conn:
            plan = " ".join(
                str(r)
                for r in conn.exec_driver_sql(
                    "EXPLAIN QUERY PLAN SELECT user_ref FROM node_users WHERE tag = 'x'"
                )
            )
    finally:
        store.dispose()
    assert "ix_node_users_tag" in plan  # a delta's tags are probes in the index, never a scan of the users
