"""Credit commitments (信用承诺) made for repair (#15 point 6): recorded with the approval, published with
the repair on the list the entry was on, tracked for their term, a breach flagged to the reviewer with the
commitment — on both backends. Dates are passed in (`today=`), nothing sleeps."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy import select, text

from fanchaoxin.appeals import attachments, commitments, repair
from fanchaoxin.appeals.commitment_models import CreditCommitment
from fanchaoxin.appeals.models import RepairApplication
from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.blacklist.schemas import EntryIn
from fanchaoxin.console import commitments as console_commitments
from fanchaoxin.console.i18n import translator
from fanchaoxin.console.web import env as console_templates
from fanchaoxin.core.audit import Actor, AuditEvent
from fanchaoxin.core.calendar import add_months, china_today
from fanchaoxin.core.errors import Conflict, ValidationProblem
from fanchaoxin.core.roles import Role
from fanchaoxin.core.settings import get_settings
from fanchaoxin.orgs.models import Organisation
from fanchaoxin.workflows import appeals as due_process
from fanchaoxin.workflows.entries import take_step
from fanchaoxin.workflows.jobs import run_appeals_jobs
from fanchaoxin.workflows.subjects import merge_subjects
from tests.blacklist.registry_helpers import RID_A, USCC_A, USCC_B, person_entry, unit_entry

REVIEWER = Actor("test:reviewer")
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
COMMITMENT = "本公司承诺今后诚信经营，不再组织或参与刷单炒信，接受社会监督。"
PENALTY = {
    "basis": "administrative_penalty",
    "document_number": "京市监罚〔2026〕88号",
    "issuing_authority": "北京市市场监督管理局",
    "document_date": "2026-01-05",
}


@pytest.fixture
def market(world):
    return {
        "platform": world.platform(),
        "shop": world.enterprise("电商"),
        "dept": world.department("市场监管局"),
    }


def submit(db, org_id, body) -> uuid.UUID:
    with db.session() as s:
        return registry.submit(s, REVIEWER, org_id, EntryIn.model_validate(body)).id


def publish(db, org_id, body, *, today: date) -> uuid.UUID:
    """Submit, review and publish an entry on `today` (an enterprise finding after its notice period)."""
    entry_id = submit(db, org_id, body)
    with db.session() as s:
        e = s.get(Entry, entry_id)
        take_step(s, REVIEWER, e, Action.start_review, today=today)
        if body["basis"] == "enterprise_finding":
            take_step(s, REVIEWER, e, Action.open_notice, today=today)
            e.notice_ends_on = today - timedelta(days=1)
        take_step(s, REVIEWER, e, Action.publish, today=today)
    return entry_id


def repair_entry(
    db, entry_id, *, today: date, id_type="uscc", id_value=USCC_A, text_=COMMITMENT
) -> uuid.UUID:
    """Apply for credit repair on `today` (its minimum period over) and approve it, with proof attached."""
    with db.session() as s:
        s.get(Entry, entry_id).min_end_on = today
        filing = repair.file_repair(
            s,
            Actor("public"),
            entry_id=entry_id,
            identifier_type=id_type,
            identifier_value=id_value,
            commitment_accepted=True,
            commitment_text=text_,
            rectification="已关闭涉事店铺，处分责任人，上线风控系统。",
            contact_email="legal@example.com",
            channel="public",
            today=today,
        )
        attachments.add_attachment(
            s, Actor("public"), "repair", filing.case, filename="整改报告.pdf", declared_type=None, data=PDF
        )
        due_process.decide_repair(
            s,
            REVIEWER,
            filing.case,
            outcome="approved",
            reason="整改到位",
            identity_verification="核对营业执照原件",
            today=today,
        )
        return filing.case.id


def commitment_of(db, entry_id) -> CreditCommitment:
    with db.session() as s:
        c = s.scalars(select(CreditCommitment).where(CreditCommitment.entry_id == entry_id)).one()
        s.expunge(c)
        return c


def actions(db) -> list[str]:
    with db.session() as s:
        return list(s.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def render_breaches(items) -> str:
    """The reviewer's include, in Chinese (the review page includes it with this context)."""
    return console_templates.get_template("_commitment_breaches.html").render(
        _=translator("zh_CN"), fmt_date=str, fmt_dt=str, commitment_breaches=items
    )


