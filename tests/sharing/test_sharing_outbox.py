"""Webhooks from the transactional outbox, against a real local HTTP receiver."""

from __future__ import annotations

import json
import random
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from sqlalchemy import select

from fanchaoxin.core.audit import Actor, AuditEvent
from fanchaoxin.core.db import utcnow
from fanchaoxin.core.roles import Role
from fanchaoxin.orgs import agreements
from fanchaoxin.orgs.models import Organisation
from fanchaoxin.sharing import outbox, protocol
from fanchaoxin.sharing.models import OutboxItem
from tests.blacklist.registry_helpers import RID_A, RID_B, USCC_A, USCC_B, judicial, person_entry
from tests.sharing import test_sharing
from tests.sharing.test_sharing import publish

# The same fixtures as tests/test_sharing.py (a key dir per test, a market of organisations).
settings = test_sharing.settings
market = test_sharing.market


class Receiver:
    """A tiny webhook receiver on a free port: verifies MACs, dedupes by event id, can be told to fail."""

    def __init__(self) -> None:
        self.secret = b""
        self.fail_next = 0
        self.accepted: list[dict] = []
        self.refused: list[str] = []
        self.seen: set[str] = set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.fail_next > 0:
                    receiver.fail_next -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                try:
                    protocol.verify_webhook(
                        receiver.secret, self.headers, body, seen=receiver.seen.__contains__
                    )
                except protocol.ProtocolError as exc:
                    receiver.refused.append(str(exc))
                    # A replay is acknowledged (already have it); a bad MAC is refused.
                    self.send_response(200 if "already received" in str(exc) else 401)
                    self.end_headers()
                    return
                receiver.seen.add(self.headers["X-FCX-Event-Id"])
                receiver.accepted.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers():  # type: ignore[no-untyped-def]
    made: list[Receiver] = []

    def make() -> Receiver:
        made.append(Receiver())
        return made[-1]

    yield make
    for r in made:
        r.close()


def subscribe(client, headers, receiver):  # type: ignore[no-untyped-def]
    r = client.post("/v1/sharing/webhooks", headers=headers, json={"url": receiver.url})
    assert r.status_code == 201, r.text
    receiver.secret = r.json()["secret"].encode()
    return r.json()


def test_enterprises_get_tags_departments_get_punishing_entries_in_full(
    client, market, db, settings, receivers
):
    shop, dept = receivers(), receivers()
    hook = subscribe(client, market["shop"].headers(Role.enterprise_operator), shop)
    subscribe(client, market["dept"].headers(), dept)
    listed = client.get(
        "/v1/sharing/webhooks", headers=market["shop"].headers(Role.enterprise_operator)
    ).json()
    assert [h["id"] for h in listed] == [hook["id"]] and "secret" not in listed[0]

    person = publish(db, market["ride"].org.id, person_entry())  # enterprise finding: not for departments
    unit = publish(db, market["ride"].org.id, judicial())  # judicial decision: departments too
    person_judicial = publish(
        db,
        market["ride"].org.id,
        person_entry(
            basis="administrative_penalty",
            document_number="京市监罚〔2026〕12号",
            issuing_authority="北京市市场监督管理局",
            severity="general",
            subject={
                "kind": "individual",
                "name": "王五",
                "identifiers": [{"type": "resident_id", "value": RID_B}],
            },
        ),
    )
    assert outbox.deliver_due(db, settings=settings) == {"delivered": 5, "failed": 0, "dead": 0}

    shop_entries = {b["record"]["entry_id"]: b for b in shop.accepted}
    assert set(shop_entries) >= {str(person), str(unit), str(person_judicial)}
    raw = json.dumps(shop.accepted, ensure_ascii=False)
    for secret in ("张小三", "王五", RID_A, RID_B, "13800138000"):
        assert secret not in raw
    assert all(b["event_id"] == f"evt_{b['seq']}" for b in shop.accepted)
    assert shop_entries[str(person)]["record"]["tags"]

    dept_entries = {b["record"]["entry_id"]: b["record"] for b in dept.accepted}
    assert set(dept_entries) == {str(unit), str(person_judicial)}
    assert dept_entries[str(person_judicial)]["subject_name"] == "王五"
    assert dept_entries[str(person_judicial)]["identifiers"] == [f"resident_id:{RID_B}"]
    assert dept_entries[str(unit)]["identifiers"] == [f"uscc:{USCC_A}"]
    with db.session() as s:
        audited = s.scalars(
            select(AuditEvent).where(AuditEvent.action == "sharing.department_delivery")
        ).all()
    assert sorted(a.target_id for a in audited) == sorted(dept_entries)
    assert {tuple(a.detail["fields"]) for a in audited} >= {("name", "resident_id")}
    assert not shop.refused and not dept.refused

    # Unsubscribed: nothing more is queued for it.
    r = client.delete(
        f"/v1/sharing/webhooks/{hook['id']}", headers=market["shop"].headers(Role.enterprise_operator)
    )
    assert r.status_code == 204
    publish(
        db,
        market["ride"].org.id,
        judicial(
            subject={"kind": "unit", "name": "另一家公司", "identifiers": [{"type": "uscc", "value": USCC_B}]}
        ),
    )
    assert outbox.deliver_due(db, settings=settings)["delivered"] == 1  # the department only


