"""Done when (#22): an enterprise whose rules exclude measure 4 (restrict_promotions) receives it as "not
applicable by its rules", shown in the statistics — never dropped, never overdue, never lifted, and
decide() does not apply it for that enterprise but says so."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.blacklist.schemas import EntryIn
from fanchaoxin.core import vault
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.auth import Principal
from fanchaoxin.core.errors import Conflict
from fanchaoxin.core.roles import BusinessType as B
from fanchaoxin.core.roles import OrgKind, Role
from fanchaoxin.orgs import rulebook
from fanchaoxin.orgs.models import Organisation
from fanchaoxin.sanctions import index as decision_index
from fanchaoxin.sanctions import service as sanctions
from fanchaoxin.sanctions.decide import decide
from fanchaoxin.sanctions.models import Instruction
from fanchaoxin.stats import service as stats
from fanchaoxin.workflows.entries import take_step
from tests.blacklist.registry_helpers import USCC_A, judicial

REVIEWER = Actor("test:reviewer")
CLAUSE = "《平台服务协议》第8.3条：本平台不开展促销活动"
M4 = "restrict_promotions"
EXCLUDED = sanctions.EXCLUDED_BY_RULES


@pytest.fixture
def market(world, db):
    m = {
        "platform": world.platform(),
        "ruled": world.enterprise("无促销电商", business_types=[B.ecommerce]),
        "plain": world.enterprise("电商", business_types=[B.ecommerce]),
    }
    with db.session() as s:
        org = s.get(Organisation, m["ruled"].org.id)
        rulebook.set_rulebook(s, REVIEWER, org, [{"measure": 4, "applicable": False, "clause": CLAUSE}])
    return m


def publish(db, org_id):
    with db.session() as s:
        e = registry.submit(s, REVIEWER, org_id, EntryIn.model_validate(judicial()))
        take_step(s, REVIEWER, e, Action.start_review)
        take_step(s, REVIEWER, e, Action.publish)
        return e.id


def instructions(db, org_id, kind="apply"):
    with db.session() as s:
        rows = s.scalars(
            select(Instruction).where(Instruction.owner_org_id == org_id, Instruction.kind == kind)
        ).all()
        s.expunge_all()
        return {r.measure: r for r in rows}


def test_measure_4_excluded_by_its_rules_is_issued_as_not_applicable_counted_never_overdue_nor_lifted(
    market, db, client
):
    ruled, plain = market["ruled"].org.id, market["plain"].org.id
    entry_id = publish(db, market["platform"].org.id)
    mine, theirs = instructions(db, ruled), instructions(db, plain)
    assert M4 in mine and M4 in theirs and set(mine) == set(theirs)  # issued, never dropped
    four = mine[M4]
    assert (four.status, four.outcome, four.outcome_reason) == (EXCLUDED, EXCLUDED, CLAUSE)
    assert four.acknowledged_at is not None and four.reported_at is not None
    assert theirs[M4].status == "pending" and theirs[M4].outcome is None
    assert all(i.status == "pending" for m, i in mine.items() if m != M4)  # only measure 4

    # never overdue, however late
    late = date.today() + timedelta(days=60)
    assert not four.overdue(late)
    principal = Principal(role=Role.enterprise_operator, org_id=ruled, org_kind=OrgKind.enterprise)
    with db.session() as s:
        overdue = sanctions.list_instructions(s, principal, overdue=True, today=late).instructions
        assert M4 not in {i.measure for i in overdue} and len(overdue) == len(mine) - 1
        with pytest.raises(Conflict):  # final: nothing to report
            sanctions.report(s, principal, s.get(Instruction, four.seq), outcome="executed")

    # the addressee sees it in its list, with the clause
    listed = client.get(
        "/v1/instructions",
        params={"status": EXCLUDED},
        headers=market["ruled"].headers(Role.enterprise_operator),
    )
    assert listed.status_code == 200, listed.text
    [shown] = listed.json()["instructions"]
    assert (shown["measure"], shown["outcome_reason"], shown["overdue"]) == (M4, CLAUSE, False)

    # statistics: counted apart, not unacknowledged, not unexecuted, not overdue
    with db.session() as s:
        by_org = {r["org_id"]: r for r in stats.measures_by_enterprise(s, today=late)}
        by_code = {r["code"]: r for r in stats.measures_by_code(s, today=late)}
    r, p = by_org[str(ruled)], by_org[str(plain)]
    assert r["issued"] == p["issued"] and r["excluded_by_rules"] == 1 and p["excluded_by_rules"] == 0
    assert r["acknowledged"] == 0 and r["overdue"] == r["issued"] - 1 and p["overdue"] == p["issued"]
    assert by_code[M4]["excluded_by_rules"] == 1 and by_code[M4]["overdue"] == 1
    figures = client.get(
        "/v1/stats/measures",
        params={"by": "measure"},
        headers=market["platform"].headers(Role.platform_reviewer),
    )
    assert {r["code"]: r["excluded_by_rules"] for r in figures.json()["rows"]}[M4] == 1
    csv = client.get(
        "/v1/stats/measures",
        params={"format": "csv"},
        headers=market["ruled"].headers(Role.enterprise_operator),
    )
    assert csv.status_code == 200 and "excluded_by_rules" in csv.text.splitlines()[0]
    with db.session() as s:
        monthly = stats.monthly(s, f"{date.today():%Y-%m}")
    assert monthly["measures"]["excluded_by_rules"] == 1
    assert [(x["org_id"], x["measure"], x["clause"]) for x in monthly["rulebook_exclusions"]] == [
        (str(ruled), M4, CLAUSE)
    ]

    # revocation lifts what was applied — not what its rules excluded
    with db.session() as s:
        take_step(s, REVIEWER, s.get(Entry, entry_id), Action.revoke, reason="判决被撤销")
    assert M4 not in instructions(db, ruled, "lift") and M4 in instructions(db, plain, "lift")
    assert set(instructions(db, ruled, "lift")) == set(mine) - {M4}


def test_a_correction_re_issues_nothing_for_the_excluded_measure(market, db):
    entry_id = publish(db, market["platform"].org.id)
    with db.session() as s:
        entry = s.get(Entry, entry_id)
        assert sanctions.reissue_instructions(s, REVIEWER, entry) == {"apply": 0, "lift": 0}


def test_decide_does_not_apply_an_excluded_measure_for_that_enterprise_but_says_so(market, db):
    publish(db, market["platform"].org.id)
    with db.session() as s:
        index = decision_index.build(s)
    keys = [vault.identifier_index("uscc", USCC_A)]
    today = date.today()
    rulebook.EXCLUSIONS.invalidate()
    excluded = rulebook.EXCLUSIONS.load(db, market["ruled"].org.id)
    assert rulebook.EXCLUSIONS.cached(market["ruled"].org.id) == {M4: CLAUSE}
    plain = decide(index, keys, "promotion_signup", today=today)
    codes = [m["code"] for m in plain.measures]
    assert plain.verdict == "deny" and M4 in codes
    assert "not_applicable_by_rules" not in plain.to_dict()  # answers stay as they were
    ruled = decide(index, keys, "promotion_signup", today=today, excluded=excluded).to_dict()
    assert [m["code"] for m in ruled["measures"]] == [c for c in codes if c != M4]
    # the verdict: the strictest effect of the measures its rules let it apply (measure 4 denied here)
    rank = {"allow": 0, "restrict": 1, "deny": 2}
    assert ruled["verdict"] == max((m["effect"] for m in ruled["measures"]), key=rank.get, default="allow")
    assert ruled["verdict"] != "deny"
    assert [(m["code"], m["number"], m["clause"]) for m in ruled["not_applicable_by_rules"]] == [
        (M4, 4, CLAUSE)
    ]
    # another scene: its other measures still apply
    other = decide(index, keys, "account_registration", today=today, excluded=excluded)
    assert other.verdict == "deny" and not other.not_applicable_by_rules


def test_decisions_route_reads_the_callers_rulebook(market, db, client):
    publish(db, market["platform"].org.id)
    client.app.state.decision_index.invalidate()
    rulebook.EXCLUSIONS.invalidate()
    body = {"scene": "promotion_signup", "identifiers": [{"type": "uscc", "value": USCC_A}]}
    ruled = client.post("/v1/decisions", json=body, headers=market["ruled"].headers(Role.enterprise_node))
    plain = client.post("/v1/decisions", json=body, headers=market["plain"].headers(Role.enterprise_node))
    assert ruled.status_code == plain.status_code == 200, ruled.text
    assert plain.json()["verdict"] == "deny"
    assert ruled.json()["verdict"] != "deny"
    assert M4 not in [m["code"] for m in ruled.json()["measures"]]
    assert ruled.json()["not_applicable_by_rules"][0]["clause"] == CLAUSE
