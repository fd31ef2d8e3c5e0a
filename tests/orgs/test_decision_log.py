"""orgs.decision_log: one record per subject decided, per look-up and per evaluation batch; digests,
never plain identifiers; the auditors' read API; the bounded queue."""

from __future__ import annotations

import json
import threading
import uuid
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from fanchaoxin.app import create_app
from fanchaoxin.core import vault
from fanchaoxin.core.audit import AuditEvent
from fanchaoxin.core.roles import Role
from fanchaoxin.orgs.decision_log import DecisionLogBusy, DecisionLogWriter, LogRecord
from fanchaoxin.orgs.models import DecisionLogRecord
from tests.blacklist.registry_helpers import RID_A, person_entry
from tests.sanctions.test_sanctions import publish


@pytest.fixture
def market(world):  # type: ignore[no-untyped-def]
    return {"platform": world.platform(), "shop": world.enterprise("电商"), "ride": world.enterprise("出行")}


def test_each_subject_decided_is_one_record_with_digests(client, market, db):
    entry_id = publish(db, market["shop"].org.id, person_entry())
    client.app.state.decision_index.invalidate()
    node = market["ride"].headers(Role.enterprise_node)
    body = {
        "scene": "account_registration",
        "purpose": "注册审核",
        "subjects": [
            {
                "identifiers": [
                    {"type": "resident_id", "value": RID_A},
                    {"type": "phone", "value": "13800138000"},
                ]
            },
            {"identifiers": [{"type": "phone", "value": "13912345678"}]},
        ],
    }
    r = client.post("/v1/decisions", json=body, headers=node)
    assert r.status_code == 200 and r.json()["results"][0]["entry_ids"] == [str(entry_id)]
    assert client.app.state.decision_log.flush() == 2
    auditor = market["platform"].headers(Role.auditor)
    page = client.get(
        "/v1/decision-log", params={"org_id": str(market["ride"].org.id), "kind": "decision"}, headers=auditor
    ).json()
    first, second = page["records"]
    assert first["verdict"] == r.json()["results"][0]["verdict"] and first["entry_ids"] == [str(entry_id)]
    assert second["verdict"] == "allow" and second["entry_ids"] == []
    assert {first["purpose"], second["purpose"]} == {"注册审核"} and first["scene"] == "account_registration"
    assert first["feed_seq"] == r.json()["feed_seq"] and first["policy_version"] == "2026.2"
    assert first["digests"] == sorted(
        [vault.identifier_index("resident_id", RID_A), vault.identifier_index("phone", "+8613800138000")]
    )
    assert first["identifier_count"] == 2 and first["channel"] == "platform"
    text = json.dumps(page)
    assert RID_A not in text and "13800138000" not in text and "13912345678" not in text
    with db.session() as s:
        ride_key = s.scalar(
            select(DecisionLogRecord.key_id).where(DecisionLogRecord.org_id == market["ride"].org.id)
        )
        reads = s.scalars(select(AuditEvent).where(AuditEvent.action == "decision_log.read")).all()
    assert ride_key is not None and len(reads) == 1 and reads[0].detail["count"] == 2


def test_the_read_api_pages_filters_and_is_for_record_keepers(client, market, db):
    node = market["shop"].headers(Role.enterprise_node)
    for n in range(5):
        client.post(
            "/v1/decisions",
            json={
                "scene": "account_registration",
                "identifiers": [{"type": "email", "value": f"u{n}@example.com"}],
            },
            headers=node,
        )
    client.post("/v1/lookup", json={"type": "email", "value": "x@example.com"}, headers=node)
    client.app.state.decision_log.flush()
    admin = market["platform"].headers(Role.platform_admin)
    seen: list[str] = []
    after = None
    while True:
        params = {"limit": 2, **({"after": after} if after else {})}
        page = client.get("/v1/decision-log", params=params, headers=admin).json()
        seen.extend(r["id"] for r in page["records"])
        after = page["next_after"]
        if after is None:
            break
    assert len(seen) == len(set(seen)) == 6
    lookups = client.get("/v1/decision-log", params={"kind": "lookup"}, headers=admin).json()["records"]
    assert len(lookups) == 1 and lookups[0]["verdict"] == "none"
    for role in (Role.platform_reviewer,):
        assert client.get("/v1/decision-log", headers=market["platform"].headers(role)).status_code == 403
    assert client.get("/v1/decision-log", headers=node).status_code == 403
    assert client.get("/v1/decision-log", params={"kind": "guess"}, headers=admin).status_code == 422


def test_the_log_is_flushed_when_the_application_stops(db, settings, market):
    settings.decision_log_flush_seconds = 3600  # only the shutdown writes
    app = create_app(settings, db=db)
    node = market["shop"].headers(Role.enterprise_node)
    with TestClient(app) as c:
        c.post("/v1/lookup", json={"type": "email", "value": "a@example.com"}, headers=node)
        assert app.state.decision_log.pending() == 1
    with db.session() as s:
        assert len(s.scalars(select(DecisionLogRecord)).all()) == 1


class _Away:
    """A database that is unreachable."""

    @contextmanager
    def session(self):  # type: ignore[no-untyped-def]
        raise ConnectionError("database away")
        yield


def test_a_full_queue_makes_requests_wait_then_refuses_and_keeps_every_record(settings):
    writer = DecisionLogWriter(_Away(), settings, max_pending=2, wait_seconds=0.05)  # type: ignore[arg-type]
    record = LogRecord(org_id=uuid.uuid4(), key_id=None, kind="lookup")
    writer.submit([record])
    assert writer.try_submit([record])
    assert not writer.try_submit([record])
    with pytest.raises(DecisionLogBusy) as exc:
        writer.submit([record])
    assert exc.value.status == 503 and exc.value.headers["Retry-After"]
    with pytest.raises(ConnectionError):
        writer.flush()
    assert writer.pending() == 2  # kept for the next flush
    writer.stop(timeout=5)


def test_a_waiting_request_goes_on_once_a_flush_makes_room(db, settings, market):
    writer = DecisionLogWriter(db, settings, max_pending=1, wait_seconds=30)
    org = market["shop"].org.id
    writer.submit([LogRecord(org_id=org, key_id=None, kind="lookup")])
    done = threading.Event()

    def second() -> None:
        writer.submit([LogRecord(org_id=org, key_id=None, kind="lookup")])
        done.set()

    t = threading.Thread(target=second)
    t.start()
    writer.flush()
    t.join(timeout=30)
    assert done.is_set()
    writer.stop(timeout=5)
    with db.session() as s:
        assert len(s.scalars(select(DecisionLogRecord)).all()) == 2
