"""Statistics: counts against data made through the real services, exports, access, the monthly report."""

import csv
import io
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select, update
from typer.testing import CliRunner

from fanchaoxin.appeals import reports
from fanchaoxin.appeals.notify import LogNotifier, set_notifier
from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.blacklist.schemas import EntryIn
from fanchaoxin.cli import app as cli
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.auth import Principal
from fanchaoxin.core.roles import BusinessType as B
from fanchaoxin.core.roles import OrgKind, Role
from fanchaoxin.orgs.models import Organisation
from fanchaoxin.sanctions import service as sanctions
from fanchaoxin.sanctions.models import Instruction
from fanchaoxin.stats import service as stats
from fanchaoxin.stats.report import print_pdf, render_monthly
from fanchaoxin.workflows import appeals
from fanchaoxin.workflows.entries import take_step
from tests.blacklist.registry_helpers import RID_A, RID_B, USCC_A, USCC_B, judicial, person_entry, unit_entry

REVIEWER = Actor("test:reviewer")
D = date


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def outbox():
    notifier = LogNotifier()
    previous = set_notifier(notifier)
    yield notifier
    set_notifier(previous)


def publish(db, org_id, body, today):
    with db.session() as s:
        e = registry.submit(s, REVIEWER, org_id, EntryIn.model_validate(body))
        take_step(s, REVIEWER, e, Action.start_review, today=today)
        if body["basis"] == "enterprise_finding":
            take_step(s, REVIEWER, e, Action.open_notice, today=today)
            e.notice_ends_on = D(2000, 1, 1)
        take_step(s, REVIEWER, e, Action.publish, today=today)
        return e.id


def set_times(db, entry_id, **times):
    with db.session() as s:
        s.execute(update(Entry).where(Entry.id == entry_id).values(**times))
        if "published_at" in times:
            s.execute(
                update(Instruction)
                .where(Instruction.entry_id == entry_id, Instruction.kind == "apply")
                .values(issued_at=times["published_at"])
            )
        if "ended_at" in times:
            s.execute(
                update(Instruction)
                .where(Instruction.entry_id == entry_id, Instruction.kind == "lift")
                .values(issued_at=times["ended_at"])
            )


def staff(tenant, role):
    kind = OrgKind(tenant.org.kind)
    return Principal(role=role, org_id=tenant.org.id, org_kind=kind)


def counts(rows):
    return {r["key"]: r["count"] for r in rows}


def n_instructions(db, **where):
    with db.session() as s:
        stmt = select(Instruction)
        for k, v in where.items():
            stmt = stmt.where(getattr(Instruction, k) == v)
        return len(s.scalars(stmt).all())


