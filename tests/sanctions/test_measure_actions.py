"""Each measure's actions, scenes and parameters as the action plan words them (issue 15 point 4).

Actions an instruction names (measure 2 by severity and behaviour, …), measure 11's two audiences (the
employer dismisses and notifies its peers; the peers do not hire), measure 5's points from the finding,
the facts an enterprise confirms when it reports executed, and decide() at the new scenes.
"""

from __future__ import annotations

import shutil
import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.blacklist.schemas import EntryIn, GainsIn
from fanchaoxin.console.auth import create_user
from fanchaoxin.core import vault
from fanchaoxin.core.audit import SYSTEM, Actor, AuditEvent
from fanchaoxin.core.catalogue import CATALOGUE_DIR, CatalogueError, catalogues
from fanchaoxin.core.roles import BusinessType as B
from fanchaoxin.core.roles import Role
from fanchaoxin.orgs.models import Organisation
from fanchaoxin.sanctions import index as decision_index
from fanchaoxin.sanctions import service as sanctions
from fanchaoxin.sanctions.decide import DecisionIndex, decide, index_entry
from fanchaoxin.sanctions.models import Instruction
from fanchaoxin.sanctions.policy import (
    PolicyError,
    grade,
    load_measure_catalogue,
    measure_catalogue,
    merge_params,
    parse_policy,
)
from fanchaoxin.workflows.entries import take_step
from tests.blacklist.registry_helpers import USCC_A, USCC_B, judicial
from tests.console.console_helpers import csrf_of

REVIEWER = Actor("test:reviewer")
TODAY = date(2026, 3, 1)
EMPLOYER_USCC = USCC_B
PASSWORD = "correct horse battery"
STAFF = f"{EMPLOYER_USCC}:SF001"

# A policy of its own (within the 基础清单: 3, 11, 12 and 13 for serious cases only), so that these tests
# hold whatever the default policy grants to which severity.
POLICY_TEXT = """
version: test-actions
rules:
  - measures: [deny_new_account, block_or_delete_account, restrict_promotions, deduct_credit_points,
               downgrade_credit_level, restrict_internet_finance, restrict_account_privileges,
               label_search_risk]
  - when: {severity: [serious]}
    measures: [restrict_listings, restrict_online_ads]
  - when: {severity: [serious], subject_kind: [courier_staff]}
    measures: [dismiss_and_notify_courier_staff]
  - when: {severity: [serious], subject_kind: [social_account, unit]}
    measures: [close_social_accounts]
"""
POLICY = parse_policy(POLICY_TEXT, "test-policy.yaml")


def graded(
    severity="serious",
    behaviours=("order_brushing",),
    kind="unit",
    *,
    role="organizer",
    liable=False,
    gains=None,
):
    return {
        g.code: g
        for g in grade(
            POLICY, severity=severity, behaviours=list(behaviours), subject_kind=kind, role=role,
            liable=liable, gains=gains,
        )
    }  # fmt: skip


# --- the catalogue --------------------------------------------------------------------------------------


def test_every_measure_names_its_actions_and_the_new_scenes_are_known():
    cat = measure_catalogue()
    for m in cat.measures.values():
        assert m.actions, m.code
        assert len({a.code for a in m.actions}) == len(m.actions)
    assert {"order_review", "shop_event", "subsidy_claim"} <= set(cat.scenes)
    assert cat.measures["block_or_delete_account"].scenes["order_review"] == "deny"
    assert cat.measures["restrict_promotions"].scenes["shop_event"] == "deny"
    assert cat.measures["restrict_account_privileges"].scenes["subsidy_claim"] == "deny"
    words = {a.code: a.zh for m in cat.measures.values() for a in m.actions}
    assert words["close_bulk_registered_accounts"] == "关闭或删除使用软件或程序方式大批量注册的账户"
    assert words["cancel_abused_orders"] == "关闭或取消因滥用权利而产生的订单"
    assert words["remove_suspect_listings"] == "涉嫌商品、服务从平台及其店铺强制性删除"
    assert words["no_shop_events"] == "限制策划和开展网店庆典及促销活动"
    assert words["deduct_points"] == "对非法刷单积累的信用积分进行扣除"
    assert words["record_integrity_file"] == "记入其网站平台诚信档案"
    assert words["no_platform_perks"] == "限制账户享受平台优惠政策及服务"
    # measure 12: units and natural persons can carry the social accounts they organised
    kinds = catalogues().subject_kinds
    assert (
        "social_account" in kinds["unit"].identifiers and "social_account" in kinds["individual"].identifiers
    )


