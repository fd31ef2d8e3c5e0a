"""Live tags for first-seen identifiers (#16, build 1): a node that enrolled nobody asks the platform for a
first-seen identifier's tag in the decision's own request, verifies the proof, keeps the tag and decides;
repeats stay local; without a tag it falls back as configured and says so.

Against the real platform application (both backends) where the platform's own behaviour matters (the
entry's measures, the quota); against the small fake platform where the test must break the platform
(a forged proof, an outage) or count its calls over a socket (concurrent requests)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from fanchaoxin.cli import app as cli
from fanchaoxin.core.roles import Role
from fanchaoxin.core.settings import get_settings
from fanchaoxin.node import Node
from fanchaoxin.node.app import create_node_app
from fanchaoxin.node.client import PlatformClient
from fanchaoxin.node.live import LiveSettings, LiveUnavailable
from fanchaoxin.node.store import Store
from fanchaoxin.node.sync import initialise, sync
from fanchaoxin.sharing import protocol as P
from tests.appeals.test_access_support import publish
from tests.blacklist.registry_helpers import person_entry
from tests.node.test_node_support import SIGNING, FakePlatform, record

LISTED, CLEAN, OTHER = "13800138000", "13900000000", "13700001111"
SCENE = "account_registration"
FAST = LiveSettings(retry_seconds=0)  # tests: no pause after a failure


class CountingClient(PlatformClient):
    """The node's client on the platform application in process, counting evaluation calls."""

    def __init__(self, app: Any, key: str) -> None:
        super().__init__("http://testserver", key)
        self.http.close()
        self.http = TestClient(app, base_url="http://testserver", headers={"X-API-Key": key})
        self.evaluations: list[int] = []

    def evaluate(
        self, blinded_b64: list[str], key_id: str | None, *, timeout: float | None = None
    ) -> dict[str, Any]:
        self.evaluations.append(len(blinded_b64))
        return super().evaluate(blinded_b64, key_id)


