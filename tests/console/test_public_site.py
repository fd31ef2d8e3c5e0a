"""The public site as 信用中国 users expect it (#17 part 4): one search box with fuzzy name matching over
the public list only, a record page per published entry, guides to objection and credit repair, forms
that take their record from the record page (no typed ids), with attachments and a mobile number, and a
filing confirmation whose progress check works."""

from __future__ import annotations

import re
import uuid
from datetime import date

import pytest
from sqlalchemy import func, select

from fanchaoxin.appeals import notices
from fanchaoxin.appeals.models import CaseAttachment, Objection, RepairApplication, Report
from fanchaoxin.blacklist import public_search
from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.core.audit import SYSTEM
from fanchaoxin.workflows.entries import take_step

from .console_helpers import csrf_of, penalty_entry
from .test_two_lists import FINDING_NAME, FINDING_USCC, publish_finding

COMPANY = "杭州示范刷单网络科技有限公司"
USCC = "91350100M000100Y43"
OTHER = "北京某某电子商务有限公司"
OTHER_USCC = "91330100MA2D7K8Q9U"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
IN_BYTES = re.compile(r"\d\s*(bytes|字节)")  # a size as a reader sees it: never in bytes


def _publish(db, entry_id) -> None:  # type: ignore[no-untyped-def]
    with db.session() as s:
        e = s.get(Entry, entry_id)
        take_step(s, SYSTEM, e, Action.start_review)
        take_step(s, SYSTEM, e, Action.publish)


@pytest.fixture
def site(db, world):  # type: ignore[no-untyped-def]
    dept = world.department("示范市市场监督管理局").org.id
    shop = world.enterprise("示范电商平台").org.id
    listed = penalty_entry(db, dept, name=COMPANY, uscc=USCC)
    _publish(db, listed)
    other = penalty_entry(db, dept, name=OTHER, uscc=OTHER_USCC)
    _publish(db, other)
    finding = publish_finding(db, shop)  # the shared list: never on a public page
    return {"listed": listed, "other": other, "finding": finding}


def _search(client, q: str, full_name: str = "") -> str:  # type: ignore[no-untyped-def]
    token = csrf_of(client.get("/console/public").text)
    r = client.post("/console/public", data={"csrf_token": token, "q": q, "full_name": full_name})
    assert r.status_code == 200, r.text
    # Nothing searched lands in a URL: the answer is the POST's own page.
    assert str(r.url).endswith("/console/public")
    return r.text.split('<div id="results"', 1)[1]  # the answer, not the box that echoes a name


def _en(client) -> None:  # type: ignore[no-untyped-def]
    client.get("/console/lang/en?next=/console/public")


# --- the search box -------------------------------------------------------------------------------------


def test_one_box_finds_a_company_by_part_of_its_name_or_a_slip(client, site):
    page = client.get("/console/public").text
    assert 'id="q-by"' not in page and 'name="by"' not in page  # no type picker
    for typed in ("刷单网络", "杭州刷单科技", "杭州示范刷单网络科技公司", "杭州示范侧单网络科技"):
        found = _search(client, typed)
        assert COMPANY in found, typed
        assert f'href="/console/public/records/{site["listed"]}"' in found
        assert 'data-kind="name"' in found
    # A name that matches nothing near enough is not "found".
    assert COMPANY not in _search(client, "上海完全无关贸易")


def test_an_identifier_is_recognised_without_being_told_its_kind(client, site):
    found = _search(client, USCC.lower())
    assert 'data-kind="uscc"' in found and COMPANY in found
    assert "统一社会信用代码" in found
    # A code with a slip is named as such, in Chinese, at the box — never searched as a name.
    wrong = _search(client, USCC[:-1] + "X")
    assert 'id="query-errors"' in wrong and "校验码" in wrong
    assert "[rule" not in wrong and "uscc." not in wrong and COMPANY not in wrong


def test_the_shared_list_never_appears_even_by_part_of_its_name(client, site):
    for typed in (FINDING_NAME, "北京某某网络", FINDING_USCC):
        answer = _search(client, typed)
        assert FINDING_NAME not in answer and 'id="no-results"' in answer, typed
    assert client.get(f"/console/public/records/{site['finding']}").status_code == 404
    form = client.get(f"/console/public/objection?entry={site['finding']}")
    assert 'id="no-record"' in form.text and FINDING_NAME not in form.text


def test_the_name_search_covers_the_public_units_only(db, site):
    with db.session() as s:
        names = dict(public_search.public_unit_names(s))
        listed = s.get(Entry, site["listed"]).subject_id
        finding = s.get(Entry, site["finding"]).subject_id
    assert listed in names and finding not in names


