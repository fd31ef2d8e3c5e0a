"""Look-ups by POST (#14 point 4): the identifier in the body, the same answer as the deprecated GET
(which says so in its headers), both metered and in the decision log."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from fanchaoxin.core import vault
from fanchaoxin.core.roles import Role
from fanchaoxin.orgs.models import DecisionLogIdentifier, DecisionLogRecord
from tests.blacklist.registry_helpers import RID_A, person_entry
from tests.sanctions.test_sanctions import publish


@pytest.fixture
def market(world):  # type: ignore[no-untyped-def]
    return {"platform": world.platform(), "shop": world.enterprise("电商"), "ride": world.enterprise("出行")}


def test_post_answers_as_get_did_and_get_is_deprecated(client, market, db):
    entry_id = publish(db, market["shop"].org.id, person_entry())
    h = market["ride"].headers(Role.enterprise_operator)
    posted = client.post(
        "/v1/lookup", json={"type": "phone", "value": "138-0013-8000", "purpose": "交易风控"}, headers=h
    )
    assert posted.status_code == 200, posted.text
    assert "deprecation" not in posted.headers
    got = client.get("/v1/lookup?type=phone&value=138-0013-8000", headers=h)
    assert got.json() == posted.json() and got.json()["subjects"][0]["entries"][0]["id"] == str(entry_id)
    assert got.headers["deprecation"] == "true" and "GMT" in got.headers["sunset"]
    assert 'rel="successor-version"' in got.headers["link"] and "/v1/lookup" in got.headers["link"]
    by_name = client.post("/v1/lookup", json={"name": "张小三"}, headers=h).json()["subjects"]
    assert len(by_name) == 1
    # Bad input names the field, in the body or the query; the GET's refusal is deprecated too.
    cases = {
        "value": {"type": "phone", "value": "12345"},
        "type": {"type": "fax", "value": "1"},
        "purpose": {"type": "phone", "value": "13800138000", "purpose": ""},
    }
    for field, body in cases.items():
        r = client.post("/v1/lookup", json=body, headers=h)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == field, (field, r.text)
    assert client.post("/v1/lookup", json={"purpose": "x"}, headers=h).status_code == 422
    bad = client.get("/v1/lookup?type=phone&value=12345", headers=h)
    assert bad.status_code == 422 and bad.headers["deprecation"] == "true"

    client.app.state.decision_log.flush()
    with db.session() as s:
        records = s.scalars(
            select(DecisionLogRecord)
            .where(DecisionLogRecord.org_id == market["ride"].org.id)
            .order_by(DecisionLogRecord.at)
        ).all()
        assert [r.kind for r in records] == ["lookup"] * 3
        assert records[0].purpose == "交易风控" and records[0].entry_ids == [str(entry_id)]
        assert records[0].verdict == "found"
        digests = s.scalars(
            select(DecisionLogIdentifier.digest).where(DecisionLogIdentifier.record_id == records[1].id)
        ).all()
        assert digests == [vault.identifier_index("phone", "+8613800138000")]
        assert records[2].identifier_count == 0  # by name: no identifier asked


def test_get_and_post_draw_on_one_budget(client, market):
    admin = market["platform"].headers(Role.platform_admin)
    ride = market["ride"]
    client.put(f"/v1/organisations/{ride.org.id}/quotas", headers=admin, json={"plain_per_minute": 2})
    h = ride.headers(Role.enterprise_operator)
    assert (
        client.post("/v1/lookup", json={"type": "resident_id", "value": RID_A}, headers=h).status_code == 200
    )
    assert client.get(f"/v1/lookup?type=resident_id&value={RID_A}", headers=h).status_code == 200
    over = client.get(f"/v1/lookup?type=resident_id&value={RID_A}", headers=h)
    assert over.status_code == 429 and over.headers["retry-after"] and over.headers["deprecation"] == "true"
    assert client.post("/v1/lookup", json={"name": "张小三"}, headers=h).status_code == 429
