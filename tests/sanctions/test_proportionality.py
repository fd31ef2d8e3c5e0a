"""Proportionate punishment (过惩相当): the 基础清单, the plan's severities in the policy, the dry run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from fanchaoxin.blacklist.models import Entry
from fanchaoxin.cli import app as cli
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.catalogue import CATALOGUE_DIR, CatalogueError, catalogues, punishing_bases
from fanchaoxin.core.roles import BusinessType as B
from fanchaoxin.core.roles import Role
from fanchaoxin.orgs import rulebook
from fanchaoxin.orgs.models import Organisation
from fanchaoxin.sanctions import service
from fanchaoxin.sanctions.basic_list import basic_list, check_policy, checked_policy, load_basic_list
from fanchaoxin.sanctions.impact import policy_impact
from fanchaoxin.sanctions.models import Instruction
from fanchaoxin.sanctions.policy import DEFAULT_POLICY, default_policy, grade, measure_catalogue, parse_policy
from tests.blacklist.registry_helpers import USCC_B, judicial, person_entry, unit_entry
from tests.sanctions.test_sanctions import instructions_by_org, publish

ADMIN = Actor("test:admin")
SERIOUS_ONLY = {"restrict_listings", "ban_dishonest_courier_company", "dismiss_and_notify_courier_staff",
                "close_social_accounts", "restrict_online_ads"}  # fmt: skip


@pytest.fixture
def market(world):  # type: ignore[no-untyped-def]
    return {
        "platform": world.platform(),
        "shop": world.enterprise("电商", business_types=[B.ecommerce]),
        "search": world.enterprise("搜索", business_types=[B.search_ads]),
        "social": world.enterprise("社交", business_types=[B.social_media]),
        "dept": world.department("市场监管局"),
    }


# --- the basic list -------------------------------------------------------------------------------------


def test_the_basic_list_has_one_item_per_measure_as_the_plan_says():
    items = basic_list().items
    cat = measure_catalogue()
    assert set(items) == set(cat.measures) | set(cat.department_measures)
    every = set(catalogues().severities)
    for code, item in items.items():
        if code in SERIOUS_ONLY or code in cat.department_measures:
            assert item.severities == ("serious",), code
        else:
            assert set(item.severities) == every, code
        assert item.source
    for code in cat.department_measures:  # 二(一): punished by a judicial or administrative body
        assert (
            set(items[code].bases)
            == set(punishing_bases())
            == {"administrative_penalty", "judicial_decision"}
        )
        assert items[code].subject_kinds is None
    assert items["restrict_listings"].source == "行动计划 二(二)3"
    assert items["ban_dishonest_courier_company"].subject_kinds == ("courier_company",)
    assert items["dismiss_and_notify_courier_staff"].subject_kinds == ("courier_staff",)
    assert set(items["close_social_accounts"].subject_kinds or ()) == {
        "social_account", "unit", "individual", "platform_account"
    }  # fmt: skip
    # the names are the measures' own
    assert items["restrict_listings"].zh == cat.measures["restrict_listings"].zh
    assert items["limit_financing"].zh == cat.department_measures["limit_financing"].zh


def test_the_default_policy_follows_the_plan():
    text = DEFAULT_POLICY.read_text(encoding="utf-8")
    policy = default_policy()
    assert policy.version == "2026.2"
    check_policy(policy, text, DEFAULT_POLICY.name)  # within the basic list
    for kind in catalogues().subject_kinds:
        for liable in (False, True):
            for severity in ("minor", "general"):
                graded = {
                    g.code
                    for g in grade(
                        policy,
                        severity=severity,
                        behaviours=["order_brushing"],
                        subject_kind=kind,
                        role="organizer",
                        liable=liable,
                    )
                }
                assert not graded & SERIOUS_ONLY, (kind, severity, liable)
    serious = {
        kind: {
            g.code
            for g in grade(
                policy,
                severity="serious",
                behaviours=["order_brushing"],
                subject_kind=kind,
                role="organizer",
                liable=False,
            )
        }
        for kind in catalogues().subject_kinds
    }
    assert {k for k, codes in serious.items() if "close_social_accounts" in codes} == {
        "social_account", "unit", "individual", "platform_account"
    }  # fmt: skip
    assert {k for k, codes in serious.items() if "ban_dishonest_courier_company" in codes} == {
        "courier_company"
    }
    assert all({"restrict_listings", "restrict_online_ads"} <= codes for codes in serious.values())


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _shipped_list_with(tmp_path: Path, old: str, new: str) -> Path:
    text = (CATALOGUE_DIR / "basic_list.yaml").read_text(encoding="utf-8")
    assert old in text
    return _write(tmp_path, "basic_list.yaml", text.replace(old, new, 1))


def _line(path: Path, needle: str, after: str = "") -> int:
    """The line of the first `needle` after the first `after`."""
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if after in line)
    return next(i for i, line in enumerate(lines[start:], start + 1) if needle in line)


def test_a_basic_list_that_does_not_fit_the_catalogues_is_refused(tmp_path):
    # an item missing
    path = _shipped_list_with(tmp_path, "- code: label_search_risk\n", "- code: label_search_risk_x\n")
    with pytest.raises(
        CatalogueError, match=r"basic_list\.yaml:\d+: label_search_risk_x\.code: unknown measure"
    ):
        load_basic_list(path)
    text = (CATALOGUE_DIR / "basic_list.yaml").read_text(encoding="utf-8")
    cut = re.sub(r"- code: label_search_risk\n(  .*\n)+", "", text)
    with pytest.raises(CatalogueError, match=r"basic_list\.yaml:1: \(top\): no item for 'label_search_risk'"):
        load_basic_list(_write(tmp_path, "basic_list.yaml", cut))
    # an item twice
    path = _write(tmp_path, "basic_list.yaml", text + "- {code: label_search_risk, source: x, "
                  "severities: [serious], bases: [judicial_decision]}\n")  # fmt: skip
    with pytest.raises(
        CatalogueError, match=r"label_search_risk: duplicate code 'label_search_risk' \(first at"
    ):
        load_basic_list(path)
    # an unknown severity, named by its line and key
    path = _shipped_list_with(
        tmp_path,
        "  source: 行动计划 二(二)3\n  severities: [serious]",
        "  source: 行动计划 二(二)3\n  severities: [grave]",
    )
    line = _line(path, "[grave]")
    with pytest.raises(CatalogueError) as exc:
        load_basic_list(path)
    assert str(exc.value).startswith(
        f"basic_list.yaml:{line}: restrict_listings.severities[0]: unknown code 'grave'"
    )
    # a name given in the list (names are the measure's own)
    path = _shipped_list_with(
        tmp_path, "- code: deny_new_account\n", "- code: deny_new_account\n  zh: 别名\n"
    )
    with pytest.raises(CatalogueError, match=r"deny_new_account\.zh: the names are the measure's own"):
        load_basic_list(path)


def test_department_measures_must_stay_within_the_basic_list(tmp_path):
    # a department measure for an enterprise's own finding: 二(一) gives them to punished subjects only
    path = _shipped_list_with(
        tmp_path,
        "- code: limit_financing\n  source: 行动计划 二(一)；国发〔2016〕33号\n  severities: [serious]\n"
        "  bases: [administrative_penalty, judicial_decision]",
        "- code: limit_financing\n  source: 行动计划 二(一)；国发〔2016〕33号\n  severities: [serious]\n"
        "  bases: [enterprise_finding, administrative_penalty, judicial_decision]",
    )
    line = _line(path, "bases:", after="- code: limit_financing")
    with pytest.raises(CatalogueError) as exc:
        load_basic_list(path)
    assert str(exc.value).startswith(
        f"basic_list.yaml:{line}: limit_financing.bases: a department measure is for"
    )
    assert "enterprise_finding" in str(exc.value)
    # a department measure triggered below the list's severities
    dept = (CATALOGUE_DIR / "department_measures.yaml").read_text(encoding="utf-8")
    general = _write(
        tmp_path,
        "department_measures.yaml",
        dept.replace("min_severity: serious", "min_severity: general", 1),
    )
    with pytest.raises(CatalogueError) as exc:
        load_basic_list(department_measures=general)
    assert re.match(
        r"department_measures\.yaml:\d+: limit_financing\.min_severity: general gives it to general",
        str(exc.value),
    )
    # a department measure implemented by a kind the catalogue does not have
    unknown = _write(
        tmp_path,
        "department_measures.yaml",
        dept.replace("department_kinds: [ndrc, pboc]", "department_kinds: [ndrc, bank]"),
    )
    with pytest.raises(CatalogueError) as exc:
        load_basic_list(department_measures=unknown)
    line = _line(unknown, "[ndrc, bank]")
    assert str(exc.value).startswith(
        f"department_measures.yaml:{line}: limit_financing.department_kinds: unknown department kind 'bank'; one of ndrc"
    )


# --- check_policy ---------------------------------------------------------------------------------------

THE_EXAMPLE = """\
version: "2027.1"
rules:
  - when: {severity: [minor, general, serious]}
    measures: [deduct_credit_points]
  - when: {severity: [general, serious]}
    measures:
      - deduct_credit_points
      - downgrade_credit_level
      - restrict_promotions
      - label_search_risk
      - restrict_listings
