"""Tenant isolation: another tenant's object answers exactly like a missing one (404)."""

import uuid

from sqlalchemy import func, select

from fanchaoxin.core.audit import AuditEvent
from fanchaoxin.core.roles import OrgKind, Role
from fanchaoxin.orgs.models import ApiKey


def _strip(problem: dict) -> dict:
    return {k: v for k, v in problem.items() if k not in ("detail", "instance")}


def test_enterprise_cannot_read_another_enterprise(client, world):
    a, b = world.enterprise("甲公司"), world.enterprise("乙公司")
    h = a.headers(Role.enterprise_operator)
    assert client.get(f"/v1/organisations/{a.org.id}", headers=h).status_code == 200
    other = client.get(f"/v1/organisations/{b.org.id}", headers=h)
    missing = client.get(f"/v1/organisations/{uuid.uuid4()}", headers=h)
    assert other.status_code == missing.status_code == 404
    assert _strip(other.json()) == _strip(missing.json())
    assert client.get(f"/v1/organisations/{b.org.id}/keys", headers=h).status_code == 404


def test_listing_shows_only_own_organisation(client, world):
    platform = world.platform()
    a, b = world.enterprise("甲公司"), world.enterprise("乙公司")
    dept = world.department("某局")
    names = {
        o["name"] for o in client.get("/v1/organisations", headers=a.headers(Role.enterprise_operator)).json()
    }
    assert names == {"甲公司"}
    names = {o["name"] for o in client.get("/v1/organisations", headers=dept.headers()).json()}
    assert names == {"某局"}
    everyone = client.get("/v1/organisations", headers=platform.headers(Role.auditor)).json()
    assert {o["name"] for o in everyone} == {"平台", "甲公司", "乙公司", "某局"}
    assert b.org.name in {o["name"] for o in everyone}


def test_cross_tenant_key_reads_and_writes_are_404_and_write_nothing(client, world, db):
    platform = world.platform()
    a, b = world.enterprise("甲公司"), world.enterprise("乙公司")
    b_keys = client.get(
        f"/v1/organisations/{b.org.id}/keys", headers=platform.headers(Role.platform_admin)
    ).json()
    b_key_id = b_keys[0]["id"]
    h = a.headers(Role.enterprise_operator)
    with db.session() as s:
        events_before = s.scalar(select(func.count()).select_from(AuditEvent))
        keys_before = s.scalar(select(func.count()).select_from(ApiKey))
    assert client.get(f"/v1/keys/{b_key_id}", headers=h).status_code == 404
    assert client.post(f"/v1/keys/{b_key_id}/revoke", json={"reason": "x"}, headers=h).status_code == 404
    r = client.post(f"/v1/organisations/{b.org.id}/keys", json={"role": "enterprise_node"}, headers=h)
    assert r.status_code == 404
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == events_before
        assert s.scalar(select(func.count()).select_from(ApiKey)) == keys_before
        assert all(k.revoked_at is None for k in s.scalars(select(ApiKey)))
    # b's key still works
    assert client.get("/v1/whoami", headers=b.headers(Role.enterprise_operator)).status_code == 200


def test_department_cannot_see_enterprise_keys(client, world):
    ent = world.enterprise()
    dept = world.department()
    assert client.get(f"/v1/organisations/{ent.org.id}/keys", headers=dept.headers()).status_code == 404
    assert client.get(f"/v1/organisations/{ent.org.id}", headers=dept.headers()).status_code == 404


def test_platform_admin_manages_any_tenant(client, world):
    platform = world.platform()
    ent = world.enterprise()
    r = client.post(
        f"/v1/organisations/{ent.org.id}/keys",
        json={"role": "enterprise_operator"},
        headers=platform.headers(Role.platform_admin),
    )
    assert r.status_code == 201
    assert r.json()["owner_org_id"] == str(ent.org.id)
    assert ent.org.kind == OrgKind.enterprise.value