# --- recording and publication ------------------------------------------------------------------------------


def test_an_approved_repair_records_the_commitment_and_publishes_it_on_the_public_list(client, market, db):
    today = china_today()
    entry_id = publish(db, market["dept"].org.id, unit_entry(**PENALTY), today=today)
    app_id = repair_entry(db, entry_id, today=today)

    c = commitment_of(db, entry_id)
    assert (c.status, c.made_on, c.term_ends_on) == ("in_force", today, add_months(today, 12))
    assert (c.repair_application_id, c.text) == (app_id, COMMITMENT)
    with db.session() as s:  # sealed at rest: it may name a person
        stored = s.execute(text("SELECT text FROM credit_commitments")).scalar_one()
    assert stored.startswith("fcx1:") and "诚信" not in stored
    assert "commitment.record" in actions(db)

    page = client.get("/v1/public/commitments")
    assert page.status_code == 200, page.text
    (item,) = page.json()["commitments"]
    assert item["list_kind"] == "public" and item["basis"] == "administrative_penalty"
    assert item["subject_name"] == "北京某某网络科技有限责任公司" and item["text"] == COMMITMENT
    assert item["repaired_on"] == today.isoformat() and item["term_ends_on"] == c.term_ends_on.isoformat()
    assert "entry_id" not in item and "status" not in item  # no entry, no breach flag in public
    html = client.get("/console/public/commitments")
    assert html.status_code == 200 and "信用承诺公示" in html.text and COMMITMENT in html.text
    assert "京市监罚〔2026〕88号" in html.text
    # Every key holder sees the public list too.
    dept = client.get("/v1/commitments", headers=market["dept"].headers(Role.department_officer))
    assert [x["id"] for x in dept.json()["commitments"]] == [str(c.id)]


def test_a_person_is_masked_in_the_published_commitment(client, market, db):
    today = china_today()
    body = person_entry(severity="general", **PENALTY)
    entry_id = publish(db, market["dept"].org.id, body, today=today)
    words = "本人张小三（身份证号 11010519491231002X，电话 138 0013 8000）承诺今后不再参与刷单炒信。"
    repair_entry(db, entry_id, today=today, id_type="resident_id", id_value=RID_A, text_=words)

    (item,) = client.get("/v1/public/commitments").json()["commitments"]
    assert item["subject_name"] == "张*三" and item["subject_kind"] == "individual"
    assert (
        "张小三" not in item["text"]
        and "张*三" in item["text"]
        and "承诺今后不再参与刷单炒信" in item["text"]
    )
    assert (
        RID_A not in item["text"]
        and "13800138000" not in item["text"]
        and "138 0013 8000" not in item["text"]
    )
    page = client.get("/console/public/commitments").text
    assert "张小三" not in page and RID_A not in page and "张*三" in page
    assert commitment_of(db, entry_id).text == words  # kept as written, for the reviewer


def test_a_shared_list_commitment_reaches_participating_enterprises_only(client, market, db):
    today = china_today()
    entry_id = publish(db, market["shop"].org.id, unit_entry(), today=today)  # an enterprise finding
    repair_entry(db, entry_id, today=today)
    c = commitment_of(db, entry_id)

    assert client.get("/v1/public/commitments").json()["commitments"] == []
    assert COMMITMENT not in client.get("/console/public/commitments").text
    assert client.get("/v1/commitments").status_code == 401
    for role in (Role.enterprise_operator, Role.enterprise_node):
        r = client.get("/v1/commitments", headers=market["shop"].headers(role))
        assert r.status_code == 200, r.text
        (item,) = r.json()["commitments"]
        assert (item["id"], item["list_kind"], item["text"]) == (str(c.id), "shared", COMMITMENT)
    only_public = client.get(
        "/v1/commitments", params={"list_kind": "public"}, headers=market["shop"].headers()
    )
    assert only_public.json()["commitments"] == []
    # A department never receives the shared list (not a 失信 record of a government list).
    dept = client.get("/v1/commitments", headers=market["dept"].headers(Role.department_officer))
    assert dept.status_code == 200 and dept.json()["commitments"] == []
    staff = client.get("/v1/commitments", headers=market["platform"].headers(Role.platform_reviewer))
    assert [x["id"] for x in staff.json()["commitments"]] == [str(c.id)]
    # An enterprise that has not signed the sharing agreement yet is not a participant.
    with db.session() as s:
        s.get(Organisation, market["shop"].org.id).agreement_signed_on = today + timedelta(days=1)
    assert client.get("/v1/commitments", headers=market["shop"].headers()).json()["commitments"] == []


