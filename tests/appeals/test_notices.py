"""The notice before listing (告知书) and statements (陈述申辩), through the API, on both backends.

Opening the notice period produces the notice (facts, basis, measures, how the listing ends, remedies),
delivers it by e-mail (LogNotifier), SMS (the logging backend) or as a letter (no contact: the reviewer is
told); the subject files statements with evidence while the period runs and not after; the reviewer sees
them and the liable persons before publishing, and must answer each one to publish.

"Today" is the real China date: the tests move the entry's notice end instead (as tests/appeals does).
"""

from __future__ import annotations

import base64
import re
import uuid
import zlib
from datetime import timedelta

import pytest
from sqlalchemy import select

from fanchaoxin.appeals import notify
from fanchaoxin.appeals.notice_models import Notice, Statement
from fanchaoxin.appeals.notify import LogNotifier, set_notifier
from fanchaoxin.appeals.sms import LogSms, set_sms_sender
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.blacklist.uploads import parse_upload
from fanchaoxin.core.audit import AuditEvent
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.identifiers import mask
from fanchaoxin.core.roles import BusinessType as B
from fanchaoxin.core.roles import Role
from tests.blacklist.registry_helpers import RID_A, USCC_A, person_entry, unit_entry

PDF_FILE = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
LEGAL_REP_PHONE = "13912345678"


@pytest.fixture
def outbox():
    notifier = LogNotifier()
    previous = set_notifier(notifier)
    yield notifier
    set_notifier(previous)


@pytest.fixture
def sms():
    sender = LogSms()
    previous = set_sms_sender(sender)
    yield sender
    set_sms_sender(previous)


@pytest.fixture
def parties(world, outbox, sms):
    return {
        "platform": world.platform(),
        "shop": world.enterprise("示例电商平台", business_types=[B.ecommerce]),
        "other": world.enterprise("另一电商", business_types=[B.ecommerce]),
    }


def rv(parties):
    return parties["platform"].headers(Role.platform_reviewer)


def op(parties, who="shop"):
    return parties[who].headers(Role.enterprise_operator)


def step(client, parties, entry, action, **body):
    r = client.post(
        f"/v1/entries/{entry['id']}/transitions",
        json={"action": action, "version": entry["version"], **body},
        headers=rv(parties),
    )
    return r


def noticed(client, parties, **over):
    """An enterprise finding submitted by the shop, reviewed, its notice period opened."""
    r = client.post("/v1/entries", json=unit_entry(**over), headers=op(parties))
    assert r.status_code == 201, r.text
    entry = r.json()
    r = step(client, parties, entry, "start_review")
    assert r.status_code == 200, r.text
    r = step(client, parties, r.json(), "open_notice")
    assert r.status_code == 200, r.text
    return r.json()


def notice_row(db, entry_id) -> Notice:
    with db.session() as s:
        return s.scalars(select(Notice).where(Notice.entry_id == uuid.UUID(str(entry_id)))).one()


def end_notice_period(db, entry) -> None:
    """The notice period ended yesterday (China date); `entry` (as the API gave it) takes the new version."""
    with db.session() as s:
        e = s.get(Entry, uuid.UUID(str(entry["id"])))
        e.notice_ends_on = china_today() - timedelta(days=1)
    with db.session() as s:
        entry["version"] = s.get(Entry, uuid.UUID(str(entry["id"]))).version


