"""API keys: 401 for missing/unknown/expired/revoked, 403 for a wrong role."""

import uuid
from datetime import timedelta

from sqlalchemy import event, select, update

from fanchaoxin.core.audit import SYSTEM
from fanchaoxin.core.auth import Principal, PrincipalCache
from fanchaoxin.core.db import utcnow
from fanchaoxin.core.roles import Role
from fanchaoxin.orgs import service
from fanchaoxin.orgs.models import ApiKey


def test_missing_key_is_401_problem(client):
    r = client.get("/v1/whoami")
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["type"].endswith("/unauthenticated")
    assert body["title_zh"]
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_unknown_and_malformed_keys_are_401(client, world):
    ent = world.enterprise()
    good = ent.keys[Role.enterprise_operator]
    prefix = good.split("_")[1]
    for bad in ("nonsense", "fcx_deadbeef0000_xxxx", f"fcx_{prefix}_wrongsecret", good + "x"):
        r = client.get("/v1/whoami", headers={"Authorization": f"Bearer {bad}"})
        assert r.status_code == 401, bad
    r = client.get("/v1/whoami", headers={"Authorization": f"Basic {good}"})
    assert r.status_code == 401


def test_whoami_with_bearer_and_x_api_key(client, world):
    ent = world.enterprise()
    key = ent.keys[Role.enterprise_node]
    for headers in ({"Authorization": f"Bearer {key}"}, {"X-API-Key": key}):
        r = client.get("/v1/whoami", headers=headers)
        assert r.status_code == 200
        assert r.json()["role"] == "enterprise_node"
        assert r.json()["org_id"] == str(ent.org.id)