# --- breach ---------------------------------------------------------------------------------------------------


def test_a_new_submission_within_the_term_is_flagged_to_the_reviewer_with_the_commitment(client, market, db):
    today = china_today()
    repaired = publish(db, market["dept"].org.id, unit_entry(**PENALTY), today=today)
    app_id = repair_entry(db, repaired, today=today)
    c = commitment_of(db, repaired)

    # A new finding against the same company, not reviewed yet: the scheduler flags it.
    first = submit(db, market["shop"].org.id, unit_entry(facts="再次组织刷单 300 笔。"))
    with db.session() as s:
        result = run_appeals_jobs(s, today=today)
    assert result["commitment_breaches_flagged"] == 1 and result["commitments_fulfilled"] == 0
    c = commitment_of(db, repaired)
    assert (c.status, c.breached_by_entry_id) == ("breached", first) and c.breach_flagged_at is not None
    assert "commitment.breach" in actions(db)
    with db.session() as s:  # a second pass flags nothing new
        assert run_appeals_jobs(s, today=today)["commitment_breaches_flagged"] == 0

    r = client.get(
        f"/v1/entries/{first}/commitment-breaches", headers=market["platform"].headers(Role.platform_reviewer)
    )
    assert r.status_code == 200, r.text
    (breach,) = r.json()["breaches"]
    assert breach["text"] == COMMITMENT and breach["status"] == "breached"
    assert breach["repaired_entry_id"] == str(repaired) and breach["repair_application_id"] == str(app_id)
    assert breach["repair_tracking_number"].startswith("XF") and breach["breached_by_entry_id"] == str(first)
    assert breach["made_on"] == today.isoformat()
    for who in (market["shop"].headers(Role.enterprise_operator), market["dept"].headers()):
        assert client.get(f"/v1/entries/{first}/commitment-breaches", headers=who).status_code == 403
    missing = client.get(
        f"/v1/entries/{uuid.uuid4()}/commitment-breaches",
        headers=market["platform"].headers(Role.platform_reviewer),
    )
    assert missing.status_code == 404
    # The repaired entry itself breaches nothing; the breach flag is never published.
    with db.session() as s:
        assert console_commitments.breaches_for_entry(s, s.get(Entry, repaired)) == []
        items = console_commitments.breaches_for_entry(s, s.get(Entry, first))
    html = render_breaches(items)
    assert "违反信用承诺" in html and COMMITMENT in html and f"/console/repairs/{app_id}" in html
    assert render_breaches([]).strip() == ""
    assert "status" not in client.get("/v1/public/commitments").json()["commitments"][0]

    # The reviewer rejects that submission: it was no finding, the flag is withdrawn.
    with db.session() as s:
        e = s.get(Entry, first)
        take_step(s, REVIEWER, e, Action.start_review, today=today)
        take_step(s, REVIEWER, e, Action.reject, reason="证据不足", today=today)
    c = commitment_of(db, repaired)
    assert (c.status, c.breached_by_entry_id, c.breach_flagged_at) == ("in_force", None, None)
    assert "commitment.breach_withdrawn" in actions(db)

    # Another submission: flagged when its review starts.
    second = submit(db, market["shop"].org.id, unit_entry(facts="组织刷单 50 笔。"))
    with db.session() as s:
        take_step(s, REVIEWER, s.get(Entry, second), Action.start_review, today=today)
    assert (commitment_of(db, repaired).status, commitment_of(db, repaired).breached_by_entry_id) == (
        "breached",
        second,
    )


