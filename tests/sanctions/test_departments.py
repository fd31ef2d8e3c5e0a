"""Departments by competence: kinds, the memoranda measures each kind implements, the feed, feedback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from fanchaoxin.cli import app as cli
from fanchaoxin.core.audit import AuditEvent
from fanchaoxin.core.catalogue import CATALOGUE_DIR, CatalogueError
from fanchaoxin.core.roles import BusinessType as B
from fanchaoxin.core.roles import Role
from fanchaoxin.orgs.department_kinds import department_kinds, load_department_kinds, receives
from fanchaoxin.orgs.models import Organisation
from fanchaoxin.sanctions.models import Instruction
from fanchaoxin.sanctions.policy import measure_catalogue
from fanchaoxin.sharing.models import OutboxItem
from tests.blacklist.registry_helpers import USCC_A, USCC_B, judicial
from tests.console.test_console import make_user, sign_in
from tests.sanctions.test_sanctions import instructions_by_org, publish

KINDS = ("ndrc", "pboc", "cyberspace", "public_security", "commerce", "market_regulation", "posts", "finance")


@pytest.fixture
def depts(world):  # type: ignore[no-untyped-def]
    made = {
        "platform": world.platform(),
        "shop": world.enterprise("电商", business_types=[B.ecommerce]),
        "nokind": world.department("旧部门"),
    }
    for kind in KINDS:
        made[kind] = world.department(f"{kind} 局", kind=kind)
    # a department made before kinds (migration 0015 leaves it without one)
    with world.db.session() as s:
        s.execute(
            update(Organisation).where(Organisation.id == made["nokind"].org.id).values(department_kind=None)
        )
    return made


def penalty(severity: str = "serious", behaviours: tuple[str, ...] = ("empty_parcel",), **over):  # type: ignore[no-untyped-def]
    body = judicial(
        basis="administrative_penalty",
        document_number="深邮罚〔2026〕3号",
        issuing_authority="深圳市邮政管理局",
        severity=severity,
        behaviours=list(behaviours),
        subject={
            "kind": "courier_company",
            "name": "某速运有限公司",
            "identifiers": [{"type": "uscc", "value": USCC_A}],
        },
    )
    body.update(over)
    return body


def by_kind(depts, got):  # type: ignore[no-untyped-def]
    return {kind: got.get(depts[kind].org.id, set()) for kind in (*KINDS, "nokind")}


# --- the catalogues --------------------------------------------------------------------------------------


def test_every_kind_and_every_department_measure_names_its_source():
    kinds = department_kinds()
    assert set(kinds) == set(KINDS)
    assert all(k.source and k.zh and k.en for k in kinds.values())
    assert kinds["posts"].competence == ("empty_parcel",)
    assert set(kinds["public_security"].competence) == {"personal_data_trade", "malicious_registration"}
    assert kinds["ndrc"].competence == "all" and kinds["pboc"].competence == "all"
    for d in measure_catalogue().department_measures.values():
        assert d.memorandum and d.min_severity == "serious" and set(d.department_kinds) <= set(KINDS)
    # every kind implements something
    implemented = {k for d in measure_catalogue().department_measures.values() for k in d.department_kinds}
    assert implemented == set(KINDS)


def test_receiving_is_by_basis_and_competence():
    assert receives("posts", basis="administrative_penalty", behaviours=["empty_parcel"])
    assert not receives("public_security", basis="administrative_penalty", behaviours=["empty_parcel"])
    assert receives(
        "public_security", basis="judicial_decision", behaviours=["order_brushing", "personal_data_trade"]
    )
    assert not receives("posts", basis="enterprise_finding", behaviours=["empty_parcel"])
    assert not receives(None, basis="judicial_decision", behaviours=["empty_parcel"])
    assert not receives("gone", basis="judicial_decision", behaviours=["empty_parcel"])


def test_a_kind_with_an_unknown_behaviour_is_refused(tmp_path: Path):
    text = (CATALOGUE_DIR / "department_kinds.yaml").read_text(encoding="utf-8")
    bad = tmp_path / "department_kinds.yaml"
    bad.write_text(
        text.replace("competence: [empty_parcel]", "competence: [empty_parcel, parcels]"), encoding="utf-8"
    )
    line = next(i for i, s in enumerate(bad.read_text().splitlines(), 1) if "parcels]" in s)
    with pytest.raises(CatalogueError) as exc:
        load_department_kinds(bad)
    assert str(exc.value).startswith(
        f"department_kinds.yaml:{line}: posts.competence[1]: unknown behaviour 'parcels'"
    )


# --- creating a department ---------------------------------------------------------------------------------


def test_a_department_needs_a_known_kind(client, world, db):
    admin = world.platform().headers(Role.platform_admin)
    for body, message in (
        ({"kind": "department", "name": "某局"}, "a department needs a kind"),
        ({"kind": "department", "name": "某局", "department_kind": "police"}, "unknown department kind 'police'"),
        (
            {"kind": "enterprise", "name": "某公司", "business_types": ["ecommerce"], "agreement_signed_on": "2017-01-01",
             "department_kind": "posts"},
            "only departments have a department kind",
        ),
    ):  # fmt: skip
        r = client.post("/v1/organisations", json=body, headers=admin)
        assert r.status_code == 422, r.text
        error = r.json()["errors"][0]
        assert error["field"] == "department_kind" and message in error["message"]
        if "kind" in message and "only" not in message:
            assert "market_regulation" in error["message"] and "posts" in error["message"]
    r = client.post("/v1/organisations", json={"kind": "department", "name": "某邮政管理局", "department_kind": "posts"},
                    headers=admin)  # fmt: skip
    assert r.status_code == 201 and r.json()["department_kind"] == "posts"
    assert (
        client.get(f"/v1/organisations/{r.json()['id']}", headers=admin).json()["department_kind"] == "posts"
    )
    with db.session() as s:
        assert s.scalar(select(Organisation.id).where(Organisation.name == "某局")) is None


def test_department_kinds_on_the_cli(db, settings):
    runner = CliRunner()
    r = runner.invoke(
        cli, ["org", "add", "--kind", "department", "--name", "某局", "--department-kind", "police"]
    )
    assert (
        r.exit_code == 1 and "department_kind" in r.output and "unknown department kind 'police'" in r.output
    )
    assert "public_security" in r.output
    r = runner.invoke(cli, ["org", "add", "--kind", "department", "--name", "某局"])
    assert r.exit_code == 1 and "department_kind: a department needs a kind" in r.output
    r = runner.invoke(
        cli, ["org", "add", "--kind", "department", "--name", "某局", "--department-kind", "posts"]
    )
    assert r.exit_code == 0, r.output
    with db.session() as s:  # a department from before kinds
        s.execute(update(Organisation).where(Organisation.name == "某局").values(department_kind=None))
    r = runner.invoke(cli, ["org", "list"])
    cells = " ".join(re.sub(r"[\u2500-\u257f]", " ", r.output).split())  # the table's text, unwrapped
    assert "no kind: receives nothing" in cells
    r = runner.invoke(cli, ["org", "set-kind", "某局", "bank"])
    assert r.exit_code == 1 and "unknown department kind 'bank'" in r.output
    r = runner.invoke(cli, ["org", "set-kind", "某局", "posts"])
    assert r.exit_code == 0 and "邮政管理部门" in r.output, r.output
    with db.session() as s:
        assert s.scalar(select(Organisation.department_kind).where(Organisation.name == "某局")) == "posts"
        assert s.scalar(select(AuditEvent.id).where(AuditEvent.action == "organisation.set_department_kind"))


# --- instructions by competence ---------------------------------------------------------------------------


def test_a_serious_empty_parcel_penalty_reaches_posts_not_public_security(depts, db):
    entry = publish(db, depts["posts"].org.id, penalty())
    got = by_kind(depts, instructions_by_org(db, entry))
    assert got["posts"] == {"withhold_honours", "tighten_market_access", "intensify_inspection"}
    assert got["public_security"] == set()
    assert got["market_regulation"] == set() and got["commerce"] == set() and got["cyberspace"] == set()
    assert got["pboc"] == {"limit_financing"} and got["ndrc"] == {"limit_financing", "withhold_honours",
                                                                  "tighten_market_access"}  # fmt: skip
    assert got["finance"] == {"limit_public_procurement", "withhold_honours"}
    assert got["nokind"] == set()
    # the enterprise still gets measure 10 for a serious courier company
    assert "ban_dishonest_courier_company" in instructions_by_org(db, entry)[depts["shop"].org.id]


def test_personal_data_trade_reaches_public_security_not_posts(depts, db):
    body = penalty(behaviours=("personal_data_trade",), subject={
        "kind": "unit", "name": "某数据公司", "identifiers": [{"type": "uscc", "value": USCC_B}]})  # fmt: skip
    got = by_kind(depts, instructions_by_org(db, publish(db, depts["shop"].org.id, body)))
    assert got["public_security"] == {"withhold_honours", "intensify_inspection"}
    assert got["cyberspace"] == {"withhold_honours", "tighten_market_access", "intensify_inspection"}
    assert got["posts"] == set() and got["market_regulation"] == set()


def test_no_memoranda_measure_for_a_general_case_or_an_enterprise_finding(depts, db):
    general = publish(db, depts["posts"].org.id, penalty(severity="general"))
    got = instructions_by_org(db, general)
    assert all(got.get(depts[k].org.id) is None for k in (*KINDS, "nokind"))
    assert not set().union(*got.values()) & {
        "restrict_listings",
        "restrict_online_ads",
        "ban_dishonest_courier_company",
    }
    finding = publish(
        db,
        depts["shop"].org.id,
        penalty(basis="enterprise_finding", document_number=None, issuing_authority=None, subject={
            "kind": "courier_company", "name": "另一速运", "identifiers": [{"type": "uscc", "value": USCC_B}]}),
    )  # fmt: skip
    got = instructions_by_org(db, finding)
    assert all(got.get(depts[k].org.id) is None for k in (*KINDS, "nokind"))


def test_a_departments_webhook_gets_only_what_its_competence_covers(client, depts, db):
    hooks = {}
    for kind in ("posts", "public_security", "nokind"):
        r = client.post(
            "/v1/sharing/webhooks", headers=depts[kind].headers(), json={"url": f"http://127.0.0.1:9/{kind}"}
        )
        assert r.status_code == 201, r.text
        hooks[r.json()["id"]] = kind
    r = client.post("/v1/sharing/webhooks", headers=depts["shop"].headers(Role.enterprise_operator),
                    json={"url": "http://127.0.0.1:9/shop"})  # fmt: skip
    hooks[r.json()["id"]] = "shop"
    publish(db, depts["posts"].org.id, penalty())
    with db.session() as s:
        got = sorted(hooks[str(i.webhook_id)] for i in s.scalars(select(OutboxItem)))
    assert got == ["posts", "shop"]


def test_a_departments_feedback_is_tracked_like_an_enterprises(client, depts, db):
    posts = depts["posts"]
    publish(db, posts.org.id, penalty())
    listed = client.get("/v1/instructions", headers=posts.headers()).json()["instructions"]
    assert {i["measure"] for i in listed} == {
        "withhold_honours",
        "tighten_market_access",
        "intensify_inspection",
    }
    assert all(i["department_measure"] for i in listed)
    first, second, third = sorted(listed, key=lambda i: i["measure"])
    r = client.post(f"/v1/instructions/{first['id']}/ack", headers=posts.headers())
    assert r.status_code == 200 and r.json()["status"] == "acknowledged"
    r = client.post(
        f"/v1/instructions/{second['id']}/feedback", headers=posts.headers(), json={"outcome": "executed"}
    )
    assert r.status_code == 200, r.text
    r = client.post(f"/v1/instructions/{third['id']}/feedback", headers=posts.headers(),
                    json={"outcome": "failed", "reason": "许可证尚在审查期"})  # fmt: skip
    assert r.status_code == 200, r.text
    # another department may not report it
    other = depts["public_security"]
    assert client.post(f"/v1/instructions/{first['id']}/ack", headers=other.headers()).status_code in (
        403,
        404,
    )
    rows = client.get(
        "/v1/stats/measures?by=enterprise", headers=depts["platform"].headers(Role.platform_reviewer)
    ).json()["rows"]
    row = next(r for r in rows if r["org_id"] == str(posts.org.id))
    assert row["kind"] == "department"
    assert (row["issued"], row["acknowledged"], row["executed"], row["failed"]) == (3, 3, 1, 1)
    assert row["feedback_rate"] == pytest.approx(2 / 3, abs=0.01)
    with db.session() as s:
        statuses = {
            i.measure: i.status
            for i in s.scalars(select(Instruction).where(Instruction.owner_org_id == posts.org.id))
        }
    assert statuses == {
        first["measure"]: "acknowledged",
        second["measure"]: "executed",
        third["measure"]: "failed",
    }


def test_the_department_page_says_its_kind_or_that_it_has_none(client, depts, db):
    make_user(db, depts["platform"], Role.platform_reviewer, "reviewer")
    sign_in(client, "reviewer")
    page = client.get(f"/console/orgs/{depts['posts'].org.id}")
    assert page.status_code == 200 and "邮政管理部门" in page.text and 'id="department-kind"' in page.text
    page = client.get(f"/console/orgs/{depts['nokind'].org.id}")
    assert page.status_code == 200 and "本部门尚未设定部门类别" in page.text