@pytest.fixture
def scene(world, db, outbox):
    """Four entries across September-November 2026, feedback, objections and reports.

    - `sept`: an individual (minor, order brushing) published 15 Sep, revoked by a reviewer 5 Oct;
    - `unit`: a company (general, order brushing + fake review) submitted 1 Oct 00:30 Beijing time,
      published 10 Oct; the shop acknowledges 4 of its instructions (12 Oct) and reports 3 outcomes;
      an objection filed 14 Oct is upheld on 16 Oct (on time);
    - `court`: a courier company (serious, judicial, empty parcels) submitted 30 Sep 23:59 Beijing
      time, published 20 Oct; an objection filed 20 Oct stays open (due 27 Oct);
    - `sub`: an individual submitted 2 Nov, never published;
    - reports filed 8-9 Oct and routed to the shop (due 22 Oct): one handled on time, one late, one open.
    """
    m = {
        "platform": world.platform(),
        "shop": world.enterprise("电商平台甲", business_types=[B.ecommerce]),
        "ride": world.enterprise("出行平台乙", business_types=[B.sharing_economy]),
        "dept": world.department("邮政管理局", kind="posts"),  # the court case is empty parcels (its competence)
    }
    shop = m["shop"]
    sept = publish(db, shop.org.id, person_entry(), D(2026, 9, 15))
    with db.session() as s:
        take_step(
            s, REVIEWER, s.get(Entry, sept), Action.revoke, reason="报送有误", today=D(2026, 10, 5)
        )
    set_times(
        db,
        sept,
        submitted_at=utc(2026, 9, 10, 2),
        published_at=utc(2026, 9, 15, 4),
        ended_at=utc(2026, 10, 5, 3),
    )

    unit = publish(db, shop.org.id, unit_entry(), D(2026, 10, 9))
    set_times(db, unit, submitted_at=utc(2026, 9, 30, 16, 30), published_at=utc(2026, 10, 10, 2))

    court_body = judicial(
        subject={
            "kind": "courier_company",
            "name": "某速运有限公司",
            "identifiers": [{"type": "uscc", "value": USCC_B}],
        },
        behaviours=["empty_parcel"],
    )
    court = publish(db, m["dept"].org.id, court_body, D(2026, 10, 20))
    set_times(db, court, submitted_at=utc(2026, 9, 30, 15, 59), published_at=utc(2026, 10, 20, 6))

    sub_body = person_entry(
        subject={
            "kind": "individual",
            "name": "李小四",
            "identifiers": [{"type": "resident_id", "value": RID_B}],
        }
    )
    with db.session() as s:
        sub = registry.submit(s, REVIEWER, shop.org.id, EntryIn.model_validate(sub_body)).id
    set_times(db, sub, submitted_at=utc(2026, 11, 2, 1))

    # The shop's feedback on the company's instructions.
    who = staff(shop, Role.enterprise_node)
    with db.session() as s:
        mine = s.scalars(
            select(Instruction)
            .where(Instruction.entry_id == unit, Instruction.owner_org_id == shop.org.id)
            .order_by(Instruction.seq)
        ).all()
        assert len(mine) >= 4
        sanctions.acknowledge(s, who, mine[0])
        done = {"bool": True, "int": 12, "str": "CX-2026-0001", "date": "2026-10-12"}  # what it confirms
        confirmations = {f.field: done[f.type] for f in mine[1].feedback_fields()}
        sanctions.report(s, who, mine[1], outcome="executed", confirmations=confirmations)
        sanctions.report(s, who, mine[2], outcome="failed", reason="账户已注销")
        sanctions.report(s, who, mine[3], outcome="not_applicable")
        for i in mine[:4]:
            i.acknowledged_at = utc(2026, 10, 12, 2)

    # Objections: one upheld on time, one open.
    with db.session() as s:
        f = appeals.file_objection(
            s, Actor("public"), entry_id=unit, identifier_type="uscc", identifier_value=USCC_A,
            grounds="订单均为真实交易。", contact_email="a@example.com", channel="public", today=D(2026, 10, 14),
        )  # fmt: skip
        appeals.decide_objection(
            s, REVIEWER, f.case, outcome="upheld", reason="证据不足以推翻", identity_verification="核对营业执照",
            today=D(2026, 10, 16),
        )  # fmt: skip
    with db.session() as s:
        f = appeals.file_objection(
            s, Actor("public"), entry_id=court, identifier_type="uscc", identifier_value=USCC_B,
            grounds="判决尚未生效。", contact_email="b@example.com", channel="public", today=D(2026, 10, 20),
        )  # fmt: skip
        assert f.case.decide_due_on == D(2026, 10, 27)

    # Reports routed to the shop, due 22 October.
    handled_at = [utc(2026, 10, 21, 8), utc(2026, 10, 26, 8), None]
    for n, at in enumerate(handled_at):
        with db.session() as s:
            f = reports.file_report(
                s, Actor("public"), description="组织刷单。", reported={"identifiers": [{"type": "uscc", "value": USCC_A}]},
                behaviours=["order_brushing"], enterprise_org_id=shop.org.id, contact_email=None, channel="public",
                today=D(2026, 10, 8 + min(n, 1)),
            )  # fmt: skip
            rep = reports.triage_report(
                s,
                REVIEWER,
                f.case,
                action="route",
                addressed_to_org_id=shop.org.id,
                note="",
                today=D(2026, 10, 9),
            )
            assert rep.handle_due_on == D(2026, 10, 22)
            if at is not None:
                outcome = "substantiated" if n == 0 else "unsubstantiated"
                reports.handle_report(
                    s, staff(shop, Role.enterprise_operator), rep, outcome=outcome, note="已核查"
                )
                rep.handled_at = at
    return {**m, "sept": sept, "unit": unit, "court": court, "sub": sub}


# --- service: entries -----------------------------------------------------------------------------------


