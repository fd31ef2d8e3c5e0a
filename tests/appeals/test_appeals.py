"""Due process: objections, restoration, credit repair, reports — on both backends."""

import uuid
from datetime import date, timedelta

import chinese_calendar
import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from fanchaoxin.appeals.models import CorrectionNotice, Objection, RepairApplication, Report
from fanchaoxin.appeals.notify import LogNotifier, set_notifier
from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.blacklist.schemas import EntryIn
from fanchaoxin.cli import app as fcx
from fanchaoxin.core import audit, vault
from fanchaoxin.core.audit import Actor, AuditEvent
from fanchaoxin.core.errors import Conflict
from fanchaoxin.core.roles import BusinessType as B
from fanchaoxin.core.roles import Role
from fanchaoxin.sanctions import index as decision_index
from fanchaoxin.sanctions.decide import decide
from fanchaoxin.sanctions.models import Instruction
from fanchaoxin.sharing.models import FeedEvent
from fanchaoxin.workflows import appeals as due_process
from fanchaoxin.workflows.entries import take_step
from tests.blacklist.registry_helpers import RID_A, USCC_A, USCC_B, judicial, person_entry

REVIEWER = Actor("test:reviewer")
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
D = date  # brevity in the calendar assertions


@pytest.fixture
def outbox():
    notifier = LogNotifier()
    previous = set_notifier(notifier)
    yield notifier
    set_notifier(previous)


@pytest.fixture
def market(world, outbox):
    return {
        "platform": world.platform(),
        "shop": world.enterprise("电商", business_types=[B.ecommerce]),
        "ride": world.enterprise("出行", business_types=[B.sharing_economy]),
        "bank": world.enterprise("金融", business_types=[B.internet_finance]),
        "other": world.enterprise("另一电商", business_types=[B.ecommerce]),
        "dept": world.department("市场监管局"),
    }


def publish(db, org_id, body, today=None):
    with db.session() as s:
        e = registry.submit(s, REVIEWER, org_id, EntryIn.model_validate(body))
        take_step(s, REVIEWER, e, Action.start_review, today=today)
        if body["basis"] == "enterprise_finding":
            take_step(s, REVIEWER, e, Action.open_notice, today=today)
            e.notice_ends_on = (today or date.today()) - timedelta(days=1)
        take_step(s, REVIEWER, e, Action.publish, today=today)
        return e.id


def rv(tenant):
    return tenant.headers(Role.platform_reviewer)


def objection_body(entry_id, *, id_type="uscc", value=USCC_A, **over):
    body = {
        "entry_id": str(entry_id),
        "identifier": {"type": id_type, "value": value},
        "grounds": "我司从未组织刷单，涉案订单为真实交易，附银行流水。",
        "contact_email": "Legal@Example.COM",
    }
    body.update(over)
    return body


def file_objection(client, entry_id, headers=None, **over):
    r = client.post("/v1/objections", json=objection_body(entry_id, **over), headers=headers or {})
    assert r.status_code == 201, r.text
    return r.json()


def feed_events(db, entry_id):
    with db.session() as s:
        return [
            ev.event
            for ev in s.scalars(
                select(FeedEvent).where(FeedEvent.entry_id == entry_id).order_by(FeedEvent.seq)
            )
        ]


def actions(db):
    with db.session() as s:
        return [a for (a,) in s.execute(select(AuditEvent.action).order_by(AuditEvent.id))]


def instructions(db, entry_id, kind):
    with db.session() as s:
        rows = s.scalars(
            select(Instruction).where(Instruction.entry_id == entry_id, Instruction.kind == kind)
        )
        return {(r.owner_org_id, r.measure): r for r in rows}


# --- the "done when" test ---------------------------------------------------------------------------------