def test_no_hit_says_no_public_record_and_never_implies_innocence(client, site):
    answer = _search(client, "完全没有这家公司")
    assert 'id="no-results"' in answer
    assert "炒信黑名单中没有与您的查询相符的公示记录" in answer
    assert "不构成信用良好的证明" in answer
    assert "未找到" not in answer  # not the old "not found", which reassured
    _en(client)
    answer = _search(client, "No such company at all")
    assert "No public record in the credit-hyping blacklist matches your search." in answer
    assert "not a certificate of good conduct" in answer


def test_a_generic_word_alone_is_asked_to_be_longer(client, site):
    answer = _search(client, "有限公司")
    assert 'id="query-errors"' in answer and "有限公司" in answer and COMPANY not in answer


# --- the record page ------------------------------------------------------------------------------------


def test_the_record_page_shows_what_xinyong_zhongguo_shows(client, site, db):
    page = client.get(f"/console/public/records/{site['listed']}")
    assert page.status_code == 200
    html = page.text
    with db.session() as s:
        e = s.get(Entry, site["listed"])
        published, max_end, min_end = e.published_at, e.max_end_on, e.min_end_on
    assert COMPANY in html and USCC in html
    assert "组织刷单 300 笔。" in html  # facts
    assert re.search(r'id="record-authority">示范市市场监督管理局<', html)  # 认定部门
    assert "测罚〔2026〕1号" in html and "2026-01-05" in html  # 文书号 and its date
    assert published is not None and published.date().isoformat()[:7] in html
    assert max_end is not None and max_end.isoformat() in html
    assert min_end is not None and min_end.isoformat() in html
    history = html.split('id="record-history"', 1)[1].split("</ol>", 1)[0]
    assert "已在公开名单公示" in history and "start_review" not in history and "审核" not in history
    # The remedies start from the record: objection now, repair from its first day.
    assert f'href="/console/public/objection?entry={site["listed"]}"' in html
    assert "repair-link" not in html and f"可于 {min_end.isoformat()} 起申请信用修复" in html
    for missing in (uuid.uuid4(), "not-a-uuid"):
        gone = client.get(f"/console/public/records/{missing}")
        assert gone.status_code == 404 and 'id="no-record"' in gone.text


def test_nav_has_credit_repair_and_objection_guides_with_the_rules(client, site, settings):
    page = client.get("/console/public").text
    assert 'href="/console/public/guide/repair"' in page and 'href="/console/public/guide/objection"' in page
    guide = client.get("/console/public/guide/objection").text
    assert f"{settings.objection_decide_working_days} 个工作日" in guide
    assert "统一社会信用代码" in guide and "10 MB" in guide
    repair = client.get("/console/public/guide/repair").text
    table = repair.split('id="guide-periods"', 1)[1].split("</table>", 1)[0]
    assert (
        "一般" in table
        and "3 个月" in table
        and "12 个月" in table
        and "严重" in table
        and "36 个月" in table
    )
    assert "轻微" not in table  # never published, so never repaired publicly
    assert f"{settings.repair_decide_working_days} 个工作日" in repair
    _en(client)
    assert "Time limits" in client.get("/console/public/guide/objection").text


# --- forms that take their record from the page ---------------------------------------------------------


def test_an_objection_from_the_record_with_a_file_and_a_mobile_then_its_progress(client, site, db):
    form = client.get(f"/console/public/objection?entry={site['listed']}")
    assert form.status_code == 200
    html = form.text
    # The record is named on the form; its id is a hidden field, never a box to type in.
    assert COMPANY in html and "测罚〔2026〕1号" in html
    assert re.search(rf'<input type="hidden" name="entry_id" value="{site["listed"]}">', html)
    assert 'id="o-entry"' not in html
    assert "10 MB" in html and not IN_BYTES.search(html)
    r = client.post(
        "/console/public/objection",
        data={
            "csrf_token": csrf_of(html), "entry_id": str(site["listed"]), "identifier_type": "uscc",
            "identifier_value": USCC, "grounds": "处罚决定已被行政复议撤销，附复议决定书。",
            "contact_email": "legal@example.cn", "contact_phone": "138 0013 8000",
        },
        files=[("files", ("复议决定书.pdf", PDF, "application/pdf"))],
    )  # fmt: skip
    assert r.status_code == 201, r.text
    tracking = re.search(r'id="tracking">([^<]+)<', r.text).group(1)  # type: ignore[union-attr]
    secret = re.search(r'id="secret">([^<]+)<', r.text).group(1)  # type: ignore[union-attr]
    with db.session() as s:
        obj = s.scalars(select(Objection).where(Objection.tracking_number == tracking)).one()
        assert obj.contact_phone == "+8613800138000" and obj.entry_id == site["listed"]
        files = s.scalar(
            select(func.count()).select_from(CaseAttachment).where(CaseAttachment.case_id == obj.id)
        )
        assert files == 1
    # The confirmation's button takes the number and the secret to the progress page, which answers.
    assert 'action="/console/public/progress"' in r.text and 'href="/console/public/progress"' in r.text
    p = client.post(
        "/console/public/progress",
        data={"csrf_token": csrf_of(r.text), "tracking_number": tracking, "secret": secret},
    )
    assert p.status_code == 200 and 'data-kind="objection"' in p.text
    assert re.search(r'id="case-files">1<', p.text)
    # The record now says an objection is being examined, and offers no second one.
    record = client.get(f"/console/public/records/{site['listed']}").text
    assert 'data-status="disputed"' in record and "objection?entry=" not in record


