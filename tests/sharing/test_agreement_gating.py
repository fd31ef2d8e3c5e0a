"""Issue #22's "done when" for agreements: an enterprise without a signed agreement cannot read the shared
list (403 naming the reason); one that signs can; a suspension refuses the feed, evaluation and
instructions at once, with its reason; departments are not gated."""

from __future__ import annotations

from datetime import timedelta

from fanchaoxin.core.audit import SYSTEM
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.roles import Role
from fanchaoxin.orgs import agreements
from fanchaoxin.orgs.models import Organisation

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF"


def _problem(r, status: int) -> dict:  # type: ignore[no-untyped-def,type-arg]
    assert r.status_code == status, r.text
    return r.json()  # type: ignore[no-any-return]


def _sign(client, shop, version: str, pdf: bytes = PDF, **form: str):  # type: ignore[no-untyped-def]
    data = {"version": version, "signatory": "张三", "signatory_title": "法务总监",
            "signed_on": china_today().isoformat()} | form  # fmt: skip
    return client.post(
        f"/v1/organisations/{shop.org.id}/agreement/signatures",
        data=data,
        files={"file": ("协议.pdf", pdf, "application/pdf")},
        headers=shop.headers(Role.enterprise_operator),
    )


def test_the_shared_list_needs_an_agreement_in_force(client, world, db):  # type: ignore[no-untyped-def]
    platform = world.platform()
    shop = world.enterprise("未签约电商")
    other = world.enterprise("另一电商")
    dept = world.department()
    with db.session() as s:  # registered, not signed (a legacy date would count as signed)
        s.get(Organisation, shop.org.id).agreement_signed_on = None
    node, operator = shop.headers(Role.enterprise_node), shop.headers(Role.enterprise_operator)
    admin = platform.headers(Role.platform_admin)

    body = _problem(client.get("/v1/feed", headers=node), 403)
    assert body["code"] == "agreement.none"
    assert _problem(client.get("/v1/sharing/manifest", headers=node), 403)["code"] == "agreement.none"
    assert _problem(client.post("/v1/decisions", json={}, headers=node), 403)["code"] == "agreement.none"
    assert _problem(client.get("/v1/instructions", headers=operator), 403)["code"] == "agreement.none"
    # a legacy participant and a department are not affected
    assert client.get("/v1/feed", headers=other.headers(Role.enterprise_node)).status_code == 200
    assert client.get("/v1/instructions", headers=dept.headers(Role.department_officer)).status_code == 200

    # the platform publishes a version; the enterprise applies and signs it
    today = china_today()
    r = client.post(
        "/v1/agreements/versions",
        json={"version": "2026.1", "title": "反炒信信息共享协议", "text_zh": "第一条……",
              "summary_en": "Share, do not leak.", "published_on": today.isoformat()},
        headers=admin,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    assert client.get("/v1/agreements/versions/current", headers=operator).json()["version"] == "2026.1"
    r = client.post(f"/v1/organisations/{shop.org.id}/agreement/application", headers=operator)
    assert r.status_code == 201 and r.json()["standing"]["code"] == "agreement.applied", r.text
    assert _problem(client.get("/v1/feed", headers=node), 403)["code"] == "agreement.applied"

    # bad input: the field is named and nothing is written
    bad = _problem(_sign(client, shop, "2025.9"), 409)
    assert (bad["code"], bad["errors"][0]["field"]) == ("agreement.version_not_current", "version")
    bad = _problem(_sign(client, shop, "2026.1", pdf=b"PK\x03\x04 a zip"), 422)
    assert (bad["code"], bad["errors"][0]["field"]) == ("agreement.not_pdf", "file")
    future = (today + timedelta(days=1)).isoformat()
    assert _problem(_sign(client, shop, "2026.1", signed_on=future), 422)["errors"][0]["field"] == "signed_on"
    assert _problem(_sign(client, shop, "2026.1", signatory=""), 422)["errors"][0]["field"] == "signatory"

    r = _sign(client, shop, "2026.1")
    assert r.status_code == 201, r.text
    signature = r.json()
    assert signature["pdf_size"] == len(PDF) and len(signature["pdf_sha256"]) == 64
    assert client.get("/v1/feed", headers=node).status_code == 200
    assert client.get("/v1/instructions", headers=operator).status_code == 200
    pdf = client.get(
        f"/v1/organisations/{shop.org.id}/agreement/signatures/{signature['id']}/pdf", headers=operator
    )
    assert pdf.status_code == 200 and pdf.content == PDF
    # tenancy: an enterprise sees only its own
    foreign = other.headers(Role.enterprise_operator)
    assert client.get(f"/v1/organisations/{shop.org.id}/agreement", headers=foreign).status_code == 404
    assert (
        client.post(
            f"/v1/organisations/{shop.org.id}/agreement/suspension", json={"reason": "x"}, headers=operator
        ).status_code
        == 403
    )

    # the platform suspends it: refused at once, with the reason
    r = client.post(
        f"/v1/organisations/{shop.org.id}/agreement/suspension", json={"reason": "数据泄露"}, headers=admin
    )
    assert r.status_code == 200 and r.json()["standing"]["code"] == "agreement.suspended", r.text
    for r in (
        client.get("/v1/feed", headers=node),
        client.get("/v1/sharing/deltas", params={"after": 0}, headers=node),
        client.post("/v1/sharing/evaluate", json={"blinded": []}, headers=node),
        client.get("/v1/instructions", headers=operator),
        client.post("/v1/instructions/ack", json={"ids": []}, headers=operator),
    ):
        body = _problem(r, 403)
        assert (body["code"], body["params"]["reason"]) == ("agreement.suspended", "数据泄露")
    parts = client.get("/v1/agreements/participants", headers=admin).json()
    assert {p["name"]: p["standing"]["code"] for p in parts} == {
        "未签约电商": "agreement.suspended",
        "另一电商": "agreement.in_force",
    }
    assert client.get("/v1/instructions", headers=dept.headers(Role.department_officer)).status_code == 200

    r = client.post(f"/v1/organisations/{shop.org.id}/agreement/reinstatement", json={}, headers=admin)
    assert r.status_code == 200 and r.json()["standing"]["in_force"], r.text
    assert client.get("/v1/feed", headers=node).status_code == 200
    r = client.post(
        f"/v1/organisations/{shop.org.id}/agreement/withdrawal", json={"reason": "业务调整"}, headers=operator
    )
    assert r.status_code == 200, r.text
    assert _problem(client.get("/v1/feed", headers=node), 403)["code"] == "agreement.withdrawn"


def test_a_suspension_made_elsewhere_reaches_the_api_within_the_check(client, world, db):  # type: ignore[no-untyped-def]
    """The CLI (another process) suspends: the API's cached principal is forgotten when the revocation
    epoch moves (here: at once, the check interval being 0 in tests or the cache emptied by this process)."""
    shop = world.enterprise()
    node = shop.headers(Role.enterprise_node)
    assert client.get("/v1/feed", headers=node).status_code == 200
    with db.session() as s:
        agreements.suspend(s, SYSTEM, s.get(Organisation, shop.org.id), "滥用查询")
    body = _problem(client.get("/v1/feed", headers=node), 403)
    assert body["params"]["reason"] == "滥用查询"
