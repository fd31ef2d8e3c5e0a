"""Bad input: problem+json naming the field, and nothing written."""

from sqlalchemy import func, select

from fanchaoxin.core.audit import AuditEvent
from fanchaoxin.core.identifiers import mask
from fanchaoxin.core.roles import Role
from fanchaoxin.orgs.models import Organisation


def _counts(db):
    with db.session() as s:
        return (
            s.scalar(select(func.count()).select_from(Organisation)),
            s.scalar(select(func.count()).select_from(AuditEvent)),
        )


def _problem(r, status):
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert {"type", "title", "title_zh", "status", "detail"} <= body.keys()
    assert body["status"] == status
    return body


def test_malformed_json(client, world, db):
    platform = world.platform()
    before = _counts(db)
    r = client.post(
        "/v1/organisations",
        content=b'{"kind": "department", "name": ',
        headers={**platform.headers(Role.platform_admin), "Content-Type": "application/json"},
    )
    body = _problem(r, 400)
    assert body["type"].endswith("/malformed-body")
    assert _counts(db) == before


def test_wrong_types_and_unknown_fields_list_every_field(client, world, db):
    platform = world.platform()
    before = _counts(db)
    r = client.post(
        "/v1/organisations",
        json={"kind": "bank", "name": 42, "declared_users": "many", "colour": "red"},
        headers=platform.headers(Role.platform_admin),
    )
    body = _problem(r, 422)
    fields = {e["field"] for e in body["errors"]}
    assert {"kind", "name", "declared_users", "colour"} <= fields
    assert _counts(db) == before


def test_invalid_uscc_names_the_field_and_writes_nothing(client, world, db):
    platform = world.platform()
    before = _counts(db)
    r = client.post(
        "/v1/organisations",
        json={
            "kind": "enterprise",
            "name": "某公司",
            "uscc": "91110000600037341X",
            "business_types": ["ecommerce"],
            "agreement_signed_on": "2020-01-01",
        },
        headers=platform.headers(Role.platform_admin),
    )
    body = _problem(r, 422)
    assert body["errors"][0]["field"] == "uscc"
    assert body["errors"][0]["type"].startswith("uscc.")
    assert _counts(db) == before


def test_enterprise_needs_business_type_then_applies_and_signs(client, world):
    platform = world.platform()
    r = client.post(
        "/v1/organisations",
        json={"kind": "enterprise", "name": "某公司"},
        headers=platform.headers(Role.platform_admin),
    )
    assert _problem(r, 422)["errors"][0]["field"] == "business_types"
    # Registered without an agreement (#22): it applies and signs afterwards (orgs.agreements).
    r = client.post(
        "/v1/organisations",
        json={"kind": "enterprise", "name": "某公司", "business_types": ["logistics"]},
        headers=platform.headers(Role.platform_admin),
    )
    assert r.status_code == 201, r.text
    r = client.post(
        "/v1/organisations",
        json={"kind": "enterprise", "name": "另一公司", "business_types": ["logistics"], "contact_email": "x"},
        headers=platform.headers(Role.platform_admin),
    )
    assert _problem(r, 422)["errors"][0]["field"] == "contact_email"


def test_full_width_uscc_is_normalised(client, world):
    platform = world.platform()
    r = client.post(
        "/v1/organisations",
        json={
            "kind": "enterprise",
            "name": "某公司",
            "uscc": "９１１１００００６０００３７３４１Ｌ",
            "business_types": ["ecommerce"],
            "agreement_signed_on": "2020-01-01",
        },
        headers=platform.headers(Role.platform_admin),
    )
    assert r.status_code == 201, r.text
    assert r.json()["uscc"] == "91110000600037341L"
    dup = client.post(
        "/v1/organisations",
        json={
            "kind": "enterprise",
            "name": "另一公司",
            "uscc": "91110000600037341L",
            "business_types": ["ecommerce"],
            "agreement_signed_on": "2020-01-01",
        },
        headers=platform.headers(Role.platform_admin),
    )
    _problem(dup, 409)


def test_oversized_body_is_413(client, world, db):
    platform = world.platform()
    before = _counts(db)
    big = {"kind": "department", "name": "x" * (3 * 1024 * 1024)}
    r = client.post("/v1/organisations", json=big, headers=platform.headers(Role.platform_admin))
    _problem(r, 413)

    def chunks():
        for _ in range(40):
            yield b"x" * 65536

    r = client.post(
        "/v1/organisations",
        content=chunks(),
        headers={**platform.headers(Role.platform_admin), "Content-Type": "application/json"},
    )
    _problem(r, 413)
    assert _counts(db) == before


def test_unknown_route_and_method(client):
    _problem(client.get("/v1/nothing-here"), 404)
    _problem(client.delete("/healthz"), 405)


def test_bad_path_parameter_names_it(client, world):
    platform = world.platform()
    body = _problem(client.get("/v1/organisations/not-a-uuid", headers=platform.headers(Role.auditor)), 422)
    assert body["errors"][0]["field"] == "org_id"
    assert body["errors"][0]["in"] == "path"


def test_identifier_check_endpoint(client, world):
    ent = world.enterprise()
    h = ent.headers(Role.enterprise_operator)
    ok = client.post("/v1/identifiers/validate", json={"type": "phone", "value": "138 0013 8000"}, headers=h)
    assert ok.status_code == 200, ok.text
    assert ok.json()["value"] == "+8613800138000"
    assert ok.json()["masked"] == mask("phone", "+8613800138000")
    bad = client.post(
        "/v1/identifiers/validate", json={"type": "resident_id", "value": "110101199003071235"}, headers=h
    )
    body = _problem(bad, 422)
    assert body["errors"][0]["field"] == "value"
    assert body["errors"][0]["type"].startswith("resident_id.")
