"""The reviewer's case view (#17): one page per entry with previews and the steps possible now, each
saying what it will do; destructive steps confirmed first; refused steps shown on the page; the entries
search, paging and export; objection and repair queues with subjects, deadlines and 补正."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from urllib.parse import quote

from sqlalchemy import select

from fanchaoxin.appeals.models import Objection
from fanchaoxin.appeals.supplement_models import SupplementRequest
from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.blacklist.schemas import EntryIn
from fanchaoxin.core.audit import SYSTEM, Actor
from fanchaoxin.core.calendar import china_today
from fanchaoxin.workflows.entries import take_step

from .console_helpers import csrf_of, penalty_entry
from .test_console import sign_in, staff  # noqa: F401  (the fixture)
from .test_console_cases import USCC, _objection, _published
from .test_notice_console import outbox  # noqa: F401  (the fixture)

PNG = b"\x89PNG\r\n\x1a\n" + bytes(40)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
OTHER_USCC = "91110000600037341L"


def _reviewing(db, org_id, **kw):  # type: ignore[no-untyped-def]
    entry_id = penalty_entry(db, org_id, **kw)
    with db.session() as s:
        take_step(s, SYSTEM, s.get(Entry, entry_id), Action.start_review)
    return entry_id


def _steps(html: str) -> set[str]:
    section = html.split('id="steps"')[1].split("</section>")[0]
    return set(re.findall(r'id="step-([a-z_]+)"', section))


def test_only_the_steps_possible_now_each_saying_what_it_will_do(client, db, staff):  # noqa: F811
    dept = staff["dept"].org.id
    submitted = penalty_entry(db, dept, name="刚报送有限公司", uscc=OTHER_USCC)
    reviewing = _reviewing(db, dept)
    sign_in(client, "reviewer")
    page = client.get(f"/console/entries/{submitted}").text
    assert _steps(page) == {"start_review"}
    # An administrative penalty may be published (no notice needed), or rejected; nothing else.
    page = client.get(f"/console/entries/{reviewing}").text
    assert _steps(page) == {"open_notice", "publish", "reject"}
    publish = page.split('id="step-publish"')[1].split("</form>")[0]
    assert "个单位将收到" in publish and "惩戒政策版本" in publish
    notice = page.split('id="step-open_notice"')[1].split("</form>")[0]
    assert "个工作日" in notice and "打印告知书" in notice
    # The destructive step is a link to its confirmation, never a form that takes it.
    reject = page.split('id="step-reject"')[1].split("</form>")[0]
    assert 'method="get"' in reject and "/transition" not in reject and "必须填写理由" in reject
    # /console/review/{id} is the same case view.
    assert _steps(client.get(f"/console/review/{reviewing}").text) == {"open_notice", "publish", "reject"}
    # In English, the same page says it in English.
    client.get(f"/console/lang/en?next=/console/entries/{reviewing}")
    english = client.get(f"/console/entries/{reviewing}").text
    assert "organisations get" in english and "个单位将收到" not in english


def test_a_refused_step_is_shown_on_the_case_page(client, db, staff):  # noqa: F811
    entry_id = penalty_entry(db, staff["dept"].org.id)
    sign_in(client, "reviewer")
    page = client.get(f"/console/entries/{entry_id}").text
    csrf = csrf_of(page)
    # Publishing a submitted entry is not possible: the case page again, with the reason, on the POST.
    r = client.post(
        f"/console/entries/{entry_id}/transition",
        data={"csrf_token": csrf, "action": "publish", "version": "1"},
        follow_redirects=False,
    )
    assert r.status_code == 409 and 'id="decide-errors"' in r.text and 'id="steps"' in r.text
    assert "publish" not in r.text.split('id="decide-errors"')[1].split("</div>")[0]
    # A step lost to someone else's (a stale version): the case page names it, nothing changed.
    r = client.post(
        f"/console/entries/{entry_id}/transition",
        data={"csrf_token": csrf, "action": "start_review", "version": "7"},
        follow_redirects=False,
    )
    assert r.status_code == 409 and 'id="decide-errors"' in r.text
    with db.session() as s:
        assert s.get(Entry, entry_id).status == "submitted"
    # A step taken redirects back to the case (redirect after POST).
    r = client.post(
        f"/console/entries/{entry_id}/transition",
        data={"csrf_token": csrf, "action": "start_review", "version": "1"},
        follow_redirects=False,
    )
    assert (
        r.status_code == 303
        and r.headers["location"] == f"/console/entries/{entry_id}?done=start_review#steps"
    )
    assert 'id="done"' in client.get(r.headers["location"]).text


def test_revoking_is_confirmed_first_and_needs_a_reason(client, db, staff):  # noqa: F811
    entry_id = _published(db, staff["dept"].org.id)
    sign_in(client, "reviewer")
    page = client.get(f"/console/entries/{entry_id}").text
    assert _steps(page) == {"revoke"}
    confirm = client.get(f"/console/entries/{entry_id}/confirm?action=revoke")
    assert confirm.status_code == 200 and 'id="confirm-form"' in confirm.text
    assert "更正公告" in confirm.text and "解除惩戒措施的指令" in confirm.text
    csrf = csrf_of(confirm.text)
    version = re.search(r'name="version" value="(\d+)"', confirm.text).group(1)
    # Sent without the confirmation (an old form): the confirmation page, and nothing happens.
    r = client.post(
        f"/console/entries/{entry_id}/transition",
        data={"csrf_token": csrf, "action": "revoke", "version": version, "reason": "处罚决定已撤销"},
    )
    assert r.status_code == 200 and 'id="confirm-form"' in r.text and "处罚决定已撤销" in r.text
    # Confirmed without a reason: the confirmation page again, with the error in Chinese.
    r = client.post(
        f"/console/entries/{entry_id}/transition",
        data={"csrf_token": csrf, "action": "revoke", "version": version, "reason": "", "confirmed": "yes"},
    )
    assert r.status_code == 422 and 'id="decide-errors"' in r.text and 'id="confirm-form"' in r.text
    assert "reason" not in r.text.split('id="decide-errors"')[1].split("</div>")[0]
    with db.session() as s:
        assert s.get(Entry, entry_id).status == "published"
    r = client.post(
        f"/console/entries/{entry_id}/transition",
        data={
            "csrf_token": csrf,
            "action": "revoke",
            "version": version,
            "reason": "处罚决定已撤销",
            "confirmed": "yes",
        },
        follow_redirects=False,
    )
    # The revoked entry is out of the reviewer's sight: back to the list, which says it was done.
    assert r.status_code == 303 and r.headers["location"] == "/console/entries?done=revoke", r.text
    assert 'id="done"' in client.get(r.headers["location"]).text
    with db.session() as s:
        assert s.get(Entry, entry_id).status == "revoked"


def test_evidence_previews_and_the_notice_on_the_page(client, db, staff):  # noqa: F811
    entry_id = _reviewing(db, staff["dept"].org.id)
    with db.session() as s:
        e = s.get(Entry, entry_id)
        registry.add_evidence(s, SYSTEM, e, filename="截图.png", declared_type="image/png", data=PNG)
        registry.add_evidence(
            s, SYSTEM, e, filename="处罚决定书.pdf", declared_type="application/pdf", data=PDF
        )
        registry.add_evidence(
            s, SYSTEM, e, filename="说明.txt", declared_type="text/plain",
            data="订单号 1001 <script>alert(1)</script>".encode(),
        )  # fmt: skip
        take_step(s, SYSTEM, e, Action.open_notice)
    sign_in(client, "reviewer")
    page = client.get(f"/console/entries/{entry_id}").text
    # Text is shown escaped; the image is shown from the same-origin download, inline.
    assert "订单号 1001 &lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    img = re.search(r'<img src="(/console/entries/[^"]+\?inline=1)"', page).group(1)
    shown = client.get(img)
    assert shown.status_code == 200 and shown.content == PNG
    assert (
        shown.headers["content-disposition"].startswith("inline")
        and shown.headers["x-frame-options"] == "SAMEORIGIN"
    )
    frame = re.search(r'<iframe src="(/console/entries/[^"]+\?inline=1)"', page).group(1)
    pdf = client.get(frame)
    assert pdf.content == PDF and pdf.headers["content-disposition"].startswith("inline")
    assert pdf.headers["content-security-policy"] == "frame-ancestors 'self'"
    download = client.get(img.removesuffix("?inline=1"))
    assert download.headers["content-disposition"].startswith("attachment")
    # The notice's text is on the case page, with its HTML and PDF.
    assert 'id="notice-text"' in page and "拟列入炒信黑名单告知书" in page and 'id="notice-pdf"' in page
    # During the notice period nothing can be published yet, and the page says until when.
    assert "publish" not in _steps(page)


def test_search_filters_pages_and_exports_entries(client, db, staff):  # noqa: F811
    dept = staff["dept"].org.id
    a = penalty_entry(db, dept, name="杭州示范刷单网络科技有限公司", uscc=USCC)
    b = penalty_entry(db, dept, name="另一家公司", uscc=OTHER_USCC)
    with db.session() as s:
        for n in range(52):
            registry.submit(s, Actor("test:dept", dept), dept, EntryIn.model_validate({
                "subject": {"kind": "unit", "name": "批量公司", "identifiers": [{"type": "uscc", "value": "91330100MA2D7K8Q9U"}]},
                "behaviours": ["order_brushing"], "role": "organizer", "severity": "general",
                "basis": "administrative_penalty", "document_number": f"批〔2026〕{n}号",
                "issuing_authority": "示范市市场监督管理局", "document_date": "2026-01-05", "facts": "刷单。",
            }))  # fmt: skip
    sign_in(client, "reviewer")

    def found(**params):  # type: ignore[no-untyped-def]
        r = client.get("/console/entries", params=params)
        return r, set(re.findall(r'href="/console/entries/([0-9a-f-]{36})"', r.text))

    # Part of a company's name, its USCC, its entry id, a document number.
    assert found(q="示范刷单")[1] == {str(a)}
    # The term never stays in an address: the form is a POST, a plain `q` is sealed (`qs`).
    page = client.get("/console/entries")
    r = client.post(
        "/console/entries", data={"csrf_token": csrf_of(page.text), "q": "示范刷单"}, follow_redirects=False
    )
    assert r.status_code == 303 and "qs=" in r.headers["location"]
    assert "示范刷单" not in r.headers["location"] and quote("示范刷单") not in r.headers["location"]
    assert set(
        re.findall(r'href="/console/entries/([0-9a-f-]{36})"', client.get(r.headers["location"]).text)
    ) == {str(a)}
    assert client.get("/console/entries", params={"q": "示范刷单"}, follow_redirects=False).status_code == 303
    assert found(q=OTHER_USCC)[1] == {str(b)}
    assert found(q=str(a))[1] == {str(a)}
    assert len(found(q="批〔2026〕7号")[1]) == 1
    # Dates: today's submissions, and none before.
    today = china_today()
    assert str(a) in found(**{"from": today.isoformat(), "to": today.isoformat(), "q": "示范刷单"})[1]
    assert found(**{"to": (today - timedelta(days=1)).isoformat()})[1] == set()
    r, _ids = found(**{"from": "2026-13-01"})
    assert r.status_code == 422 and 'id="filter-errors"' in r.text and "年-月-日" in r.text
    # Pages of 50, newest first, with the filters kept in the links.
    r, first = found(q="批量公司")
    assert len(first) == 50 and 'id="page-next"' in r.text and "第 1 页，共 2 页" in r.text
    nxt = re.search(r'id="page-next"', r.text) and re.search(
        r'href="(/console/entries\?[^"]+page=2)"', r.text
    ).group(1)
    second = set(
        re.findall(r'href="/console/entries/([0-9a-f-]{36})"', client.get(nxt.replace("&amp;", "&")).text)
    )
    assert len(second) == 2 and not first & second
    # The export: every matching row, with a header in the reader's language.
    export = client.get("/console/entries.csv", params={"q": "批量公司"})
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert rows[0][0] == "记录编号" and len(rows) == 53 and {r[1] for r in rows[1:]} == {"批量公司"}
    # An organisation searches nothing by name or code: the box is not there.
    client.cookies.clear()
    sign_in(client, "market")
    assert 'id="f-q"' not in client.get("/console/entries").text


def test_queues_show_the_subject_and_a_case_waits_for_material(client, db, staff, outbox):  # noqa: F811
    entry_id = _published(db, staff["dept"].org.id)
    oid = _objection(db, entry_id)
    sign_in(client, "reviewer")
    queue = client.get("/console/objections").text
    row = queue.split(f'id="objection-{oid}"')[1].split("</tr>")[0]
    assert "示范测试刷单有限公司" in row and str(entry_id)[:8] not in row
    url = f"/console/objections/{oid}"
    page = client.get(url).text
    csrf = csrf_of(page)
    # Asked without saying what: the field is named, in Chinese, on the case's page.
    r = client.post(f"{url}/supplement", data={"csrf_token": csrf, "materials": "", "due_on": ""})
    assert r.status_code == 422 and 'id="err-sp-materials"' in r.text and "请写明需要补正的材料" in r.text
    due = (china_today() + timedelta(days=6)).isoformat()
    r = client.post(
        f"{url}/supplement",
        data={"csrf_token": csrf, "materials": "行政复议决定书", "due_on": due},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"].startswith(f"{url}?done=supplement")
    page = client.get(url).text
    assert (
        'id="awaiting-material"' in page and "行政复议决定书" in page and 'id="supplement-form"' not in page
    )
    row = client.get("/console/objections").text.split(f'id="objection-{oid}"')[1].split("</tr>")[0]
    assert "待补正" in row
    with db.session() as s:
        tracking = s.get(Objection, oid).tracking_number
        rid = s.scalars(select(SupplementRequest.id)).one()
    assert [m.event for m in outbox.for_case(tracking)][-1] == "supplement.requested"
    r = client.post(
        f"{url}/supplement/{rid}/close",
        data={"csrf_token": csrf, "outcome": "received", "note": "已收到"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = client.get(url).text
    assert (
        'id="awaiting-material"' not in page and "已收到补正材料" in page and 'id="supplement-form"' in page
    )