"""


def test_a_measure_beyond_the_plans_severity_is_refused_with_file_line_key_and_rule():
    with pytest.raises(CatalogueError) as exc:
        checked_policy(THE_EXAMPLE, "policy.yaml")
    assert str(exc.value) == (
        "policy.yaml:11: rules[1].measures[4]: restrict_listings is for serious cases only "
        "(行动计划 二(二)3; 基础清单); this rule also matches general"
    )


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        # no severity condition matches every severity
        (
            "  - measures: [restrict_online_ads]\n",
            "policy.yaml:3: rules[0].measures[0]: restrict_online_ads is for serious cases only "
            "(行动计划 二(二)13; 基础清单); this rule also matches minor, general",
        ),
        (
            "  - when: {severity: [serious]}\n    measures: [deny_new_account]\n"
            "  - when: {liable: true}\n    measures:\n      - code: restrict_listings\n",
            "policy.yaml:7: rules[1].measures[0]: restrict_listings is for serious cases only",
        ),
        # the kinds of subject a measure fits
        (
            "  - when: {severity: [serious]}\n    measures: [ban_dishonest_courier_company]\n",
            "policy.yaml:4: rules[0].measures[0]: ban_dishonest_courier_company is for courier_company "
            "subjects only (行动计划 二(二)10; 基础清单); this rule also matches unit, individual",
        ),
        (
            "  - when: {severity: [serious], subject_kind: [social_account, website]}\n"
            "    measures: [close_social_accounts]\n",
            "rules[0].measures[0]: close_social_accounts is for social_account, unit, individual, "
            "platform_account subjects only (行动计划 二(二)12; 基础清单); this rule also matches website",
        ),
        (
            "  - when: {severity: [general, serious], subject_kind: [courier_staff]}\n"
            "    measures: [dismiss_and_notify_courier_staff]\n",
            "dismiss_and_notify_courier_staff is for serious cases only (行动计划 二(二)11; 基础清单); "
            "this rule also matches general",
        ),
    ],
)
def test_policies_beyond_the_basic_list(rules, expected):
    text = "version: x\nrules:\n" + rules
    policy = parse_policy(text)  # valid as a file …
    with pytest.raises(CatalogueError) as exc:
        check_policy(policy, text, "policy.yaml")  # … but not within the basic list
    assert expected in str(exc.value)


def test_measures_within_the_list_pass():
    text = (
        "version: x\nrules:\n"
        "  - when: {severity: [serious], subject_kind: [courier_company]}\n"
        "    measures: [ban_dishonest_courier_company, restrict_listings]\n"
        "  - measures: [deny_new_account, label_search_risk]\n"
    )
    assert checked_policy(text, "p.yaml").version == "x"


def test_loading_a_policy_beyond_the_list_is_refused_and_nothing_changes(client, market, db, tmp_path):
    headers = {**market["platform"].headers(Role.platform_admin), "Content-Type": "application/yaml"}
    r = client.post("/v1/policies", content=THE_EXAMPLE, headers=headers)
    assert r.status_code == 422
    problem = r.json()
    assert problem["errors"][0]["field"] == "policy"
    assert (
        "policy.yaml:11: rules[1].measures[4]: restrict_listings is for serious cases only"
        in problem["detail"]
    )
    runner = CliRunner()
    path = _write(tmp_path, "strict.yaml", THE_EXAMPLE)
    for command in ("check", "load"):
        out = runner.invoke(cli, ["policy", command, str(path)])
        assert out.exit_code == 1, out.output
        assert (
            "strict.yaml:11: rules[1].measures[4]: restrict_listings is for serious cases only" in out.output
        )
    with db.session() as s:
        assert service.active_policy(s).version == "2026.2"
        assert s.scalar(select(func.count()).select_from(Instruction)) == 0


# --- a general case ---------------------------------------------------------------------------------------


def test_a_general_case_gets_neither_measure_3_nor_13_nor_a_memoranda_measure(market, db):
    general = publish(
        db,
        market["shop"].org.id,
        judicial(
            basis="administrative_penalty", severity="general", document_number="京市监罚〔2026〕7号",
            issuing_authority="北京市市场监督管理局",
        ),
    )  # fmt: skip
    got = instructions_by_org(db, general)
    everything = set().union(*got.values())
    assert not everything & SERIOUS_ONLY
    assert market["dept"].org.id not in got  # memoranda measures: serious cases only
    assert "restrict_promotions" in got[market["shop"].org.id]
    with db.session() as s:
        entry = s.get(Entry, general)
        assert entry.policy_version == "2026.2"
        assert not {m["code"] for m in entry.measures} & SERIOUS_ONLY
    serious = publish(
        db,
        market["shop"].org.id,
        judicial(
            basis="administrative_penalty", document_number="京市监罚〔2026〕8号",
            issuing_authority="北京市市场监督管理局",
            subject={"kind": "unit", "name": "乙公司", "identifiers": [{"type": "uscc", "value": USCC_B}]},
        ),
    )  # fmt: skip
    got = instructions_by_org(db, serious)
    assert {"restrict_listings", "restrict_online_ads"} <= set().union(*got.values())
    assert got[market["dept"].org.id]


# --- the dry run ----------------------------------------------------------------------------------------

# The default policy but for label_search_risk (serious only), restrict_promotions (at every severity)
# and a lower listing limit.
NEXT = """\
version: "2027.1"
rules:
  - when: {severity: [minor, general, serious], liable: false}
    measures: [deduct_credit_points, downgrade_credit_level, restrict_account_privileges, restrict_promotions]
  - when: {severity: [general, serious], liable: false}
    measures: [restrict_internet_finance]
  - when: {severity: [serious], liable: false}
    measures:
      - deny_new_account
      - block_or_delete_account
      - {code: restrict_listings, params: {max_new_listings_per_day: 5}}
      - restrict_online_ads
      - label_search_risk
  - when: {severity: [serious], subject_kind: [social_account, unit, individual, platform_account], liable: false}
    measures: [close_social_accounts]
  - when: {liable: true}
    measures: [deny_new_account, downgrade_credit_level, restrict_internet_finance]