def test_entries_by_each_dimension(scene, db):
    with db.session() as s:
        assert counts(stats.entries_by(s, "behaviour")) == {
            "empty_parcel": 1,
            "fake_review": 1,
            "order_brushing": 3,
        }
        assert [r["key"] for r in stats.entries_by(s, "behaviour")] == [
            "empty_parcel",
            "fake_review",
            "order_brushing",
        ]
        assert counts(stats.entries_by(s, "severity")) == {"general": 1, "minor": 2, "serious": 1}
        assert counts(stats.entries_by(s, "basis")) == {"enterprise_finding": 3, "judicial_decision": 1}
        # The two lists apart, for staff (#15): enterprise findings are the market-shared list.
        assert counts(stats.entries_by(s, "list")) == {"public": 1, "shared": 3}
        assert counts(stats.entries_by(s, "status")) == {
            "disputed": 1,
            "published": 1,
            "revoked": 1,
            "submitted": 1,
        }
        assert counts(stats.entries_by(s, "subject_kind")) == {
            "courier_company": 1,
            "individual": 2,
            "unit": 1,
        }
        # Months are Beijing-time months: 30 Sep 15:59 UTC is September, 30 Sep 16:30 UTC is October.
        assert counts(stats.entries_by(s, "month")) == {"2026-09": 2, "2026-10": 1, "2026-11": 1}
        assert counts(stats.entries_by(s, "month", published_only=True)) == {"2026-09": 1, "2026-10": 2}
        assert counts(stats.entries_by(s, "behaviour", published_only=True)) == {
            "empty_parcel": 1, "fake_review": 1, "order_brushing": 2,
        }  # fmt: skip
        labels = {r["key"]: r["label_zh"] for r in stats.entries_by(s, "behaviour")}
        assert labels["order_brushing"] == "刷单炒信"
        with pytest.raises(ValueError, match="colour"):
            stats.entries_by(s, "colour")


def test_entries_by_period_is_in_beijing_days(scene, db):
    with db.session() as s:
        october = stats.entries_by(s, "basis", start=D(2026, 10, 1), end=D(2026, 10, 31))
        assert counts(october) == {"enterprise_finding": 1}
        assert counts(stats.entries_by(s, "basis", start=D(2026, 9, 30), end=D(2026, 9, 30))) == {
            "judicial_decision": 1
        }
        assert counts(stats.entries_by(s, "basis", start=D(2026, 11, 1))) == {"enterprise_finding": 1}
        assert counts(stats.entries_by(s, "severity", end=D(2026, 9, 30))) == {"minor": 1, "serious": 1}
        published_oct = stats.entries_by(
            s, "severity", start=D(2026, 10, 1), end=D(2026, 10, 31), published_only=True
        )
        assert counts(published_oct) == {"general": 1, "serious": 1}
        assert stats.entries_by(s, "status", start=D(2027, 1, 1)) == []
        with pytest.raises(ValueError, match="end"):
            stats.entries_by(s, "status", start=D(2026, 10, 2), end=D(2026, 10, 1))


# --- service: measures ----------------------------------------------------------------------------------


def test_measures_by_enterprise(scene, db):
    shop, ride, dept = scene["shop"].org.id, scene["ride"].org.id, scene["dept"].org.id
    shop_applies = n_instructions(db, owner_org_id=shop, kind="apply")
    with db.session() as s:
        rows = {r["org_id"]: r for r in stats.measures_by_enterprise(s, today=D(2026, 11, 15))}
    assert set(rows) == {str(shop), str(ride), str(dept)}  # the platform is no addressee
    row = rows[str(shop)]
    assert row["org_name"] == "电商平台甲" and row["kind"] == "enterprise"
    # minor individual → measures 5, 6, 8, all implementable by an e-commerce platform: 3 lifts.
    assert row["lifts"] == 3
    assert row["issued"] == shop_applies
    assert (row["acknowledged"], row["executed"], row["failed"], row["not_applicable"]) == (4, 1, 1, 1)
    # On 15 November everything unacknowledged is past its due date; the lifts were never acknowledged.
    assert row["overdue"] == shop_applies - 4 + 3
    assert row["feedback_rate"] == round(3 / shop_applies, 4)
    assert rows[str(dept)]["kind"] == "department"
    assert rows[str(dept)]["issued"] == n_instructions(db, owner_org_id=dept, kind="apply") > 0
    assert rows[str(ride)]["feedback_rate"] == 0.0 and rows[str(ride)]["lifts"] == 3
    # Before any due date nothing is overdue; a period selects by issue time.
    with db.session() as s:
        early = {r["org_id"]: r for r in stats.measures_by_enterprise(s, today=D(2026, 9, 16))}
        assert all(r["overdue"] == 0 for r in early.values())
        sept = {
            r["org_id"]: r
            for r in stats.measures_by_enterprise(
                s, start=D(2026, 9, 1), end=D(2026, 9, 30), today=D(2026, 11, 15)
            )
        }
        assert sept[str(shop)]["issued"] == 3 and sept[str(shop)]["lifts"] == 0
        assert sept[str(dept)]["issued"] == 0  # an enterprise finding gets no department measures
        only = stats.measures_by_enterprise(s, org_id=shop)
        assert [r["org_id"] for r in only] == [str(shop)]