@pytest.fixture
def settings(settings, monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FCX_SHARING_KEY_DIR", str(tmp_path / "keys"))
    monkeypatch.setenv("FCX_SHARING_MIN_DAILY_EVALUATIONS", "4")  # quota: 4 evaluations a day
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def _node_on_platform(
    app: Any, key: str, tmp_path: Path, live: LiveSettings = FAST
) -> tuple[Node, CountingClient]:
    pc = CountingClient(app, key)
    path = str(tmp_path / "node.db")
    initialise(path, "http://testserver", key, client=pc)
    store = Store(path)
    sync(store, pc)
    return Node(store, refresh_seconds=None, live=live, client=pc), pc


def test_a_node_that_enrolled_nobody_denies_a_listed_persons_registration_and_allows_a_clean_one_live(
    app, world, db, tmp_path: Path
) -> None:
    shop = world.enterprise("某电商平台")
    # a serious enterprise finding on a person with a phone: measure 1 (deny_new_account) applies
    entry = publish(db, shop.org.id, person_entry(severity="serious"))
    node, pc = _node_on_platform(app, shop.keys[Role.enterprise_node], tmp_path)
    assert node.users == {}  # nobody enrolled
    d = node.decide([("phone", LISTED)], SCENE, purpose="新用户注册审核")
    assert d["verdict"] == "deny" and d["entry_ids"] == [str(entry)]
    assert "deny_new_account" in {m["code"] for m in d["measures"]}
    assert (d["live_tag"], d["degraded"], d["fallback"], d["not_enrolled"]) == ("evaluated", False, None, [])
    clean = node.decide([("phone", CLEAN)], SCENE)
    assert (clean["verdict"], clean["live_tag"], clean["degraded"]) == ("allow", "evaluated", False)
    assert pc.evaluations == [1, 1]
    # repeats never leave the node: the same identifier in another form, and in a batch
    again = node.decide([("phone", "+86 138-0013-8000")], SCENE)
    assert (again["verdict"], again["live_tag"]) == ("deny", "cached")
    batch = node.decide_many([[("phone", CLEAN)], [("phone", LISTED)]], SCENE)
    assert [r["live_tag"] for r in batch["results"]] == ["cached", "cached"]
    assert pc.evaluations == [1, 1]
    # the tags are kept in the store (never the phone): a restarted node, or the SDK in another
    # process, finds them there
    node.close()
    store = Store(str(tmp_path / "node.db"))
    with store.read() as conn:
        rows = conn.exec_driver_sql("SELECT id_hmac, key_id, id_type, tag FROM node_live_tags").all()
    assert len(rows) == 2 and {r[2] for r in rows} == {"phone"}
    assert LISTED.encode() not in Path(tmp_path / "node.db").read_bytes()
    restarted = Node(store, refresh_seconds=None, live=FAST, client=pc)
    assert restarted.decide([("phone", LISTED)], SCENE)["live_tag"] == "cached"
    assert pc.evaluations == [1, 1]
    # only personal identifier types are evaluated: a USCC matches as a unit's public identifier
    unit = restarted.decide([("uscc", "91110000600037341L")], SCENE)
    assert unit["live_tag"] is None and unit["not_enrolled"] == ["identifiers[0]"]
    assert pc.evaluations == [1, 1]
    restarted.close()


def test_a_batch_of_first_seen_identifiers_is_one_call_and_a_quota_used_up_mid_request_is_unreachable(
    app, world, db, tmp_path: Path
) -> None:
    shop = world.enterprise("某电商平台")
    publish(db, shop.org.id, person_entry(severity="serious"))
    node, pc = _node_on_platform(app, shop.keys[Role.enterprise_node], tmp_path)
    first = node.decide_many([[("phone", LISTED)], [("phone", CLEAN), ("phone", LISTED)]], SCENE)
    assert [r["verdict"] for r in first["results"]] == ["deny", "deny"]
    assert pc.evaluations == [2]  # one call, each distinct identifier once
    # 2 of the day's 4 evaluations are left; a batch asking 3 is refused whole by the platform (429)
    fresh = ["13600000001", "13600000002", "13600000003"]
    out = node.decide_many([[("phone", p)] for p in fresh], SCENE)
    for i, r in enumerate(out["results"]):
        assert (r["verdict"], r["live_tag"], r["degraded"], r["fallback"]) == (
            "allow",
            "unavailable",
            True,
            "fail_open",
        )
        assert r["degraded_reason"]["code"] == "quota_exhausted"
        assert "quota" in r["degraded_reason"]["en"].lower() and r["degraded_reason"]["zh"]
        assert r["not_enrolled"] == [f"subjects[{i}].identifiers[0]"]
    assert pc.evaluations == [2, 3]
    assert node.live_stats()["unavailable"] == 3  # type: ignore[index]
    # a repeat is still answered from the node while the quota is out
    assert node.decide([("phone", LISTED)], SCENE)["live_tag"] == "cached"
    node.close()


def test_fail_closed_restricts_in_sensitive_scenes_only_when_the_platform_is_down(
    app, world, db, tmp_path: Path
) -> None:
    shop = world.enterprise("某电商平台")
    node, pc = _node_on_platform(
        app, shop.keys[Role.enterprise_node], tmp_path, FAST.but(fallback="fail_closed")
    )
    pc.http.close()
    pc.http = httpx.Client(base_url="http://127.0.0.1:9", timeout=1)  # nothing listens there
    d = node.decide([("phone", CLEAN)], SCENE)
    assert (d["verdict"], d["live_tag"], d["degraded"], d["fallback"]) == (
        "restrict",
        "unavailable",
        True,
        "fail_closed",
    )
    assert d["degraded_reason"]["code"] == "unreachable"
    other = node.decide([("phone", CLEAN)], "promotion_signup")  # not a sensitive scene
    assert (other["verdict"], other["degraded"], other["fallback"]) == ("allow", True, "fail_closed")
    node.close()


# --- against the fake platform: a forged proof, an outage, concurrent requests ---------------------------


@pytest.fixture
def fake():
    f = FakePlatform()
    yield f
    f.close()


@pytest.fixture
def store_path(tmp_path: Path, fake: FakePlatform) -> str:
    path = str(tmp_path / "node.db")
    initialise(path, fake.url, "fcx_test_key", fingerprint=P.fingerprint(SIGNING.public))
    fake.publish(record("e1", tags=[fake.tag("phone", LISTED)]))
    store = Store(path)
    sync(store)
    store.dispose()
    return path


def _evaluations(fake: FakePlatform) -> int:
    return sum(1 for m, p, _b in fake.requests if m == "POST" and p == "/v1/sharing/evaluate")


def test_a_proof_that_does_not_verify_is_refused_logged_counted_and_the_decision_falls_back(
    store_path: str, fake: FakePlatform, caplog: pytest.LogCaptureFixture
) -> None:
    def forge(path: str, body: bytes) -> bytes:
        if path != "/v1/sharing/evaluate":
            return body
        answer = json.loads(body)
        proof = bytearray(base64.b64decode(answer["proof"]))
        proof[0] ^= 1
        answer["proof"] = P.b64(bytes(proof))
        return json.dumps(answer).encode()

    fake.tamper = forge
    node = Node(store_path, refresh_seconds=None, live=FAST)
    with caplog.at_level(logging.ERROR, logger="fanchaoxin.node.live"):
        d = node.decide([("phone", LISTED)], SCENE)
    assert (d["verdict"], d["live_tag"], d["degraded"], d["fallback"]) == (
        "allow",
        "unavailable",
        True,
        "fail_open",
    )
    assert d["degraded_reason"]["code"] == "proof_refused"
    assert any("refused a live evaluation" in r.getMessage() for r in caplog.records)
    assert LISTED not in caplog.text
    stats = node.live_stats()
    assert stats is not None and stats["proof_refused"] == 1 and stats["errors"] == 1 and stats["held"] == 0
    # nothing of the refused answer is kept; once the platform answers truly, the tag is had
    fake.tamper = None
    d = node.decide([("phone", LISTED)], SCENE)
    assert (d["verdict"], d["live_tag"], d["degraded"]) == ("deny", "evaluated", False)
    node.close()
    with Store(store_path).read() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM node_live_tags").scalar_one() == 1


def test_platform_down_fail_open_allows_degraded_fail_closed_restricts_at_registration(
    store_path: str, fake: FakePlatform
) -> None:
    fake.down = True
    open_node = Node(store_path, refresh_seconds=None, live=FAST)
    d = open_node.decide([("phone", LISTED)], SCENE)
    assert (d["verdict"], d["live_tag"], d["degraded"], d["fallback"]) == (
        "allow",
        "unavailable",
        True,
        "fail_open",
    )
    assert d["degraded_reason"]["code"] == "unreachable"
    closed = Node(store_path, refresh_seconds=None, live=FAST.but(fallback="fail_closed"))
    assert closed.decide([("phone", LISTED)], SCENE)["verdict"] == "restrict"
    assert closed.decide([("phone", LISTED)], "internet_finance")["verdict"] == "restrict"
    assert closed.decide([("phone", LISTED)], "promotion_signup")["verdict"] == "allow"
    # after a failure the node answers at once for retry_seconds rather than ask again
    waiting = Node(store_path, refresh_seconds=None, live=LiveSettings(retry_seconds=60))
    before = _evaluations(fake)
    for _ in range(3):
        assert waiting.decide([("phone", OTHER)], SCENE)["live_tag"] == "unavailable"
    assert _evaluations(fake) == before + 1
    # the platform back: decided live
    fake.down = False
    assert open_node.decide([("phone", LISTED)], SCENE)["verdict"] == "deny"
    for n in (open_node, closed, waiting):
        n.close()


def test_settings_come_from_the_store_and_bad_ones_are_refused(store_path: str) -> None:
    store = Store(store_path)
    with store.transaction() as conn:
        store.set_config(conn, **LiveSettings(fallback="fail_closed", timeout=0.5).config_values())
    node = Node(store, refresh_seconds=None)
    assert node.live is not None and node.live.settings.fallback == "fail_closed"
    assert node.live.settings.timeout == 0.5 and "courier_hiring" in node.live.settings.sensitive_scenes
    node.close()
    with pytest.raises(ValueError, match="fallback"):
        LiveSettings(fallback="maybe")
    with pytest.raises(ValueError, match="nowhere"):
        LiveSettings(sensitive_scenes=frozenset({"nowhere"}))


def test_served_node_concurrent_first_seen_requests_share_one_evaluate_call(
    store_path: str, fake: FakePlatform
) -> None:
    app = create_node_app(store_path, sync_interval=3600, live=FAST.but(batch_window=0.05))
    phones = [f"1360000{n:04d}" for n in range(10)] + [LISTED]

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as c:
            return await asyncio.gather(*(
                c.post("/v1/decisions", json={"scene": SCENE, "identifiers": [{"type": "phone", "value": p}]})
                for p in phones
            ))  # fmt: skip

    before = _evaluations(fake)
    answers = asyncio.run(run())
    assert all(r.status_code == 200 for r in answers), [r.text for r in answers]
    body = [r.json() for r in answers]
    assert [b["verdict"] for b in body] == ["allow"] * 10 + ["deny"]
    assert {b["live_tag"] for b in body} == {"evaluated"}
    assert _evaluations(fake) == before + 1  # eleven requests, one evaluation call
    # a repeat over HTTP is answered from the node; a bad identifier is still the platform's 422
    with TestClient(app) as client:
        r = client.post(
            "/v1/decisions", json={"scene": SCENE, "identifiers": [{"type": "phone", "value": LISTED}]}
        )
        assert r.status_code == 200 and r.json()["live_tag"] == "cached"
        r = client.post(
            "/v1/decisions", json={"scene": SCENE, "identifiers": [{"type": "phone", "value": "12"}]}
        )
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "identifiers[0].value"
        fake.down = True
        r = client.post(
            "/v1/decisions", json={"scene": SCENE, "identifiers": [{"type": "phone", "value": OTHER}]}
        )
        assert r.status_code == 200 and r.json()["degraded"] is True and r.json()["verdict"] == "allow"
    assert _evaluations(fake) == before + 2  # and the one try during the outage


def test_fcx_node_init_keeps_the_live_settings_and_refuses_bad_ones(
    tmp_path: Path, fake: FakePlatform
) -> None:
    store = str(tmp_path / "cli.db")
    base = ["node", "init", "--platform", fake.url, "--key", "k", "--store", store]
    r = CliRunner().invoke(cli, [*base, "--live-fallback", "fail_closed", "--sensitive-scene", "internet_finance",
                                 "--live-timeout", "0.5"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "Live tags on: fail_closed (sensitive scenes internet_finance), timeout 0.5 s" in r.output
    settings = LiveSettings.from_config(Store(store).get_config())
    assert settings == LiveSettings(fallback="fail_closed", sensitive_scenes=frozenset({"internet_finance"}),
                                    timeout=0.5)  # fmt: skip
    r = CliRunner().invoke(cli, [*base, "--no-live-tags"])
    assert r.exit_code == 0 and not LiveSettings.from_config(Store(store).get_config()).enabled
    r = CliRunner().invoke(cli, [*base, "--sensitive-scene", "nowhere"])
    assert r.exit_code == 1 and "unknown scene(s) nowhere" in r.output


def test_the_serving_nodes_event_loop_path_evaluates_verifies_and_falls_back_as_the_thread_path_does(
    store_path: str, fake: FakePlatform
) -> None:
    """The HTTP node asks on its event loop (``LiveTags.aevaluate``, aiohttp over a socket): the same
    proof check, the same held tags, the same fallback when the platform cannot be reached."""
    node = Node(store_path, refresh_seconds=None, live=FAST)
    live = node.live
    assert live is not None
    listed, clean = "phone:+86" + LISTED, "phone:+86" + CLEAN

    async def ask(canonicals: list[str]) -> dict[str, str]:
        try:
            return await live.aevaluate(canonicals)
        finally:
            await live.client.aclose()  # the session belongs to this loop

    tags = asyncio.run(ask([listed, clean]))
    assert tags[listed] == fake.tag("phone", LISTED) and set(tags) == {listed, clean}
    assert _evaluations(fake) == 1
    d = node.decide([("phone", LISTED)], SCENE)
    assert (d["verdict"], d["live_tag"]) == ("deny", "cached")
    assert node.decide([("phone", CLEAN)], SCENE)["verdict"] == "allow"
    # a forged proof is refused here too, and nothing of it kept
    fake.tamper = lambda path, body: body.replace(b'"proof": "', b'"proof": "A') if "evaluate" in path else body
    with pytest.raises(LiveUnavailable) as refused:
        asyncio.run(ask(["phone:+86" + OTHER]))
    assert refused.value.code == "proof_refused" and live.stats.proof_refused == 1
    fake.tamper = None
    # the platform away: the failure is named, and held for retry_seconds
    live.client.base_url = "http://127.0.0.1:9"  # nothing listens there
    live.settings = LiveSettings(retry_seconds=60)
    with pytest.raises(LiveUnavailable) as failed:
        asyncio.run(ask(["phone:+86" + OTHER]))
    assert failed.value.code == "unreachable"
    assert live.unavailable_now() is not None
    node.close()
