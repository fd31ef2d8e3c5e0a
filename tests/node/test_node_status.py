"""Node status (#16, point 4): a node reports where it stands, the platform shows its lag, a silent node is
flagged (security alert ``node_silent``) and comes back; bad report bodies are refused naming the field."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from typer.testing import CliRunner

from fanchaoxin.cli import app as cli
from fanchaoxin.console.auth import create_user
from fanchaoxin.core.audit import SYSTEM
from fanchaoxin.core.db import utcnow
from fanchaoxin.core.roles import Role
from fanchaoxin.core.settings import get_settings
from fanchaoxin.node import status as node_status
from fanchaoxin.node.client import PlatformClient, PlatformUnavailable
from fanchaoxin.node.store import Store, live_tags
from fanchaoxin.node.sync import initialise, sync
from fanchaoxin.orgs.models import SecurityAlert
from fanchaoxin.orgs.node_status import NODE_SILENT, NodeStatus
from fanchaoxin.sharing import protocol as P
from fanchaoxin.sharing.models import FeedHead
from fanchaoxin.workflows.jobs import run_jobs
from tests.appeals.test_access_support import publish
from tests.blacklist.registry_helpers import person_entry
from tests.console.console_helpers import csrf_of
from tests.node.test_node_support import SIGNING, FakePlatform

PASSWORD = "correct horse battery"


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


def _body(**over: object) -> dict[str, object]:
    body: dict[str, object] = {
        "node_id": "node-0123456789",
        "node_version": "0.1.0",
        "feed_seq": 3,
        "feed_age_seconds": 12.5,
        "policy_version": "2016-1",
        "enrolled": 1000,
        "live_tags": 30,
        "errors": {"sync_failures": 1, "relay_failures": 0},
        "interval_seconds": 60,
    }
    body.update(over)
    return body


def _console_page(client, db, who, role: Role, url: str):  # type: ignore[no-untyped-def]
    """A console page as a user of ``who`` with ``role`` sees it (signed in with a password)."""
    username = f"{role.value}-{who.org.id.hex[:8]}"
    with db.session() as s:
        create_user(s, SYSTEM, username=username, password=PASSWORD, org=who.org, role=role)
    page = client.get("/console/login")
    client.post("/console/login", data={"csrf_token": csrf_of(page.text), "method": "password",
                                        "username": username, "password": PASSWORD})  # fmt: skip
    page = client.get(url)
    assert page.status_code == 200 and 'id="nodes"' in page.text, page.text[-2000:]
    return page


def _set_head(db, seq: int) -> None:  # type: ignore[no-untyped-def]
    with db.session() as s:
        s.execute(update(FeedHead).where(FeedHead.id == 1).values(seq=seq))


def test_a_node_reports_and_the_platform_shows_its_lag(app, client, world, db, tmp_path: Path) -> None:
    platform, shop, other = world.platform(), world.enterprise("某电商平台"), world.enterprise("另一电商")
    key = shop.keys[Role.enterprise_node]
    publish(db, shop.org.id, person_entry())
    pc = _platform_client(app, key)
    path = str(tmp_path / "node.db")
    initialise(path, "http://testserver", key, client=pc)
    store = Store(path)
    sync(store, pc)
    head = store.state()["head"]
    assert head >= 1
    # live tags kept by the live-tag path; the report sends what is new since the last report
    keep_live_tags(store, 7)
    answer = node_status.report(store, pc, interval=60)
    assert answer["lag"] == 0 and answer["feed_head"] == head
    node_id = store.get_config()["node_id"]
    assert node_status.report(store, pc, interval=60)["node_id"] == node_id  # the same id, kept

    # the platform moves on: the node is behind by what was published since
    second = {
        "kind": "individual",
        "name": "李小四",
        "identifiers": [{"type": "phone", "value": "13700001111"}],
    }
    publish(db, shop.org.id, person_entry(subject=second))
    mine = client.get("/v1/nodes", headers=shop.headers(Role.enterprise_operator))
    assert mine.status_code == 200, mine.text
    nodes = mine.json()["nodes"]
    assert [n["node_id"] for n in nodes] == [node_id]
    n = nodes[0]
    assert n["feed_seq"] == head and n["lag"] == mine.json()["feed_head"] - head > 0
    assert n["enrolled"] == 0 and n["silent"] is False and n["errors"] == {"sync_failures": 0,
                                                                          "relay_failures": 0}  # fmt: skip
    assert n["live_tags"] == 0  # 7 went in the first report, nothing new since
    # another enterprise sees none of it; the platform's staff see every node
    assert client.get("/v1/nodes", headers=other.headers(Role.enterprise_operator)).json()["nodes"] == []
    staff = client.get("/v1/nodes", headers=platform.headers(Role.platform_reviewer)).json()["nodes"]
    assert [(x["org_name"], x["node_id"]) for x in staff] == [("某电商平台", node_id)]
    # the console shows the enterprise's nodes and their lag, on the platform's page of it and its own
    for who, url in ((platform, f"/console/orgs/{shop.org.id}"), (shop, "/console/org")):
        role = Role.platform_admin if who is platform else Role.enterprise_operator
        page = _console_page(client, db, who, role, url)
        assert node_id in page.text and f'<td class="node-lag bad">{n["lag"]}</td>' in page.text
    # first seen: audited once
    with db.session() as s:
        assert s.scalar(select(NodeStatus.first_seen_at)) is not None


def test_a_silent_node_is_flagged_and_clears_when_it_reports_again(client, world, db) -> None:
    platform, shop = world.platform(), world.enterprise()
    node = shop.headers(Role.enterprise_node)
    _set_head(db, 5)
    r = client.post("/v1/nodes/status", json=_body(), headers=node)
    assert r.status_code == 200, r.text
    assert r.json() == {"node_id": "node-0123456789", "feed_head": 5, "lag": 2}
    threshold = get_settings().node_silent_alert_seconds
    now = utcnow()
    with db.session() as s:
        assert run_jobs(s, now=now + timedelta(seconds=threshold - 1))["nodes_flagged_silent"] == 0
    with db.session() as s:
        assert run_jobs(s, now=now + timedelta(seconds=threshold + 1))["nodes_flagged_silent"] == 1
    with db.session() as s:  # flagged once, not at every pass
        assert run_jobs(s, now=now + timedelta(seconds=threshold + 600))["nodes_flagged_silent"] == 0
    nodes = client.get("/v1/nodes", headers=platform.headers(Role.platform_reviewer)).json()["nodes"]
    assert nodes[0]["silent"] is True and nodes[0]["silent_since"] is not None and nodes[0]["lag"] == 2
    alerts = client.get("/v1/security/alerts", headers=platform.headers(Role.platform_reviewer)).json()
    assert [(a["kind"], a["detail"]["node_id"]) for a in alerts] == [(NODE_SILENT, "node-0123456789")]
    page = _console_page(client, db, platform, Role.platform_admin, f"/console/orgs/{shop.org.id}")
    assert 'class="node silent"' in page.text
    # a silent node does not suspend the enterprise's matching (only enumeration alerts do)
    quotas = client.get(
        f"/v1/organisations/{shop.org.id}/quotas", headers=platform.headers(Role.platform_admin)
    )
    assert quotas.json()["suspended"] is False
    # the node is back: no longer silent, its alert cleared
    assert client.post("/v1/nodes/status", json=_body(feed_seq=5), headers=node).json()["lag"] == 0
    nodes = client.get("/v1/nodes", headers=shop.headers(Role.enterprise_node)).json()["nodes"]
    assert nodes[0]["silent"] is False and nodes[0]["silent_since"] is None
    with db.session() as s:
        alert = s.scalars(select(SecurityAlert)).one()
        assert alert.cleared_at is not None and alert.cleared_by == "system:node_status"


def test_a_node_that_refused_the_transparency_log_is_shown_first_with_its_alarm(client, world, db) -> None:
    platform, shop, ride = world.platform(), world.enterprise(), world.enterprise()
    _set_head(db, 5)
    alarm = "the transparency log: consistency with checkpoint 41 failed (split view?)"
    quiet = {"alarm": None, "events_waiting": 0, "size": 12, "checked_up_to_feed_seq": 5}
    assert client.post(
        "/v1/nodes/status", json=_body(feed_seq=5, log=quiet), headers=shop.headers(Role.enterprise_node)
    ).status_code == 200
    refused = {"alarm": alarm, "events_waiting": 3, "size": 12, "checked_up_to_feed_seq": 2}
    r = client.post(
        "/v1/nodes/status",
        json=_body(node_id="node-9876543210", feed_seq=5, log=refused),
        headers=ride.headers(Role.enterprise_node),
    )
    assert r.status_code == 200, r.text
    nodes = client.get("/v1/nodes", headers=platform.headers(Role.platform_reviewer)).json()["nodes"]
    assert [n["log"]["alarm"] for n in nodes] == [alarm, None]  # the alarmed node first
    assert nodes[0]["log"]["events_waiting"] == 3
    page = _console_page(client, db, platform, Role.platform_admin, f"/console/orgs/{ride.org.id}")
    assert "Refused the transparency log" in page.text or "拒绝了透明日志" in page.text
    assert "split view?" in page.text
    too_long = {**refused, "alarm": "x" * 1001}
    r = client.post("/v1/nodes/status", json=_body(log=too_long), headers=ride.headers(Role.enterprise_node))
    assert r.status_code == 422 and "alarm" in r.text


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"node_id": "short"}, "node_id"),
        ({"node_id": "bad id with spaces"}, "node_id"),
        ({"feed_seq": -1}, "feed_seq"),
        ({"feed_seq": 2**63}, "feed_seq"),
        ({"enrolled": "many"}, "enrolled"),
        ({"interval_seconds": 0}, "interval_seconds"),
        ({"errors": {"sync_failures": -2}}, "sync_failures"),
        ({"feed_age_seconds": -5}, "feed_age_seconds"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_bad_status_bodies_are_refused_naming_the_field(client, world, change, field) -> None:
    shop = world.enterprise()
    r = client.post("/v1/nodes/status", json=_body(**change), headers=shop.headers(Role.enterprise_node))
    assert r.status_code == 422, r.text
    assert field in r.text


def test_only_a_node_key_reports_and_a_missing_field_is_named(client, world) -> None:
    shop = world.enterprise()
    body = _body()
    r = client.post("/v1/nodes/status", json=body, headers=shop.headers(Role.enterprise_operator))
    assert r.status_code == 403
    del body["feed_seq"]
    r = client.post("/v1/nodes/status", json=body, headers=shop.headers(Role.enterprise_node))
    assert r.status_code == 422 and "feed_seq" in r.text


def keep_live_tags(store: Store, n: int) -> None:
    """What the live-tag path writes for `n` first-seen identifiers (node.live)."""
    with store.transaction() as conn:
        conn.execute(
            live_tags.insert(),
            [
                {"id_hmac": i.to_bytes(32, "big"), "key_id": "k1", "id_type": "phone", "tag": f"t{i}",
                 "created_at": 0.0}
                for i in range(1, n + 1)
            ],
        )  # fmt: skip


def test_a_platform_that_is_down_never_blocks_the_node(tmp_path: Path, monkeypatch) -> None:
    """The report fails with the platform unreachable; the counts stay for the next report, and the
    served node's status loop only logs it."""
    fake = FakePlatform()
    try:
        path = str(tmp_path / "node.db")
        initialise(path, fake.url, "k", fingerprint=P.fingerprint(SIGNING.public))
        store = Store(path)
        keep_live_tags(store, 5)
        errors = node_status.ErrorCounts()
        errors.add("sync_failures")
        with PlatformClient("http://127.0.0.1:9", "k", timeout=1) as down, pytest.raises(PlatformUnavailable):
            node_status.report(store, down, errors=errors)
        body = node_status.build_report(store, interval=60, errors=errors.counts)
        assert body["live_tags"] == 5 and body["errors"]["sync_failures"] == 1
        assert body["node_id"] == store.get_config()["node_id"] and body["feed_seq"] == 0
        assert body["feed_age_seconds"] is None  # never synced
    finally:
        fake.close()