def test_report_to_entry_to_objection_to_revocation_and_restoration(client, market, db, outbox):
    """A report → a published entry → an objection across National Day 2026 → revocation → restoration."""
    p, shop, dept = market["platform"], market["shop"], market["dept"]
    # The official calendar: Golden Week 1-7 October, Saturday 10 October is a working day.
    assert chinese_calendar.is_workday(D(2026, 9, 30))
    assert not any(chinese_calendar.is_workday(D(2026, 10, d)) for d in range(1, 8))
    assert chinese_calendar.is_workday(D(2026, 10, 10)) and not chinese_calendar.is_workday(D(2026, 10, 11))

    # 1. Anyone reports 炒信 on the public form; the platform routes it to the shop where it happened.
    r = client.post(
        "/v1/public/reports",
        json={
            "description": "该公司组织刷手在电商平台大量刷单并给出虚假好评。",
            "reported": {"identifiers": [{"type": "uscc", "value": USCC_A}], "shop": "某某旗舰店"},
            "behaviours": ["order_brushing"],
            "enterprise_org_id": str(shop.org.id),
            "contact_email": "whistle@example.com",
        },
    )
    assert r.status_code == 201, r.text
    report = r.json()
    assert report["tracking_number"].startswith("JB") and report["secret"]
    r = client.post(
        f"/v1/reports/{report['id']}/triage",
        json={"action": "route", "addressed_to_org_id": str(shop.org.id), "note": "请核查"},
        headers=rv(p),
    )
    assert r.status_code == 200 and r.json()["deadlines"]["handle_due_on"], r.text

    # 2. The shop investigates and lists the company (a court decision), published on 1 September.
    entry_id = publish(db, shop.org.id, judicial(), today=D(2026, 9, 1))
    r = client.post(
        f"/v1/reports/{report['id']}/outcome",
        json={"outcome": "substantiated", "note": "属实，已报送", "entry_id": str(entry_id)},
        headers=shop.headers(Role.enterprise_operator),
    )
    assert r.status_code == 200, r.text
    status_page = client.get(
        f"/v1/public/reports/{report['tracking_number']}?secret={report['secret']}"
    ).json()
    assert status_page["status"] == "handled" and status_page["outcome"] == "substantiated"
    assert "note" not in str(status_page) and str(entry_id) not in str(status_page)
    applied = instructions(db, entry_id, "apply")
    assert {org for org, _ in applied} == {
        shop.org.id,
        market["ride"].org.id,
        market["bank"].org.id,
        market["other"].org.id,
        dept.org.id,
    }

    # 3. The company objects on Wednesday 30 September: disputed at once, in the feed and in decide().
    with db.session() as s:
        filing = due_process.file_objection(
            s,
            Actor("public"),
            entry_id=entry_id,
            identifier_type="uscc",
            identifier_value=USCC_A,
            grounds="涉案判决已被二审撤销，附二审判决书。",
            contact_email="legal@example.com",
            channel="public",
            today=D(2026, 9, 30),
        )
        obj_id, tracking, secret = filing.case.id, filing.case.tracking_number, filing.secret
        assert filing.case.dispute_due_on == D(2026, 9, 30)
        assert filing.case.forward_due_on == D(2026, 10, 9)  # 8 Oct, 9 Oct
        assert filing.case.decide_due_on == D(2026, 10, 13)  # 8, 9, 10 (Saturday), 12, 13 Oct
    assert feed_events(db, entry_id) == ["published", "disputed"]
    with db.session() as s:
        index = decision_index.build(s)
    got = decide(
        index, [vault.identifier_index("uscc", USCC_A)], "account_registration", today=D(2026, 9, 30)
    )
    assert got.disputed is True and got.verdict == "restrict"
    assert client.get(f"/v1/entries/{entry_id}", headers=rv(p)).json()["status"] == "disputed"

    # Forwarding is possible until 9 October: on Saturday 10 October it is too late.
    with db.session() as s, pytest.raises(Conflict):
        due_process.forward_objection(s, REVIEWER, s.get(Objection, obj_id), today=D(2026, 10, 10))
    with db.session() as s:
        obj = due_process.forward_objection(
            s, REVIEWER, s.get(Objection, obj_id), note="请核查二审判决", today=D(2026, 10, 9)
        )
        assert obj.addressed_to_org_id == shop.org.id
        assert obj.answer_due_on == D(2026, 10, 15)  # 10, 12, 13, 14, 15 Oct
        assert obj.decide_due_on == D(2026, 10, 19)  # 16, 19 Oct

    # 4. Only the reporting organisation sees the forwarded objection (without the objector's contact).
    seen = client.get("/v1/objections", headers=shop.headers(Role.enterprise_operator)).json()["objections"]
    assert [o["id"] for o in seen] == [str(obj_id)] and seen[0]["contact_email"] is None
    assert client.get("/v1/objections", headers=market["other"].headers(Role.enterprise_operator)).json() == {
        "objections": []
    }
    assert (
        client.get(
            f"/v1/objections/{obj_id}", headers=market["ride"].headers(Role.enterprise_operator)
        ).status_code
        == 404
    )
    r = client.post(
        f"/v1/objections/{obj_id}/answer",
        json={"proposed_outcome": "revoked", "answer": "经核实二审已撤销原判，同意撤销。"},
        headers=shop.headers(Role.enterprise_operator),
    )
    assert r.status_code == 200 and r.json()["status"] == "answered", r.text

    # 5. The platform revokes on Monday 12 October: lifted at every enterprise and department.
    with db.session() as s:
        due_process.decide_objection(
            s,
            REVIEWER,
            s.get(Objection, obj_id),
            outcome="revoked",
            reason="原判决已被撤销",
            public_reason="作出列入决定所依据的判决已被撤销",
            identity_verification="核对营业执照原件及法定代表人身份证，电话回访确认",
            today=D(2026, 10, 12),
        )
    assert feed_events(db, entry_id) == ["published", "disputed", "revoked"]
    lifted = instructions(db, entry_id, "lift")
    assert set(lifted) == set(applied)  # every apply has its lift, for every organisation
    assert {i.ack_due_on for i in lifted.values()} == {D(2026, 10, 15)}  # 13, 14, 15 Oct
    with db.session() as s:
        index = decision_index.build(s)
    assert (
        decide(
            index, [vault.identifier_index("uscc", USCC_A)], "account_registration", today=D(2026, 10, 12)
        ).verdict
        == "allow"
    )

    # 6. Restoration: a public correction notice, the objector's confirmation, the entry gone from view.
    notices = client.get("/v1/public/corrections").json()["corrections"]
    assert len(notices) == 1
    n = notices[0]
    assert n["subject_name"] == "北京某某网络科技有限责任公司"
    assert n["revoked_on"] == "2026-10-12" and n["lifts_due_on"] == "2026-10-15"
    assert n["reason"] == "作出列入决定所依据的判决已被撤销"
    assert "撤销" in n["text_zh"] and str(entry_id) not in str(n)
    page = client.get(f"/v1/objections/{tracking}/confirmation?secret={secret}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "撤销确认书" in page.text and tracking in page.text and "2026-10-15" in page.text
    assert client.get(f"/v1/objections/{tracking}/confirmation?secret=wrong").status_code == 404
    public = client.get(f"/v1/public/objections/{tracking}", headers={"X-Case-Secret": secret}).json()
    assert public["status"] == "decided" and public["outcome"] == "revoked"
    for tenant, role in (
        (p, Role.platform_reviewer),
        (shop, Role.enterprise_operator),
        (dept, Role.department_officer),
    ):
        assert client.get(f"/v1/entries/{entry_id}", headers=tenant.headers(role)).status_code == 404
        listed = client.get("/v1/entries", headers=tenant.headers(role)).json()["entries"]
        assert str(entry_id) not in {e["id"] for e in listed}
    for role in (Role.platform_admin, Role.auditor):
        assert client.get(f"/v1/entries/{entry_id}", headers=p.headers(role)).json()["status"] == "revoked"

    # 7. Everyone was told, and every step is in the audit chain.
    assert [m.event for m in outbox.for_case(tracking)] == [
        "objection.filed",
        "objection.forwarded",
        "objection.decided",
    ]
    assert all(m.to == "legal@example.com" for m in outbox.for_case(tracking))
    assert [m.event for m in outbox.for_case(report["tracking_number"])] == [
        "report.filed",
        "report.routed",
        "report.handled",
    ]
    with db.session() as s:
        assert audit.verify(s).ok
    done = actions(db)
    for action in (
        "report.file",
        "report.route",
        "report.handle",
        "entry.publish",
        "objection.file",
        "entry.dispute",
        "objection.forward",
        "objection.answer",
        "objection.identity_verified",
        "entry.revoke",
        "correction.publish",
        "objection.decide",
    ):
        assert action in done, action
    assert done.index("objection.file") < done.index("entry.dispute") < done.index("objection.forward")
    assert done.index("entry.revoke") < done.index("correction.publish") < done.index("objection.decide")


# --- objections: bad input ------------------------------------------------------------------------------


def test_objection_to_unknown_or_another_subjects_entry_is_404_alike(client, market, db):
    mine = publish(db, market["shop"].org.id, judicial())
    nobody = uuid.uuid4()
    other_body = judicial(
        subject={"kind": "unit", "name": "另一公司", "identifiers": [{"type": "uscc", "value": USCC_B}]},
        document_number="(2026)另案2号",
    )
    publish(db, market["shop"].org.id, other_body)
    unknown = client.post("/v1/objections", json=objection_body(nobody))
    wrong_subject = client.post("/v1/objections", json=objection_body(mine, value=USCC_B))
    wrong_type = client.post(
        "/v1/objections", json=objection_body(mine, id_type="domain", value="x.example.cn")
    )
    for r in (unknown, wrong_subject, wrong_type):
        assert r.status_code == 404, r.text
        assert r.headers["content-type"] == "application/problem+json"
    assert unknown.json()["type"] == wrong_subject.json()["type"] == wrong_type.json()["type"]
    assert wrong_subject.json()["detail"].replace(str(mine), "ID") == unknown.json()["detail"].replace(
        str(nobody), "ID"
    )
    # full-width, lower-case: normalised before it is compared
    fullwidth = "".join(chr(ord(c) + 0xFEE0) for c in USCC_A.lower())
    assert client.post("/v1/objections", json=objection_body(mine, value=fullwidth)).status_code == 201
    # an invalid identifier or missing grounds: 422 naming the field
    r = client.post("/v1/objections", json=objection_body(mine, value="91110000600037341X"))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "identifier.value"
    body = objection_body(mine)
    del body["grounds"]
    r = client.post("/v1/objections", json=body)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "grounds"
    # nothing about the other entry was touched
    with db.session() as s:
        assert s.scalar(select(Entry.status).where(Entry.id == mine)) == "disputed"
        assert sorted(s.scalars(select(Entry.status))) == ["disputed", "published"]


def test_second_open_objection_is_409_and_a_new_one_after_the_decision(client, market, db):
    p = market["platform"]
    entry_id = publish(db, market["shop"].org.id, judicial())
    first = file_objection(client, entry_id)
    r = client.post("/v1/objections", json=objection_body(entry_id))
    assert r.status_code == 409, r.text
    # filed by a reviewer on the subject's behalf: same rule
    assert client.post("/v1/objections", json=objection_body(entry_id), headers=rv(p)).status_code == 409
    # identity must be recorded before deciding
    r = client.post(
        f"/v1/objections/{first['id']}/decision",
        json={"outcome": "upheld", "reason": "证据充分"},
        headers=rv(p),
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "identity_verification"
    r = client.post(
        f"/v1/objections/{first['id']}/identity",
        json={"identity_verification": "视频核验法定代表人"},
        headers=rv(p),
    )
    assert r.status_code == 200 and r.json()["identity_verification"] == "视频核验法定代表人"
    r = client.post(
        f"/v1/objections/{first['id']}/decision",
        json={"outcome": "upheld", "reason": "证据充分", "version": r.json()["version"]},
        headers=rv(p),
    )
    assert r.status_code == 200 and r.json()["outcome"] == "upheld", r.text
    assert feed_events(db, entry_id) == ["published", "disputed", "undisputed"]
    assert client.get(f"/v1/entries/{entry_id}", headers=rv(p)).json()["status"] == "published"
    # deciding twice: 409; a new objection now: accepted
    r = client.post(
        f"/v1/objections/{first['id']}/decision",
        json={"outcome": "revoked", "reason": "x", "identity_verification": "xyz"},
        headers=rv(p),
    )
    assert r.status_code == 409
    second = file_objection(client, entry_id, headers=rv(p))
    assert second["tracking_number"] != first["tracking_number"]
    got = client.get(f"/v1/objections/{second['id']}", headers=rv(p)).json()
    assert got["channel"] == "reviewer" and got["contact_email"] == "legal@example.com"


def test_attachments_too_large_forbidden_type_and_wrong_secret(client, market, db, settings):
    p, other = market["platform"], market["other"]
    entry_id = publish(db, market["shop"].org.id, judicial())
    filed = file_objection(client, entry_id)
    url = f"/v1/attachments/objections/{filed['tracking_number']}?secret={filed['secret']}"
    r = client.post(url, files={"file": ("判决书.pdf", PDF, "application/pdf")})
    assert r.status_code == 201 and r.json()["media_type"] == "application/pdf", r.text
    sha = r.json()["digest"]
    r = client.post(
        url,
        files={"file": ("x.exe", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\xff\xff", "application/octet-stream")},
    )
    assert r.status_code == 415 and r.json()["errors"][0]["field"] == "file"
    r = client.post(url, files={"file": ("note.png", "这是文字".encode(), "image/png")})
    assert r.status_code == 415 and r.json()["errors"][0]["type"] == "media_type_mismatch"
    settings.attachment_max_bytes = 1000
    r = client.post(url, files={"file": ("big.txt", b"a" * 1001, "text/plain")})
    assert r.status_code == 413 and r.json()["errors"][0]["field"] == "file"
    r = client.post(url, files={"file": ("huge.txt", b"a" * 200_000, "text/plain")})
    assert r.status_code == 413
    bad = f"/v1/attachments/objections/{filed['tracking_number']}?secret=nope"
    assert client.post(bad, files={"file": ("a.pdf", PDF, "application/pdf")}).status_code == 404
    assert (
        client.post("/v1/attachments/nothing/x?secret=y", files={"file": ("a.pdf", PDF)}).status_code == 404
    )
    # reviewers download; another enterprise cannot even see the objection
    r = client.get(f"/v1/objections/{filed['id']}/attachments/{sha}", headers=rv(p))
    assert r.status_code == 200 and r.content == PDF
    r = client.get(
        f"/v1/objections/{filed['id']}/attachments/{sha}", headers=other.headers(Role.enterprise_operator)
    )
    assert r.status_code == 404
    got = client.get(f"/v1/objections/{filed['id']}", headers=rv(p)).json()
    assert [a["digest"] for a in got["attachments"]] == [sha]
    assert "attachment.read" in actions(db)


def test_floods_on_public_forms_are_429(client, market, db, settings):
    settings.public_rate_per_address = 3
    body = {
        "description": "有人在平台上组织刷单，每天数百单。",
        "reported": {"identifiers": [{"type": "phone", "value": "13800138000"}]},
    }
    codes = [client.post("/v1/public/reports", json=body).status_code for _ in range(4)]
    assert codes == [201, 201, 201, 429]
    r = client.post("/v1/public/reports", json=body)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert r.json()["retry_after"] >= 1 and r.json()["status"] == 429
    # organisations with a key are not limited by the public buckets
    r = client.post("/v1/reports", json=body, headers=market["shop"].headers(Role.enterprise_operator))
    assert r.status_code == 201


def test_floods_about_one_identifier_are_429(client, market, db, settings):
    settings.public_rate_per_target = 2
    about = {
        "description": "此人组织刷单并倒卖个人信息。",
        "reported": {"identifiers": [{"type": "resident_id", "value": RID_A}]},
    }
    assert [client.post("/v1/public/reports", json=about).status_code for _ in range(3)] == [201, 201, 429]
    other = {"description": "另一家店铺长期刷单炒信。", "reported": {"shop": "另一家店"}}
    assert client.post("/v1/public/reports", json=other).status_code == 201
    # objections about one entry are limited the same way
    entry_id = publish(db, market["shop"].org.id, judicial())
    codes = [
        client.post("/v1/objections", json=objection_body(entry_id, value=USCC_B)).status_code
        for _ in range(3)
    ]
    assert codes == [404, 404, 429]


# --- objections: forwarding, overdue, correction ---------------------------------------------------------


def test_forwarding_answer_and_overdue_flags(client, market, db):
    p, shop = market["platform"], market["shop"]
    entry_id = publish(db, shop.org.id, judicial())
    filed = file_objection(client, entry_id)
    oid = filed["id"]
    # the reporting organisation does not see it before it is forwarded; it cannot answer either
    assert (
        client.get(f"/v1/objections/{oid}", headers=shop.headers(Role.enterprise_operator)).status_code == 404
    )
    r = client.post(f"/v1/objections/{oid}/forward", json={"note": "请核查"}, headers=rv(p))
    assert r.status_code == 200 and r.json()["status"] == "forwarded"
    assert r.json()["addressed_to_org_id"] == str(shop.org.id)
    r = client.post(f"/v1/objections/{oid}/forward", json={}, headers=rv(p))
    assert r.status_code == 409
    r = client.post(
        f"/v1/objections/{oid}/answer",
        json={"proposed_outcome": "upheld", "answer": "核实无误"},
        headers=market["other"].headers(Role.enterprise_operator),
    )
    assert r.status_code == 404
    # overdue: the answer and the decision are late
    with db.session() as s:
        s.execute(
            update(Objection)
            .where(Objection.id == uuid.UUID(oid))
            .values(
                answer_due_on=date.today() - timedelta(days=3), decide_due_on=date.today() - timedelta(days=1)
            )
        )
    got = client.get(f"/v1/objections/{oid}", headers=rv(p)).json()
    assert got["overdue"] is True and got["overdue_reasons"] == ["answer", "decision"]
    late = client.get("/v1/objections?overdue=true", headers=rv(p)).json()["objections"]
    assert [o["id"] for o in late] == [oid]
    assert client.get("/v1/objections?overdue=false", headers=rv(p)).json()["objections"] == []
    r = client.post(
        f"/v1/objections/{oid}/answer",
        json={"proposed_outcome": "upheld", "answer": "核实无误"},
        headers=shop.headers(Role.enterprise_operator),
    )
    assert r.status_code == 200 and r.json()["overdue_reasons"] == ["decision"]
    with db.session() as s:
        assert due_process.run_jobs(s)["overdue_objections"] == 1
    # an objection no one forwarded in time must be decided by the platform
    other_entry = publish(
        db,
        shop.org.id,
        judicial(
            subject={"kind": "unit", "name": "乙公司", "identifiers": [{"type": "uscc", "value": USCC_B}]}
        ),
    )
    second = file_objection(client, other_entry, value=USCC_B)
    with db.session() as s:
        s.execute(
            update(Objection)
            .where(Objection.id == uuid.UUID(second["id"]))
            .values(forward_due_on=date.today() - timedelta(days=1))
        )
    r = client.post(f"/v1/objections/{second['id']}/forward", json={}, headers=rv(p))
    assert r.status_code == 409 and r.json()["forward_due_on"]


def test_corrected_objection_regrades_and_reissues_changed_measures(client, market, db):
    p = market["platform"]
    entry_id = publish(db, market["shop"].org.id, judicial(severity="general"))
    before = instructions(db, entry_id, "apply")
    with db.session() as s:
        entry = s.get(Entry, entry_id)
        old_measures = {m["code"] for m in entry.measures}
        old_max = entry.max_end_on
    filed = file_objection(client, entry_id)
    r = client.post(
        f"/v1/objections/{filed['id']}/decision",
        json={
            "outcome": "corrected",
            "reason": "情节较轻，更正为轻微",
            "identity_verification": "核对营业执照",
            "corrections": {"severity": "minor", "facts": "更正后的事实。"},
        },
        headers=rv(p),
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["outcome"] == "corrected" and out["corrections"]["severity"] == ["general", "minor"]
    assert out["corrections"]["facts"] == "changed"
    assert feed_events(db, entry_id) == ["published", "disputed", "updated", "undisputed"]
    with db.session() as s:
        entry = s.get(Entry, entry_id)
        new_measures = {m["code"] for m in entry.measures}
        assert entry.status == "published" and entry.severity == "minor" and entry.facts == "更正后的事实。"
        assert entry.max_end_on < old_max  # minor: at most 3 months
        assert [t.action for t in entry.transitions][-3:] == ["dispute", "correct", "resolve_dispute"]
    removed = old_measures - new_measures
    assert removed and not (new_measures - old_measures)
    lifted = instructions(db, entry_id, "lift")
    # every apply of a removed measure is lifted, kept measures stay; a general entry had no memoranda
    # measure to lift (serious cases only, 行动计划 二(一))
    assert not any(org == market["dept"].org.id for org, _ in before)
    assert {m for _, m in lifted} == {m for _, m in before if m in removed}
    for key in before:
        assert (key in lifted) == (key[1] in removed), key
    assert "entry.correct" in actions(db)

    # and the other way: more serious → new measures are applied
    second = publish(
        db,
        market["shop"].org.id,
        judicial(
            severity="general",
            subject={"kind": "unit", "name": "乙公司", "identifiers": [{"type": "uscc", "value": USCC_B}]},
        ),
    )
    before = instructions(db, second, "apply")
    filed = file_objection(client, second, value=USCC_B)
    r = client.post(
        f"/v1/objections/{filed['id']}/decision",
        json={
            "outcome": "corrected",
            "reason": "情节严重",
            "identity_verification": "核对营业执照",
            "corrections": {"severity": "serious"},
        },
        headers=rv(p),
    )
    assert r.status_code == 200, r.text
    added = {k for k in instructions(db, second, "apply") if k not in before}
    assert {m for _, m in added} >= {"deny_new_account", "block_or_delete_account", "restrict_listings"}
    # serious now: the department gets the memoranda measures of its kind (market regulation)
    assert {m for org, m in added if org == market["dept"].org.id} == {
        "withhold_honours", "tighten_market_access", "intensify_inspection"
    }
    assert instructions(db, second, "lift") == {}
    # a correction that changes nothing, or corrections without the corrected outcome: 422
    third = file_objection(client, second, value=USCC_B)
    r = client.post(
        f"/v1/objections/{third['id']}/decision",
        json={
            "outcome": "corrected",
            "reason": "x",
            "identity_verification": "核对营业执照",
            "corrections": {"severity": "serious"},
        },
        headers=rv(p),
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "corrections"
    r = client.post(
        f"/v1/objections/{third['id']}/decision",
        json={"outcome": "upheld", "reason": "x", "corrections": {"severity": "minor"}},
        headers=rv(p),
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "corrections"


def test_dispute_flag_can_wait_one_working_day(market, db, settings):
    settings.objection_dispute_working_days = 1
    entry_id = publish(db, market["shop"].org.id, judicial(), today=D(2026, 9, 1))
    with db.session() as s:
        filing = due_process.file_objection(
            s, Actor("public"), entry_id=entry_id, identifier_type="uscc", identifier_value=USCC_A,
            grounds="理由充分的异议。", contact_email="a@example.com", channel="public", today=D(2026, 9, 30),
        )  # fmt: skip
        assert filing.case.dispute_due_on == D(2026, 10, 8)
        assert s.get(Entry, entry_id).status == "published"
    with db.session() as s:
        assert due_process.run_jobs(s, today=D(2026, 10, 7))["disputed"] == 0
    with db.session() as s:
        assert due_process.run_jobs(s, today=D(2026, 10, 8))["disputed"] == 1
        assert s.get(Entry, entry_id).status == "disputed"


# --- restoration after a reviewer's revocation --------------------------------------------------------------


def test_reviewer_revocation_publishes_a_masked_correction_and_hides_the_entry(client, market, db):
    p = market["platform"]
    body = person_entry(
        basis="administrative_penalty",
        document_number="京市监罚〔2026〕1号",
        issuing_authority="北京市市场监管局",
    )
    entry_id = publish(db, market["shop"].org.id, body)
    e = client.get(f"/v1/entries/{entry_id}", headers=rv(p)).json()
    r = client.post(
        f"/v1/entries/{entry_id}/transitions",
        json={"action": "revoke", "reason": "主体认定错误", "version": e["version"]},
        headers=rv(p),
    )
    assert r.status_code == 200 and r.json()["status"] == "revoked"
    notices = client.get("/v1/public/corrections").json()["corrections"]
    assert [(n["subject_name"], n["subject_kind"], n["reason"]) for n in notices] == [
        ("张*三", "individual", "主体认定错误")
    ]
    text = str(notices)
    assert RID_A not in text and "13800138000" not in text and "张小三" not in text
    assert client.get("/v1/entries", headers=rv(p)).json()["entries"] == []
    assert len(client.get("/v1/entries", headers=p.headers(Role.auditor)).json()["entries"]) == 1
    assert client.get(f"/v1/entries/{entry_id}", headers=rv(p)).status_code == 404
    # an objection to a revoked entry: 404 like any entry not in force
    r = client.post("/v1/objections", json=objection_body(entry_id, id_type="resident_id", value=RID_A))
    assert r.status_code == 404
    with db.session() as s:
        assert s.scalar(select(CorrectionNotice.entry_id)) == entry_id


# --- credit repair --------------------------------------------------------------------------------------------


def test_credit_repair_after_the_minimum_period(client, market, db):
    p = market["platform"]
    entry_id = publish(db, market["shop"].org.id, judicial(severity="general"))
    body = {
        "entry_id": str(entry_id),
        "identifier": {"type": "uscc", "value": USCC_A},
        "contact_email": "legal@example.com",
        "commitment_accepted": True,
        "commitment_text": "本公司承诺今后诚信经营，不再组织或参与刷单炒信。",
        "rectification": "已关闭涉事店铺，处分责任人，上线风控系统。",
    }
    r = client.post("/v1/repairs", json=body)
    assert r.status_code == 409, r.text
    with db.session() as s:
        min_end = s.get(Entry, entry_id).min_end_on
    assert r.json()["possible_from"] == min_end.isoformat() and min_end.isoformat() in r.json()["detail"]
    r = client.post("/v1/repairs", json={**body, "commitment_accepted": False})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "commitment_accepted"
    with db.session() as s:
        s.execute(update(Entry).where(Entry.id == entry_id).values(min_end_on=date.today()))
    r = client.post("/v1/repairs", json=body)
    assert r.status_code == 201, r.text
    filed = r.json()
    assert filed["tracking_number"].startswith("XF") and filed["deadlines"]["decide_due_on"]
    assert client.post("/v1/repairs", json=body).status_code == 409
    decision = {"outcome": "approved", "reason": "整改到位", "identity_verification": "核对营业执照"}
    r = client.post(f"/v1/repairs/{filed['id']}/decision", json=decision, headers=rv(p))
    assert r.status_code == 409 and "proof" in r.json()["detail"]
    r = client.post(
        f"/v1/attachments/repairs/{filed['tracking_number']}",
        files={"file": ("整改报告.pdf", PDF, "application/pdf")},
        headers={"X-Case-Secret": filed["secret"]},
    )
    assert r.status_code == 201, r.text
    r = client.post(f"/v1/repairs/{filed['id']}/decision", json=decision, headers=rv(p))
    assert r.status_code == 200 and r.json()["outcome"] == "approved", r.text
    assert feed_events(db, entry_id) == ["published", "repaired"]
    assert set(instructions(db, entry_id, "lift")) == set(instructions(db, entry_id, "apply"))
    status_page = client.get(f"/v1/public/repairs/{filed['tracking_number']}?secret={filed['secret']}").json()
    assert status_page["status"] == "decided" and status_page["outcome"] == "approved"
    assert client.get("/v1/public/corrections").json()["corrections"] == []  # repair is not a correction
    assert (
        client.get("/v1/repairs", headers=market["shop"].headers(Role.enterprise_operator)).status_code == 403
    )
    assert "repair.decide" in actions(db)


# --- reports ----------------------------------------------------------------------------------------------------


def test_report_routing_privacy_and_overdue(client, market, db):
    p, shop, ride, other = market["platform"], market["shop"], market["ride"], market["other"]
    body = {
        "description": "发现一批账号批量注册并刷单。",
        "reported": {"identifiers": [{"type": "platform_account", "value": "shop:u123"}], "account": "u123"},
        "behaviours": ["malicious_registration", "order_brushing"],
        "contact_email": "ops@ride.example.com",
    }
    r = client.post("/v1/reports", json=body, headers=ride.headers(Role.enterprise_operator))
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    # triage: to an unknown organisation 422; to the shop
    r = client.post(
        f"/v1/reports/{rid}/triage",
        json={"action": "route", "addressed_to_org_id": str(uuid.uuid4())},
        headers=rv(p),
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "addressed_to_org_id"
    r = client.post(f"/v1/reports/{rid}/triage", json={"action": "route"}, headers=rv(p))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "addressed_to_org_id"
    r = client.post(
        f"/v1/reports/{rid}/triage",
        json={"action": "route", "addressed_to_org_id": str(shop.org.id)},
        headers=rv(p),
    )
    assert r.status_code == 200 and r.json()["status"] == "routed"
    # the recipient does not learn who reported; another enterprise sees nothing
    got = client.get(f"/v1/reports/{rid}", headers=shop.headers(Role.enterprise_operator)).json()
    assert got["reporting_org_id"] is None and got["contact_email"] is None
    assert got["reported"]["identifiers"] == [{"type": "platform_account", "value": "shop:u123"}]
    assert (
        client.get(f"/v1/reports/{rid}", headers=other.headers(Role.enterprise_operator)).status_code == 404
    )
    # overdue after 10 working days
    with db.session() as s:
        s.execute(
            update(Report)
            .where(Report.id == uuid.UUID(rid))
            .values(handle_due_on=date.today() - timedelta(days=1))
        )
    late = client.get("/v1/reports?overdue=true", headers=rv(p)).json()["reports"]
    assert [x["id"] for x in late] == [rid] and late[0]["overdue"] is True
    # substantiated may link only an entry of the recipient's own
    foreign = publish(db, ride.org.id, judicial())
    r = client.post(
        f"/v1/reports/{rid}/outcome",
        json={"outcome": "substantiated", "note": "属实", "entry_id": str(foreign)},
        headers=shop.headers(Role.enterprise_operator),
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "entry_id"
    r = client.post(
        f"/v1/reports/{rid}/outcome",
        json={"outcome": "forwarded", "note": "已移送公安机关"},
        headers=shop.headers(Role.enterprise_operator),
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "forwarded_to"
    r = client.post(
        f"/v1/reports/{rid}/outcome",
        json={"outcome": "forwarded", "note": "已移送", "forwarded_to": "某市公安局网安支队"},
        headers=shop.headers(Role.enterprise_operator),
    )
    assert r.status_code == 200 and r.json()["status"] == "handled" and r.json()["overdue"] is False
    # the reporter sees the outcome, not what the recipient wrote or to whom it was routed
    mine = client.get(f"/v1/reports/{rid}", headers=ride.headers(Role.enterprise_operator)).json()
    assert mine["outcome"] == "forwarded" and mine["outcome_note"] is None and mine["forwarded_to"] is None
    assert mine["addressed_to_org_id"] is None and mine["reporting_org_id"] == str(ride.org.id)
    r = client.post(
        f"/v1/reports/{rid}/outcome",
        json={"outcome": "unsubstantiated", "note": "x"},
        headers=shop.headers(Role.enterprise_operator),
    )
    assert r.status_code == 409
    with db.session() as s:
        assert s.scalar(select(Report.status).where(Report.id == uuid.UUID(rid))) == "handled"


def test_public_report_status_shows_status_only_and_bad_input_names_fields(client, market, db):
    r = client.post("/v1/public/reports", json={"description": "短", "reported": {}})
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {"description", "reported.identifiers"}
    r = client.post(
        "/v1/public/reports",
        json={
            "description": "有人刷单炒信很久了。",
            "reported": {"identifiers": [{"type": "phone", "value": "12"}]},
        },
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "reported.identifiers[0].value"
    r = client.post(
        "/v1/public/reports", json={"description": "有人刷单炒信很久了。", "reported": {"name": "某人"}}
    )
    assert r.status_code == 201
    filed = r.json()
    page = client.get(f"/v1/public/reports/{filed['tracking_number']}?secret={filed['secret']}").json()
    assert page == {
        "tracking_number": filed["tracking_number"],
        "kind": "report",
        "status": "received",
        "filed_on": page["filed_on"],
        "deadlines": {
            "filed_on": page["filed_on"],
            "dispute_due_on": None,
            "forward_due_on": None,
            "answer_due_on": None,
            "decide_due_on": None,
            "handle_due_on": None,
            "notice_ends_on": None,
        },
        "outcome": None,
        "reason": None,
        "decided_at": None,
        "attachments": 0,
        "material_requested": None,  # no request for more material (补正) is open
        "material_due_on": None,
    }
    assert client.get(f"/v1/public/reports/{filed['tracking_number']}?secret=x").status_code == 404
    assert client.get(f"/v1/public/reports/{filed['tracking_number']}").status_code == 404
    with db.session() as s:
        rep = s.scalar(select(Report))
        assert filed["secret"] not in rep.secret_hash and len(rep.secret_hash) == 64
    with db.session() as s:
        assert s.scalar(select(RepairApplication.id)) is None


def test_cli_jobs_and_overdue(client, market, db, settings):
    entry_id = publish(db, market["shop"].org.id, judicial())
    filed = file_objection(client, entry_id)
    with db.session() as s:
        s.execute(
            update(Objection)
            .where(Objection.id == uuid.UUID(filed["id"]))
            .values(decide_due_on=date.today() - timedelta(days=2))
        )
    runner = CliRunner()
    r = runner.invoke(fcx, ["appeals", "jobs"])
    assert r.exit_code == 0 and "overdue: 1 objections" in r.output, r.output
    assert "credit commitments: 0 breaches flagged, 0 fulfilled" in r.output, r.output
    r = runner.invoke(fcx, ["appeals", "overdue"])
    assert r.exit_code == 0 and filed["tracking_number"] in r.output and "decision" in r.output, r.output
