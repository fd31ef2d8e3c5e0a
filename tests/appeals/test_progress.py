"""The public progress page (#15 point 7): every public filing — report (举报), objection (异议), credit
repair (信用修复), statement (陈述申辩) — shows its status, deadlines and outcome to whoever holds the
tracking number and the secret; a wrong secret and an unknown number get the same answer word for word."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select, update

from fanchaoxin.appeals import progress, repair, reports, statements
from fanchaoxin.appeals.cases import CASE_MODELS, Filing
from fanchaoxin.appeals.notice_models import Notice
from fanchaoxin.appeals.notify import LogNotifier, set_notifier
from fanchaoxin.appeals.schemas import CaseStatusOut, Deadlines
from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.blacklist.schemas import EntryIn
from fanchaoxin.console.progress import deadlines_of
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.auth import Principal
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.errors import NotFound
from fanchaoxin.core.roles import OrgKind, Role
from fanchaoxin.workflows import appeals as due_process
from fanchaoxin.workflows.entries import take_step
from tests.blacklist.registry_helpers import USCC_A, USCC_B, judicial, unit_entry
from tests.console.console_helpers import csrf_of

REVIEWER = Actor("test:reviewer")
PUBLIC = Actor("public")
TODAY = china_today()


@pytest.fixture(autouse=True)
def outbox():  # type: ignore[no-untyped-def]
    previous = set_notifier(LogNotifier())
    yield
    set_notifier(previous)


@pytest.fixture
def market(world, db, settings):  # type: ignore[no-untyped-def]
    settings.public_rate_per_address = 50  # several look-ups from the test client's one address
    settings.public_rate_per_target = 50
    m = {"platform": world.platform(), "shop": world.enterprise("电商平台"), "dept": world.department()}
    with db.session() as s:
        e = registry.submit(s, REVIEWER, m["dept"].org.id, EntryIn.model_validate(judicial()))
        take_step(s, REVIEWER, e, Action.start_review, today=TODAY)
        take_step(s, REVIEWER, e, Action.publish, today=TODAY)
        m["entry"] = e.id
    return m


def look_up(client, number: str, secret: str):  # type: ignore[no-untyped-def]
    form = client.get("/console/public/progress")
    assert form.status_code == 200 and 'method="post"' in form.text
    return client.post(
        "/console/public/progress",
        data={"csrf_token": csrf_of(form.text), "tracking_number": number, "secret": secret},
    )


def case_of(session, number: str):  # type: ignore[no-untyped-def]
    """A case by its tracking number (as the reviewer would open it)."""
    model = CASE_MODELS[progress.kind_of(number) or ""]
    return session.scalar(select(model).where(model.tracking_number == number))


def deadline(html: str, key: str) -> str:
    return html.split(f'data-deadline="{key}">', 1)[1].split("<", 1)[0].strip()


def test_a_report_shows_its_status_deadline_and_outcome(client, market, db):
    shop = market["shop"]
    with db.session() as s:
        f = reports.file_report(
            s, PUBLIC, description="该店铺组织刷单并给出虚假好评。",
            reported={"identifiers": [{"type": "uscc", "value": USCC_B}]}, behaviours=["order_brushing"],
            enterprise_org_id=shop.org.id, contact_email=None, channel="public",
        )  # fmt: skip
        number, secret = f.case.tracking_number, f.secret
    assert number.startswith("JB")
    r = look_up(client, number, secret)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    assert 'data-kind="report"' in r.text and "已受理" in r.text and "尚未作出决定" in r.text
    assert secret not in r.text  # the secret is never written back
    with db.session() as s:
        rep = reports.triage_report(
            s, REVIEWER, case_of(s, number), action="route", addressed_to_org_id=shop.org.id,
            note="请核查",
        )  # fmt: skip
        due = rep.handle_due_on
        who = Principal(role=Role.enterprise_operator, org_id=shop.org.id, org_kind=OrgKind.enterprise)
        reports.handle_report(s, who, rep, outcome="substantiated", note="属实，内部备注")
    r = look_up(client, number, secret)
    assert "已办结" in r.text and deadline(r.text, "handle_due_on") == due.isoformat()
    assert "查实" in r.text and "内部备注" not in r.text  # the outcome, never the recipient's note


def test_an_objection_shows_its_deadlines_and_decision(client, market, db):
    with db.session() as s:
        f = due_process.file_objection(
            s, PUBLIC, entry_id=market["entry"], identifier_type="uscc", identifier_value=USCC_A,
            grounds="涉案判决已被二审撤销，附二审判决书。", contact_email="legal@example.com", channel="public",
            today=TODAY,  # passed in: a run that crosses midnight in China must not move the filing day
        )  # fmt: skip
        number, secret, decide_due = f.case.tracking_number, f.secret, f.case.decide_due_on
    assert number.startswith("YY")
    r = look_up(client, number, secret)
    assert r.status_code == 200 and 'data-kind="objection"' in r.text
    assert "决定期限" in r.text and "异议标注期限" in r.text
    assert deadline(r.text, "decide_due_on") == decide_due.isoformat()
    assert deadline(r.text, "filed_on") == TODAY.isoformat()
    with db.session() as s:
        due_process.decide_objection(
            s, REVIEWER, case_of(s, number), outcome="upheld", reason="证据不足以推翻认定",
            identity_verification="核对营业执照",
        )  # fmt: skip
    r = look_up(client, number, secret)
    assert "已决定" in r.text and 'id="case-outcome"' in r.text and "证据不足以推翻认定" in r.text
    # The API's status route answers from the same builder.
    api = client.get(f"/v1/public/objections/{number}", headers={"X-Case-Secret": secret}).json()
    assert api["outcome"] == "upheld" and api["deadlines"]["decide_due_on"] == decide_due.isoformat()


def test_a_repair_application_shows_its_deadline_and_decision(client, market, db):
    with db.session() as s:
        s.execute(update(Entry).where(Entry.id == market["entry"]).values(min_end_on=TODAY))
        f = repair.file_repair(
            s, PUBLIC, entry_id=market["entry"], identifier_type="uscc", identifier_value=USCC_A,
            commitment_accepted=True, commitment_text="本公司承诺今后诚信经营，不再组织刷单炒信。",
            rectification="已关闭涉事店铺。", contact_email="legal@example.com", channel="public",
        )  # fmt: skip
        number, secret, due = f.case.tracking_number, f.secret, f.case.decide_due_on
    assert number.startswith("XF")
    r = look_up(client, number, secret)
    assert 'data-kind="repair"' in r.text and "待处理" in r.text
    assert deadline(r.text, "decide_due_on") == due.isoformat()
    with db.session() as s:
        due_process.decide_repair(
            s, REVIEWER, case_of(s, number), outcome="rejected", reason="整改材料不足",
            identity_verification="核对营业执照",
        )  # fmt: skip
    r = look_up(client, number, secret)
    assert "已决定" in r.text and "整改材料不足" in r.text


def test_a_statement_shows_its_period_and_answer(client, market, db):
    opened = TODAY - timedelta(days=1)
    body = unit_entry(
        subject={"kind": "unit", "name": "某某科技", "identifiers": [{"type": "uscc", "value": USCC_B}]}
    )
    with db.session() as s:
        e = registry.submit(s, REVIEWER, market["shop"].org.id, EntryIn.model_validate(body))
        take_step(s, REVIEWER, e, Action.start_review, today=opened)
        take_step(s, REVIEWER, e, Action.open_notice, today=opened)
        notice = s.scalar(select(Notice).where(Notice.entry_id == e.id))
        f: Filing = statements.file_statement(
            s, PUBLIC, notice_number=notice.number, identifier_type="uscc", identifier_value=USCC_B,
            text="订单均为真实交易，附银行流水。", contact_email=None, channel="public", today=TODAY,
        )  # fmt: skip
        number, secret, ends = f.case.tracking_number, f.secret, e.notice_ends_on
    assert number.startswith("CS")
    r = look_up(client, number, secret)
    assert r.status_code == 200 and 'data-kind="statement"' in r.text
    assert deadline(r.text, "notice_ends_on") == ends.isoformat() and "陈述申辩截止日期" in r.text


def test_a_wrong_secret_and_an_unknown_number_get_the_same_answer(client, market, db):
    with db.session() as s:
        f = due_process.file_objection(
            s, PUBLIC, entry_id=market["entry"], identifier_type="uscc", identifier_value=USCC_A,
            grounds="涉案判决已被二审撤销，附二审判决书。", contact_email="legal@example.com", channel="public",
        )  # fmt: skip
        number = f.case.tracking_number
    answers = [
        look_up(client, number, "not-the-secret"),
        look_up(client, "YY20260101-ABCDEFGH", "not-the-secret"),
        look_up(client, "ZZ20260101-ABCDEFGH", "not-the-secret"),  # no kind has this prefix
        look_up(client, number.lower(), "x" * 32),
    ]
    assert {a.status_code for a in answers} == {404}
    assert len({a.text for a in answers}) == 1, "the answers differ"
    assert 'id="not-found"' in answers[0].text and number not in answers[0].text
    with db.session() as s, pytest.raises(NotFound) as exc:
        progress.progress(s, "ZZ1", "x")
    assert str(exc.value.detail) == progress.NOT_FOUND


def test_the_secret_never_travels_in_a_url_and_look_ups_are_limited(client, market, db, settings):
    with db.session() as s:
        f = reports.file_report(
            s, PUBLIC, description="该店铺组织刷单并给出虚假好评。",
            reported={"identifiers": [{"type": "uscc", "value": USCC_B}]}, behaviours=["order_brushing"],
            enterprise_org_id=None, contact_email=None, channel="public",
        )  # fmt: skip
        number, secret = f.case.tracking_number, f.secret
    # A GET with the secret in the query shows nothing of the case.
    page = client.get("/console/public/progress", params={"tracking_number": number, "secret": secret})
    assert page.status_code == 200 and 'id="case"' not in page.text
    assert 'type="password"' in page.text and page.headers["cache-control"] == "no-store"
    r = client.post("/console/public/progress", data={"tracking_number": number, "secret": secret})
    assert r.status_code == 403  # the CSRF token, as every public form
    r = look_up(client, "", "")
    assert r.status_code == 422 and 'id="form-errors"' in r.text
    settings.public_rate_per_target = 2
    client.app.state.appeal_limits = None  # new buckets with the lower budget
    assert look_up(client, number, "wrong").status_code == 404
    assert look_up(client, number, "wrong").status_code == 404
    limited = look_up(client, number, secret)
    assert limited.status_code == 429 and limited.headers["retry-after"]


def test_the_filed_page_points_to_the_progress_page(client, market):
    form = client.get("/console/public/report")
    r = client.post(
        "/console/public/report",
        data={
            "csrf_token": csrf_of(form.text),
            "description": "该店铺组织刷单并给出虚假好评。",
            "identifier_type": "uscc",
            "identifier_value": USCC_B,
        },
    )
    assert r.status_code == 201 and 'href="/console/public/progress"' in r.text
    assert 'href="/console/public/progress"' in client.get("/console/public").text  # the navigation


def test_dates_passed_while_open_are_marked():
    case = CaseStatusOut(
        tracking_number="YY1", kind="objection", status="open", filed_on=date(2026, 1, 5),
        deadlines=Deadlines(filed_on=date(2026, 1, 5), decide_due_on=date(2026, 1, 12)),
    )  # fmt: skip
    rows = deadlines_of(case, date(2026, 1, 13))
    assert [(r["key"], r["passed"]) for r in rows] == [("filed_on", False), ("decide_due_on", True)]