def actions(db) -> list[str]:
    with db.session() as s:
        return list(s.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def pdf_text(pdf: bytes) -> str:
    """The text of reportlab's page streams (ASCII85 + Flate; the CID font's strings are UCS-2)."""
    out: list[str] = []
    for stream in re.findall(rb"stream\r?\n(.*?)endstream", pdf, re.S):
        try:
            raw = zlib.decompress(base64.a85decode(stream.strip(), adobe=True))
        except ValueError:
            continue
        for literal in re.findall(rb"\(((?:\\.|[^\\)])*)\)\s*Tj", raw, re.S):
            data = re.sub(
                rb"\\([0-7]{1,3}|.)",
                lambda m: (
                    bytes([int(m.group(1), 8)])
                    if m.group(1)[:1].isdigit()
                    else {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}.get(
                        m.group(1), m.group(1)
                    )
                ),
                literal,
                flags=re.S,
            )
            if len(data) % 2 == 0:
                out.append(data.decode("utf-16-be", errors="replace"))
    return "".join(out)


# --- the notice -----------------------------------------------------------------------------------------


def test_the_notice_says_facts_basis_measures_end_and_remedies_and_goes_out_by_email(
    client, parties, db, outbox
):
    entry = noticed(
        client,
        parties,
        contact={"email": "Legal@Example.COM", "postal_address": "北京市朝阳区某某路1号"},
        gains={"brushed_orders": 1200, "points_gained": 300},
    )
    # The step's answer tells the reviewer how the notice went out.
    notice = entry["notice"]
    assert notice["channel"] == "email" and notice["delivery_status"] == "queued"
    assert notice["delivered_to"] == "***@example.com" and notice["letter_required"] is False
    assert notice["ends_on"] == entry["notice_ends_on"]
    assert re.fullmatch(r"GZ\d{8}-[2-9A-Z]{8}", notice["number"])
    # Sent after the commit, with the PDF attached, and recorded.
    (mail,) = outbox.for_case(notice["number"])
    assert mail.to == "legal@example.com" and mail.event == "notice.issued"
    assert "拟列入炒信黑名单告知书" in mail.subject and notice["number"] in mail.body
    (pdf_file,) = mail.files
    assert pdf_file.media_type == "application/pdf" and pdf_file.data.startswith(b"%PDF")
    row = notice_row(db, entry["id"])
    assert row.delivery_status == "sent" and row.delivered_at is not None
    assert {"notice.issue", "notice.delivered"} <= set(actions(db))

    r = client.get(f"/v1/entries/{entry['id']}/notice", headers=rv(parties))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    for said in (
        notice["number"],
        "北京某某网络科技有限责任公司",  # the subject
        mask("uscc", USCC_A),  # its identifier, masked
        "组织刷单 1,200 笔，虚假评价 900 条。",  # the facts
        "刷单炒信、虚假评价",  # the behaviours
        "企业监测发现",  # the basis
        "国办发〔2020〕49号",
        "扣除信用积分",  # a measure the active policy grants now (general)
        "扣除 300 分",  # measure 5 takes the points from the finding
        "最终措施以公示时平台有效的惩戒政策为准",
        "满 12 个月自动移出",  # how and when it ends (general: 3 to 12 months)
        "公示满 3 个月后",
        "/console/public/statement",  # the remedies
        "/console/public/objection",
        "/console/public/repair",
        "虚假交易 1200 笔",
        "示例电商平台",  # the reporting organisation
    ):
        assert said in html, said
    assert f"{china_today().year}年" in html

    r = client.get(f"/v1/entries/{entry['id']}/notice.pdf", headers=rv(parties))
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF") and len(r.content) > 3000
    text = pdf_text(r.content)
    assert "拟列入炒信黑名单告知书" in text and notice["number"] in text and "陈述" in text
    # Reviewers only: the reporting enterprise itself does not read the notice through the platform.
    assert client.get(f"/v1/entries/{entry['id']}/notice", headers=op(parties)).status_code == 403
    assert client.get(f"/v1/entries/{entry['id']}/notice.pdf", headers=op(parties)).status_code == 403


def test_without_an_email_the_notice_goes_by_sms(client, parties, db, outbox, sms):
    """A natural person: the notice names them in full (it is theirs) and masks their identifiers."""
    r = client.post(
        "/v1/entries", json={**person_entry(), "contact": {"phone": "138 0013 8000"}}, headers=op(parties)
    )
    assert r.status_code == 201, r.text
    entry = step(client, parties, r.json(), "start_review").json()
    entry = step(client, parties, entry, "open_notice").json()
    number = entry["notice"]["number"]
    assert entry["notice"]["channel"] == "sms" and entry["notice"]["delivered_to"] == mask(
        "phone", "13800138000"
    )
    (text,) = sms.for_case(number)
    assert text.to == "+8613800138000" and number in text.text and "/console/public/statement" in text.text
    assert "13800138000" not in text.text and RID_A not in text.text
    assert outbox.for_case(number) == []
    assert notice_row(db, entry["id"]).delivery_status == "sent"
    html = client.get(f"/v1/entries/{entry['id']}/notice", headers=rv(parties)).text
    assert "张小三" in html and mask("resident_id", RID_A) in html and RID_A not in html
    assert "满 3 个月自动移出" in html and "公示后当事人即可作出信用承诺" in html  # minor: 0 to 3 months
    # The subject answers with its resident ID (the submission's identifier).
    assert statement(client, number, id_type="resident_id", value=RID_A).status_code == 201


def test_without_a_contact_a_letter_is_printed_and_the_reviewer_told(client, parties, db, outbox, sms):
    entry = noticed(client, parties)
    assert entry["notice"]["channel"] == "letter"
    assert entry["notice"]["delivery_status"] == "letter_required" and entry["notice"]["letter_required"]
    assert outbox.sent == [] and sms.sent == []
    r = client.get(f"/v1/entries/{entry['id']}/statements", headers=rv(parties))
    assert r.json()["notice"]["letter_required"] is True
    assert r.json()["notice_pdf"] == f"/v1/entries/{entry['id']}/notice.pdf"
    # With a postal address, the letter is addressed to it.
    entry = noticed(
        client,
        parties,
        subject={
            "kind": "unit",
            "name": "另一家公司",
            "identifiers": [{"type": "uscc", "value": "91330100MA2D7K8Q9U"}],
        },
        contact={"postal_address": "浙江省杭州市西湖区某某路8号", "addressee": "另一家公司法务部"},
    )
    assert entry["notice"]["delivered_to"] == "浙江省杭州市****"
    html = client.get(f"/v1/entries/{entry['id']}/notice", headers=rv(parties)).text
    assert "浙江省杭州市西湖区某某路8号" in html and "另一家公司法务部：" in html
    pdf = client.get(f"/v1/entries/{entry['id']}/notice.pdf", headers=rv(parties)).content
    assert "另一家公司法务部" in pdf_text(pdf)


def test_the_reviewer_records_the_letter_as_posted(client, parties, db, outbox, sms):
    entry = noticed(client, parties)
    url = f"/v1/entries/{entry['id']}/notice/letter-posted"
    today = china_today()
    # Bad input names the field; nothing changes.
    r = client.post(url, json={"posted_on": (today + timedelta(days=1)).isoformat(), "reference": "XA12345678CN"},
                    headers=rv(parties))  # fmt: skip
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "posted_on"
    r = client.post(url, json={"posted_on": today.isoformat(), "reference": "  "}, headers=rv(parties))
    assert r.status_code == 422 and "reference" in r.text
    # Only a reviewer records it.
    shop = parties["shop"].headers(Role.enterprise_operator)
    assert client.post(url, json={"posted_on": today.isoformat(), "reference": "XA1"}, headers=shop).status_code == 403
    r = client.post(url, json={"posted_on": today.isoformat(), "reference": "XA12345678CN"}, headers=rv(parties))
    assert r.status_code == 200, r.text
    assert (r.json()["delivery_status"], r.json()["letter_required"]) == ("letter_posted", False)
    assert "XA12345678CN" in r.json()["delivery_note"]
    # Recorded once: a delivered notice has no letter to record.
    again = client.post(url, json={"posted_on": today.isoformat(), "reference": "XA2"}, headers=rv(parties))
    assert again.status_code == 409
    with db.session() as s:
        assert s.scalars(select(AuditEvent).where(AuditEvent.action == "notice.letter_posted")).one()


def test_a_failed_delivery_is_recorded_and_does_not_block_the_step(client, parties, db, outbox):
    class Down(LogNotifier):
        def send(self, message):
            raise ConnectionRefusedError("mail server down")

    previous = set_notifier(Down())
    try:
        entry = noticed(client, parties, contact={"email": "legal@example.com"})
    finally:
        set_notifier(previous)
    assert entry["status"] == "notice_period"
    row = notice_row(db, entry["id"])
    assert row.delivery_status == "failed" and "ConnectionRefusedError" in row.delivery_note
    assert "example.com" not in row.delivery_note
    r = client.get(f"/v1/entries/{entry['id']}/statements", headers=rv(parties)).json()
    assert r["notice"]["letter_required"] is True and r["notice"]["delivery_status"] == "failed"
    assert "notice.delivery_failed" in actions(db)


# --- statements -----------------------------------------------------------------------------------------


def statement(
    client, number, *, value=USCC_A, id_type="uscc", text="我司订单均为真实交易，附物流与支付凭证。", **over
):
    body = {"notice_number": number, "identifier": {"type": id_type, "value": value}, "text": text, **over}
    return client.post("/v1/public/statements", json=body)


def test_a_statement_is_filed_while_the_notice_period_runs_and_refused_after(client, parties, db, outbox):
    entry = noticed(client, parties)
    number = entry["notice"]["number"]
    # Proving the subject: an unknown notice and another subject's identifier answer the same 404.
    assert statement(client, "GZ20260101-AAAAAAAA").status_code == 404
    wrong = statement(client, number, value="91330100MA2D7K8Q9U")
    assert wrong.status_code == 404
    assert wrong.json()["detail"] == f"No notice {number} in its notice period for the identifier given"
    r = statement(client, number.lower(), value=USCC_A.lower(), contact_email="Legal@Example.com")
    assert r.status_code == 201, r.text
    filed = r.json()
    assert filed["tracking_number"].startswith("CS") and filed["secret"]
    assert filed["deadlines"]["notice_ends_on"] == entry["notice_ends_on"]
    (mail,) = outbox.for_case(filed["tracking_number"])
    assert mail.to == "legal@example.com" and number in mail.body
    # Evidence, with the secret.
    r = client.post(
        f"/v1/public/statements/{filed['tracking_number']}/files",
        files={"file": ("凭证.pdf", PDF_FILE, "application/pdf")},
        headers={"X-Case-Secret": filed["secret"]},
    )
    assert r.status_code == 201, r.text
    assert (
        client.post(
            f"/v1/public/statements/{filed['tracking_number']}/files",
            files={"file": ("x.txt", b"x", "text/plain")},
            headers={"X-Case-Secret": "wrong"},
        ).status_code
        == 404
    )
    status = client.get(
        f"/v1/public/statements/{filed['tracking_number']}", params={"secret": filed["secret"]}
    )
    assert status.status_code == 200 and status.headers["cache-control"] == "no-store"
    assert status.json()["kind"] == "statement" and status.json()["status"] == "received"
    assert (
        status.json()["attachments"] == 1
        and status.json()["deadlines"]["notice_ends_on"] == entry["notice_ends_on"]
    )
    assert client.get(f"/v1/public/statements/{filed['tracking_number']}?secret=x").status_code == 404
    # Bad input names the field.
    r = client.post(
        "/v1/public/statements",
        json={"notice_number": number, "identifier": {"type": "uscc", "value": "123"}, "text": "x"},
    )
    assert r.status_code == 422 and {e["field"] for e in r.json()["errors"]} == {"identifier.value", "text"}

    # After the last day: 409 naming it, for a statement and for more evidence.
    end_notice_period(db, entry)
    ended = (china_today() - timedelta(days=1)).isoformat()
    late = statement(client, number)
    assert late.status_code == 409 and ended in late.json()["detail"], late.text
    r = client.post(
        f"/v1/public/statements/{filed['tracking_number']}/files",
        files={"file": ("more.txt", b"more evidence", "text/plain")},
        headers={"X-Case-Secret": filed["secret"]},
    )
    assert r.status_code == 409 and ended in r.json()["detail"]
    with db.session() as s:
        assert s.scalar(select(Statement.text)) == "我司订单均为真实交易，附物流与支付凭证。"
        assert len(s.scalars(select(Statement)).all()) == 1
    assert "statement.file" in actions(db)


def test_an_entry_not_in_its_notice_period_takes_no_statement(client, parties, db):
    entry = noticed(client, parties)
    number = entry["notice"]["number"]
    end_notice_period(db, entry)
    r = step(client, parties, entry, "publish")
    assert r.status_code == 200, r.text
    # Published: the notice's statements are closed — the same 404 as an unknown notice (objection now).
    assert statement(client, number).status_code == 404


def test_publishing_needs_an_answer_to_each_statement(client, parties, db, outbox):
    entry = noticed(client, parties)
    number = entry["notice"]["number"]
    first = statement(client, number, contact_email="a@example.com").json()
    second = statement(client, number, text="另附说明：涉案账号已于去年注销。").json()
    end_notice_period(db, entry)
    seen = client.get(f"/v1/entries/{entry['id']}/statements", headers=rv(parties)).json()
    assert seen["unanswered"] == 2
    ids = [s["id"] for s in seen["statements"]]
    assert ids == [first["id"], second["id"]]

    r = step(client, parties, entry, "publish")
    assert r.status_code == 422, r.text
    assert {e["field"] for e in r.json()["errors"]} == {f"answers.{i}" for i in ids}
    assert first["tracking_number"] in r.json()["detail"] and second["tracking_number"] in r.json()["detail"]
    r = step(client, parties, entry, "publish", answers={ids[0]: "经核查，物流凭证与订单不符。"})
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == [f"answers.{ids[1]}"]
    unknown = str(uuid.uuid4())
    r = step(client, parties, entry, "publish", answers={ids[0]: "a", ids[1]: "b", unknown: "c"})
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == [f"answers.{unknown}"]
    with db.session() as s:
        assert s.get(Entry, uuid.UUID(entry["id"])).status == "notice_period"  # nothing half-written

    answers = {ids[0]: "经核查，物流凭证与订单不符，不予采纳。", ids[1]: "账号注销不影响认定。"}
    r = step(client, parties, entry, "publish", answers=answers)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "published"
    with db.session() as s:
        rows = {str(x.id): x for x in s.scalars(select(Statement))}
        assert {k: v.answer for k, v in rows.items()} == answers
        assert {v.outcome for v in rows.values()} == {"published"} and {v.status for v in rows.values()} == {
            "answered"
        }
    status = client.get(
        f"/v1/public/statements/{first['tracking_number']}", params={"secret": first["secret"]}
    ).json()
    assert status["status"] == "answered" and status["outcome"] == "published"
    assert status["reason"] == answers[ids[0]] and status["decided_at"]
    answered = [m for m in outbox.for_case(first["tracking_number"]) if m.event == "statement.answered"]
    assert len(answered) == 1 and answers[ids[0]] in answered[0].body
    assert outbox.for_case(second["tracking_number"]) == []  # no e-mail given
    assert actions(db).count("statement.answer") == 2


def test_rejecting_in_the_notice_period_answers_the_statements(client, parties, db, outbox):
    entry = noticed(client, parties)
    filed = statement(client, entry["notice"]["number"], contact_email="a@example.com").json()
    r = step(client, parties, entry, "reject", reason="陈述申辩成立：订单为真实交易。")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "rejected"
    status = client.get(
        f"/v1/public/statements/{filed['tracking_number']}", params={"secret": filed["secret"]}
    ).json()
    assert status["outcome"] == "rejected" and status["reason"] == "陈述申辩成立：订单为真实交易。"
    (mail,) = [m for m in outbox.for_case(filed["tracking_number"]) if m.event == "statement.answered"]
    assert "不予列入" in mail.body


def test_the_reviewer_sees_statements_and_liable_persons_before_publication(client, parties, db):
    entry = noticed(
        client,
        parties,
        liable_persons=[
            {
                "role": "legal_representative",
                "name": "张小三",
                "identifiers": [
                    {"type": "resident_id", "value": RID_A},
                    {"type": "phone", "value": LEGAL_REP_PHONE},
                ],
            }
        ],
    )
    filed = statement(client, entry["notice"]["number"]).json()
    client.post(
        f"/v1/public/statements/{filed['tracking_number']}/files",
        files={"file": ("凭证.pdf", PDF_FILE, "application/pdf")},
        headers={"X-Case-Secret": filed["secret"]},
    )
    # The liable persons, masked, on the entry for the reviewer (before publication: no linked entry yet).
    seen = client.get(f"/v1/entries/{entry['id']}", headers=rv(parties)).json()
    (person,) = seen["liable_persons"]
    assert person["role"] == "legal_representative" and person["name"] == "张*三"
    assert {i["value"] for i in person["identifiers"]} == {
        mask("resident_id", RID_A),
        mask("phone", LEGAL_REP_PHONE),
    }
    revealed = client.get(f"/v1/entries/{entry['id']}?reveal=true", headers=rv(parties)).json()
    assert revealed["liable_persons"][0]["name"] == "张小三"
    assert RID_A in {i["value"] for i in revealed["liable_persons"][0]["identifiers"]}
    # Not to the reporting enterprise (nor any other): the reviewer's to weigh.
    assert client.get(f"/v1/entries/{entry['id']}", headers=op(parties)).json()["liable_persons"] is None
    # The statements with their files.
    r = client.get(f"/v1/entries/{entry['id']}/statements", headers=rv(parties))
    assert r.status_code == 200
    (st,) = r.json()["statements"]
    assert st["text"] == "我司订单均为真实交易，附物流与支付凭证。" and st["status"] == "received"
    (att,) = st["attachments"]
    f = client.get(f"/v1/statements/{st['id']}/attachments/{att['digest']}", headers=rv(parties))
    assert f.status_code == 200 and f.content == PDF_FILE
    assert client.get(f"/v1/entries/{entry['id']}/statements", headers=op(parties)).status_code == 403
    # The notice tells the subject its legal representative will be listed with it (name masked).
    html = client.get(f"/v1/entries/{entry['id']}/notice", headers=rv(parties)).text
    assert "法定代表人张*三" in html and "张小三" not in html


def test_statements_are_rate_limited_per_notice(client, parties, settings):
    settings.public_rate_per_target = 2
    entry = noticed(client, parties)
    number = entry["notice"]["number"]
    assert statement(client, number).status_code == 201
    assert statement(client, number).status_code == 201
    r = statement(client, number)
    assert r.status_code == 429 and r.headers["retry-after"]


# --- bulk uploads carry the contact and the gains ---------------------------------------------------------


def test_bulk_upload_columns_for_the_contact_and_the_gains():
    csv = (
        "主体类型,主体名称,统一社会信用代码,失信行为,角色,严重程度,认定依据,事实,联系邮箱,联系电话,联系地址,收件人,刷单笔数,获得信用积分\n"
        '单位,某公司,91110000600037341L,刷单炒信,组织者,一般,企业监测发现,组织刷单,Legal@Example.cn,138 0013 8000,北京市朝阳区1号,法务部,"1,200",300\n'
        "单位,某公司二,91330100MA2D7K8Q9U,刷单炒信,组织者,一般,企业监测发现,组织刷单,not-an-email,12,,,很多,-5\n"
    )
    parsed = parse_upload(csv.encode(), filename="rows.csv", media_type="text/csv")
    ((row, entry),) = parsed.entries
    assert row == 2
    assert entry.contact.email == "legal@example.cn" and entry.contact.phone == "+8613800138000"
    assert entry.contact.postal_address == "北京市朝阳区1号" and entry.contact.addressee == "法务部"
    assert entry.gains.brushed_orders == 1200 and entry.gains.points_gained == 300
    assert {(e.row, e.field) for e in parsed.errors} == {
        (3, "contact_email"),
        (3, "brushed_orders"),
        (3, "points_gained"),
    }
    # English column names too, and the phone alone.
    csv = (
        "subject_kind,subject_name,uscc,behaviours,role,severity,basis,facts,contact_phone,brushed_orders\n"
        "unit,某公司,91110000600037341L,order_brushing,organizer,general,enterprise_finding,x,12345,7\n"
    )
    parsed = parse_upload(csv.encode(), filename="rows.csv", media_type="text/csv")
    assert [(e.row, e.field) for e in parsed.errors] == [(2, "contact_phone")]


def test_the_outbox_keeps_messages_and_calls_in_order(db):
    """The notice's SMS and e-mails share the after-commit queue; a failing call does not stop the rest."""
    log = LogNotifier()
    previous = set_notifier(log)
    seen: list[tuple[bool, str | None]] = []
    try:
        with db.session() as s:
            notify.queue_call(
                s,
                "first",
                lambda: (_ for _ in ()).throw(RuntimeError("down")),
                lambda ok, e: seen.append((ok, e)),
            )
            notify.queue(
                s,
                notify.Message(
                    "a@example.com",
                    "s",
                    "b",
                    "X1",
                    "statement.filed",
                    on_result=lambda ok, e: seen.append((ok, e)),
                ),
            )
    finally:
        set_notifier(previous)
    assert seen == [(False, "RuntimeError"), (True, None)] and len(log.sent) == 1


def test_a_bulk_upload_carries_the_contact_to_the_notice_and_the_gains_to_the_entry(
    client, parties, db, outbox
):
    csv = (
        "subject_kind,subject_name,uscc,behaviours,role,severity,basis,facts,contact_email,brushed_orders\n"
        f"unit,某某公司,{USCC_A},order_brushing,organizer,general,enterprise_finding,组织刷单,Legal@Example.cn,80\n"
    )
    r = client.post(
        "/v1/uploads", files={"file": ("rows.csv", csv.encode(), "text/csv")}, headers=op(parties)
    )
    assert r.status_code == 201 and r.json()["accepted"] == 1, r.text
    with db.session() as s:
        stored = s.scalars(select(Entry)).one()
        assert stored.subject_contact == {"email": "legal@example.cn"}
        assert stored.gains == {"brushed_orders": 80}
        entry = {"id": str(stored.id), "version": stored.version}
    entry = step(client, parties, entry, "start_review").json()
    entry = step(client, parties, entry, "open_notice").json()
    assert entry["notice"]["channel"] == "email"
    (mail,) = outbox.for_case(entry["notice"]["number"])
    assert mail.to == "legal@example.cn" and "虚假交易 80 笔" in mail.body
