"""Quotas per organisation (API and CLI), 429 with Retry-After on the decision route, the batch limit,
platform staff unmetered, and the security alerts the platform reviews and clears."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from fanchaoxin.cli import app as cli
from fanchaoxin.core.audit import AuditEvent
from fanchaoxin.core.db import utcnow
from fanchaoxin.core.roles import Role
from fanchaoxin.orgs.models import DecisionLogRecord, Organisation, SecurityAlert

ASK = {"scene": "account_registration", "identifiers": [{"type": "uscc", "value": "91110000600037341L"}]}


@pytest.fixture
def market(world):  # type: ignore[no-untyped-def]
    return {"platform": world.platform(), "shop": world.enterprise("电商"), "ride": world.enterprise("出行")}


def test_quotas_are_set_by_the_platform_admin_and_refused_negative(client, market, db):
    admin = market["platform"].headers(Role.platform_admin)
    shop = market["shop"]
    url = f"/v1/organisations/{shop.org.id}/quotas"
    got = client.get(url, headers=shop.headers(Role.enterprise_operator)).json()
    assert got["plain_per_minute"] == 600 and got["overrides"]["plain_per_minute"] is None
    assert got["suspended"] is False and got["open_alerts"] == 0
    bad = client.put(url, headers=admin, json={"plain_per_minute": -1, "plain_per_day": 5})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "plain_per_minute"
    assert client.put(url, headers=shop.headers(Role.enterprise_operator), json={}).status_code == 403
    ok = client.put(url, headers=admin, json={"plain_per_minute": 2, "plain_per_day": 50})
    assert ok.status_code == 200 and ok.json()["plain_per_minute"] == 2
    assert ok.json()["evaluations_per_minute"] == 60_000  # left out: the default
    other = market["ride"].headers(Role.enterprise_operator)
    assert client.get(url, headers=other).status_code == 404
    with db.session() as s:
        assert s.scalar(select(AuditEvent).where(AuditEvent.action == "orgs.quotas.set")) is not None

    node = shop.headers(Role.enterprise_node)
    batch = {**ASK, "identifiers": ASK["identifiers"] * 2}
    assert client.post("/v1/decisions", json=batch, headers=node).status_code == 200
    over = client.post("/v1/decisions", json=ASK, headers=node)
    assert over.status_code == 429 and 1 <= int(over.headers["retry-after"]) <= 60
    assert over.json()["title_zh"] == "标识匹配配额已用完" and "minute" in over.json()["detail"]
    used = client.get(url, headers=admin).json()["used"]
    assert used["this_minute"] == 2 and used["today"] == 2


def test_the_batch_limit_names_the_field_and_costs_nothing(client, market, settings):
    node = market["shop"].headers(Role.enterprise_node)
    many = {
        "scene": "account_registration",
        "subjects": [{"identifiers": ASK["identifiers"]}] * (settings.plain_batch_max + 1),
    }
    r = client.post("/v1/decisions", json=many, headers=node)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "subjects"
    wide = {"scene": "account_registration", "subjects": [{"identifiers": ASK["identifiers"] * 20}] * 6}
    assert client.post("/v1/decisions", json=wide, headers=node).json()["errors"][0]["field"] == "subjects"
    bad = {**ASK, "purpose": ""}
    assert client.post("/v1/decisions", json=bad, headers=node).json()["errors"][0]["field"] == "purpose"
    admin = market["platform"].headers(Role.platform_admin)
    used = client.get(f"/v1/organisations/{market['shop'].org.id}/quotas", headers=admin).json()["used"]
    assert used["this_minute"] == 0


def test_platform_staff_are_not_metered_but_logged(client, market, db):
    platform = market["platform"]
    admin = platform.headers(Role.platform_admin)
    client.put(f"/v1/organisations/{platform.org.id}/quotas", headers=admin, json={"plain_per_minute": 0})
    for role in (Role.platform_admin, Role.platform_reviewer, Role.auditor):
        assert client.post("/v1/decisions", json=ASK, headers=platform.headers(role)).status_code == 200
    client.app.state.decision_log.flush()
    with db.session() as s:
        records = s.scalars(
            select(DecisionLogRecord).where(DecisionLogRecord.org_id == platform.org.id)
        ).all()
    assert len(records) == 3


def test_an_alert_is_listed_for_the_platform_and_cleared_by_the_admin(client, market, db, settings):
    shop = market["shop"]
    node = shop.headers(Role.enterprise_node)
    admin = market["platform"].headers(Role.platform_admin)
    sweep = [f"+86139{n:08d}" for n in range(12_340_000, 12_340_000 + settings.enumeration_threshold)]
    statuses = [
        client.post(
            "/v1/decisions",
            json={"scene": "account_registration", "identifiers": [{"type": "phone", "value": v}]},
            headers=node,
        ).status_code
        for v in sweep
    ]
    assert statuses[-1] == 403 and set(statuses[:-1]) == {200}
    client.app.state.decision_log.flush()
    alerts = client.get("/v1/security/alerts", headers=admin).json()
    assert [a["org_id"] for a in alerts] == [str(shop.org.id)]
    assert "139" not in alerts[0]["detail"]["shape"]
    assert client.get("/v1/security/alerts", headers=node).status_code == 403
    quotas = client.get(f"/v1/organisations/{shop.org.id}/quotas", headers=admin).json()
    assert quotas["suspended"] is True and quotas["open_alerts"] == 1
    bad = client.post(f"/v1/security/alerts/{alerts[0]['id']}/clear", headers=admin, json={"reason": ""})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "reason"
    r = client.post(
        f"/v1/security/alerts/{alerts[0]['id']}/clear", headers=admin, json={"reason": "压测，已核实"}
    )
    assert r.status_code == 200 and r.json()["cleared_at"]
    assert client.post("/v1/decisions", json=ASK, headers=node).status_code == 200
    assert client.get("/v1/security/alerts", headers=admin).json() == []
    with db.session() as s:
        cleared = s.scalar(select(AuditEvent).where(AuditEvent.action == "security.alert.cleared"))
        assert cleared is not None and cleared.detail["reason"] == "压测，已核实"


def test_cli_sets_quotas_and_clears_alarms(client, market, db, settings):
    runner = CliRunner()
    shop = market["shop"]
    r = runner.invoke(cli, ["org", "quota", str(shop.org.id), "--plain-per-minute", "-1"])
    assert r.exit_code != 0 and "--plain-per-minute" in r.output
    r = runner.invoke(
        cli,
        [
            "org",
            "quota",
            "电商",
            "--plain-per-minute",
            "5",
            "--plain-per-day",
            "7",
            "--evaluations-per-minute",
            "9",
        ],
    )
    assert r.exit_code == 0, r.output
    with db.session() as s:
        org = s.get(Organisation, shop.org.id)
        assert (org.quota_plain_per_minute, org.quota_plain_per_day, org.quota_evaluations_per_minute) == (
            5,
            7,
            9,
        )
    assert runner.invoke(cli, ["org", "quota", "电商", "--reset"]).exit_code == 0
    with db.session() as s:
        assert s.get(Organisation, shop.org.id).quota_plain_per_day is None
    r = runner.invoke(cli, ["org", "clear-alarm", "电商", "--reason", "ok"])
    assert r.exit_code == 1 and "no open security alert" in r.output
    node = shop.headers(Role.enterprise_node)
    for n in range(settings.enumeration_threshold):
        client.post(
            "/v1/lookup", json={"type": "phone", "value": f"+86138{12_340_000 + n:08d}"}, headers=node
        )
    client.app.state.decision_log.flush()
    assert client.post("/v1/decisions", json=ASK, headers=node).status_code == 403
    r = runner.invoke(cli, ["org", "clear-alarm", "电商", "--reason", "误报"])
    assert r.exit_code == 0, r.output
    with db.session() as s:
        assert s.scalars(select(SecurityAlert).where(SecurityAlert.cleared_at.is_(None))).all() == []
    # A running server lets it match again at its next flush.
    client.app.state.decision_log.flush()
    assert client.post("/v1/decisions", json=ASK, headers=node).status_code == 200


def test_clearing_a_silent_node_alert_leaves_the_enumeration_watch_alone(client, app, market, db):
    with db.session() as s:
        alert = SecurityAlert(org_id=market["shop"].org.id, kind="node_silent", raised_at=utcnow(), detail={})
        s.add(alert)
        s.flush()
        alert_id = alert.id
    calls = []
    budget = app.state.budget
    original = budget.cleared
    budget.cleared = lambda org_id, aid: calls.append((org_id, aid))
    try:
        admin = market["platform"].headers(Role.platform_admin)
        r = client.post(f"/v1/security/alerts/{alert_id}/clear", headers=admin, json={"reason": "节点已恢复上报"})
    finally:
        budget.cleared = original
    assert r.status_code == 200, r.text
    assert r.json()["kind"] == "node_silent" and calls == []