def test_a_bad_mobile_or_a_file_too_large_is_named_and_nothing_is_filed(client, site, db, settings):
    html = client.get(f"/console/public/objection?entry={site['listed']}").text
    base = {
        "csrf_token": csrf_of(html), "entry_id": str(site["listed"]), "identifier_type": "uscc",
        "identifier_value": USCC, "grounds": "处罚决定已被行政复议撤销。", "contact_email": "legal@example.cn",
    }  # fmt: skip
    r = client.post("/console/public/objection", data={**base, "contact_phone": "12345"})
    assert r.status_code == 422 and 'id="err-contact_phone"' in r.text and "手机号码" in r.text
    assert "contact_phone" not in r.text.split('id="form-errors"', 1)[1].split("</div>", 1)[0]
    settings.attachment_max_bytes = 2048
    r = client.post(
        "/console/public/objection", data={**base, "contact_phone": ""},
        files=[("files", ("big.pdf", PDF + b"0" * 4096, "application/pdf"))],
    )  # fmt: skip
    assert r.status_code == 413 and 'id="err-files"' in r.text
    said = r.text.split('id="err-files">', 1)[1].split("</p>", 1)[0]
    assert "big.pdf" in said and "2 KB" in said and "2048" not in said
    r = client.post("/console/public/objection", data={**base, "identifier_value": OTHER_USCC})
    assert r.status_code == 422 and 'id="err-identifier"' in r.text
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Objection)) == 0
        assert s.get(Entry, site["listed"]).status == "published"


def test_a_form_without_a_public_record_sends_the_reader_to_the_search(client, site):
    for path in ("/console/public/objection", "/console/public/repair", "/console/public/objection?entry=x"):
        r = client.get(path)
        assert r.status_code == 200 and 'id="no-record"' in r.text and 'href="/console/public"' in r.text
        assert 'name="entry_id"' not in r.text and 'name="reference"' in r.text
    # A record that is not public is never shown, even to whoever has its id.
    r = client.get(f"/console/public/objection?entry={site['finding']}")
    assert FINDING_NAME not in r.text and FINDING_USCC not in r.text and 'id="about"' not in r.text


def test_a_shared_list_subject_objects_with_its_notice_number(client, site, db):
    with db.session() as s:
        number = notices.notice_of(s, site["finding"]).number  # type: ignore[union-attr]
    html = client.get("/console/public/objection").text
    data = {
        "csrf_token": csrf_of(html), "reference": number.lower(), "identifier_type": "uscc",
        "grounds": "该认定所依据的交易记录有误，附平台对账单。", "contact_email": "legal@example.cn",
    }  # fmt: skip
    # An unknown number and a wrong identifier read alike, at the identifier; neither shows the record.
    wrong = client.post("/console/public/objection", data={**data, "identifier_value": USCC})
    unknown = client.post(
        "/console/public/objection",
        data={**data, "reference": "GZ20260101-AAAAAAAA", "identifier_value": FINDING_USCC},
    )
    assert wrong.status_code == unknown.status_code == 422
    assert 'id="err-identifier"' in wrong.text and 'id="err-identifier"' in unknown.text
    assert FINDING_NAME not in wrong.text and FINDING_NAME not in unknown.text
    r = client.post("/console/public/objection", data={**data, "identifier_value": FINDING_USCC})
    assert r.status_code == 201, r.text
    with db.session() as s:
        assert s.scalars(select(Objection)).one().entry_id == site["finding"]
    blank = client.post("/console/public/objection", data={**data, "reference": "", "identifier_value": USCC})
    assert blank.status_code == 422 and 'id="err-reference"' in blank.text