def test_measures_by_code(scene, db):
    with db.session() as s:
        rows = stats.measures_by_code(s, today=D(2026, 11, 15))
    assert [r["number"] for r in rows[:13]] == list(range(1, 14))
    by_code = {r["code"]: r for r in rows}
    for code, r in by_code.items():
        assert r["issued"] == n_instructions(db, measure=code, kind="apply"), code
        assert r["lifts"] == n_instructions(db, measure=code, kind="lift"), code
    assert by_code["deduct_credit_points"]["name_zh"] == "扣除信用积分"
    assert by_code["deduct_credit_points"]["lifts"] == 2  # the shop and the ride-sharing platform
    assert sum(r["executed"] for r in rows) == 1
    assert any(r["department_measure"] and r["issued"] for r in rows)


# --- service: cases and the public summary ---------------------------------------------------------------


def test_cases_open_due_soon_overdue(scene, db):
    with db.session() as s:
        on_20 = stats.cases(s, today=D(2026, 10, 20))
        on_26 = stats.cases(s, today=D(2026, 10, 26))
        on_28 = stats.cases(s, today=D(2026, 10, 28))
    assert on_20["objections"] == {
        "open": 1,
        "due_soon": 0,
        "overdue": 0,
        "by_status": {"decided": 1, "open": 1},
    }
    # due 27 October: within 2 working days of Monday 26 October, overdue on the 28th.
    assert (on_26["objections"]["due_soon"], on_26["objections"]["overdue"]) == (1, 0)
    assert (on_28["objections"]["due_soon"], on_28["objections"]["overdue"]) == (0, 1)
    assert on_20["reports"] == {
        "open": 1,
        "due_soon": 1,
        "overdue": 0,
        "by_status": {"handled": 2, "routed": 1},
    }
    assert (on_26["reports"]["open"], on_26["reports"]["overdue"]) == (1, 1)
    assert on_20["repairs"] == {"open": 0, "due_soon": 0, "overdue": 0, "by_status": {}}


def test_public_summary_has_figures_and_no_identifiers(scene, db):
    with db.session() as s:
        summary = stats.public_summary(s, today=D(2026, 10, 31))
    # The public 失信 list only (#15): the court's entry; the enterprise findings are never counted.
    assert summary["list"]["code"] == "public"
    assert summary["in_force"]["total"] == 1
    assert counts(summary["in_force"]["by_behaviour"]) == {"empty_parcel": 1}
    assert counts(summary["in_force"]["by_subject_kind"]) == {"courier_company": 1}
    assert summary["published"] == {"this_month": 1, "this_year": 1}
    assert summary["revoked_after_objection"] == {"this_year": 0, "total": 0}
    text = repr(summary)
    for secret in (
        USCC_A,
        USCC_B,
        RID_A,
        RID_B,
        "北京某某",
        "某速运",
        "张小三",
        "电商平台甲",
        "邮政管理局",
        str(scene["unit"]),
    ):
        assert secret not in text


# --- service: the monthly figures -----------------------------------------------------------------------


