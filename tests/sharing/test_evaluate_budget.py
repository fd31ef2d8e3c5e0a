"""Blinded evaluations join the organisation's budget: a per-minute quota besides the daily bucket, and
one decision-log record per batch with its count only."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import select

from fanchaoxin.core.roles import Role
from fanchaoxin.core.settings import get_settings
from fanchaoxin.orgs.models import DecisionLogIdentifier, DecisionLogRecord
from fanchaoxin.sharing import oprf


@pytest.fixture
def settings(settings, monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FCX_SHARING_KEY_DIR", str(tmp_path / "keys"))
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def _elements(n):  # type: ignore[no-untyped-def]
    return [base64.b64encode(oprf.blind(b"phone:%d" % i)[1]).decode() for i in range(n)]


def test_per_minute_quota_and_log(client, world, db):
    platform, shop = world.platform(), world.enterprise("电商")
    admin = platform.headers(Role.platform_admin)
    r = client.put(
        f"/v1/organisations/{shop.org.id}/quotas", headers=admin, json={"evaluations_per_minute": 5}
    )
    assert r.status_code == 200
    assert client.get(f"/v1/sharing/quotas/{shop.org.id}", headers=admin).json()["per_minute"] == 5
    node = shop.headers(Role.enterprise_node)
    ok = client.post("/v1/sharing/evaluate", headers=node, json={"blinded": _elements(4), "purpose": "入网"})
    assert ok.status_code == 200, ok.text
    over = client.post("/v1/sharing/evaluate", headers=node, json={"blinded": _elements(2)})
    assert over.status_code == 429 and 1 <= int(over.headers["retry-after"]) <= 60
    assert over.json()["title_zh"] == "标识匹配配额已用完"
    bad = client.post("/v1/sharing/evaluate", headers=node, json={"blinded": _elements(1), "purpose": ""})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "purpose"
    client.app.state.decision_log.flush()
    with db.session() as s:
        records = s.scalars(select(DecisionLogRecord)).all()
        assert [(r.kind, r.identifier_count, r.purpose) for r in records] == [("evaluation", 4, "入网")]
        assert s.scalars(select(DecisionLogIdentifier)).all() == []