"""


@pytest.fixture
def in_force(market, db):  # type: ignore[no-untyped-def]
    """Three entries in force under the default policy: serious, general and minor."""
    serious = publish(db, market["shop"].org.id, judicial())
    general = publish(
        db,
        market["shop"].org.id,
        unit_entry(
            subject={"kind": "unit", "name": "乙公司", "identifiers": [{"type": "uscc", "value": USCC_B}]}
        ),
    )
    minor = publish(db, market["shop"].org.id, person_entry())
    return {"serious": serious, "general": general, "minor": minor}


def test_the_dry_run_says_what_regrading_would_change_and_writes_nothing(market, db, in_force):
    shop, search = market["shop"].org.id, market["search"].org.id
    policy = checked_policy(NEXT, "next.yaml")
    with db.session() as s:
        before = s.scalar(select(func.count()).select_from(Instruction))
        impact = policy_impact(s, policy, china_today())
    assert impact.version == "2027.1" and impact.active_version == "2026.2"
    assert impact.entries_in_force == 3
    regraded = {r.entry_id: r for r in impact.regraded}
    assert set(regraded) == set(in_force.values())
    assert regraded[in_force["serious"]].changed == ("restrict_listings",)  # other parameters: no re-issue
    assert "label_search_risk" in regraded[in_force["general"]].before
    assert "label_search_risk" not in regraded[in_force["general"]].after
    assert "restrict_promotions" in set(regraded[in_force["minor"]].after) - set(
        regraded[in_force["minor"]].before
    )
    orgs = {o.org_id: o for o in impact.organisations}
    assert set(orgs) == {shop, search}  # the department and the social network: nothing changes
    assert orgs[shop].applied == {"restrict_promotions": [in_force["minor"]]}
    assert orgs[shop].lifted == {"label_search_risk": [in_force["general"]]}
    assert orgs[search].applied == {} and orgs[search].lifted == {"label_search_risk": [in_force["general"]]}
    assert orgs[shop].entries == sorted([in_force["minor"], in_force["general"]], key=str)
    with db.session() as s:  # nothing written
        assert s.scalar(select(func.count()).select_from(Instruction)) == before
        assert service.active_policy(s).version == "2026.2"
        assert all(s.get(Entry, e).policy_version == "2026.2" for e in in_force.values())

    # what it predicted is what regrading under the loaded policy does (the one targeting rule)
    with db.session() as s:
        service.load_policy(s, ADMIN, NEXT, "next.yaml")
    done: dict[tuple[object, str, str], list[object]] = {}
    with db.session() as s:
        for entry_id in in_force.values():
            entry = s.get(Entry, entry_id)
            seq = s.scalar(select(func.max(Instruction.seq))) or 0
            service.grade_entry(s, entry)
            service.reissue_instructions(s, ADMIN, entry)
            s.flush()
            for i in s.scalars(select(Instruction).where(Instruction.seq > seq)):
                done.setdefault((i.owner_org_id, i.kind, i.measure), []).append(i.entry_id)
    predicted = {(o.org_id, "apply", m): ids for o in impact.organisations for m, ids in o.applied.items()}
    predicted |= {(o.org_id, "lift", m): ids for o in impact.organisations for m, ids in o.lifted.items()}
    assert done == predicted


def test_the_dry_run_counts_a_measure_ruled_out_by_the_rulebook_apart(market, db, in_force):
    """#22: a measure the enterprise's rules exclude would be issued as not applicable by its rules,
    not applied: the dry run says so."""
    shop = market["shop"].org.id
    with db.session() as s:
        rulebook.set_rulebook(
            s, ADMIN, s.get(Organisation, shop), [{"measure": 4, "applicable": False, "clause": "第8条"}]
        )
    with db.session() as s:
        impact = policy_impact(s, checked_policy(NEXT, "next.yaml"), china_today())
    orgs = {o.org_id: o for o in impact.organisations}
    assert orgs[shop].applied == {}
    assert orgs[shop].excluded == {"restrict_promotions": [in_force["minor"]]}
    assert orgs[shop].to_dict(details=False)["excluded_by_rules"] == {"restrict_promotions": 1}


def test_policy_check_shows_the_dry_run(market, db, settings, in_force, tmp_path):
    runner = CliRunner()
    path = _write(tmp_path, "next.yaml", NEXT)
    r = runner.invoke(cli, ["policy", "check", str(path)], terminal_width=200)
    assert r.exit_code == 0, r.output
    assert "next.yaml: valid" in r.output and "within the 基础清单" in r.output
    assert "3 entries would be graded differently" in r.output
    assert "电商" in r.output and "restrict_promotions 1" in r.output and "label_search_risk 1" in r.output
    assert str(in_force["general"]) not in r.output
    r = runner.invoke(cli, ["policy", "check", str(path), "--details"], terminal_width=200)
    assert r.exit_code == 0, r.output
    assert f"lift label_search_risk: {in_force['general']}" in r.output
    assert f"apply restrict_promotions: {in_force['minor']}" in r.output
    assert "restrict_listings*" in r.output
    # the active policy itself changes nothing
    same = _write(
        tmp_path, "same.yaml", DEFAULT_POLICY.read_text(encoding="utf-8").replace("2026.2", "2027.9")
    )
    r = runner.invoke(cli, ["policy", "check", str(same)], terminal_width=200)
    assert r.exit_code == 0 and "No entry in force would be graded differently" in r.output
    r = runner.invoke(cli, ["policy", "check", str(path), "--no-dry-run"], terminal_width=200)
    assert r.exit_code == 0 and "Dry run" not in r.output


def test_the_dry_run_on_the_api_is_for_the_platform_admin(client, market, db, in_force):
    p = market["platform"]
    yaml_type = {"Content-Type": "application/yaml"}
    r = client.post(
        "/v1/policies/check", content=NEXT, headers={**p.headers(Role.platform_admin), **yaml_type}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["valid"] is True and body["version"] == "2027.1"
    impact = body["impact"]
    assert impact["regraded"] == 3 and impact["entries_in_force"] == 3 and "regraded_entries" not in impact
    shop = next(o for o in impact["organisations"] if o["org_id"] == str(market["shop"].org.id))
    assert shop["apply"] == {"restrict_promotions": 1} and shop["lift"] == {"label_search_risk": 1}
    assert "entry_ids" not in shop
    r = client.post(
        "/v1/policies/check?details=true",
        content=NEXT,
        headers={**p.headers(Role.platform_admin), **yaml_type},
    )
    shop = next(o for o in r.json()["impact"]["organisations"] if o["org_id"] == str(market["shop"].org.id))
    assert shop["lift_entry_ids"] == {"label_search_risk": [str(in_force["general"])]}
    assert {e["entry_id"] for e in r.json()["impact"]["regraded_entries"]} == {
        str(e) for e in in_force.values()
    }
    r = client.post(
        "/v1/policies/check", content=THE_EXAMPLE, headers={**p.headers(Role.platform_admin), **yaml_type}
    )
    assert r.status_code == 422 and "rules[1].measures[4]" in r.json()["errors"][0]["message"]
    for who in (p.headers(Role.platform_reviewer), market["shop"].headers(Role.enterprise_operator)):
        assert (
            client.post("/v1/policies/check", content=NEXT, headers={**who, **yaml_type}).status_code == 403
        )
    assert client.get("/v1/policy", headers=p.headers(Role.platform_admin)).json()["version"] == "2026.2"


def test_the_catalogue_route_has_the_basic_list_and_the_department_kinds(client, market):
    body = client.get(
        "/v1/catalogues/measures", headers=market["platform"].headers(Role.platform_reviewer)
    ).json()
    listed = {i["code"]: i for i in body["basic_list"]}
    assert listed["restrict_listings"]["severities"] == ["serious"]
    assert {k["code"] for k in body["department_kinds"]} >= {"posts", "public_security", "market_regulation"}
    dept = {d["code"]: d for d in body["department_measures"]}
    assert (
        dept["limit_financing"]["department_kinds"] == ["ndrc", "pboc"]
        and dept["limit_financing"]["memorandum"]
    )