def test_a_breach_follows_merges_of_the_subject(market, db):
    today = china_today()
    repaired = publish(db, market["dept"].org.id, unit_entry(**PENALTY), today=today)
    repair_entry(db, repaired, today=today)
    other_body = unit_entry(
        subject={
            "kind": "unit",
            "name": "北京某某网络科技有限公司",
            "identifiers": [{"type": "uscc", "value": USCC_B}],
        }
    )
    new = submit(db, market["shop"].org.id, other_body)
    with db.session() as s:  # another subject: no breach
        take_step(s, REVIEWER, s.get(Entry, new), Action.start_review, today=today)
    assert commitment_of(db, repaired).status == "in_force"
    with db.session() as s:  # the repaired company is found to be the same: merged into the other one
        merge_subjects(
            s, REVIEWER, s.get(Entry, new).subject_id, s.get(Entry, repaired).subject_id, reason="同一企业"
        )
        assert [c.entry_id for c in commitments.flag_breaches(s, REVIEWER, s.get(Entry, new))] == [repaired]


def test_after_the_term_no_breach_and_the_commitment_is_fulfilled(client, market, db, settings, monkeypatch):
    monkeypatch.setenv("FCX_COMMITMENT_TERM_MONTHS", "6")
    get_settings.cache_clear()  # the settings fixture clears it again afterwards
    assert get_settings().commitment_term_months == 6
    today = china_today()
    long_ago = today - timedelta(days=400)
    repaired = publish(db, market["dept"].org.id, unit_entry(**PENALTY), today=long_ago)
    repair_entry(db, repaired, today=long_ago)
    c = commitment_of(db, repaired)
    assert c.term_ends_on == add_months(long_ago, 6) < today

    late = submit(db, market["shop"].org.id, unit_entry(facts="组织刷单 20 笔。"))
    with db.session() as s:
        take_step(s, REVIEWER, s.get(Entry, late), Action.start_review, today=today)
        result = run_appeals_jobs(s, today=today)
    assert result["commitment_breaches_flagged"] == 0 and result["commitments_fulfilled"] == 1
    c = commitment_of(db, repaired)
    assert (c.status, c.fulfilled_on, c.breached_by_entry_id) == ("fulfilled", today, None)
    assert "commitment.fulfil" in actions(db)
    # Past its term it is no longer published (the repair ended the listing).
    assert client.get("/v1/public/commitments").json()["commitments"] == []
    with db.session() as s:
        assert run_appeals_jobs(s, today=today)["commitments_fulfilled"] == 0
        assert console_commitments.breaches_for_entry(s, s.get(Entry, late)) == []

    # Facts that occurred within the term, found only now: the commitment was broken after all.
    in_term = c.made_on + timedelta(days=30)
    found_late = submit(
        db,
        market["shop"].org.id,
        unit_entry(
            facts="期内组织刷单。", occurred_from=in_term.isoformat(), occurred_to=in_term.isoformat()
        ),
    )
    with db.session() as s:
        take_step(s, REVIEWER, s.get(Entry, found_late), Action.start_review, today=today)
    c = commitment_of(db, repaired)
    assert (c.status, c.breached_by_entry_id, c.fulfilled_on) == ("breached", found_late, None)


# --- bad input ------------------------------------------------------------------------------------------------


def test_a_repair_without_a_commitment_is_refused(market, db):
    today = china_today()
    entry_id = publish(db, market["dept"].org.id, unit_entry(**PENALTY), today=today)
    with db.session() as s:
        s.get(Entry, entry_id).min_end_on = today
        for accepted, words in ((False, COMMITMENT), (True, "   ")):
            with pytest.raises(ValidationProblem) as refused:
                repair.file_repair(
                    s,
                    Actor("public"),
                    entry_id=entry_id,
                    identifier_type="uscc",
                    identifier_value=USCC_A,
                    commitment_accepted=accepted,
                    commitment_text=words,
                    rectification="已整改。",
                    contact_email="legal@example.com",
                    channel="public",
                    today=today,
                )
            assert refused.value.errors[0]["field"] == "commitment_accepted"
    # An application that somehow lost its text is never approved into an empty published promise.
    with db.session() as s:
        filing = repair.file_repair(
            s,
            Actor("public"),
            entry_id=entry_id,
            identifier_type="uscc",
            identifier_value=USCC_A,
            commitment_accepted=True,
            commitment_text=COMMITMENT,
            rectification="已整改。",
            contact_email="legal@example.com",
            channel="public",
            today=today,
        )
        app_id = filing.case.id
    with db.session() as s:
        app = s.get(RepairApplication, app_id)
        app.commitment_text = " "
        with pytest.raises(Conflict):
            commitments.record_commitment(s, REVIEWER, app, s.get(Entry, entry_id), today=today)
