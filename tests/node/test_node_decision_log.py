"""The node's decision log (#14): every decision the node answers is recorded with tags only, relayed to
the platform in batches, kept while the platform is down, stored there once however often it is sent, and
shown to the person it concerns ("who looked me up")."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from fanchaoxin.core.identifiers import normalise
from fanchaoxin.core.roles import Role
from fanchaoxin.core.settings import get_settings
from fanchaoxin.node import Node
from fanchaoxin.node import decision_log as dlog
from fanchaoxin.node.app import create_node_app
from fanchaoxin.node.client import PlatformClient
from fanchaoxin.node.enroll import enroll
from fanchaoxin.node.store import Store
from fanchaoxin.node.sync import initialise, sync
from fanchaoxin.orgs.models import DecisionLogIdentifier, DecisionLogRecord
from fanchaoxin.sharing import protocol as P
from tests.appeals.test_access_support import month_of, publish
from tests.blacklist.registry_helpers import person_entry
from tests.node.test_node_support import SIGNING, FakePlatform, record

PHONES = ["13812345678", "13912345678", "13712345678"]
SCENE = "account_registration"
LOG_PATH = "/v1/decision-log/node"


class LoggingPlatform(FakePlatform):
    """The fake platform, taking decision-log batches too (503 while down, like everything else)."""

    def __init__(self) -> None:
        self.batches: list[dict[str, Any]] = []
        self.refuse = False  # answer 422 (a batch the platform will never take)
        super().__init__()

    def _handler(self):  # type: ignore[no-untyped-def]
        base = super()._handler()
        fake = self

        class Handler(base):  # type: ignore[misc, valid-type]
            def do_POST(self) -> None:
                if self.path != LOG_PATH:
                    return super().do_POST()
                body = self._body()
                if fake.down:
                    return self._json(503, {"detail": "down"})
                if fake.refuse:
                    return self._json(422, {"status": 422, "detail": "records[0].tags: not a tag"})
                batch = json.loads(body)
                fake.batches.append(batch)
                return self._json(200, {"received": len(batch["records"]), "stored": len(batch["records"])})

        return Handler

    def received(self) -> list[dict[str, Any]]:
        return [r for b in self.batches for r in b["records"]]


@pytest.fixture
def fake():
    f = LoggingPlatform()
    yield f
    f.close()


@pytest.fixture
def store_path(tmp_path: Path, fake: LoggingPlatform) -> str:
    path = str(tmp_path / "node.db")
    initialise(path, fake.url, "fcx_test_key", fingerprint=P.fingerprint(SIGNING.public))
    fake.publish(record("e1", tags=[fake.tag("phone", PHONES[0])]))
    store = Store(path)
    sync(store)
    enroll(store, [("u1", f"phone:{normalise('phone', PHONES[0])}")])
    store.dispose()
    return path


def _store_bytes(path: str) -> bytes:
    return b"".join(p.read_bytes() for p in Path(path).parent.glob(Path(path).name + "*"))


def test_sdk_decisions_are_recorded_with_the_nodes_tags_never_a_plain_identifier(
    store_path: str, fake: LoggingPlatform
) -> None:
    node = Node(store_path, live=False)  # the unenrolled stay tagless (live tags: test_live_tags)
    assert node.decide([("phone", PHONES[0])], SCENE, purpose="新用户注册审核")["verdict"] == "deny"
    assert node.decide([("phone", PHONES[1])], SCENE)["verdict"] == "allow"
    batch = node.decide_many([[("phone", PHONES[0])], [("phone", PHONES[2]), ("phone", PHONES[1])]], SCENE)
    assert [r["verdict"] for r in batch["results"]] == ["deny", "allow"]
    for bad in ("", " ", "x" * 201):
        with pytest.raises(ValueError, match="purpose"):
            node.decide([("phone", PHONES[0])], SCENE, purpose=bad)
    node.close()  # writes what is still queued
    store = Store(store_path)
    records = list(reversed(dlog.listing(store)))
    tag = fake.tag("phone", PHONES[0])
    got = [
        (r["verdict"], r["entry_ids"], r["tags"], r["identifiers"], r["absent"], r["purpose"])
        for r in records
    ]
    assert got == [
        ("deny", ["e1"], [tag], 1, 0, "新用户注册审核"),
        ("allow", [], [], 1, 1, None),  # not enrolled: a count, no digest
        ("deny", ["e1"], [tag], 1, 0, None),  # one record per subject of a batch
        ("allow", [], [], 2, 2, None),
    ]
    assert all(r["scene"] == SCENE and r["feed_seq"] == 1 and r["sent_at"] is None for r in records)
    assert len({r["id"] for r in records}) == 4
    store.dispose()
    raw = _store_bytes(store_path)
    for phone in PHONES:
        assert phone.encode() not in raw and phone[3:].encode() not in raw


def test_served_node_relays_in_batches_and_keeps_records_while_the_platform_is_down(
    store_path: str, fake: LoggingPlatform
) -> None:
    ask = {"scene": SCENE, "identifiers": [{"type": "phone", "value": PHONES[0]}], "purpose": "开户审核"}
    with TestClient(create_node_app(store_path, sync_interval=3600)) as client:
        assert client.post("/v1/sync").json()["ready"] is True
        assert client.post("/v1/decisions", json=ask).json()["verdict"] == "deny"
        r = client.post("/v1/decisions", json={**ask, "purpose": ""})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "purpose"
        client.post("/v1/sync")
        assert [(x["purpose"], x["entry_ids"]) for x in fake.received()] == [("开户审核", ["e1"])]
        # The platform goes down: decisions go on, their records wait in the store.
        fake.down = True
        for _ in range(4):
            assert client.post("/v1/decisions", json={**ask, "purpose": None}).status_code == 200
        assert client.post("/v1/sync").json()["platform_reachable"] is False
        kept = client.get("/v1/decision-log").json()["items"]
        assert [x["sent_at"] is None for x in kept] == [True] * 4 + [False]
        assert len(fake.received()) == 1
        fake.down = False
    # Back up: sent oldest first, two at a time, each once.
    store = Store(store_path)
    result = dlog.relay(store, PlatformClient(fake.url, "fcx_test_key"), batch=2)
    assert (result["sent"], result["unsent"]) == (4, 0)
    assert [len(b["records"]) for b in fake.batches] == [1, 2, 2]
    assert [r["id"] for r in fake.received()][1:] == [x["id"] for x in reversed(kept[:4])]
    assert dlog.relay(store, PlatformClient(fake.url, "fcx_test_key"))["sent"] == 0
    store.dispose()


def test_kept_records_are_bounded_the_loss_is_reported_and_sent_ones_are_pruned(
    store_path: str, fake: LoggingPlatform
) -> None:
    node = Node(store_path)
    for _ in range(5):
        node.decide([("phone", PHONES[0])], SCENE, purpose="审核")
    node.close()
    store = Store(store_path)
    client = PlatformClient(fake.url, "fcx_test_key")
    fake.down = True
    assert dlog.relay(store, client, limit=2) == {
        "sent": 0,
        "refused": 0,
        "dropped": 3,
        "pruned": 0,
        "unsent": 2,
    }
    fake.down = False
    assert dlog.relay(store, client, limit=2)["sent"] == 2
    assert len(fake.batches) == 1 and fake.batches[0]["dropped"] == 3 and len(fake.batches[0]["records"]) == 2
    assert dlog.relay(store, client)["sent"] == 0 and len(fake.batches) == 1  # nothing left to report
    # Sent records are deleted a few days later.
    assert dlog.prune(store) == 0
    assert dlog.prune(store, at=dlog.now() + dlog.KEEP_SENT_SECONDS + 1) == 2
    assert dlog.listing(store) == []
    store.dispose()


def test_a_batch_refused_for_its_content_is_set_aside_and_does_not_block_the_next(
    store_path: str, fake: LoggingPlatform
) -> None:
    node = Node(store_path)
    node.decide([("phone", PHONES[0])], SCENE)
    node.log.flush()
    client = PlatformClient(fake.url, "fcx_test_key")
    fake.refuse = True
    assert dlog.relay(node.store, client)["refused"] == 1
    fake.refuse = False
    node.decide([("phone", PHONES[1])], SCENE)
    node.log.flush()
    assert dlog.relay(node.store, client)["sent"] == 1
    assert [r["refused"] for r in dlog.listing(node.store)] == [False, True]
    node.close()


def test_a_platform_refusing_the_route_keeps_the_records(store_path: str) -> None:
    """An older platform without the route (404) or a revoked key (401): nothing is lost."""
    plain = FakePlatform()
    try:
        store = Store(store_path)
        with store.transaction() as conn:
            store.set_config(conn, platform_url=plain.url)
        node = Node(store)
        node.decide([("phone", PHONES[0])], SCENE)
        node.log.flush()
        result = dlog.relay(store, PlatformClient(plain.url, "fcx_test_key"))
        assert (result["sent"], result["unsent"]) == (0, 1)
    finally:
        plain.close()


def _chunks(store: Store) -> list[tuple[int, int]]:
    with store.read() as conn:
        return [
            (first, count)
            for first, count in conn.exec_driver_sql(
                "SELECT first_seq, count FROM node_decision_log_chunks ORDER BY first_seq"
            )
        ]


def test_a_flush_is_one_chunk_its_records_keep_their_own_numbers_and_batches_cut_across_chunks(
    store_path: str, fake: LoggingPlatform
) -> None:
    node = Node(store_path, live=False)
    for _ in range(3):
        node.decide([("phone", PHONES[0])], SCENE)
    assert node.log.flush() == 3
    # several identifiers, enrolled or not: key by key (the plain ones dropped, counted)
    node.decide([("phone", PHONES[1]), ("phone", PHONES[0])], SCENE)
    node.decide([("phone", PHONES[0]), ("phone", PHONES[2])], SCENE)
    assert node.log.flush() == 2
    store = node.store
    assert _chunks(store) == [(1, 3), (4, 2)]
    records = dlog.read_records(store)
    tag = fake.tag("phone", PHONES[0])
    assert [(r[0], r[7].split("\x1f") if r[7] else [], r[8], r[9]) for r in records] == [
        (1, [tag], 1, 0), (2, [tag], 1, 0), (3, [tag], 1, 0), (4, [tag], 2, 1), (5, [tag], 2, 1),
    ]  # fmt: skip
    ids = [r["id"] for r in reversed(dlog.listing(store))]
    assert ids == [dlog.record_id(dlog.record_prefix(store), n) for n in range(1, 6)]
    # Over the bound across the chunks: the oldest go, a chunk keeps the rest.
    assert dlog.enforce_bound(store, limit=1) == 4
    assert _chunks(store) == [(5, 1)] and dlog.unsent(store) == 1
    node.decide([("phone", PHONES[0])], SCENE)
    node.decide([("phone", PHONES[0])], SCENE)
    node.log.flush()
    assert _chunks(store) == [(5, 1), (6, 2)]  # numbers are never reused
    client = PlatformClient(fake.url, "fcx_test_key")
    assert dlog.relay(store, client, batch=2)["sent"] == 3
    assert [[r["id"][-2:] for r in b["records"]] for b in fake.batches] == [["05", "06"], ["07"]]
    assert fake.batches[0]["dropped"] == 4
    # Pruned by batch: the first batch ends inside the second chunk, which keeps its last record.
    with store.transaction() as conn:
        conn.exec_driver_sql("UPDATE node_decision_log_batches SET sent_at = 0 WHERE first_n = 5")
    assert dlog.prune(store) == 2
    assert _chunks(store) == [(7, 1)] and [r[0] for r in dlog.read_records(store)] == [7]
    assert [r["sent_at"] is not None for r in dlog.listing(store)] == [True]
    assert store.counts()["decisions_unsent"] == 0
    node.close()


def test_a_store_from_before_the_chunks_has_its_rows_moved_into_chunks_when_opened(store_path: str) -> None:
    store = Store(store_path)
    with store.transaction() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE node_decision_log (n INTEGER PRIMARY KEY AUTOINCREMENT, at FLOAT NOT NULL, "
            "purpose TEXT, scene VARCHAR(64) NOT NULL, verdict VARCHAR(16) NOT NULL, entry_ids TEXT NOT NULL, "
            "feed_seq INTEGER NOT NULL, tags TEXT NOT NULL, identifiers INTEGER NOT NULL, "
            "absent INTEGER NOT NULL)"
        )
        conn.exec_driver_sql(
            "INSERT INTO node_decision_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (n, 1.7e9 + n, "审核" if n == 3 else None, SCENE, "allow", "", 1, "", 1, 1)
                for n in (3, 4, 5, 7)
            ]
            + [(9, 1.7e9, None, SCENE, "deny", "e1\x1fe2", 2, "k1:" + "a" * 43, 1, 0)],
        )
        conn.exec_driver_sql("DELETE FROM node_decision_log WHERE n = 9")  # the number stays used
        store.set_config(conn, decision_log_sent_upto="3")
    store.dispose()
    store = Store(store_path)
    assert _chunks(store) == [(3, 3), (7, 1)]
    assert [(r[0], r[2]) for r in dlog.read_records(store)] == [(3, "审核"), (4, None), (5, None), (7, None)]
    assert dlog.unsent(store) == 3 and store.counts()["decisions_unsent"] == 3
    with store.read() as conn:
        tables = {n for (n,) in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "node_decision_log" not in tables
    node = Node(store)
    node.decide([("phone", PHONES[0])], SCENE)
    node.log.flush()
    assert _chunks(store)[-1] == (10, 1)  # above every number the old table used
    node.close()


# --- against the real platform (both backends) --------------------------------------------------------------


@pytest.fixture
def settings(settings, monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FCX_SHARING_KEY_DIR", str(tmp_path / "keys"))
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def _platform_client(app, key: str) -> PlatformClient:  # type: ignore[no-untyped-def]
    """The node's client, talking to the platform application in process."""
    pc = PlatformClient("http://testserver", key)
    pc.http.close()
    pc.http = TestClient(app, base_url="http://testserver", headers={"X-API-Key": key})
    return pc