def test_monthly_figures_with_previous_month(scene, db):
    with db.session() as s:
        r = stats.monthly(s, "2026-10", today=D(2026, 11, 15))
    assert (r["month"], r["previous_month"], r["from"], r["to"], r["as_of"]) == (
        "2026-10", "2026-09", "2026-10-01", "2026-10-31", "2026-10-31",
    )  # fmt: skip
    e, pe = r["entries"], r["previous_entries"]
    assert (e["published"], e["revoked"], e["expired"], e["repaired"], e["submitted"]) == (2, 1, 0, 0, 1)
    assert (e["in_force_at_end"], e["revoked_after_objection"]) == (2, 0)
    assert (pe["published"], pe["submitted"], pe["in_force_at_end"], pe["revoked"]) == (1, 2, 1, 0)
    by_behaviour = {row["key"]: (row["count"], row["previous"]) for row in r["by_behaviour"]}
    assert by_behaviour == {"empty_parcel": (1, 0), "fake_review": (1, 0), "order_brushing": (1, 1)}
    assert {row["key"]: (row["count"], row["previous"]) for row in r["by_basis"]} == {
        "enterprise_finding": (1, 1), "judicial_decision": (1, 0),
    }  # fmt: skip
    assert {row["key"]: (row["count"], row["previous"]) for row in r["by_list"]} == {
        "public": (1, 0), "shared": (1, 1),
    }  # fmt: skip
    by_list = {b["code"]: (b["entries"]["published"], b["entries"]["in_force_at_end"]) for b in r["entries_by_list"]}
    assert by_list == {"public": (1, 1), "shared": (1, 1)}
    shop = next(o for o in r["measures_by_enterprise"] if o["org_id"] == str(scene["shop"].org.id))
    october_applies = n_instructions(db, owner_org_id=scene["shop"].org.id, kind="apply") - 3
    assert shop["issued"] == october_applies and shop["lifts"] == 3
    # As of 31 October: acknowledged on 12 October is on time; everything else issued in October is late.
    assert shop["overdue"] == october_applies - 4 + 3
    assert r["measures"]["executed"] == 1 and r["previous_measures"]["issued"] == 6  # 3 each, shop and ride
    c = r["cases"]
    assert c["objections"] == {
        "filed": 2, "decided": 1, "on_time": 1, "late": 0, "on_time_rate": 1.0, "upheld": 1, "corrected": 0,
        "revoked": 0,
    }  # fmt: skip
    assert c["reports"]["filed"] == 3 and c["reports"]["handled"] == 2
    assert (c["reports"]["on_time"], c["reports"]["late"], c["reports"]["substantiated"]) == (1, 1, 1)
    assert r["previous_cases"]["objections"]["filed"] == 0
    with db.session() as s, pytest.raises(ValueError, match="month"):
        stats.monthly(s, "2026-13")


def test_monthly_report_html_has_the_figures(scene, db):
    with db.session() as s:
        html = render_monthly(stats.monthly(s, "2026-10", today=D(2026, 11, 15)))
    assert '<html lang="zh-CN">' in html and "<script" not in html and "http" not in html.split("<body>")[1]
    assert 'id="published">2<' in html and 'id="revoked">1<' in html and 'id="in-force">2<' in html
    assert "刷单炒信" in html and "Fake orders" in html
    assert "电商平台甲" in html and "50.0%" in html  # report on-time rate 1 of 2
    assert USCC_A not in html and "北京某某" not in html
    assert "+1 (+100.0%)" in html  # published 2 against 1


# --- the API --------------------------------------------------------------------------------------------


def rv(tenant):
    return tenant.headers(Role.platform_reviewer)


def test_entries_api_json_csv_xlsx(client, scene):
    p = scene["platform"]
    r = client.get("/v1/stats/entries?by=behaviour", headers=rv(p))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == 5 and counts(body["rows"])["order_brushing"] == 3

    r = client.get("/v1/stats/entries?by=month&published_only=true&format=csv", headers=rv(p))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="fcx-stats-entries-month-published.csv"' in r.headers["content-disposition"]
    assert r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [(x["key"], int(x["count"])) for x in rows] == [("2026-09", 1), ("2026-10", 2)]

    r = client.get("/v1/stats/entries?by=behaviour&from=2026-10-01&to=2026-10-31&format=xlsx", headers=rv(p))
    assert r.status_code == 200
    assert "fcx-stats-entries-behaviour-2026-10-01-2026-10-31.xlsx" in r.headers["content-disposition"]
    ws = load_workbook(io.BytesIO(r.content)).active
    data = list(ws.values)
    assert data[0][:4] == ("key", "label_zh", "label_en", "count")
    assert {row[0]: row[3] for row in data[1:]} == {"fake_review": 1, "order_brushing": 1}
    assert {row[0]: row[1] for row in data[1:]}["fake_review"] == "虚假评价"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("by=colour", "by"),
        ("", "by"),
        ("by=status&from=2026-13-01", "from"),
        ("by=status&to=yesterday", "to"),
        ("by=status&from=2026-10-02&to=2026-10-01", "to"),
        ("by=status&format=pdf", "format"),
        ("by=status&published_only=maybe", "published_only"),
    ],
)
def test_bad_parameters_name_the_parameter(client, scene, query, field):
    r = client.get(f"/v1/stats/entries?{query}", headers=rv(scene["platform"]))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert field in [e["field"] for e in r.json()["errors"]]


