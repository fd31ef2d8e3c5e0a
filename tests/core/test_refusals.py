"""A refused key is told only "invalid API key"; why it was refused goes to the audit log, in bounded
amounts whatever a flood sends (issue #13, point 8)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from fanchaoxin.core.audit import AuditEvent
from fanchaoxin.core.auth import RefusalLog, install_authenticator
from fanchaoxin.core.db import utcnow
from fanchaoxin.core.roles import Role
from fanchaoxin.orgs import service
from fanchaoxin.orgs.models import ApiKey, Organisation
from tests.console.console_helpers import csrf_of
from tests.core.clock import FakeClock


@pytest.fixture
def clock(app) -> FakeClock:  # type: ignore[no-untyped-def]
    c = FakeClock()
    install_authenticator(app, service.authenticate_key, clock=c)
    return c


def _refusals(db) -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    with db.session() as s:
        return list(
            s.scalars(select(AuditEvent).where(AuditEvent.action == "auth.refused").order_by(AuditEvent.id))
        )


def _bad_keys(world, db) -> dict[str, tuple[str, str | None]]:  # type: ignore[no-untyped-def]
    """reason → (the key sent, the prefix the audit row must name)."""
    good = world.enterprise("好企业").keys[Role.enterprise_node]
    revoked = world.enterprise("撤销企业").keys[Role.enterprise_node]
    expired = world.enterprise("过期企业").keys[Role.enterprise_node]
    dormant = world.enterprise("停用企业")
    inactive = dormant.keys[Role.enterprise_node]
    prefix = {k: k.split("_")[1] for k in (good, revoked, expired, inactive)}
    with db.session() as s:
        s.execute(update(ApiKey).where(ApiKey.prefix == prefix[revoked]).values(revoked_at=utcnow()))
        s.execute(
            update(ApiKey)
            .where(ApiKey.prefix == prefix[expired])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        s.execute(update(Organisation).where(Organisation.id == dormant.org.id).values(active=False))
    return {
        "malformed": ("not-a-key", None),
        "unknown": ("fcx_000000000000_nosuchsecret", None),
        "wrong_secret": (f"fcx_{prefix[good]}_wrongsecret", prefix[good]),
        "revoked": (revoked, prefix[revoked]),
        "expired": (expired, prefix[expired]),
        "organisation_inactive": (inactive, prefix[inactive]),
    }


def test_every_refusal_says_only_invalid_api_key(client, world, db, clock):
    bodies = []
    for key, _ in _bad_keys(world, db).values():
        for headers in ({"Authorization": f"Bearer {key}"}, {"X-API-Key": key}):
            r = client.get("/v1/whoami", headers=headers)
            assert r.status_code == 401
            assert r.headers["www-authenticate"].startswith("Bearer")
            bodies.append(r.json())
    r = client.get("/v1/whoami", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    bodies.append(r.json())
    assert all(
        b
        == {
            "type": "https://fanchaoxin.org/problems/unauthenticated",
            "title": "Invalid API key",
            "title_zh": "访问密钥无效",
            "status": 401,
            "detail": "Invalid API key",
            "code": "unauthenticated",
            "params": {},
            "instance": "/v1/whoami",
        }
        for b in bodies
    ), bodies


def test_the_reason_goes_to_the_audit_log_with_the_prefix_never_the_secret(client, world, db, clock):
    bad = _bad_keys(world, db)
    for key, _ in bad.values():
        assert client.get("/v1/whoami", headers={"X-API-Key": key}).status_code == 401
    rows = _refusals(db)
    assert {r.detail["reason"]: r.actor for r in rows} == {
        reason: f"key:{prefix}" if prefix else "public" for reason, (_, prefix) in bad.items()
    }
    with db.session() as s:
        ids = {k.prefix: str(k.id) for k in s.scalars(select(ApiKey))}
    for row in rows:
        prefix = bad[row.detail["reason"]][1]
        assert row.target_type == "api_key" and row.target_id == (ids[prefix] if prefix else "-")
        assert row.detail["route"] == "GET /v1/whoami"
    text = json.dumps([[r.actor, r.target_id, r.detail] for r in rows], ensure_ascii=False)
    for key, _ in bad.values():
        secret = key.split("_", 2)[-1]
        assert secret not in text


def test_a_flood_of_bad_keys_writes_one_row_per_reason_per_window(client, world, db, clock):
    bad = _bad_keys(world, db)
    for n in range(40):  # a different made-up key each time, and a stolen prefix guessed at
        assert client.get("/v1/whoami", headers={"X-API-Key": f"fcx_{n:012x}_guess{n}"}).status_code == 401
        assert (
            client.get("/v1/whoami", headers={"X-API-Key": bad["wrong_secret"][0] + str(n)}).status_code
            == 401
        )
    assert sorted(r.detail["reason"] for r in _refusals(db)) == ["unknown", "wrong_secret"]
    clock.advance(RefusalLog().window)
    assert client.get("/v1/whoami", headers={"X-API-Key": "fcx_ffffffffffff_x"}).status_code == 401
    rows = _refusals(db)
    assert len(rows) == 3
    assert rows[-1].detail == {**rows[-1].detail, "reason": "unknown", "folded": 39}


def test_refusals_on_granting_routes_are_audited_too(client, world, db, clock):
    """Those routes check the key in the request's own transaction, which the refusal rolls back."""
    ent = world.enterprise()
    key = ent.keys[Role.enterprise_operator]
    with db.session() as s:
        s.execute(update(ApiKey).where(ApiKey.prefix == key.split("_")[1]).values(revoked_at=utcnow()))
    r = client.post(
        f"/v1/organisations/{ent.org.id}/keys", json={"role": "enterprise_node"}, headers={"X-API-Key": key}
    )
    assert r.status_code == 401 and r.json()["detail"] == "Invalid API key"
    assert [(x.actor, x.detail["reason"]) for x in _refusals(db)] == [(f"key:{key.split('_')[1]}", "revoked")]


def test_a_refused_sign_in_to_the_console_says_only_invalid_api_key(client, world, db):
    key = world.enterprise().keys[Role.enterprise_operator]
    with db.session() as s:
        s.execute(update(ApiKey).where(ApiKey.prefix == key.split("_")[1]).values(revoked_at=utcnow()))
    token = csrf_of(client.get("/console/login").text)
    r = client.post("/console/login", data={"csrf_token": token, "method": "api_key", "api_key": key})
    assert r.status_code == 401
    assert "访问密钥无效" in r.text and "revoked" not in r.text and "吊销" not in r.text
