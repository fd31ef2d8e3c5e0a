"""The console's due-process actions (objections, reports, credit repair), evidence download, undo merge,
the department page, the public query by POST and the dashboard's measures chart."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from fanchaoxin.appeals import attachments, repair, reports
from fanchaoxin.appeals.models import Objection, RepairApplication, Report
from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.core.audit import SYSTEM, AuditEvent
from fanchaoxin.sanctions.models import Instruction
from fanchaoxin.workflows.appeals import file_objection
from fanchaoxin.workflows.entries import take_step

from .console_helpers import csrf_of, penalty_entry
from .test_console import sign_in, staff  # noqa: F401  (the fixture)

USCC = "91350100M000100Y43"


def _published(db, org_id, **kw):  # type: ignore[no-untyped-def]
    entry_id = penalty_entry(db, org_id, **kw)
    with db.session() as s:
        e = s.get(Entry, entry_id)
        take_step(s, SYSTEM, e, Action.start_review)
        take_step(s, SYSTEM, e, Action.publish)
    return entry_id


def _objection(db, entry_id, uscc: str = USCC):  # type: ignore[no-untyped-def]
    with db.session() as s:
        filing = file_objection(
            s, SYSTEM, entry_id=entry_id, identifier_type="uscc", identifier_value=uscc,
            grounds="处罚决定已被行政复议撤销，请核实。", contact_email="legal@example.cn", channel="public",
        )  # fmt: skip
        return filing.case.id


def _post(client, page_url: str, action: str, data: dict):  # type: ignore[no-untyped-def]
    page = client.get(page_url)
    assert page.status_code == 200, page.text[:300]
    return client.post(action, data={"csrf_token": csrf_of(page.text), **data}, follow_redirects=False)


def _actions(db) -> list[str]:  # type: ignore[no-untyped-def]
    with db.session() as s:
        return [e.action for e in s.scalars(select(AuditEvent))]


def test_objection_forward_answer_and_decide_corrected(client, db, staff):  # noqa: F811
    entry_id = _published(db, staff["dept"].org.id)
    oid = _objection(db, entry_id)
    url = f"/console/objections/{oid}"
    sign_in(client, "reviewer")
    queue = client.get("/console/objections")
    assert f'href="{url}"' in queue.text
    # Without the CSRF token nothing happens.
    assert client.post(f"{url}/forward", data={"note": "x"}).status_code == 403
    r = _post(client, url, f"{url}/forward", {"note": "请核实复议决定"})
    assert r.status_code == 303 and r.headers["location"] == f"{url}?done=forward"
    assert 'id="done"' in client.get(r.headers["location"]).text
    # The department the objection was forwarded to answers it.
    client.cookies.clear()
    sign_in(client, "market")
    r = _post(client, url, f"{url}/answer", {"proposed_outcome": "corrected", "answer": ""})
    assert r.status_code == 422 and 'id="err-an-answer"' in r.text
    r = _post(client, url, f"{url}/answer", {"proposed_outcome": "corrected", "answer": "处罚程度应为严重。"})
    assert r.status_code == 303
    # The shop is not addressed: it does not even see the objection.
    client.cookies.clear()
    sign_in(client, "shop")
    assert client.get(url).status_code == 404
    client.cookies.clear()
    sign_in(client, "reviewer")
    base = {
        "outcome": "corrected",
        "reason": "复议决定改变了处罚程度",
        "identity_verification": "营业执照核验",
    }
    r = _post(client, url, f"{url}/decide", base)
    assert r.status_code == 422 and 'id="err-dc-corrections"' in r.text
    r = _post(client, url, f"{url}/decide", {**base, "severity": "serious"})
    assert r.status_code == 303, r.text
    with db.session() as s:
        assert s.get(Entry, entry_id).severity == "serious"
        assert s.get(Objection, oid).outcome == "corrected"
    assert {"objection.forward", "objection.answer", "objection.decide"} <= set(_actions(db))
    assert 'id="decision"' in client.get(url).text


def test_objection_revoked_lifts_every_measure(client, db, staff):  # noqa: F811
    entry_id = _published(db, staff["dept"].org.id)
    oid = _objection(db, entry_id)
    url = f"/console/objections/{oid}"
    sign_in(client, "reviewer")
    r = _post(client, url, f"{url}/decide", {"outcome": "revoked", "reason": ""})
    assert r.status_code == 422 and 'id="err-dc-reason"' in r.text
    r = _post(client, url, f"{url}/decide", {"outcome": "revoked", "reason": "复议撤销"})
    assert r.status_code == 422 and 'id="err-dc-identity_verification"' in r.text
    with db.session() as s:
        assert s.get(Objection, oid).status != "decided"
    r = _post(
        client, url, f"{url}/decide",
        {"outcome": "revoked", "reason": "复议撤销", "identity_verification": "营业执照核验",
         "public_reason": "行政处罚决定已被撤销"},
    )  # fmt: skip
    assert r.status_code == 303, r.text
    with db.session() as s:
        assert s.get(Entry, entry_id).status == "revoked"
        lifts = s.scalars(
            select(Instruction).where(Instruction.entry_id == entry_id, Instruction.kind == "lift")
        ).all()
        assert any(i.owner_org_id == staff["shop"].org.id for i in lifts)
    # The enterprise sees the lift instruction, next to the revoked entry.
    client.cookies.clear()
    sign_in(client, "shop")
    page = client.get("/console/workbench").text
    assert 'class="kind-lift"' in page and "st-revoked" in page
    # The same page in English.
    client.get("/console/lang/en?next=/console/workbench")
    assert "Lift" in client.get("/console/workbench").text


def test_report_triage_route_handle_and_dismiss(client, db, staff):  # noqa: F811
    with db.session() as s:
        ids = [
            reports.file_report(
                s, SYSTEM, description="该店铺组织刷单并返现好评。", reported={"shop": f"好评返现店{n}"},
                behaviours=["order_brushing"], enterprise_org_id=None, contact_email=None, channel="public",
            ).case.id
            for n in (1, 2)
        ]  # fmt: skip
    a, b = (f"/console/reports/{i}" for i in ids)
    sign_in(client, "reviewer")
    assert f'href="{a}"' in client.get("/console/reports").text
    r = _post(client, a, f"{a}/triage", {"action": "route", "addressed_to_org_id": ""})
    assert r.status_code == 422 and 'id="err-tr-addressed_to_org_id"' in r.text
    r = _post(client, a, f"{a}/triage", {"action": "route", "addressed_to_org_id": str(staff["shop"].org.id)})
    assert r.status_code == 303
    r = _post(client, b, f"{b}/triage", {"action": "dismiss", "note": ""})
    assert r.status_code == 422 and 'id="err-tr-note"' in r.text
    assert _post(client, b, f"{b}/triage", {"action": "dismiss", "note": "无具体线索"}).status_code == 303
    client.cookies.clear()
    sign_in(client, "shop")
    r = _post(client, a, f"{a}/handle", {"outcome": "forwarded", "note": "已移送"})
    assert r.status_code == 422 and 'id="err-hd-forwarded_to"' in r.text
    r = _post(client, a, f"{a}/handle", {"outcome": "unsubstantiated", "note": "未发现刷单订单"})
    assert r.status_code == 303
    with db.session() as s:
        assert [s.get(Report, i).status for i in ids] == ["handled", "dismissed"]
    assert {"report.route", "report.dismiss", "report.handle"} <= set(_actions(db))


def _repair(db, entry_id, uscc: str, *, attach: bool = True):  # type: ignore[no-untyped-def]
    with db.session() as s:
        filing = repair.file_repair(
            s, SYSTEM, entry_id=entry_id, identifier_type="uscc", identifier_value=uscc,
            commitment_accepted=True, commitment_text="本单位承诺依法诚信经营。", rectification="已整改。",
            contact_email="legal@example.cn", channel="public",
        )  # fmt: skip
        if attach:
            attachments.add_attachment(
                s, SYSTEM, "repair", filing.case, filename="整改报告.txt", declared_type="text/plain",
                data="整改报告：已停止刷单。".encode(),
            )  # fmt: skip
        return filing.case.id


def _minor_published(db, org_id, name: str, uscc: str):  # type: ignore[no-untyped-def]
    """A minor entry: no minimum period, so credit repair is possible at once."""
    entry_id = penalty_entry(db, org_id, name=name, uscc=uscc)
    with db.session() as s:
        e = s.get(Entry, entry_id)
        e.severity = "minor"
        take_step(s, SYSTEM, e, Action.start_review)
        take_step(s, SYSTEM, e, Action.publish)
    return entry_id


def test_credit_repair_queue_and_decisions(client, db, staff):  # noqa: F811
    dept = staff["dept"].org.id
    ok_entry = _minor_published(db, dept, "修复成功有限公司", USCC)
    no_entry = _minor_published(db, dept, "缺少证明有限公司", "91110000600037341L")
    ok = _repair(db, ok_entry, USCC)
    bare = _repair(db, no_entry, "91110000600037341L", attach=False)
    sign_in(client, "reviewer")
    queue = client.get("/console/repairs")
    assert queue.status_code == 200
    assert f'href="/console/repairs/{ok}"' in queue.text and "due-ok" in queue.text
    url = f"/console/repairs/{ok}"
    page = client.get(url).text
    sha = re.search(rf'href="{url}/attachments/([0-9a-f]{{64}})"', page).group(1)
    assert client.get(f"{url}/attachments/{sha}").content == "整改报告：已停止刷单。".encode()
    r = _post(client, url, f"{url}/decide", {"outcome": "approved", "reason": ""})
    assert r.status_code == 422 and 'id="err-rp-reason"' in r.text
    r = _post(client, url, f"{url}/decide", {"outcome": "approved", "reason": "整改到位"})
    assert r.status_code == 422 and 'id="err-rp-identity_verification"' in r.text
    body = {"outcome": "approved", "reason": "整改到位", "identity_verification": "营业执照核验"}
    assert _post(client, url, f"{url}/decide", body).status_code == 303
    # Without proof of rectification it cannot be approved; it can be refused, with its reason.
    burl = f"/console/repairs/{bare}"
    r = _post(client, burl, f"{burl}/decide", body)
    assert r.status_code == 409 and "alert error" in r.text
    r = _post(client, burl, f"{burl}/decide", {**body, "outcome": "rejected", "reason": "未提交整改证明"})
    assert r.status_code == 303
    with db.session() as s:
        assert s.get(Entry, ok_entry).status == "repaired"
        assert s.get(Entry, no_entry).status == "published"
        assert s.get(RepairApplication, bare).outcome == "rejected"
        assert s.scalars(
            select(Instruction).where(Instruction.entry_id == ok_entry, Instruction.kind == "lift")
        ).all()
    assert _actions(db).count("repair.decide") == 2
    # Only platform reviewers see the queue.
    client.cookies.clear()
    sign_in(client, "shop")
    assert client.get("/console/repairs").status_code == 403


def test_evidence_download_is_access_checked_and_audited(client, db, staff):  # noqa: F811
    entry_id = penalty_entry(db, staff["dept"].org.id)
    with db.session() as s:
        ev = registry.add_evidence(
            s, SYSTEM, s.get(Entry, entry_id), filename="处罚决定书.txt", declared_type="text/plain",
            data="行政处罚决定书".encode(),
        )  # fmt: skip
        sha = ev.digest
    url = f"/console/entries/{entry_id}/evidence/{sha}"
    sign_in(client, "reviewer")
    assert f'href="{url}"' in client.get(f"/console/entries/{entry_id}").text
    r = client.get(url)
    assert r.status_code == 200 and r.content == "行政处罚决定书".encode()
    assert "attachment" in r.headers["content-disposition"]
    assert "evidence.read" in _actions(db)
    client.cookies.clear()
    sign_in(client, "market")  # the reporting department
    assert client.get(url).status_code == 200
    client.cookies.clear()
    sign_in(client, "shop")  # another organisation
    assert client.get(url).status_code == 404


def test_undo_merge_from_the_subject_page(client, db, staff):  # noqa: F811
    dept = staff["dept"].org.id
    a = penalty_entry(db, dept)
    b = penalty_entry(db, dept, name="示范测试刷单公司", uscc="91110000600037341L")
    with db.session() as s:
        sa, sb = s.get(Entry, a).subject_id, s.get(Entry, b).subject_id
    sign_in(client, "reviewer")
    url = f"/console/subjects/{sa}"
    assert _post(client, url, f"{url}/merge", {"other_id": str(sb), "reason": "同一公司"}).status_code == 303
    page = client.get(url).text
    merge_id = re.search(r'action="/console/merges/([0-9a-f-]+)/undo"', page).group(1)
    r = _post(client, url, f"/console/merges/{merge_id}/undo", {"reason": ""})
    assert r.status_code == 422 and 'id="subject-errors"' in r.text
    r = _post(client, url, f"/console/merges/{merge_id}/undo", {"reason": "误合并"})
    assert r.status_code == 303 and r.headers["location"] == url
    with db.session() as s:
        assert s.get(Entry, b).subject_id == sb
    assert "undo-merge" not in client.get(url).text
    r = _post(client, url, f"/console/merges/{merge_id}/undo", {"reason": "再次"})
    assert r.status_code == 409


def test_department_page(client, db, staff):  # noqa: F811
    # serious: the memoranda measures are for serious cases only (行动计划 二(一))
    entry_id = _published(db, staff["dept"].org.id, severity="serious")
    sign_in(client, "market")
    page = client.get("/console/org")
    assert page.status_code == 200
    assert 'id="department-measures"' in page.text and 'id="based-entries"' in page.text
    assert f'href="/console/entries/{entry_id}"' in page.text.split('id="based-entries"')[1]
    with db.session() as s:
        ins = s.scalars(
            select(Instruction).where(
                Instruction.owner_org_id == staff["dept"].org.id, Instruction.department_measure.is_(True)
            )
        ).all()
        assert ins
        first = ins[0].id
    assert f'id="i-{first}"' in page.text
    r = client.post(f"/console/instructions/{first}/ack", data={"csrf_token": csrf_of(page.text)})
    assert r.status_code == 200 and 'id="department-measures"' in r.text
    r = client.post(
        f"/console/instructions/{first}/report",
        data={"csrf_token": csrf_of(page.text), "outcome": "executed"},
    )
    assert r.status_code == 200
    with db.session() as s:
        assert s.scalar(select(Instruction.status).where(Instruction.id == first)) == "executed"
    # An enterprise keeps its own page.
    client.cookies.clear()
    sign_in(client, "shop")
    assert 'id="department-measures"' not in client.get("/console/org").text


def test_public_query_is_a_post_and_the_get_page_is_empty(client, db, staff):  # noqa: F811
    _published(db, staff["dept"].org.id)
    page = client.get("/console/public", params={"by": "uscc", "q": USCC})
    assert (
        page.status_code == 200
        and 'id="no-results"' not in page.text
        and "示范测试刷单有限公司" not in page.text
    )
    assert 'method="post"' in page.text
    r = client.post("/console/public", data={"by": "uscc", "q": USCC})
    assert r.status_code == 403  # CSRF
    r = client.post("/console/public", data={"csrf_token": csrf_of(page.text), "by": "uscc", "q": USCC})
    assert r.status_code == 200 and "示范测试刷单有限公司" in r.text
    r = client.post(
        "/console/public",
        data={"csrf_token": csrf_of(page.text), "by": "name", "q": "刷单"},
        headers={"HX-Request": "true"},
    )
    assert r.text.lstrip().startswith('<div id="results"')


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_dashboard_has_the_measures_chart(client, db, staff, locale):  # noqa: F811
    _published(db, staff["dept"].org.id)
    sign_in(client, "reviewer")
    client.get(f"/console/lang/{locale}")
    r = client.get("/console/")
    data = json.loads(
        re.search(r'<script type="application/json" id="data-measures">(.*?)</script>', r.text).group(1)
    )
    names = [s["name"] for s in data["series"]]
    assert names == (
        ["已下发", "已执行", "已逾期"] if locale == "zh_CN" else ["Issued", "Executed", "Overdue"]
    )
    shop = data["categories"].index("示例电商")
    assert data["series"][0]["data"][shop] > 0
    assert 'data-kind="groupbar"' in r.text


def test_new_pages_label_every_control(client, db, staff):  # noqa: F811
    entry_id = _published(db, staff["dept"].org.id)
    oid = _objection(db, entry_id)
    with db.session() as s:
        rid = reports.file_report(
            s, SYSTEM, description="该店铺组织刷单并返现好评。", reported={"shop": "店"}, behaviours=[],
            enterprise_org_id=None, contact_email=None, channel="public",
        ).case.id  # fmt: skip
    minor = _minor_published(db, staff["dept"].org.id, "修复测试公司", "91110000600037341L")
    pid = _repair(db, minor, "91110000600037341L")
    pages = {
        "reviewer": [f"/console/objections/{oid}", f"/console/reports/{rid}", f"/console/repairs/{pid}",
                     "/console/repairs"],
        "market": ["/console/org"],
        "": ["/console/public/repair"],
    }  # fmt: skip
    for user, paths in pages.items():
        client.cookies.clear()
        if user:
            sign_in(client, user)
        for path in paths:
            html = client.get(path).text
            labelled = set(re.findall(r'<label[^>]*for="([^"]+)"', html))
            for tag in re.findall(r"<(?:input|select|textarea)\b[^>]*>", html):
                if 'type="hidden"' in tag:
                    continue
                ident = re.search(r'id="([^"]+)"', tag)
                assert "aria-label=" in tag or (ident and ident.group(1) in labelled), f"{path}: {tag}"


def test_public_credit_repair_form(client, db, staff):  # noqa: F811
    entry_id = _minor_published(db, staff["dept"].org.id, "公开申请修复公司", USCC)
    page = client.get(f"/console/public/repair?entry={entry_id}")
    assert page.status_code == 200 and str(entry_id) in page.text
    form = {
        "csrf_token": csrf_of(page.text),
        "entry_id": str(entry_id),
        "identifier_type": "uscc",
        "identifier_value": USCC,
        "commitment_text": "本单位承诺依法诚信经营。",
        "rectification": "已停止刷单并整改。",
        "contact_email": "legal@example.cn",
    }
    proof = {"proof": ("整改报告.txt", "整改报告".encode(), "text/plain")}
    r = client.post("/console/public/repair", data=form, files=proof)
    assert r.status_code == 422 and "commitment_accepted" in r.text
    bad = {"proof": ("x.exe", b"MZ\x90\x00", "application/octet-stream")}
    r = client.post("/console/public/repair", data={**form, "commitment_accepted": "true"}, files=bad)
    assert r.status_code == 415
    with db.session() as s:
        assert not s.scalars(select(RepairApplication)).all()  # nothing half-written
    r = client.post("/console/public/repair", data={**form, "commitment_accepted": "true"}, files=proof)
    assert r.status_code == 201, r.text
    assert re.search(r'id="tracking">XF', r.text)
    with db.session() as s:
        app = s.scalars(select(RepairApplication)).one()
        assert len(attachments.attachments_of(s, "repair", app.id)) == 1