def test_measures_api_and_an_enterprise_sees_its_own_row(client, scene):
    p, shop, dept = scene["platform"], scene["shop"], scene["dept"]
    all_rows = client.get("/v1/stats/measures?by=enterprise", headers=rv(p)).json()["rows"]
    assert len(all_rows) == 3
    assert (
        len(client.get("/v1/stats/measures", headers=dept.headers(Role.department_officer)).json()["rows"])
        == 3
    )
    for role in (Role.enterprise_node, Role.enterprise_operator):
        own = client.get("/v1/stats/measures?by=enterprise", headers=shop.headers(role)).json()["rows"]
        assert [r["org_id"] for r in own] == [str(shop.org.id)]
    shop_row = next(r for r in all_rows if r["org_id"] == str(shop.org.id))
    assert own[0]["issued"] == shop_row["issued"]
    # By measure, an enterprise's figures are its own instructions only.
    mine = client.get("/v1/stats/measures?by=measure", headers=shop.headers(Role.enterprise_node)).json()[
        "rows"
    ]
    everyone = client.get("/v1/stats/measures?by=measure", headers=rv(p)).json()["rows"]
    assert sum(r["issued"] for r in mine) == shop_row["issued"] < sum(r["issued"] for r in everyone)
    r = client.get("/v1/stats/measures?by=enterprise&format=csv", headers=shop.headers(Role.enterprise_node))
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [(x["org_name"], int(x["issued"])) for x in rows] == [("电商平台甲", shop_row["issued"])]
    r = client.get("/v1/stats/measures?by=measure&format=xlsx", headers=rv(p))
    ws = load_workbook(io.BytesIO(r.content)).active
    header, *values = list(ws.values)
    got = {row[header.index("code")]: row[header.index("issued")] for row in values}
    assert got == {x["code"]: x["issued"] for x in everyone}
    assert client.get("/v1/stats/measures?by=subject", headers=rv(p)).json()["errors"][0]["field"] == "by"


@pytest.mark.parametrize(
    "evil", ['=HYPERLINK("http://evil.example","点击")', '\t=HYPERLINK("http://evil.example")']
)
def test_a_typed_in_name_never_becomes_a_formula_in_exports(client, scene, db, evil):
    p, shop = scene["platform"], scene["shop"]
    with db.session() as s:
        s.execute(update(Organisation).where(Organisation.id == shop.org.id).values(name=evil))
    r = client.get("/v1/stats/measures?by=enterprise&format=csv", headers=rv(p))
    names = [x["org_name"] for x in csv.DictReader(io.StringIO(r.content.decode("utf-8-sig")))]
    assert "'" + evil in names and evil not in names
    r = client.get("/v1/stats/measures?by=enterprise&format=xlsx", headers=rv(p))
    header, *values = load_workbook(io.BytesIO(r.content)).active.iter_rows()
    cells = [row[[c.value for c in header].index("org_name")] for row in values]
    assert "'" + evil in [c.value for c in cells]
    assert all(c.data_type == "s" for c in cells)