def test_expired_key_is_401(client, world, db):
    ent = world.enterprise()
    key = ent.keys[Role.enterprise_operator]
    with db.session() as s:
        s.execute(
            update(ApiKey)
            .where(ApiKey.prefix == key.split("_")[1])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    r = client.get("/v1/whoami", headers=ent.headers(Role.enterprise_operator))
    assert r.status_code == 401
    assert r.json()["detail"] == "Invalid API key"


def test_revoked_key_is_401_at_once(client, world):
    platform = world.platform()
    ent = world.enterprise()
    keys = client.get(
        f"/v1/organisations/{ent.org.id}/keys", headers=platform.headers(Role.platform_admin)
    ).json()
    node_key = next(k for k in keys if k["role"] == "enterprise_node")
    assert client.get("/v1/whoami", headers=ent.headers(Role.enterprise_node)).status_code == 200
    r = client.post(
        f"/v1/keys/{node_key['id']}/revoke",
        json={"reason": "node decommissioned"},
        headers=ent.headers(Role.enterprise_operator),
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "revoked"
    r = client.get("/v1/whoami", headers=ent.headers(Role.enterprise_node))
    assert r.status_code == 401
    assert r.json()["detail"] == "Invalid API key"
    again = client.post(
        f"/v1/keys/{node_key['id']}/revoke",
        json={"reason": "again"},
        headers=ent.headers(Role.enterprise_operator),
    )
    assert again.status_code == 409


def test_wrong_role_is_403(client, world):
    platform = world.platform()
    ent = world.enterprise()
    body = {"kind": "department", "name": "某部门", "department_kind": "market_regulation"}
    for headers in (
        ent.headers(Role.enterprise_operator),
        platform.headers(Role.auditor),
        platform.headers(Role.platform_reviewer),
    ):
        r = client.post("/v1/organisations", json=body, headers=headers)
        assert r.status_code == 403
        assert r.json()["type"].endswith("/forbidden")
    # the node is a machine: it manages no keys
    r = client.get(f"/v1/organisations/{ent.org.id}/keys", headers=ent.headers(Role.enterprise_node))
    assert r.status_code == 403


def test_key_secret_shown_once_and_stored_hashed(client, world, db):
    platform = world.platform()
    ent = world.enterprise()
    r = client.post(
        f"/v1/organisations/{ent.org.id}/keys",
        json={"role": "enterprise_node", "label": "node 2", "expires_in_days": 30},
        headers=ent.headers(Role.enterprise_operator),
    )
    assert r.status_code == 201, r.text
    issued = r.json()
    secret = issued["secret"]
    assert secret.startswith("fcx_")
    assert client.get("/v1/whoami", headers={"X-API-Key": secret}).json()["role"] == "enterprise_node"
    listed = client.get(
        f"/v1/organisations/{ent.org.id}/keys", headers=platform.headers(Role.platform_admin)
    ).json()
    assert all("secret" not in k for k in listed)
    shown = client.get(f"/v1/keys/{issued['id']}", headers=ent.headers(Role.enterprise_operator)).json()
    assert "secret" not in shown
    with db.session() as s:
        stored = s.get(ApiKey, __import__("uuid").UUID(issued["id"]))
        assert secret.split("_", 2)[2] not in (stored.secret_hash, stored.prefix)
        assert len(stored.secret_hash) == 64


def test_operator_cannot_escalate(client, world):
    ent = world.enterprise()
    r = client.post(
        f"/v1/organisations/{ent.org.id}/keys",
        json={"role": "platform_admin"},
        headers=ent.headers(Role.enterprise_operator),
    )
    assert r.status_code == 403


def test_role_must_fit_organisation_kind(client, world):
    platform = world.platform()
    ent = world.enterprise()
    r = client.post(
        f"/v1/organisations/{ent.org.id}/keys",
        json={"role": "platform_reviewer"},
        headers=platform.headers(Role.platform_admin),
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "role"


def test_key_lifetime_is_bounded(client, world):
    platform = world.platform()
    ent = world.enterprise()
    r = client.post(
        f"/v1/organisations/{ent.org.id}/keys",
        json={"role": "enterprise_node", "expires_in_days": 100000},
        headers=platform.headers(Role.platform_admin),
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "expires_in_days"


def _api_key_queries(db):
    """Count the statements that read api_keys while the returned list is live."""

    seen: list[str] = []

    def listener(conn, cursor, statement, params, context, executemany):
        if "api_keys" in statement and statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", listener)
    return seen, lambda: event.remove(db.engine, "before_cursor_execute", listener)


def test_an_authenticated_key_is_reused_without_a_query(client, world, db):
    ent = world.enterprise()
    headers = ent.headers(Role.enterprise_node)
    assert client.get("/v1/whoami", headers=headers).status_code == 200
    seen, stop = _api_key_queries(db)
    try:
        for _ in range(3):
            assert client.get("/v1/whoami", headers=headers).json()["role"] == "enterprise_node"
    finally:
        stop()
    assert seen == []


def test_the_cache_can_be_turned_off(client, world, db):
    ent = world.enterprise()
    headers = ent.headers(Role.enterprise_node)
    client.app.state.settings.auth_cache_seconds = 0
    try:
        seen, stop = _api_key_queries(db)
        try:
            for _ in range(2):
                assert client.get("/v1/whoami", headers=headers).status_code == 200
        finally:
            stop()
        assert len(seen) == 2
    finally:
        client.app.state.settings.auth_cache_seconds = 30


def test_a_cached_key_is_refused_once_revoked_through_the_service(client, world, db):
    """As `fcx key revoke` does it: in this process, every application forgets the key at once."""
    ent = world.enterprise()
    headers = ent.headers(Role.enterprise_node)
    assert client.get("/v1/whoami", headers=headers).status_code == 200  # now cached
    with db.session() as s:
        prefix = headers["Authorization"].split("_")[1]
        key = s.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
        service.revoke_key(s, SYSTEM, key, reason="leaked")
    r = client.get("/v1/whoami", headers=headers)
    assert r.status_code == 401 and r.json()["detail"] == "Invalid API key"


def test_cache_entries_never_outlive_the_key():
    cache = PrincipalCache(max_entries=2)
    p = Principal(role=Role.enterprise_node, org_id=uuid.uuid4(), key_prefix="abc")
    cache.put("gone", p, 30, utcnow() - timedelta(seconds=1))
    assert cache.get("gone") is None
    cache.put("a", p, 30, utcnow() + timedelta(days=1))
    cache.put("b", p, 30, None)
    cache.put("c", p, 30, None)  # bounded: the oldest goes
    assert cache.get("a") is None and cache.get("c") is p
    cache.invalidate(org_id=p.org_id)
    assert cache.get("b") is None and cache.get("c") is None