def test_a_suspended_enterprise_gets_no_webhook_deliveries(client, market, db, settings, receivers):
    """#22: suspension stops the feed at once, pushed deliveries included; the department's go on."""
    shop, dept = receivers(), receivers()
    subscribe(client, market["shop"].headers(Role.enterprise_operator), shop)
    subscribe(client, market["dept"].headers(), dept)
    publish(db, market["ride"].org.id, judicial())
    with db.session() as s:
        agreements.suspend(s, Actor("test:admin"), s.get(Organisation, market["shop"].org.id), "滥用查询")
    assert outbox.deliver_due(db, settings=settings) == {"delivered": 1, "failed": 0, "dead": 0}
    assert shop.accepted == [] and len(dept.accepted) == 1
    with db.session() as s:
        held = s.scalars(select(OutboxItem).where(OutboxItem.status == "cancelled")).all()
        assert len(held) == 1 and "agreement" in (held[0].last_error or "")


def test_retry_with_backoff_dead_letter_and_replay(client, market, db, settings, receivers):
    settings.sharing_webhook_max_attempts = 3
    rx = receivers()
    subscribe(client, market["shop"].headers(Role.enterprise_node), rx)
    publish(db, market["ride"].org.id, judicial())
    rng = random.Random(7)

    rx.fail_next = 1
    t0 = utcnow()
    assert outbox.deliver_due(db, settings=settings, now=t0, rng=rng) == {
        "delivered": 0,
        "failed": 1,
        "dead": 0,
    }
    with db.session() as s:
        item = s.scalars(select(OutboxItem)).one()
        assert (item.status, item.attempts, item.last_status) == ("pending", 1, 503)
        wait = (item.next_attempt_at - t0).total_seconds()
    assert 1.0 <= wait <= 2.5  # base 2 s with jitter: between 1 and 2 s after the attempt
    assert outbox.deliver_due(db, settings=settings, now=t0)["delivered"] == 0  # not due yet
    t1 = t0 + timedelta(seconds=3)
    assert outbox.deliver_due(db, settings=settings, now=t1)["delivered"] == 1
    assert len(rx.accepted) == 1

    # Another event; the receiver is down for good → dead after 3 attempts, listed for admins.
    publish(
        db,
        market["ride"].org.id,
        judicial(
            subject={"kind": "unit", "name": "二号公司", "identifiers": [{"type": "uscc", "value": USCC_B}]}
        ),
    )
    rx.fail_next = 100
    now = utcnow()
    results = []
    for _ in range(3):
        results.append(outbox.deliver_due(db, settings=settings, now=now, rng=rng))
        now += timedelta(hours=2)
    assert [r["dead"] for r in results] == [0, 0, 1]
    admin = market["platform"].headers(Role.platform_admin)
    dead = client.get("/v1/sharing/dead-letters", headers=admin).json()
    assert len(dead) == 1 and dead[0]["attempts"] == 3 and "503" in dead[0]["last_error"]
    assert outbox.deliver_due(db, settings=settings, now=now + timedelta(days=1)) == {
        "delivered": 0,
        "failed": 0,
        "dead": 0,
    }

    rx.fail_next = 0
    r = client.post(f"/v1/sharing/dead-letters/{dead[0]['id']}/replay", headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "pending"
    assert client.post(f"/v1/sharing/dead-letters/{dead[0]['id']}/replay", headers=admin).status_code == 409
    assert outbox.deliver_due(db, settings=settings)["delivered"] == 1
    assert [b["seq"] for b in rx.accepted] == [rx.accepted[0]["seq"], dead[0]["seq"]]
    assert client.get("/v1/sharing/dead-letters", headers=admin).json() == []

    # At least once: a replayed delivery of an event already received is recognised by its id.
    with db.session() as s:
        item = s.scalars(select(OutboxItem).where(OutboxItem.seq == dead[0]["seq"])).one()
        item.status, item.next_attempt_at = "pending", utcnow()
    assert outbox.deliver_due(db, settings=settings)["delivered"] == 1
    assert len(rx.accepted) == 2 and any("already received" in m for m in rx.refused)
    with db.session() as s:
        assert s.scalars(select(AuditEvent).where(AuditEvent.action == "sharing.dead_letter.replay")).one()


def test_bad_mac_and_stale_timestamp_are_refused(receivers):
    rx = receivers()
    rx.secret = b"right"

    body = b'{"event_id":"evt_1"}'
    with httpx.Client() as c:
        assert (
            c.post(
                rx.url, content=body, headers=protocol.webhook_headers(b"wrong", "evt_1", body)
            ).status_code
            == 401
        )
        old = protocol.webhook_headers(b"right", "evt_1", body, now=1_000_000)
        assert c.post(rx.url, content=body, headers=old).status_code == 401
        assert (
            c.post(
                rx.url, content=body, headers=protocol.webhook_headers(b"right", "evt_1", body)
            ).status_code
            == 204
        )
    assert "bad MAC" in rx.refused[0] and "stale" in rx.refused[1]


def test_webhook_rules(client, market):
    op = market["shop"].headers(Role.enterprise_operator)
    r = client.post("/v1/sharing/webhooks", headers=op, json={"url": "ftp://example.com/x"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "url"
    r = client.post(
        "/v1/sharing/webhooks",
        headers=op,
        json={"url": "https://a.example/x", "org_id": str(market["ride"].org.id)},
    )
    assert r.status_code == 404
    admin = market["platform"].headers(Role.platform_admin)
    r = client.post(
        "/v1/sharing/webhooks",
        headers=admin,
        json={"url": "https://a.example/x", "org_id": str(market["ride"].org.id)},
    )
    assert r.status_code == 201 and r.json()["audience"] == "enterprise"
    r = client.post("/v1/sharing/webhooks", headers=admin, json={"url": "https://a.example/x"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "org_id"
    other = client.get("/v1/sharing/webhooks", headers=op).json()
    assert other == []
    hook_id = client.get("/v1/sharing/webhooks", headers=admin).json()[0]["id"]
    assert client.delete(f"/v1/sharing/webhooks/{hook_id}", headers=op).status_code == 404
    assert (
        client.post(
            "/v1/sharing/webhooks",
            headers=market["platform"].headers(Role.auditor),
            json={"url": "https://b.example"},
        ).status_code
        == 403
    )


def test_webhook_urls_on_the_platforms_own_network_are_refused(client, market, settings):
    op = market["shop"].headers(Role.enterprise_operator)
    settings.sharing_webhook_allow_private = False
    for url in ("http://127.0.0.1:5432/", "http://localhost/x", "http://10.1.2.3/hook", "http://[::1]/x"):
        r = client.post("/v1/sharing/webhooks", headers=op, json={"url": url})
        assert r.status_code == 422, url
        assert r.json()["errors"][0]["field"] == "url" and "private" in r.json()["errors"][0]["message"]
    assert client.get("/v1/sharing/webhooks", headers=op).json() == []
