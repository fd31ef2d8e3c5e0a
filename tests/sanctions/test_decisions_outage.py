"""Decisions while the database is away (issue #13): answered from the index in memory, saying how old
it is; a key the process has not seen is refused with 503 (it cannot be checked), never a 500."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from fanchaoxin.app import create_app
from fanchaoxin.core.roles import BusinessType as B
from fanchaoxin.core.roles import Role
from fanchaoxin.sanctions.index import IndexHolder
from tests.blacklist.registry_helpers import USCC_A, judicial
from tests.core.faults import Outage
from tests.sanctions.test_sanctions import publish

ASK = {"scene": "account_registration", "identifiers": [{"type": "uscc", "value": USCC_A}]}
BATCH = {
    "scene": "internet_finance",
    "subjects": [
        {"identifiers": [{"type": "uscc", "value": USCC_A}]},
        {"identifiers": [{"type": "phone", "value": "13800138000"}]},
    ],
}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def market(world):
    return {
        "shop": world.enterprise("电商", business_types=[B.ecommerce]),
        "ride": world.enterprise("出行", business_types=[B.sharing_economy]),
        "bank": world.enterprise("金融", business_types=[B.internet_finance]),
    }


@pytest.fixture
def outage(backend, tmp_path):
    o = Outage(backend.url, tmp_path / "nowhere")
    yield o
    o.close()


@pytest.fixture
def outage_settings(settings):
    # The revocation watch is another issue's: here it must not be due while the test runs.
    return settings.model_copy(
        update={"database_retry_after_seconds": 6, "auth_revocation_check_seconds": 3600}
    )


def test_decisions_answer_from_the_index_while_the_database_is_away(db, market, outage, outage_settings):
    publish(db, market["shop"].org.id, judicial())
    app = create_app(outage_settings, db=outage.db)
    node = market["bank"].headers(Role.enterprise_node)
    unseen = market["ride"].headers(Role.enterprise_node)  # no request with it before the outage
    with TestClient(app, raise_server_exceptions=False) as c:
        before = c.post("/v1/decisions", json=ASK, headers=node)
        assert before.status_code == 200, before.text
        assert before.json()["verdict"] == "deny" and before.json()["degraded"] is False
        outage.cut()
        app.state.decision_index.invalidate()  # a refresh is due, and the database is gone

        during = c.post("/v1/decisions", json=ASK, headers=node)
        assert during.status_code == 200, during.text
        assert during.json()["verdict"] == "deny"
        assert during.json()["degraded"] is True
        assert during.json()["feed_seq"] == before.json()["feed_seq"]
        assert during.json()["feed_age_seconds"] >= 0
        batch = c.post("/v1/decisions", json=BATCH, headers=node)
        assert batch.status_code == 200, batch.text
        assert [x["verdict"] for x in batch.json()["results"]] == ["restrict", "allow"]
        assert batch.json()["degraded"] is True

        # A key this process has not checked cannot be checked now: 503, try again later.
        refused = c.post("/v1/decisions", json=ASK, headers=unseen)
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"] == "6"
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["title_zh"]
        # Everything else that needs the database: 503 too.
        listed = c.get("/v1/instructions", headers=node)
        assert listed.status_code == 503 and listed.headers["retry-after"] == "6"


def test_the_answer_states_the_index_age_and_recovers(db, market, outage, outage_settings):
    publish(db, market["shop"].org.id, judicial())
    clock = Clock()
    app = create_app(outage_settings, db=outage.db)
    holder = app.state.decision_index = IndexHolder(outage.db, retry_seconds=6, clock=clock)
    node = market["bank"].headers(Role.enterprise_node)
    with TestClient(app, raise_server_exceptions=False) as c:
        fresh = c.post("/v1/decisions", json=ASK, headers=node).json()
        assert (fresh["degraded"], fresh["feed_age_seconds"]) == (False, 0.0)
        outage.cut()
        clock.now += 42
        away = c.post("/v1/decisions", json=ASK, headers=node).json()
        assert (away["verdict"], away["degraded"], away["feed_age_seconds"]) == ("deny", True, 42.0)
        clock.now += 3  # no retry yet (every 6 s): the request is answered at once, as it stands
        assert c.post("/v1/decisions", json=ASK, headers=node).json()["feed_age_seconds"] == 45.0

        outage.restore()
        clock.now += 3
        holder.get()  # the retry a request would start in the background, here in the test's thread
        back = c.post("/v1/decisions", json=ASK, headers=node).json()
        assert (back["verdict"], back["degraded"], back["feed_age_seconds"]) == ("deny", False, 0.0)
