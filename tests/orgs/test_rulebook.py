"""Each enterprise's rulebook (企业规则, #22): rules, bad input named by row, nothing half-written, routes."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from fanchaoxin.core.audit import Actor, AuditEvent
from fanchaoxin.core.errors import ValidationProblem
from fanchaoxin.core.roles import BusinessType as B
from fanchaoxin.core.roles import Role
from fanchaoxin.orgs import rulebook
from fanchaoxin.orgs.models import Organisation
from fanchaoxin.orgs.participation_models import MeasureRule
from fanchaoxin.orgs.rulebook_cli import read_rules

OPERATOR = Actor("test:operator")
CLAUSE = "《平台服务协议》第8.3条：本平台不组织促销活动"


@pytest.fixture
def shop(world):
    return world.enterprise("电商", business_types=[B.ecommerce])


def _set(db, org_id, rules):
    with db.session() as s:
        return [
            (r.measure, r.applicable)
            for r in rulebook.set_rulebook(s, OPERATOR, s.get(Organisation, org_id), rules)
        ]


def test_a_rulebook_names_measures_by_code_or_number_and_replaces_the_last(db, shop):
    assert rulebook.measure_code(4) == rulebook.measure_code("4") == "restrict_promotions"
    assert rulebook.measure_code("14") is None and rulebook.measure_code("no_such") is None
    rules = [
        {"measure": 4, "applicable": False, "clause": CLAUSE},
        {"measure": "deny_new_account", "applicable": "true", "clause": "第2条"},
    ]
    assert _set(db, shop.org.id, rules) == [("deny_new_account", True), ("restrict_promotions", False)]
    with db.session() as s:
        assert rulebook.excluded_measures(s) == {shop.org.id: {"restrict_promotions": CLAUSE}}
        assert rulebook.excluded_measures(s, []) == {}
        assert [x["measure"] for x in rulebook.exclusions(s)] == ["restrict_promotions"]
        org = s.get(Organisation, shop.org.id)
        rulebook.set_rule(s, OPERATOR, org, measure=1, applicable=False, clause="第2条修订")
        assert rulebook.excluded_measures(s, [shop.org.id])[shop.org.id] == {
            "deny_new_account": "第2条修订",
            "restrict_promotions": CLAUSE,
        }
        events = s.scalars(select(AuditEvent).where(AuditEvent.action == "rulebook.set")).all()
        assert len(events) == 2
    assert _set(db, shop.org.id, []) == []  # an empty rulebook: every measure allowed again


def test_bad_rules_are_named_by_row_and_nothing_is_written(db, shop):
    _set(db, shop.org.id, [{"measure": 4, "applicable": False, "clause": CLAUSE}])
    bad = [
        {"measure": "restrict_listings", "applicable": False, "clause": "第1条"},
        {"measure": 2, "applicable": True, "clause": "第2条"},
        {"measure": "restrict_listings", "applicable": True, "clause": "第3条"},
        {"measure": "teleport_subject", "applicable": False, "clause": "第4条"},
        {"measure": 5, "applicable": False, "clause": "  "},
        {"measure": 6, "applicable": "maybe", "clause": "第6条"},
    ]
    with db.session() as s, pytest.raises(ValidationProblem) as caught:
        rulebook.set_rulebook(s, OPERATOR, s.get(Organisation, shop.org.id), bad)
    errors = {e["field"]: e for e in caught.value.errors}
    assert set(errors) == {"rules[2].measure", "rules[3].measure", "rules[4].clause", "rules[5].applicable"}
    assert errors["rules[3].measure"]["code"] == "rulebook.unknown_measure"
    assert errors["rules[3].measure"]["params"] == {"value": "teleport_subject"}
    assert errors["rules[2].measure"]["code"] == "rulebook.duplicate_measure"
    assert errors["rules[4].clause"]["code"] == "rulebook.clause_required"
    with db.session() as s:  # the rulebook as it was
        assert [(r.measure, r.applicable) for r in s.scalars(select(MeasureRule))] == [
            ("restrict_promotions", False)
        ]


def test_only_an_enterprise_has_a_rulebook(db, world):
    dept = world.department("市场监管局")
    with db.session() as s, pytest.raises(ValidationProblem) as caught:
        rulebook.set_rulebook(s, OPERATOR, s.get(Organisation, dept.org.id), [])
    assert caught.value.code == "rulebook.not_enterprise"


def test_routes(client, world, shop):
    platform = world.platform()
    other = world.enterprise("出行", business_types=[B.sharing_economy])
    url = f"/v1/organisations/{shop.org.id}/rulebook"
    body = {"rules": [{"measure": 4, "applicable": False, "clause": CLAUSE}]}
    r = client.put(url, json=body, headers=shop.headers(Role.enterprise_operator))
    assert r.status_code == 200, r.text
    assert r.json()["excluded"] == ["restrict_promotions"] and len(r.json()["rules"]) == 13
    four = next(x for x in r.json()["rules"] if x["number"] == 4)
    assert four["clause"] == CLAUSE and four["applicable"] is False and four["ruled"] is True
    # its node reads it; another enterprise neither reads (404) nor writes it; the node cannot write
    assert client.get(url, headers=shop.headers(Role.enterprise_node)).json()["excluded"] == [
        "restrict_promotions"
    ]
    assert client.get(url, headers=other.headers(Role.enterprise_operator)).status_code == 404
    assert client.put(url, json=body, headers=other.headers(Role.enterprise_operator)).status_code == 404
    assert client.put(url, json=body, headers=shop.headers(Role.enterprise_node)).status_code == 403
    bad = client.put(
        url, json={"rules": [{"measure": "fly", "applicable": False, "clause": "x"}]},
        headers=shop.headers(Role.enterprise_operator),
    )  # fmt: skip
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "rules[0].measure"
    assert bad.json()["errors"][0]["code"] == "rulebook.unknown_measure"
    overview = client.get("/v1/rulebooks", headers=platform.headers(Role.platform_reviewer))
    assert overview.status_code == 200
    assert [(x["org_name"], x["number"], x["clause"]) for x in overview.json()] == [("电商", 4, CLAUSE)]
    assert client.get("/v1/rulebooks", headers=shop.headers(Role.enterprise_operator)).status_code == 403
    r = client.put(url, json={"rules": []}, headers=platform.headers(Role.platform_admin))
    assert r.status_code == 200 and r.json()["excluded"] == []


def test_cli_reads_yaml_and_csv(tmp_path):
    y = tmp_path / "rules.yaml"
    y.write_text("- {measure: 4, applicable: false, clause: 第8条}\n", encoding="utf-8")
    c = tmp_path / "rules.csv"
    c.write_text("measure,applicable,clause\nrestrict_promotions,no,第8条\n", encoding="utf-8")
    assert rulebook.check_rules(read_rules(y)) == rulebook.check_rules(read_rules(c))
