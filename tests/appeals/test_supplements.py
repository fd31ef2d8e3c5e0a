"""Requests for more material (补正) on objections and credit repair applications (#17): one open request
per case, the filer told by e-mail and on the progress page, and the case's deadlines moved by the
working days it waited — never beyond the date the filer was given."""

from __future__ import annotations

from datetime import timedelta

import pytest

from fanchaoxin.appeals import progress, supplements
from fanchaoxin.appeals.models import Objection
from fanchaoxin.appeals.notify import LogNotifier, set_notifier
from fanchaoxin.appeals.supplement_models import SupplementRequest
from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.core.audit import SYSTEM, Actor, AuditEvent
from fanchaoxin.core.calendar import add_working_days, china_today, working_days_between
from fanchaoxin.core.errors import Conflict, ValidationProblem
from fanchaoxin.workflows.appeals import file_objection
from fanchaoxin.workflows.entries import take_step
from tests.console.console_helpers import csrf_of, penalty_entry

USCC = "91350100M000100Y43"
REVIEWER = Actor("user:reviewer")


@pytest.fixture
def outbox():  # type: ignore[no-untyped-def]
    notifier = LogNotifier()
    previous = set_notifier(notifier)
    yield notifier
    set_notifier(previous)


def _objection(db, world):  # type: ignore[no-untyped-def]
    dept = world.department("示范市市场监督管理局")
    entry_id = penalty_entry(db, dept.org.id)
    with db.session() as s:
        e = s.get(Entry, entry_id)
        take_step(s, SYSTEM, e, Action.start_review)
        take_step(s, SYSTEM, e, Action.publish)
        filing = file_objection(
            s, SYSTEM, entry_id=entry_id, identifier_type="uscc", identifier_value=USCC,
            grounds="处罚决定已被行政复议撤销。", contact_email="legal@example.cn", channel="public",
        )  # fmt: skip
        return filing.case.id, filing.secret


def test_a_request_is_sent_shown_and_closed_with_the_deadlines_moved(db, world, outbox):  # type: ignore[no-untyped-def]
    oid, secret = _objection(db, world)
    today = china_today()
    with db.session() as s:
        case = s.get(Objection, oid)
        decide_before, forward_before = case.decide_due_on, case.forward_due_on
        req = supplements.request_material(
            s, REVIEWER, "objection", case, materials="行政复议决定书复印件", due_on=today + timedelta(days=7),
            today=today,
        )  # fmt: skip
        rid = req.id
        tracking = case.tracking_number
    # The objector is told after the commit, with what is needed and by when.
    (mail,) = [m for m in outbox.for_case(tracking) if m.event == "supplement.requested"]
    assert mail.to == "legal@example.cn" and "行政复议决定书复印件" in mail.body
    assert (today + timedelta(days=7)).isoformat() in mail.body
    # The progress page (and the API's status) shows the request while the case waits.
    with db.session() as s:
        shown = progress.progress(s, tracking, secret)
        assert shown.material_requested == "行政复议决定书复印件"
        assert shown.material_due_on == today + timedelta(days=7)
        # One open request per case.
        with pytest.raises(Conflict):
            supplements.request_material(
                s, REVIEWER, "objection", s.get(Objection, oid), materials="再要一份", due_on=today + timedelta(days=3),
                today=today,
            )  # fmt: skip
    # Closed four calendar days later: the deadlines move by the working days it waited.
    later = today + timedelta(days=4)
    waited = working_days_between(today, later)
    with db.session() as s:
        case = s.get(Objection, oid)
        req = s.get(SupplementRequest, rid)
        supplements.close_request(
            s, REVIEWER, "objection", case, req, outcome="received", note="已收到复议决定书", today=later
        )
    with db.session() as s:
        case = s.get(Objection, oid)
        req = s.get(SupplementRequest, rid)
        assert req.status == "received" and req.open_case_id is None and req.paused_working_days == waited
        assert case.decide_due_on == add_working_days(decide_before, waited)
        assert case.forward_due_on == add_working_days(forward_before, waited)
        assert progress.progress(s, tracking, secret).material_requested is None
        actions = [e.action for e in s.query(AuditEvent).filter(AuditEvent.target_id == str(oid))]
        assert "supplement.request" in actions and "supplement.received" in actions
    assert any(m.event == "supplement.received" for m in outbox.for_case(tracking))


