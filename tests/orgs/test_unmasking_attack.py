"""The unmasking attack of issue #14, run against the demo with enterprise keys.

An enterprise that saw a listed person's resident ID masked the old way (`110101********1233`: the
address code and the last four shown) tries every check-digit-consistent birth date: ~2,400
candidates, of which the one decided `deny` (or looked up with an entry) is the person. It must be
stopped — quota or enumeration alarm — long before it narrows below 1,000 candidates, with a security
event in the audit log and every call it was answered in the decision log.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from fanchaoxin.core import vault
from fanchaoxin.core.audit import AuditEvent
from fanchaoxin.core.identifiers import resident_id_check_digit
from fanchaoxin.demo import load_demo
from fanchaoxin.orgs.models import DecisionLogIdentifier, DecisionLogRecord, Organisation

PERSON = "110101199003071233"  # 钱七, legal representative of a published unit (demo)


def candidates() -> list[str]:
    """Every resident ID of the old mask's shape: address code and last four known, a plausible birth
    date between them, the check digit consistent."""
    head, tail = PERSON[:6], PERSON[14:]
    out = []
    day = date(1940, 1, 1)
    while day <= date(2005, 12, 31):
        first17 = head + day.strftime("%Y%m%d") + tail[:3]
        if resident_id_check_digit(first17) == tail[3]:
            out.append(first17 + tail[3])
        day += timedelta(days=1)
    return out


@pytest.fixture
def demo(db, client):  # type: ignore[no-untyped-def]
    keys = load_demo(db)
    assert keys is not None
    client.app.state.decision_index.invalidate()

    def key(org_prefix: str, role: str) -> dict[str, str]:
        k = next(k for k in keys if k.organisation.startswith(org_prefix) and k.role == role)
        return {"X-API-Key": k.secret}

    return key


def _org_id(db, name_prefix):  # type: ignore[no-untyped-def]
    with db.session() as s:
        return next(o.id for o in s.scalars(select(Organisation)) if o.name.startswith(name_prefix))


def test_the_unmasking_attack_is_stopped_and_accounted_for(db, client, demo, settings):
    cands = candidates()
    assert PERSON in cands and len(cands) > 2000
    ride, courier = demo("示例出行", "enterprise_node"), demo("示例速递", "enterprise_node")
    # The person is listed: asked alone, the platform denies or restricts.
    one = client.post(
        "/v1/decisions",
        json={"scene": "account_registration", "identifiers": [{"type": "resident_id", "value": PERSON}]},
        headers=courier,
    )
    assert one.status_code == 200 and one.json()["entry_ids"], one.text

    # 1. Through POST /v1/decisions, in batches: answered until the alarm, then refused.
    answered: list[str] = []
    refusal = None
    batch = 10
    for i in range(0, len(cands), batch):
        chunk = cands[i : i + batch]
        r = client.post(
            "/v1/decisions",
            json={
                "scene": "account_registration",
                "purpose": "风控核验",
                "subjects": [{"identifiers": [{"type": "resident_id", "value": c}]} for c in chunk],
            },
            headers=ride,
        )
        if r.status_code != 200:
            refusal = r
            break
        answered.extend(chunk)
    assert refusal is not None and refusal.status_code in (403, 429), "the sweep was never stopped"
    assert refusal.json()["title_zh"] and "platform" in refusal.json()["detail"]
    assert PERSON not in answered
    assert len(answered) < settings.enumeration_threshold
    assert len(answered) < len(cands) - 1000  # nowhere near narrowing it down
    # Suspended: nothing more is matched for this enterprise, by decision or look-up.
    again = client.post(
        "/v1/decisions",
        json={"scene": "account_registration", "identifiers": [{"type": "resident_id", "value": PERSON}]},
        headers=ride,
    )
    assert again.status_code == 403 and again.json()["type"].endswith("matching-suspended")
    assert (
        client.post("/v1/lookup", json={"type": "resident_id", "value": PERSON}, headers=ride).status_code
        == 403
    )

    # 2. Through look-ups, one candidate each (another enterprise): the same.
    looked: list[str] = []
    stop = None
    for c in cands:
        r = client.post(
            "/v1/lookup", json={"type": "resident_id", "value": c, "purpose": "核验"}, headers=courier
        )
        if r.status_code != 200:
            stop = r
            break
        assert r.json()["subjects"] == []
        looked.append(c)
    assert stop is not None and stop.status_code in (403, 429)
    assert PERSON not in looked and len(looked) < settings.enumeration_threshold

    # 3. Security events in the audit log: the family's shape, never its digits.
    client.app.state.decision_log.flush()
    ride_id, courier_id = _org_id(db, "示例出行"), _org_id(db, "示例速递")
    with db.session() as s:
        events = s.scalars(
            select(AuditEvent).where(AuditEvent.action == "security.enumeration_suspected")
        ).all()
        assert {e.target_id for e in events} == {str(ride_id), str(courier_id)}
        for e in events:
            assert set(e.detail["shape"]) <= {"#", "*"} and e.detail["identifier_type"] == "resident_id"
            assert e.detail["count"] >= settings.enumeration_threshold
            assert not any(c[6:14] in str(e.detail) for c in cands)

        # 4. Every call answered is in the decision log, with the candidates' digests.
        records = s.scalars(select(DecisionLogRecord).where(DecisionLogRecord.org_id == ride_id)).all()
        assert len(records) == len(answered)
        assert {r.kind for r in records} == {"decision"} and {r.purpose for r in records} == {"风控核验"}
        digests = set(
            s.scalars(
                select(DecisionLogIdentifier.digest).where(
                    DecisionLogIdentifier.record_id.in_([r.id for r in records])
                )
            )
        )
        assert digests == {vault.identifier_index("resident_id", c) for c in answered}
        lookups = s.scalars(
            select(DecisionLogRecord).where(
                DecisionLogRecord.org_id == courier_id, DecisionLogRecord.kind == "lookup"
            )
        ).all()
        assert len(lookups) == len(looked)