def test_relayed_to_the_platform_once_and_shown_to_the_person_checked(app, client, world, db, tmp_path):
    shop = world.enterprise("某电商平台")
    key = shop.keys[Role.enterprise_node]
    entry = publish(db, shop.org.id, person_entry())  # 张小三, phone 13800138000
    pc = _platform_client(app, key)
    path = str(tmp_path / "node.db")
    initialise(path, "http://testserver", key, client=pc)
    store = Store(path)
    sync(store, pc)
    enroll(store, [("u1", f"phone:{normalise('phone', '13800138000')}")], client=pc)
    node = Node(store, live=False)
    # A minor participant's entry restricts promotions (it does not deny registration).
    answer = node.decide([("phone", "13800138000")], "promotion_signup", purpose="新用户注册审核")
    assert answer["verdict"] != "allow" and answer["entry_ids"] == [str(entry)]
    node.decide([("phone", "13900000000")], SCENE)  # someone not listed, not enrolled
    node.log.flush()
    assert dlog.relay(store, pc)["sent"] == 2
    with db.session() as s:
        # (The platform logs the node's blinded evaluations itself: channel "platform".)
        rows = s.scalars(
            select(DecisionLogRecord)
            .where(DecisionLogRecord.channel == "node")
            .order_by(DecisionLogRecord.at)
        ).all()
        got = [(r.channel, r.kind, r.org_id, r.purpose, r.entry_ids, r.identifier_count) for r in rows]
        assert got == [
            ("node", "decision", shop.org.id, "新用户注册审核", [str(entry)], 1),
            ("node", "decision", shop.org.id, None, [], 1),
        ]
        assert rows[0].key_id is not None and rows[0].node_record_id
        digests = s.scalars(
            select(DecisionLogIdentifier.digest).where(
                DecisionLogIdentifier.record_id.in_([r.id for r in rows])
            )
        ).all()
    assert len(digests) == 1 and digests[0].startswith("tag:k")  # the unenrolled one left no digest
    # Sent again (the answer was lost): stored once.
    with store.transaction() as conn:
        store.set_config(conn, decision_log_sent_upto="0")
    assert dlog.relay(store, pc)["sent"] == 2
    with db.session() as s:
        node_rows = select(DecisionLogRecord.id).where(DecisionLogRecord.channel == "node")
        assert s.scalar(select(func.count()).select_from(node_rows.subquery())) == 2
        assert s.scalar(select(func.count()).where(DecisionLogIdentifier.record_id.in_(node_rows))) == 1
    again = pc.decision_log({"records": [dlog._wire(dlog.record_prefix(store), r) for r in _rows(store)]})
    assert again == {"received": 2, "stored": 0}
    # A malformed batch is refused, naming the field; nothing of it stored.
    bad = pc.http.post(
        LOG_PATH,
        json={
            "records": [
                {**dlog._wire(dlog.record_prefix(store), _rows(store)[0]), "id": "x", "tags": ["13800138000"]}
            ]
        },
    )
    assert bad.status_code == 422 and "tags" in bad.text
    assert (
        client.post(
            LOG_PATH, json={"records": []}, headers=shop.headers(Role.enterprise_operator)
        ).status_code
        == 403
    )
    # The person checked sees the enterprise, its purpose, through its node.
    r = client.post(
        "/v1/public/access-log",
        json={
            "entry_id": str(entry),
            "identifier": {
                "type": "resident_id",
                "value": person_entry()["subject"]["identifiers"][0]["value"],
            },
        },
    )
    assert r.status_code == 200, r.text
    month = r.json()["months"][0]
    assert month["month"] == month_of(datetime.now(UTC)) and month["by_channel"] == {"platform": 0, "node": 1}
    (org,) = month["organisations"]
    assert org["name"] == "某电商平台" and org["purposes"][0]["purpose"] == "新用户注册审核"
    node.close()


def _rows(store: Store) -> list[tuple[Any, ...]]:
    return list(dlog.read_records(store))