def test_finding_parameters_are_gains_a_submission_can_give():
    names = {
        g for m in measure_catalogue().measures.values() for p in m.params.values() for g in p.from_finding
    }
    assert names and names <= set(GainsIn.model_fields)


def _catalogue_dir(tmp_path: Path, old: str, new: str) -> Path:
    for name in ("scenes.yaml", "measures.yaml", "department_measures.yaml"):
        shutil.copy(CATALOGUE_DIR / name, tmp_path / name)
    text = (tmp_path / "measures.yaml").read_text(encoding="utf-8")
    assert old in text
    (tmp_path / "measures.yaml").write_text(text.replace(old, new, 1), encoding="utf-8")
    return tmp_path


def _line(path: Path, needle: str) -> int:
    """The line of the last occurrence of `needle` (a duplicate is reported where it repeats)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return max(n for n, line in enumerate(lines, 1) if needle in line)


@pytest.mark.parametrize(
    ("old", "new", "key", "message", "needle"),
    [
        (
            "    - code: ban_selling\n",
            "    - code: block_account\n",
            "block_or_delete_account.actions[1].code",
            "duplicate action 'block_account'",
            "- code: block_account",
        ),
        (
            "      scenes: {order_review: deny}\n",
            "      scenes: {ad_placement: deny}\n",
            "block_or_delete_account.actions[4].scenes.ad_placement",
            "not a scene of this measure",
            "      scenes: {ad_placement: deny}",
        ),
        (
            "      when: {behaviours: [malicious_registration]}\n",
            "      when: {behaviours: [bulk_signups]}\n",
            "block_or_delete_account.actions[3].when.behaviours[0]",
            "unknown behaviours 'bulk_signups'",
            "bulk_signups",
        ),
        (
            "      audience: peers\n",
            "      audience: strangers\n",
            "dismiss_and_notify_courier_staff.actions[2].audience",
            "'employer' or 'peers'",
            "strangers",
        ),
        (
            "  scenes: {promotion_signup: deny, shop_event: deny}\n",
            "  scenes: {promotion_signup: deny, shop_party: deny}\n",
            "restrict_promotions.scenes.shop_party",
            "unknown scene 'shop_party'",
            "shop_party",
        ),
    ],
)
def test_catalogue_errors_name_file_line_and_key(tmp_path, old, new, key, message, needle):
    directory = _catalogue_dir(tmp_path, old, new)
    with pytest.raises(CatalogueError) as exc:
        load_measure_catalogue(directory)
    text = str(exc.value)
    line = _line(directory / "measures.yaml", needle)
    assert text.startswith(f"measures.yaml:{line}: {key}: ") and message in text, text


@pytest.mark.parametrize(
    ("grant", "expected"),
    [
        ("      - code: deduct_credit_points\n        params: {points: 12}\n",
         "rules[0].measures[0].params.points: taken from the finding (points_gained, brushed_orders)"),
        ("      - code: block_or_delete_account\n        actions: [block_account, burn_it_down]\n",
         "policy.yaml:5: rules[0].measures[0].actions[1]: measure block_or_delete_account has no action"),
        ("      - code: block_or_delete_account\n        actions: []\n", "rules[0].measures[0].actions"),
    ],
)  # fmt: skip
def test_a_policy_names_actions_of_the_measure_only_and_never_fixes_finding_points(grant, expected):
    with pytest.raises(PolicyError) as exc:
        parse_policy(f"version: x\nrules:\n  - measures:\n{grant}")
    assert expected in str(exc.value)


# --- grading: the actions and parameters of an entry ---------------------------------------------------


def test_measure_2_acts_by_severity_and_behaviours():
    assert graded("minor")["block_or_delete_account"].actions == ("block_account", "cancel_abused_orders")
    assert graded("general", ["fake_review"])["block_or_delete_account"].actions == ("ban_selling",)
    bulk = graded("serious", ["malicious_registration"])["block_or_delete_account"]
    assert bulk.actions == ("delete_account", "close_bulk_registered_accounts")
    assert (
        "cancel_abused_orders" in graded("serious", ["subsidy_brushing"])["block_or_delete_account"].actions
    )
    assert graded("serious")["restrict_listings"].actions == (
        "forbid_new_listings",
        "remove_suspect_listings",
    )
    # measures 3 and 12 are for serious subjects only: graded by the subject's part
    participant = graded(role="participant")
    assert participant["restrict_listings"].actions == ("limit_new_listings", "remove_suspect_listings")
    assert participant["close_social_accounts"].actions == ("seal_account",)
    assert graded()["close_social_accounts"].actions == ("delete_account",)
    assert "restrict_listings" not in graded("general")
    assert graded("serious")["restrict_internet_finance"].actions == ("cancel_credit_line", "raise_price")
    assert graded("serious")["downgrade_credit_level"].actions == (
        "lower_level",
        "mark",
        "record_integrity_file",
    )
    assert graded("serious")["restrict_promotions"].actions == ("no_major_promotions", "no_shop_events")


def test_a_grant_may_name_the_actions_itself():
    policy = parse_policy(
        "version: x\nrules:\n  - measures:\n      - code: block_or_delete_account\n"
        "        actions: [block_account]\n"
    )
    (g,) = grade(policy, severity="serious", behaviours=["malicious_registration"], subject_kind="unit",
                 role="organizer", liable=False)  # fmt: skip
    assert g.actions == ("block_account",) and g.record()["actions"] == ["block_account"]


def test_measure_5_points_come_from_the_finding():
    def points(gains, **kw):
        return graded(gains=gains, **kw)["deduct_credit_points"].params["points"]

    assert points({"points_gained": 350, "brushed_orders": 120}) == 350
    assert points({"brushed_orders": 120}) == 120  # one credit point per brushed order
    assert points({"points_gained": 0}) == 0
    assert points(None) is None and points({}) is None  # all the points gained, as the records show
    # a liable person's linked entry inherits nothing of its unit's finding
    liable = grade(POLICY, severity="serious", behaviours=["order_brushing"], subject_kind="individual",
                   role="organizer", liable=True, gains={"brushed_orders": 120})  # fmt: skip
    assert all(g.params.get("points") is None for g in liable)
    # null (no ceiling) is the stricter of two deductions
    assert merge_params("deduct_credit_points", {"points": 40}, {"points": None}) == {"points": None}
    assert merge_params("deduct_credit_points", {"points": 40}, {"points": 90}) == {"points": 90}


# --- instructions through the API -----------------------------------------------------------------------


@pytest.fixture
def market(world, db):
    m = {
        "platform": world.platform(),
        "shop": world.enterprise("电商", business_types=[B.ecommerce]),
        "employer": world.enterprise("雇主快递", business_types=[B.logistics]),
        "peer": world.enterprise("同业快递", business_types=[B.logistics]),
        "social": world.enterprise("社交", business_types=[B.social_media]),
    }
    with db.session() as s:
        s.execute(
            update(Organisation).where(Organisation.id == m["employer"].org.id).values(uscc=EMPLOYER_USCC)
        )
    return m


def load_test_policy(db):
    with db.session() as s:
        sanctions.load_policy(s, REVIEWER, POLICY_TEXT, "test-policy.yaml")


def publish(db, org_id, body):
    with db.session() as s:
        e = registry.submit(s, REVIEWER, org_id, EntryIn.model_validate(body))
        take_step(s, REVIEWER, e, Action.start_review)
        take_step(s, REVIEWER, e, Action.publish)
        return e.id


def courier_staff_entry(**over):
    body = judicial(
        subject={"kind": "courier_staff", "name": "王五", "identifiers": [{"type": "courier_staff", "value": STAFF}]},
        behaviours=["empty_parcel", "order_brushing"],
        **over,
    )  # fmt: skip
    return body


def instructions(client, tenant, entry_id, kind="apply"):
    page = client.get(
        f"/v1/instructions?entry_id={entry_id}&kind={kind}", headers=tenant.headers(Role.enterprise_node)
    )
    assert page.status_code == 200, page.text
    return {i["measure"]: i for i in page.json()["instructions"]}


def feedback(client, tenant, ins, **body):
    return client.post(
        f"/v1/instructions/{ins['id']}/feedback", json=body, headers=tenant.headers(Role.enterprise_node)
    )


def test_measure_11_reaches_the_employer_and_its_peers_as_two_instructions(client, market, db):
    load_test_policy(db)
    entry_id = publish(db, market["shop"].org.id, courier_staff_entry())
    employer = instructions(client, market["employer"], entry_id)["dismiss_and_notify_courier_staff"]
    peer = instructions(client, market["peer"], entry_id)["dismiss_and_notify_courier_staff"]
    assert employer["id"] != peer["id"]
    assert [a["code"] for a in employer["actions"]] == ["dismiss", "notify_peers"]
    assert employer["audience"] == "employer" and employer["audience_zh"] == "雇用该从业人员的寄递物流企业"
    assert [a["code"] for a in peer["actions"]] == ["do_not_hire"] and peer["audience"] == "peers"
    assert peer["actions"][0]["zh"] == "不予录用"
    # the notice to peers is part of the employer's instruction
    notice = employer["actions"][1]
    assert notice["zh"] == "向同业其他企业进行通报" and str(entry_id) in notice["notice_zh"]
    assert "不予录用" in notice["notice_zh"] and str(entry_id) in notice["notice_en"]
    assert peer["actions"][0]["notice_zh"] is None
    # the employer confirms the dismissal and the notice; the peer has nothing to confirm
    assert [f["field"] for f in employer["feedback"]] == ["dismissed_on", "peers_notified"]
    assert peer["feedback"] == []
    r = feedback(client, market["employer"], employer, outcome="executed")
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {
        "confirmations.dismissed_on",
        "confirmations.peers_notified",
    }
    r = feedback(client, market["employer"], employer, outcome="executed",
                 confirmations={"dismissed_on": (TODAY + timedelta(days=3650)).isoformat(), "peers_notified": True})  # fmt: skip
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "confirmations.dismissed_on"
    r = feedback(client, market["employer"], employer, outcome="executed",
                 confirmations={"dismissed_on": "2026-02-27", "peers_notified": True})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["confirmations"] == {"dismissed_on": "2026-02-27", "peers_notified": True}
    assert feedback(client, market["peer"], peer, outcome="executed").status_code == 200
    # the catalogue the enterprises read says the same
    cat = client.get("/v1/catalogues/measures", headers=market["peer"].headers(Role.enterprise_node)).json()
    m11 = next(m for m in cat["measures"] if m["number"] == 11)
    assert {a["code"]: a["audience"] for a in m11["actions"]} == {
        "dismiss": "employer",
        "notify_peers": "employer",
        "do_not_hire": "peers",
    }
    assert {"order_review", "shop_event", "subsidy_claim"} <= {sc["code"] for sc in cat["scenes"]}
    # an enterprise that is not in logistics gets no measure 11
    assert "dismiss_and_notify_courier_staff" not in instructions(client, market["shop"], entry_id)
    # a revocation lifts both, each with the actions it undoes
    with db.session() as s:
        take_step(s, REVIEWER, s.get(Entry, entry_id), Action.revoke, reason="判决被撤销")
    lift = instructions(client, market["employer"], entry_id, "lift")["dismiss_and_notify_courier_staff"]
    assert [a["code"] for a in lift["actions"]] == ["dismiss", "notify_peers"] and lift["feedback"] == []
    lift = instructions(client, market["peer"], entry_id, "lift")["dismiss_and_notify_courier_staff"]
    assert [a["code"] for a in lift["actions"]] == ["do_not_hire"] and lift["audience"] == "peers"


def test_without_a_known_employer_every_courier_company_is_a_peer(client, market, db):
    load_test_policy(db)
    with db.session() as s:
        s.execute(
            update(Organisation).where(Organisation.id == market["employer"].org.id).values(uscc=USCC_A)
        )
    entry_id = publish(db, market["shop"].org.id, courier_staff_entry())
    for name in ("employer", "peer"):
        got = instructions(client, market[name], entry_id)["dismiss_and_notify_courier_staff"]
        assert got["audience"] == "peers" and [a["code"] for a in got["actions"]] == ["do_not_hire"]


def test_measure_5_points_from_the_finding_reach_the_instruction(client, market, db):
    load_test_policy(db)
    with_gains = publish(db, market["shop"].org.id, judicial(gains={"brushed_orders": 1200}))
    body = judicial(
        gains=None,
        document_number="(2026)另案2号",
        subject={"kind": "unit", "name": "另一公司", "identifiers": [{"type": "uscc", "value": USCC_B}]},
    )
    without = publish(db, market["shop"].org.id, body)
    got = instructions(client, market["shop"], with_gains)["deduct_credit_points"]
    assert got["params"]["points"] == 1200
    assert [a["code"] for a in got["actions"]] == ["deduct_points"]
    assert instructions(client, market["shop"], without)["deduct_credit_points"]["params"]["points"] is None
    with db.session() as s:
        stored = {m["code"]: m for m in s.get(Entry, with_gains).measures}
    assert stored["deduct_credit_points"]["params"] == {"points": 1200}
    assert stored["deduct_credit_points"]["actions"] == ["deduct_points"]
    # executed confirms the points deducted
    r = feedback(client, market["shop"], got, outcome="executed", confirmations={"points_deducted": "many"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "confirmations.points_deducted"
    r = feedback(client, market["shop"], got, outcome="executed", confirmations={"points_deducted": 1200})
    assert r.status_code == 200 and r.json()["confirmations"] == {"points_deducted": 1200}


def test_measure_6_executed_needs_the_mark_and_the_integrity_file_record(client, market, db):
    load_test_policy(db)
    entry_id = publish(db, market["shop"].org.id, judicial())
    ins = instructions(client, market["social"], entry_id)["downgrade_credit_level"]
    assert [a["code"] for a in ins["actions"]] == ["lower_level", "mark", "record_integrity_file"]
    assert [(f["field"], f["type"], f["zh"]) for f in ins["feedback"]] == [
        ("marked", "bool", "已予以标识"),
        ("integrity_file_ref", "str", "诚信档案记录编号"),
    ]
    r = feedback(client, market["social"], ins, outcome="executed")
    assert r.status_code == 422
    errors = {e["field"]: e["message"] for e in r.json()["errors"]}
    assert set(errors) == {"confirmations.marked", "confirmations.integrity_file_ref"}
    assert "诚信档案记录编号" in errors["confirmations.integrity_file_ref"]
    r = feedback(client, market["social"], ins, outcome="executed", confirmations={"marked": True})
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["confirmations.integrity_file_ref"]
    r = feedback(client, market["social"], ins, outcome="executed",
                 confirmations={"marked": False, "integrity_file_ref": "CX-1"})  # fmt: skip
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "confirmations.marked"
    r = feedback(client, market["social"], ins, outcome="executed",
                 confirmations={"marked": True, "integrity_file_ref": "CX-1", "colour": "red"})  # fmt: skip
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "confirmations.colour"
    # failed needs no confirmations; nothing was written by the refused reports
    with db.session() as s:
        assert s.scalar(select(Instruction.outcome).where(Instruction.id == uuid.UUID(ins["id"]))) is None
    ok = {"marked": True, "integrity_file_ref": "诚信档案-2026-0042"}
    r = feedback(client, market["social"], ins, outcome="executed", confirmations=ok)
    assert r.status_code == 200, r.text
    assert r.json()["confirmations"] == ok and r.json()["status"] == "executed"
    again = feedback(client, market["social"], ins, outcome="executed", confirmations=ok)
    assert again.status_code == 200 and again.json()["version"] == r.json()["version"]
    with db.session() as s:
        event = s.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "instruction.report", AuditEvent.target_id == ins["id"]
            )
        ).one()
        assert event.after_digest  # the report's snapshot (with its confirmations) is chained
        stored = s.scalar(select(Instruction).where(Instruction.id == uuid.UUID(ins["id"])))
        assert stored.confirmations == ok and stored.snapshot()["confirmations"] == ok
    # the lift on revocation asks for nothing
    with db.session() as s:
        take_step(s, REVIEWER, s.get(Entry, entry_id), Action.revoke, reason="判决被撤销")
    lift = instructions(client, market["social"], entry_id, "lift")["downgrade_credit_level"]
    assert (
        lift["feedback"] == []
        and feedback(client, market["social"], lift, outcome="executed").status_code == 200
    )


def test_measure_2_for_malicious_registration_names_closing_the_bulk_accounts(client, market, db):
    load_test_policy(db)
    entry_id = publish(db, market["shop"].org.id, judicial(behaviours=["malicious_registration"]))
    got = instructions(client, market["social"], entry_id)["block_or_delete_account"]
    assert [a["code"] for a in got["actions"]] == ["delete_account", "close_bulk_registered_accounts"]
    assert got["actions"][1]["zh"] == "关闭或删除使用软件或程序方式大批量注册的账户"
    with db.session() as s:
        row = s.scalar(select(Instruction).where(Instruction.id == uuid.UUID(got["id"])))
        assert row.actions == ["delete_account", "close_bulk_registered_accounts"] and row.audience is None


def test_the_console_shows_the_actions_and_takes_the_confirmations(client, market, db):
    load_test_policy(db)
    entry_id = publish(db, market["shop"].org.id, courier_staff_entry())
    with db.session() as s:
        org = s.get(Organisation, market["employer"].org.id)
        create_user(s, SYSTEM, username="courier", password=PASSWORD, org=org, role=Role.enterprise_operator)
        ins_id = s.scalar(
            select(Instruction.id).where(
                Instruction.entry_id == entry_id,
                Instruction.owner_org_id == org.id,
                Instruction.measure == "dismiss_and_notify_courier_staff",
            )
        )
    page = client.get("/console/login")
    client.post("/console/login", data={"csrf_token": csrf_of(page.text), "method": "password",
                                        "username": "courier", "password": PASSWORD})  # fmt: skip
    page = client.get("/console/workbench")
    assert page.status_code == 200
    assert "及时辞退" in page.text and "向同业其他企业进行通报" in page.text
    assert "雇用该从业人员的寄递物流企业" in page.text and str(entry_id) in page.text  # the notice to peers
    assert 'name="confirm.dismissed_on"' in page.text and 'name="confirm.peers_notified"' in page.text
    token = csrf_of(page.text)
    url = f"/console/instructions/{ins_id}/report"
    r = client.post(url, data={"csrf_token": token, "outcome": "executed", "confirm.peers_notified": "true"})
    # the missing confirmation is named in words, never by its field path
    assert r.status_code == 422 and "辞退日期" in r.text and "confirmations.dismissed_on" not in r.text
    r = client.post(url, data={"csrf_token": token, "outcome": "executed", "confirm.peers_notified": "true",
                               "confirm.dismissed_on": "2026-02-27"})  # fmt: skip
    assert r.status_code == 200
    with db.session() as s:
        row = s.scalar(select(Instruction).where(Instruction.id == ins_id))
        assert row.status == "executed"
        assert row.confirmations == {"dismissed_on": "2026-02-27", "peers_notified": True}


# --- decide() at the new scenes ---------------------------------------------------------------------------


def _decide(measures, scene, *, disputed=False):
    index = DecisionIndex()
    index.put(["k"], index_entry(entry_id="e-1", subject_kind="unit", severity="serious", behaviours=["order_brushing"],
                                 disputed=disputed, max_end_on=None, liable_role=None, measures=measures))  # fmt: skip
    return decide(index, ["k"], scene, today=TODAY)


def _stored(**kw):
    return [g.record() for g in graded(**kw).values()]


def test_decide_at_order_review_only_for_brushed_orders():
    got = _decide(_stored(behaviours=["order_brushing"]), "order_review")
    assert got.verdict == "deny"
    (m,) = got.measures
    assert m["code"] == "block_or_delete_account"
    assert [a["code"] for a in m["actions"]] == ["cancel_abused_orders"]
    assert "关闭或取消因滥用权利而产生的订单" in got.reasons[0]["zh"]
    assert _decide(_stored(behaviours=["fake_review"]), "order_review").verdict == "allow"
    # an open objection restricts, never denies
    assert _decide(_stored(), "order_review", disputed=True).verdict == "restrict"


def test_decide_at_shop_event_and_subsidy_claim():
    shop = _decide(_stored(severity="general"), "shop_event")
    assert shop.verdict == "deny"
    assert [(m["code"], [a["code"] for a in m["actions"]]) for m in shop.measures] == [
        ("restrict_promotions", ["no_shop_events"])
    ]
    assert "限制策划和开展网店庆典及促销活动" in shop.reasons[0]["zh"]
    subsidy = _decide(_stored(severity="minor"), "subsidy_claim")
    assert subsidy.verdict == "deny"
    assert [(m["code"], [a["code"] for a in m["actions"]]) for m in subsidy.measures] == [
        ("restrict_account_privileges", ["no_platform_perks"])
    ]
    # a measure's other scenes name its other actions
    ranking = _decide(_stored(), "search_ranking")
    (m,) = ranking.measures
    assert [a["code"] for a in m["actions"]] == ["lower_search_ranking"] and m["effect"] == "restrict"


def test_decide_by_the_entrys_actions_and_without_them_as_before():
    participant = _decide(_stored(role="participant", behaviours=["fake_review"]), "listing_publication")
    listing = next(m for m in participant.measures if m["code"] == "restrict_listings")
    assert listing["effect"] == "restrict"  # limit, not forbid
    assert [a["code"] for a in listing["actions"]] == ["limit_new_listings"]
    organizer = _decide(_stored(behaviours=["fake_review"]), "listing_publication")
    listing = next(m for m in organizer.measures if m["code"] == "restrict_listings")
    assert listing["effect"] == "deny" and [a["code"] for a in listing["actions"]] == ["forbid_new_listings"]
    # an entry graded before measures named actions keeps the measure's mildest effect, names none
    legacy = _decide([{"code": "restrict_listings", "params": {}}], "listing_publication")
    assert legacy.verdict == "restrict" and legacy.measures[0]["actions"] == []
    assert _decide([{"code": "deny_new_account"}], "account_registration").verdict == "deny"


def test_two_entries_merge_their_actions(market, db):
    index = DecisionIndex()
    for n, behaviours in enumerate((["order_brushing"], ["malicious_registration"])):
        entry = index_entry(entry_id=f"e-{n}", subject_kind="unit", severity="serious", behaviours=behaviours,
                            disputed=False, max_end_on=None, liable_role=None,
                            measures=_stored(behaviours=behaviours))  # fmt: skip
        index.put(["k"], entry)
    got = decide(index, ["k"], "account_review", today=TODAY)
    m2 = next(m for m in got.measures if m["code"] == "block_or_delete_account")
    assert [a["code"] for a in m2["actions"]] == ["delete_account", "close_bulk_registered_accounts"]


def test_the_platform_decides_at_the_new_scenes(client, market, db):
    load_test_policy(db)
    publish(db, market["shop"].org.id, judicial(behaviours=["subsidy_brushing"]))
    with db.session() as s:
        index = decision_index.build(s)
    key = [vault.identifier_index("uscc", USCC_A)]
    for scene in ("order_review", "shop_event", "subsidy_claim"):
        assert decide(index, key, scene, today=date.today()).verdict == "deny", scene
    r = client.post(
        "/v1/decisions",
        json={"scene": "order_review", "identifiers": [{"type": "uscc", "value": USCC_A}]},
        headers=market["shop"].headers(Role.enterprise_node),
    )
    assert r.status_code == 200, r.text
    assert r.json()["verdict"] == "deny"
    assert r.json()["measures"][0]["actions"][0]["code"] == "cancel_abused_orders"