def test_the_wait_counts_up_to_the_date_given_only(db, world, outbox):  # type: ignore[no-untyped-def]
    oid, _secret = _objection(db, world)
    today = china_today()
    due = today + timedelta(days=3)
    with db.session() as s:
        case = s.get(Objection, oid)
        decide_before = case.decide_due_on
        req = supplements.request_material(
            s, REVIEWER, "objection", case, materials="营业执照", due_on=due, today=today
        )
        rid = req.id
    with db.session() as s:
        req = s.get(SupplementRequest, rid)
        # Not lapsed before its date.
        with pytest.raises(Conflict):
            supplements.close_request(
                s, REVIEWER, "objection", s.get(Objection, oid), req, outcome="lapsed", today=due
            )
    with db.session() as s:
        case = s.get(Objection, oid)
        req = s.get(SupplementRequest, rid)
        supplements.close_request(
            s, REVIEWER, "objection", case, req, outcome="lapsed", today=today + timedelta(days=20)
        )
    with db.session() as s:
        waited = working_days_between(today, due)
        assert s.get(Objection, oid).decide_due_on == add_working_days(decide_before, waited)
        assert s.get(SupplementRequest, rid).paused_working_days == waited


def test_bad_requests_name_their_field_and_a_decided_case_takes_none(db, world, outbox):  # type: ignore[no-untyped-def]
    oid, _secret = _objection(db, world)
    today = china_today()
    with db.session() as s:
        case = s.get(Objection, oid)
        for materials, due, field in (
            ("", today + timedelta(days=3), "materials"),
            ("营业执照", None, "due_on"),
            ("营业执照", today, "due_on"),
            ("营业执照", today + timedelta(days=supplements.MAX_DAYS + 1), "due_on"),
        ):
            with pytest.raises(ValidationProblem) as exc:
                supplements.request_material(
                    s, REVIEWER, "objection", case, materials=materials, due_on=due, today=today
                )
            assert exc.value.errors[0]["field"] == field and exc.value.code.startswith("supplement.")
        assert supplements.requests_of(s, "objection", oid) == []
        case.status = "decided"
        with pytest.raises(Conflict):
            supplements.request_material(
                s,
                REVIEWER,
                "objection",
                case,
                materials="营业执照",
                due_on=today + timedelta(days=3),
                today=today,
            )


def test_the_filer_sends_the_material_from_the_progress_page(client, db, world, outbox):  # type: ignore[no-untyped-def]
    """补正 closes its loop on the public site: the tracking number and the secret again, the files checked,
    all kept or none; nothing to send while no material is asked for; a wrong secret says nothing."""
    oid, secret = _objection(db, world)
    with db.session() as s:
        tracking = s.get(Objection, oid).tracking_number
    page = client.get("/console/public/progress")
    token = csrf_of(page.text)
    url = "/console/public/progress/material"
    pdf = ("复议决定书.pdf", b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n", "application/pdf")
    # Nothing is asked for yet: the same answer as for a wrong number.
    r = client.post(url, data={"csrf_token": token, "tracking_number": tracking, "secret": secret},
                    files={"files": pdf})  # fmt: skip
    assert r.status_code == 404 and 'id="not-found"' in r.text
    with db.session() as s:
        supplements.request_material(
            s, REVIEWER, "objection", s.get(Objection, oid), materials="行政复议决定书复印件",
            due_on=china_today() + timedelta(days=7), today=china_today(),
        )  # fmt: skip
    shown = client.post(
        "/console/public/progress", data={"csrf_token": token, "tracking_number": tracking, "secret": secret}
    )
    assert 'id="material-form"' in shown.text and secret not in shown.text
    r = client.post(url, data={"csrf_token": token, "tracking_number": tracking, "secret": "wrong"},
                    files={"files": pdf})  # fmt: skip
    assert r.status_code == 404
    r = client.post(url, data={"csrf_token": token, "tracking_number": tracking, "secret": secret})
    assert r.status_code == 422 and "请至少选择一个要提交的文件" in r.text
    # A file that is not what it says is refused, named, and nothing of the sending is kept.
    bad = ("说明.pdf", b"MZ\x90\x00 not a pdf at all", "application/pdf")
    r = client.post(url, data={"csrf_token": token, "tracking_number": tracking, "secret": secret},
                    files=[("files", pdf), ("files", bad)])  # fmt: skip
    assert r.status_code >= 400 and "说明.pdf" in r.text
    with db.session() as s:
        assert progress.progress(s, tracking, secret).attachments == 0
    r = client.post(url, data={"csrf_token": token, "tracking_number": tracking, "secret": secret},
                    files={"files": pdf})  # fmt: skip
    assert r.status_code == 200 and 'id="material-received"' in r.text
    with db.session() as s:
        assert progress.progress(s, tracking, secret).attachments == 1
        assert s.query(AuditEvent).filter(AuditEvent.action == "case.material_sent").count() == 1
