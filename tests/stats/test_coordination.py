"""Coordination figures (协同情况): per enterprise, instructions on time, objections against its entries,
action items — on a constructed world, through the service, the API and the monthly report."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from fanchaoxin.appeals.models import Objection
from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.schemas import EntryIn
from fanchaoxin.consultation.models import ActionItem, Meeting
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.errors import ValidationProblem
from fanchaoxin.core.roles import Role
from fanchaoxin.orgs.models import Organisation
from fanchaoxin.orgs.participation_models import Participation
from fanchaoxin.sanctions.models import Instruction
from fanchaoxin.sanctions.service import EXCLUDED_BY_RULES
from fanchaoxin.stats import coordination as co
from fanchaoxin.stats.report import monthly_report, render_monthly
from tests.blacklist.registry_helpers import USCC_B, unit_entry

REVIEWER = Actor("test:reviewer")
D = date
TODAY = D(2026, 11, 20)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _instruction(s, entry_id, org_id, n, *, issued, due, acked=None, outcome=None, kind="apply", status=None):
    s.add(
        Instruction(
            entry_id=entry_id, owner_org_id=org_id, kind=kind, measure=f"m{n}", params={}, issued_at=issued,
            ack_due_on=due, acknowledged_at=acked, outcome=outcome,
            status=status or outcome or ("acknowledged" if acked else "pending"),
        )
    )  # fmt: skip


def _objection(s, entry_id, n, *, filed, decided=None, outcome=None):
    s.add(
        Objection(
            tracking_number=f"YY-{uuid.uuid4().hex[:12]}", secret_hash="0" * 64, entry_id=entry_id,
            open_entry_id=None if decided else entry_id, status="decided" if decided else "open",
            channel="public", filed_by="public", identifier_type="uscc", grounds=f"异议 {n}",
            contact_email="a@example.com", filed_on=filed, dispute_due_on=filed, forward_due_on=filed,
            decide_due_on=filed, decided_on=decided, outcome=outcome,
            decided_at=utc(decided.year, decided.month, decided.day, 2) if decided else None,
        )
    )  # fmt: skip


@pytest.fixture
def coord(world, db):
    """Three enterprises and a department; November 2026, as of 20 November.

    The shop (电商平台甲), instructions issued 2 November, due 5 November:
      1 acknowledged 5 Nov 23:00 Beijing (on time), executed — executed on time;
      2 acknowledged 6 Nov 00:30 Beijing (late), executed;
      3 never acknowledged — overdue;  4 on time, failed;  5 on time, not applicable;
      6 excluded by its rules (final at issue);  7 due 25 Nov, not yet acknowledged — not overdue;
      a lift due 5 Nov, never acknowledged — overdue; one more issued 10 Oct (due 15 Oct, acknowledged
      2 Nov: overdue as of 31 Oct), not in November.
      Objections to its entry: filed 3 Nov revoked 10 Nov, filed 4 Nov upheld (rejected) 12 Nov, filed
      15 Nov open, filed 20 Oct corrected 2 Nov. Action items: one due 10 Nov (overdue), one due 30 Nov,
      one closed.
    The ride (出行平台乙): one instruction acknowledged on time and executed; an objection of October.
    The quiet one (清静企业丙): nothing. The department: an instruction (not a row: enterprises only).
    """
    platform = world.platform()
    shop = world.enterprise("电商平台甲")
    ride = world.enterprise("出行平台乙")
    quiet = world.enterprise("清静企业丙")
    dept = world.department("市场监督管理局")
    with db.session() as s:
        e_shop = registry.submit(s, REVIEWER, shop.org.id, EntryIn.model_validate(unit_entry())).id
        body = unit_entry(
            subject={"kind": "unit", "name": "某公司", "identifiers": [{"type": "uscc", "value": USCC_B}]}
        )
        e_ride = registry.submit(s, REVIEWER, ride.org.id, EntryIn.model_validate(body)).id
    nov2, due = utc(2026, 11, 2, 2), D(2026, 11, 5)
    with db.session() as s:
        sid = shop.org.id
        _instruction(s, e_shop, sid, 1, issued=nov2, due=due, acked=utc(2026, 11, 5, 15), outcome="executed")
        _instruction(
            s, e_shop, sid, 2, issued=nov2, due=due, acked=utc(2026, 11, 5, 16, 30), outcome="executed"
        )
        _instruction(s, e_shop, sid, 3, issued=nov2, due=due)
        _instruction(s, e_shop, sid, 4, issued=nov2, due=due, acked=utc(2026, 11, 3, 1), outcome="failed")
        _instruction(
            s, e_shop, sid, 5, issued=nov2, due=due, acked=utc(2026, 11, 3, 1), outcome="not_applicable"
        )
        _instruction(
            s,
            e_shop,
            sid,
            6,
            issued=nov2,
            due=due,
            acked=nov2,
            outcome=EXCLUDED_BY_RULES,
            status=EXCLUDED_BY_RULES,
        )
        _instruction(s, e_shop, sid, 7, issued=utc(2026, 11, 19, 2), due=D(2026, 11, 25))
        _instruction(s, e_shop, sid, 1, issued=nov2, due=due, kind="lift")
        _instruction(s, e_shop, sid, 8, issued=utc(2026, 10, 10, 2), due=D(2026, 10, 15), acked=nov2)
        _instruction(
            s, e_ride, ride.org.id, 1, issued=nov2, due=due, acked=utc(2026, 11, 4, 1), outcome="executed"
        )
        _instruction(s, e_ride, dept.org.id, 1, issued=nov2, due=due)

        _objection(s, e_shop, 1, filed=D(2026, 11, 3), decided=D(2026, 11, 10), outcome="revoked")
        _objection(s, e_shop, 2, filed=D(2026, 11, 4), decided=D(2026, 11, 12), outcome="upheld")
        _objection(s, e_shop, 3, filed=D(2026, 11, 15))
        _objection(s, e_shop, 4, filed=D(2026, 10, 20), decided=D(2026, 11, 2), outcome="corrected")
        _objection(s, e_ride, 5, filed=D(2026, 10, 8), decided=D(2026, 10, 20), outcome="revoked")

        meeting = Meeting(kind="regular", period="2026Q4", title="第四季度会商", starts_at=utc(2026, 10, 20, 2),
                          created_by="test")  # fmt: skip
        s.add(meeting)
        s.flush()
        created = utc(2026, 10, 21, 2)
        for title, owner, due_on, closed in [
            ("整改数据质量", sid, D(2026, 11, 10), None), ("报送规则清单", sid, D(2026, 11, 30), None),
            ("已办结事项", sid, D(2026, 11, 5), utc(2026, 11, 4, 2)), ("出行督办", ride.org.id, D(2026, 11, 30), None),
        ]:  # fmt: skip
            s.add(
                ActionItem(
                    meeting_id=meeting.id, owner_org_id=owner, title=title, due_on=due_on, created_by="test",
                    created_at=created, status="closed" if closed else "open", closed_at=closed,
                )
            )  # fmt: skip
    return {"platform": platform, "shop": shop, "ride": ride, "quiet": quiet, "dept": dept}


def by_name(rows):
    return {r.org_name: r for r in rows}


def test_figures_per_enterprise(coord, db):
    with db.session() as s:
        rows = co.coordination_figures(s, start=None, end=None, today=TODAY)  # the month of today
    got = by_name(rows)
    assert set(got) == {"电商平台甲", "出行平台乙", "清静企业丙"}  # enterprises only
    shop = got["电商平台甲"]
    assert (shop.issued, shop.acknowledged_on_time, shop.overdue) == (7, 3, 2)
    assert (shop.executed, shop.executed_on_time, shop.failed, shop.not_applicable) == (2, 1, 1, 1)
    assert shop.excluded_by_rules == 1  # counted apart: neither overdue nor unexecuted
    assert (shop.on_time_base, shop.on_time_rate) == (5, 0.2)  # 1 / (7 - 1 - 1)
    assert (shop.objections, shop.objections_decided, shop.upheld_against) == (3, 3, 2)
    assert (shop.action_items_open, shop.action_items_overdue) == (2, 1)
    assert shop.agreement.startswith("agreement.")  # its agreement standing (orgs.agreements)
    ride = got["出行平台乙"]
    assert (ride.issued, ride.executed_on_time, ride.on_time_rate, ride.objections) == (1, 1, 1.0, 0)
    assert (ride.action_items_open, ride.action_items_overdue) == (1, 0)
    quiet = got["清静企业丙"]
    assert (quiet.issued, quiet.on_time_rate, quiet.action_items_open) == (0, None, 0)
    # Worst on-time rate first; nothing to execute last.
    assert [r.org_name for r in rows] == ["电商平台甲", "出行平台乙", "清静企业丙"]


def test_a_past_month_is_as_of_its_last_day(coord, db):
    with db.session() as s:
        data = co.coordination(s, today=TODAY, start=D(2026, 10, 1), end=D(2026, 10, 31))
    assert data["as_of"] == "2026-10-31" and data["complete"]
    shop = next(r for r in data["rows"] if r["org_name"] == "电商平台甲")
    # Issued 10 Oct, due 15 Oct, acknowledged 2 Nov: overdue at the end of October.
    assert (shop["issued"], shop["overdue"], shop["acknowledged_on_time"]) == (1, 1, 0)
    assert (shop["objections"], shop["objections_decided"]) == (1, 0)  # filed 20 Oct, decided in November
    assert (shop["action_items_open"], shop["action_items_overdue"]) == (3, 0)  # none closed or due yet
    ride = next(r for r in data["rows"] if r["org_name"] == "出行平台乙")
    assert (ride["objections"], ride["objections_decided"], ride["upheld_against"]) == (1, 1, 1)
    assert data["totals"]["upheld_against"] == 1


def test_a_suspended_enterprise_keeps_its_row_marked_not_in_force(coord, db, client):
    ride = coord["ride"]
    with db.session() as s:
        s.add(
            Participation(
                org_id=ride.org.id, status="suspended", applied_by="test", suspension_reason="数据泄露"
            )
        )
    with db.session() as s:
        row = by_name(co.coordination_figures(s, start=None, end=None, today=TODAY))["出行平台乙"]
    assert not row.agreement_in_force and row.agreement == "agreement.suspended"
    assert row.executed_on_time == 1  # its figures stay: a consultation needs them most
    # Its own figures are not the shared list: it still reads its row.
    r = client.get("/v1/stats/coordination", headers=ride.headers(Role.enterprise_operator))
    assert r.status_code == 200 and len(r.json()["rows"]) == 1


def test_an_inactive_enterprise_has_no_row_and_one_org_only(coord, db):
    with db.session() as s:
        s.execute(update(Organisation).where(Organisation.id == coord["quiet"].org.id).values(active=False))
    with db.session() as s:
        rows = co.coordination_figures(s, start=None, end=None, today=TODAY)
        assert "清静企业丙" not in by_name(rows)
        mine = co.coordination_figures(s, start=None, end=None, today=TODAY, org_id=coord["ride"].org.id)
    assert [r.org_name for r in mine] == ["出行平台乙"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"month": "2026-13"}, "month"),
        ({"month": "November"}, "month"),
        ({"start": "2026-11-31"}, "start"),
        ({"start": "2026-11-10", "end": "2026-11-01"}, "end"),
        ({"month": "2026-11", "start": "2026-11-01"}, "month"),
    ],
)
def test_bad_periods_name_the_field(query, field):
    with pytest.raises(ValidationProblem) as exc:
        co.period_from_query(TODAY, **query)
    assert exc.value.errors[0]["field"] == field and exc.value.code.startswith("coordination.")


def test_periods():
    assert co.period_from_query(TODAY) == (D(2026, 11, 1), D(2026, 11, 30))
    assert co.period_from_query(TODAY, month="2026-02") == (D(2026, 2, 1), D(2026, 2, 28))
    assert co.period_from_query(TODAY, start="2026-10-05") == (D(2026, 10, 5), D(2026, 10, 31))
    assert co.period_from_query(TODAY, end="2026-10-05") == (D(2026, 10, 1), D(2026, 10, 5))


# --- the API --------------------------------------------------------------------------------------------


def _get(client: TestClient, tenant, role, query=""):
    return client.get(f"/v1/stats/coordination?month=2026-11{query}", headers=tenant.headers(role))


def test_api_tenancy_and_csv(client, coord):
    p, shop, dept = coord["platform"], coord["shop"], coord["dept"]
    r = _get(client, p, Role.platform_reviewer)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["from"], body["to"]) == ("2026-11-01", "2026-11-30")
    assert {x["org_name"] for x in body["rows"]} == {"电商平台甲", "出行平台乙", "清静企业丙"}
    assert len(_get(client, p, Role.auditor).json()["rows"]) == 3
    assert len(_get(client, dept, Role.department_officer).json()["rows"]) == 3
    for role in (Role.enterprise_operator, Role.enterprise_node):
        own = _get(client, shop, role).json()["rows"]
        assert [x["org_id"] for x in own] == [str(shop.org.id)]
    r = _get(client, shop, Role.enterprise_operator, "&format=csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "fcx-stats-coordination-2026-11-01-2026-11-30.csv" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [(x["org_name"], x["issued"]) for x in rows] == [("电商平台甲", "7")]
    assert client.get("/v1/stats/coordination").status_code == 401


@pytest.mark.parametrize(
    ("query", "field"),
    [("month=2026-13", "month"), ("start=2026-11-10&end=2026-11-01", "end"), ("start=x", "start"),
     ("format=xls", "format")],
)  # fmt: skip
def test_api_bad_input_is_422_naming_the_field(client, coord, query, field):
    r = client.get(
        f"/v1/stats/coordination?{query}", headers=coord["platform"].headers(Role.platform_reviewer)
    )
    assert r.status_code == 422, r.text
    assert field in [e["field"] for e in r.json()["errors"]]


# --- the monthly report ---------------------------------------------------------------------------------


def test_monthly_report_has_the_coordination_section(coord, db):
    with db.session() as s:
        data = monthly_report(s, "2026-11", today=TODAY)
    html = render_monthly(data)
    assert 'id="coordination"' in html and "协同情况" in html and "Coordination" in html
    section = html.split('id="coordination"')[1]
    assert "电商平台甲" in section and "20.0%" in section and "1 / 5" in section
    assert data["coordination"]["as_of"] == "2026-11-20"


def test_default_period_is_the_month_of_today(coord, db):
    with db.session() as s:
        data = co.coordination(s, today=china_today())
    assert data["from"].endswith("-01") and data["as_of"] == china_today().isoformat()