def test_access_rules(client, scene):
    p, shop, dept = scene["platform"], scene["shop"], scene["dept"]
    assert client.get("/v1/stats/entries?by=status").status_code == 401
    assert (
        client.get("/v1/stats/entries?by=status", headers=shop.headers(Role.enterprise_operator)).status_code
        == 403
    )
    assert (
        client.get("/v1/stats/entries?by=status", headers=dept.headers(Role.department_officer)).status_code
        == 200
    )
    assert client.get("/v1/stats/entries?by=status", headers=p.headers(Role.auditor)).status_code == 200
    assert client.get("/v1/stats/cases", headers=dept.headers(Role.department_officer)).status_code == 403
    assert client.get("/v1/stats/cases", headers=shop.headers(Role.enterprise_node)).status_code == 403
    r = client.get("/v1/stats/cases", headers=p.headers(Role.platform_admin))
    assert r.status_code == 200 and set(r.json()) >= {"objections", "reports", "repairs"}
    r = client.get("/v1/stats/cases?format=csv", headers=p.headers(Role.auditor))
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert {"case": "objections", "figure": "status:decided", "count": "1"} in rows


def test_public_api_needs_no_key_and_leaks_nothing(client, scene):
    r = client.get("/v1/stats/public")
    assert r.status_code == 200
    assert r.json()["in_force"]["total"] == 1  # the public list only
    for fmt in ("json", "csv", "xlsx"):
        r = client.get(f"/v1/stats/public?format={fmt}")
        assert r.status_code == 200
        content = (
            r.content if fmt != "xlsx" else repr(list(load_workbook(io.BytesIO(r.content)).active.values))
        )
        text = content.decode("utf-8-sig") if isinstance(content, bytes) else content
        for secret in (
            USCC_A,
            USCC_B,
            RID_A,
            "北京某某",
            "张小三",
            "电商平台甲",
            str(scene["shop"].org.id),
            str(scene["unit"]),
        ):
            assert secret not in text, (fmt, secret)
    assert "org_id" not in client.get("/v1/stats/public").text


# --- the CLI ---------------------------------------------------------------------------------------------


def test_report_monthly_cli(scene, settings, tmp_path):
    runner = CliRunner()
    bad = runner.invoke(
        cli, ["report", "monthly", "--month", "2026-13", "--no-pdf", "--output", str(tmp_path)]
    )
    assert bad.exit_code == 1 and "--month" in bad.output
    assert list(tmp_path.iterdir()) == []
    r = runner.invoke(cli, ["report", "monthly", "--month", "2026-10", "--no-pdf", "--output", str(tmp_path)])
    assert r.exit_code == 0, r.output
    html = (tmp_path / "fcx-monthly-2026-10.html").read_text(encoding="utf-8")
    assert 'id="published">2<' in html and "2026-10-01" in html
    assert not (tmp_path / "fcx-monthly-2026-10.pdf").exists()
    missing = runner.invoke(
        cli,
        [
            "report",
            "monthly",
            "--month",
            "2026-10",
            "--output",
            str(tmp_path),
            "--chromium",
            "/nonexistent/chromium",
        ],
    )
    assert missing.exit_code == 1 and "--no-pdf" in missing.output


CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


@pytest.mark.skipif(CHROMIUM is None, reason="/usr/bin/chromium is not installed (CI installs it in .ci/run)")
def test_report_monthly_pdf(scene, settings, tmp_path):
    runner = CliRunner()
    r = runner.invoke(
        cli, ["report", "monthly", "--month", "2026-10", "--output", str(tmp_path), "--chromium", CHROMIUM]
    )
    assert r.exit_code == 0, r.output
    pdf = (tmp_path / "fcx-monthly-2026-10.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and b"%%EOF" in pdf[-1024:] and len(pdf) > 10_000
    assert not list(tmp_path.glob(".*.part"))


@pytest.mark.skipif(CHROMIUM is None, reason="/usr/bin/chromium is not installed (CI installs it in .ci/run)")
def test_print_pdf_of_a_plain_page(tmp_path):
    page = tmp_path / "p.html"
    page.write_text("<!DOCTYPE html><meta charset=utf-8><p>反炒信 统计</p>", encoding="utf-8")
    print_pdf(page, tmp_path / "p.pdf", chromium=CHROMIUM)
    assert (tmp_path / "p.pdf").read_bytes()[:5] == b"%PDF-"


def test_anonymous_public_figures_are_computed_once_for_api_and_console(client, scene, monkeypatch):
    calls = []
    real = stats.public_summary

    def counting(session, **kw):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(session, **kw)

    monkeypatch.setattr(stats, "public_summary", counting)
    assert client.get("/v1/stats/public").status_code == 200
    assert client.get("/console/public/stats").status_code == 200
    assert client.get("/v1/stats/public?format=csv").status_code == 200
    assert len(calls) == 1