def test_a_repair_application_from_the_record_with_proof_and_mobile(client, site, db):
    with db.session() as s:
        e = s.get(Entry, site["other"])
        e.min_end_on = date.today()
    record = client.get(f"/console/public/records/{site['other']}").text
    assert f'href="/console/public/repair?entry={site["other"]}"' in record
    html = client.get(f"/console/public/repair?entry={site['other']}").text
    assert OTHER in html and 'id="r-entry"' not in html
    r = client.post(
        "/console/public/repair",
        data={
            "csrf_token": csrf_of(html), "entry_id": str(site["other"]), "identifier_type": "uscc",
            "identifier_value": OTHER_USCC, "commitment_text": "本单位承诺依法诚信经营，不再组织刷单。",
            "commitment_accepted": "true", "rectification": "已关闭刷单渠道。", "contact_email": "a@example.cn",
            "contact_phone": "+86 139 0000 1111",
        },
        files=[("proof", ("整改报告.txt", "整改报告：已完成。".encode(), "text/plain"))],
    )  # fmt: skip
    assert r.status_code == 201, r.text
    with db.session() as s:
        app = s.scalars(select(RepairApplication)).one()
        assert app.contact_phone == "+8613900001111" and app.entry_id == site["other"]


def test_the_report_form_is_confidential_takes_files_and_a_mobile(client, site, db):
    html = client.get(f"/console/public/report?entry={site['listed']}").text
    assert 'id="confidentiality"' in html and "保密" in html
    assert COMPANY in html and USCC in html  # opened from the record: the unit is named already
    assert 'name="contact_phone"' in html and 'name="files"' in html and not IN_BYTES.search(html)
    r = client.post(
        "/console/public/report",
        data={
            "csrf_token": csrf_of(html), "description": "该店铺组织刷单，雇人虚假下单。", "name": COMPANY,
            "identifier_value": USCC, "behaviours": ["order_brushing"], "contact_phone": "13800138000",
        },
        files=[("files", ("截图.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "image/png"))],
    )  # fmt: skip
    assert r.status_code == 201, r.text
    with db.session() as s:
        rep = s.scalars(select(Report)).one()
        assert rep.contact_phone == "+8613800138000" and rep.contact_email is None
        assert rep.reported["identifiers"] == [{"type": "uscc", "value": USCC}]
        assert s.scalar(
            select(func.count()).select_from(CaseAttachment).where(CaseAttachment.case_id == rep.id)
        )


def test_form_errors_are_in_the_readers_language_without_field_paths(client, site):
    html = client.get(f"/console/public/objection?entry={site['listed']}").text
    r = client.post(
        "/console/public/objection",
        data={"csrf_token": csrf_of(html), "entry_id": str(site["listed"]), "identifier_type": "uscc",
              "identifier_value": "123", "grounds": "短", "contact_email": "x"},
    )  # fmt: skip
    assert r.status_code == 422
    alert = r.text.split('id="form-errors"', 1)[1].split("</div>", 1)[0]
    for raw in ("identifier.value", "contact_email", "grounds:", "[rule", "Value error"):
        assert raw not in alert, raw
    assert "依据" in alert or "异议理由" in alert or "理由" in alert
    p = client.post(
        "/console/public/progress", data={"csrf_token": csrf_of(html), "tracking_number": "", "secret": ""}
    )
    assert p.status_code == 422 and "受理编号" in p.text and "1 to 40" not in p.text


def test_the_box_reads_what_is_typed():
    read = public_search.read_query
    assert read(" 91350100m000100y43 ").kind == "uscc" and not read("91350100M000100Y43").as_name
    assert read("138 0013 8000").kind == "phone" and read("a@example.cn").kind == "email"
    assert {i.type.value for i in read("taobao:Shop_123").identifiers} == {
        "platform_account",
        "social_account",
    }
    latin = read("ABC Trading")  # passes the waybill prefix's loose rule: a name as well
    assert latin.as_name and latin.kind == "name" and latin.identifiers
    slip = read("91350100M000100Y44")
    assert slip.code_error is not None and slip.code_error.rule == "uscc.check_char"
    assert slip.kind == "uscc" and not slip.identifiers and not slip.as_name
    assert read("示范测试刷单").kind == "name" and not read("示范测试刷单").identifiers


def test_names_score_part_then_abbreviation_then_slip():
    def score(typed: str, name: str) -> float | None:
        return public_search.score(
            public_search.name_words(typed), public_search.name_words(name) + "有限公司"
        )

    part = score("刷单网络", COMPANY)
    abbreviation = score("杭州刷单科技", COMPANY)
    slip = score("杭州示范侧单网络科技", COMPANY)
    assert part is not None and abbreviation is not None and slip is not None
    assert part > abbreviation > slip >= public_search.FUZZY_CUTOFF
    assert score("北京某某网络", OTHER) is None  # a shared city name is not a match
    assert score("有限公司", COMPANY) is None and score("上海贸易", COMPANY) is None