def test_cli_status_report(app, world, tmp_path: Path, monkeypatch) -> None:
    shop = world.enterprise()
    key = shop.keys[Role.enterprise_node]
    pc = _platform_client(app, key)
    path = str(tmp_path / "node.db")
    initialise(path, "http://testserver", key, client=pc)
    monkeypatch.setattr(
        "fanchaoxin.node.cli.PlatformClient", lambda url, api_key: _platform_client(app, api_key)
    )
    r = CliRunner().invoke(cli, ["node", "status", "--store", path, "--report"])
    assert r.exit_code == 0, r.output
    assert "lag 0 events" in r.output and Store(path).get_config()["node_id"] in r.output


def test_the_serving_node_reports_its_live_evaluations_since_the_last_report(
    app, client, world, tmp_path
) -> None:
    shop = world.enterprise()
    key = shop.keys[Role.enterprise_node]
    pc = _platform_client(app, key)
    path = str(tmp_path / "node.db")
    initialise(path, "http://testserver", key, client=pc)
    store = Store(path)
    errors = node_status.ErrorCounts()
    errors.add("relay_failures")
    node_status.report(store, pc, errors=errors, live_total=12)
    assert errors.counts == {"sync_failures": 0, "relay_failures": 0} and errors.live_reported == 12
    errors.add("sync_failures")
    node_status.report(store, pc, interval=30, errors=errors, live_total=15)
    (n,) = client.get("/v1/nodes", headers=shop.headers(Role.enterprise_node)).json()["nodes"]
    assert n["live_tags"] == 3 and n["live_tags_per_minute"] == 6.0
    assert n["errors"] == {"sync_failures": 1, "relay_failures": 0} and n["interval_seconds"] == 30
