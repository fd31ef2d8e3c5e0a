"""Two lists, one rule (#15 point 1): entries on an administrative penalty or a judicial decision form the
public 失信 list; enterprise findings are shared among the participating enterprises only — never on a
public page (query, statistics, correction notices), never sent to departments as 失信 records. And the
subject's remedies on the public query: a link only while possible, else the earliest date (point 7)."""

from __future__ import annotations

import re
import shutil
import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from fanchaoxin.appeals import remedies
from fanchaoxin.appeals.models import CorrectionNotice
from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.blacklist.schemas import EntryIn
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.catalogue import (
    CATALOGUE_DIR,
    CatalogueError,
    Catalogues,
    catalogues,
    department_bases,
    list_of,
    public_bases,
    punishing_bases,
)
from fanchaoxin.core.roles import Role
from fanchaoxin.sanctions.models import Instruction
from fanchaoxin.sharing import outbox
from fanchaoxin.sharing.models import FeedEvent, OutboxItem
from fanchaoxin.stats import service as stats
from fanchaoxin.workflows import appeals as due_process
from fanchaoxin.workflows.entries import take_step

from .console_helpers import csrf_of

REVIEWER = Actor("test:reviewer")
FINDING_USCC = "91110000600037341L"  # 北京某某网络科技有限责任公司: an enterprise finding
PENALTY_USCC = "91330100MA2D7K8Q9U"  # 杭州某某电子商务有限公司: an administrative penalty
FINDING_NAME = "北京某某网络科技有限责任公司"
PENALTY_NAME = "杭州某某电子商务有限公司"
TODAY = date.today()


def _unit(name: str, uscc: str, **over: object) -> dict[str, object]:
    body: dict[str, object] = {
        "subject": {"kind": "unit", "name": name, "identifiers": [{"type": "uscc", "value": uscc}]},
        "behaviours": ["order_brushing"],
        "role": "organizer",
        "severity": "general",
        "basis": "enterprise_finding",
        "facts": "组织刷单 1,200 笔。",
    }
    body.update(over)
    return body


def publish_finding(db, org_id) -> uuid.UUID:  # type: ignore[no-untyped-def]
    """An enterprise finding, published the way the law wants it: 告知 first, then publication once the
    notice period (PRC working days) has ended."""
    opened = TODAY - timedelta(days=30)
    with db.session() as s:
        e = registry.submit(s, REVIEWER, org_id, EntryIn.model_validate(_unit(FINDING_NAME, FINDING_USCC)))
        take_step(s, REVIEWER, e, Action.start_review, today=opened)
        take_step(s, REVIEWER, e, Action.open_notice, today=opened)
        assert e.status == "notice_period" and e.notice_ends_on is not None
        assert e.notice_ends_on < TODAY
        take_step(s, REVIEWER, e, Action.publish, today=TODAY)
        assert e.status == "published"
        return e.id


def publish_penalty(db, org_id) -> uuid.UUID:  # type: ignore[no-untyped-def]
    body = _unit(
        PENALTY_NAME,
        PENALTY_USCC,
        basis="administrative_penalty",
        severity="serious",
        document_number="杭市监罚〔2026〕8号",
        issuing_authority="杭州市市场监督管理局",
    )
    with db.session() as s:
        e = registry.submit(s, REVIEWER, org_id, EntryIn.model_validate(body))
        take_step(s, REVIEWER, e, Action.start_review, today=TODAY)
        take_step(s, REVIEWER, e, Action.publish, today=TODAY)
        return e.id


@pytest.fixture
def market(world, db, settings):  # type: ignore[no-untyped-def]
    settings.sharing_webhook_allow_private = True
    m = {
        "platform": world.platform(),
        "shop": world.enterprise("电商平台"),
        "dept": world.department("市场监管局"),
    }
    with db.session() as s:  # the department listens to the feed through a webhook
        outbox.subscribe(s, REVIEWER, s.merge(m["dept"].org), "https://127.0.0.1:9/hook")
    m["finding"] = publish_finding(db, m["shop"].org.id)
    m["penalty"] = publish_penalty(db, m["dept"].org.id)
    return m


def query(client, by: str, q: str) -> str:  # type: ignore[no-untyped-def]
    """One search box (#17): the kind of what is typed is recognised; `by` is what it must be read as."""
    token = csrf_of(client.get("/console/public").text)
    r = client.post("/console/public", data={"csrf_token": token, "q": q}, headers={"HX-Request": "true"})
    assert r.status_code == 200, r.text
    assert f'data-kind="{by}"' in r.text
    return r.text


# --- the catalogue ------------------------------------------------------------------------------------------


def test_each_basis_says_which_list_it_forms():
    assert list_of("enterprise_finding") == "shared"
    assert list_of("administrative_penalty") == list_of("judicial_decision") == "public"
    assert public_bases() == department_bases() == {"administrative_penalty", "judicial_decision"}
    assert punishing_bases() <= department_bases()
    lists = catalogues().lists
    assert (lists["public"].zh, lists["shared"].zh) == (
        "炒信失信主体名单（公开）",
        "反炒信市场共享名单（仅限参与企业）",
    )
    assert lists["public"].public and not lists["shared"].public and not lists["shared"].departments
    assert "不在任何公开页面展示" in lists["shared"].meaning_zh
    assert catalogues().names("list", "shared") == (lists["shared"].zh, lists["shared"].en)


@pytest.fixture
def cat_dir(tmp_path: Path) -> Path:
    return Path(shutil.copytree(CATALOGUE_DIR, tmp_path / "catalogues"))


def _line(path: Path, needle: str, after: str = "") -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if after in line) if after else 0
    return next(i for i, line in enumerate(lines) if i >= start and needle in line) + 1


def test_a_basis_on_an_unknown_list_names_file_line_and_key(cat_dir):
    path = cat_dir / "bases.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("list: shared", "list: secret"), encoding="utf-8"
    )
    with pytest.raises(CatalogueError) as exc:
        Catalogues(cat_dir)
    line = _line(path, "list: secret")
    assert str(exc.value) == (
        f"bases.yaml:{line}: enterprise_finding.list: unknown list 'secret'; one of public, shared (lists.yaml)"
    )


def test_a_punishing_basis_may_not_be_on_a_list_departments_never_receive(cat_dir):
    path = cat_dir / "bases.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("  punishing: false\n", "  punishing: true\n", 1), encoding="utf-8")
    with pytest.raises(CatalogueError) as exc:
        Catalogues(cat_dir)
    line = _line(path, "punishing: true", after="code: enterprise_finding")
    assert str(exc.value) == (
        f"bases.yaml:{line}: enterprise_finding.punishing: the 'shared' list never reaches departments "
        "(lists.yaml)"
    )


# --- the enterprise finding: shared, never public, never a department's -----------------------------------


def test_an_enterprise_finding_reaches_participating_enterprises_only(client, market, db):
    shop, dept, finding = market["shop"], market["dept"], market["finding"]
    # The participating enterprises have it: in the feed, in the registry's information service.
    op = shop.headers(Role.enterprise_operator)
    events = client.get("/v1/feed", headers=op).json()["events"]
    assert str(finding) in {e["record"]["entry_id"] for e in events if e["event"] == "published"}
    assert client.get(f"/v1/entries/{finding}", headers=op).json()["status"] == "published"
    with db.session() as s:
        enterprise_instructions = s.scalars(
            select(Instruction).where(
                Instruction.entry_id == finding, Instruction.owner_org_id == shop.org.id
            )
        ).all()
    assert enterprise_instructions

    # Never on a public page: the query (by code and by name) answers as for someone never listed.
    nobody = query(client, "uscc", "91350100M000100Y43")
    assert 'id="no-results"' in nobody
    assert query(client, "uscc", FINDING_USCC) == nobody
    assert FINDING_NAME not in query(client, "name", "北京某某网络")

    # Never a department's: no instruction, no webhook delivery, not in its registry views.
    d = dept.headers(Role.department_officer)
    with db.session() as s:
        assert not s.scalars(
            select(Instruction).where(
                Instruction.entry_id == finding, Instruction.owner_org_id == dept.org.id
            )
        ).all()
        seqs = set(s.scalars(select(FeedEvent.seq).where(FeedEvent.entry_id == finding)))
        assert seqs and not s.scalars(select(OutboxItem).where(OutboxItem.seq.in_(seqs))).all()
        penalty_seqs = set(s.scalars(select(FeedEvent.seq).where(FeedEvent.entry_id == market["penalty"])))
        assert s.scalars(select(OutboxItem).where(OutboxItem.seq.in_(penalty_seqs))).all()
    listed = {e["id"] for e in client.get("/v1/entries", headers=d).json()["entries"]}
    assert str(finding) not in listed and str(market["penalty"]) in listed
    assert client.get(f"/v1/entries/{finding}", headers=d).status_code == 404
    r = client.post("/v1/lookup", headers=d, json={"type": "uscc", "value": FINDING_USCC, "purpose": "核查"})
    assert r.status_code == 200 and r.json()["subjects"] == []
    for path in ("/v1/feed", "/v1/sharing/manifest"):
        assert client.get(path, headers=d).status_code == 403, path
    r = client.post(
        "/v1/decisions",
        headers=d,
        json={"identifiers": [f"uscc:{FINDING_USCC}"], "scene": "promotion_signup"},
    )
    assert r.status_code == 403
    # The department's console pages do not show it either (signed in with its key).
    login = client.get("/console/login")
    r = client.post(
        "/console/login",
        data={
            "csrf_token": csrf_of(login.text),
            "method": "api_key",
            "api_key": d["Authorization"].split()[1],
        },
    )
    assert r.status_code in (200, 303), r.text
    page = client.get("/console/entries")
    assert page.status_code == 200 and str(market["penalty"]) in page.text and str(finding) not in page.text
    assert client.get(f"/console/entries/{finding}").status_code == 404
    assert str(finding) not in client.get("/console/org").text


def test_an_administrative_penalty_appears_publicly(client, market):
    found = query(client, "uscc", PENALTY_USCC)
    assert PENALTY_NAME in found and "杭市监罚〔2026〕8号" in found


def test_public_statistics_count_the_public_list_and_say_so(client, market, db):
    with db.session() as s:
        summary = stats.public_summary(s)
        assert {r["key"]: r["count"] for r in stats.entries_by(s, "list")} == {"public": 1, "shared": 1}
    assert summary["list"]["code"] == "public" and summary["list"]["label_zh"] == "炒信失信主体名单（公开）"
    assert summary["in_force"]["total"] == 1
    assert summary["published"] == {"this_month": 1, "this_year": 1}
    api = client.get("/v1/stats/public").json()
    assert api["in_force"]["total"] == 1 and api["list"]["code"] == "public"
    csv = client.get("/v1/stats/public?format=csv").content.decode("utf-8-sig")
    assert "list,public,炒信失信主体名单（公开）" in csv.replace('"', "")
    page = client.get("/console/public/stats").text
    assert 'id="counted-list"' in page and "本页统计仅计入炒信失信主体名单（公开）。" in page
    assert "反炒信市场共享名单" in page  # the page says the other list is not counted
    # Staff see both lists apart: the monthly report and the entries API by list.
    p = market["platform"].headers(Role.platform_reviewer)
    rows = client.get("/v1/stats/entries?by=list", headers=p).json()["rows"]
    assert {(r["key"], r["label_zh"], r["count"]) for r in rows} == {
        ("public", "炒信失信主体名单（公开）", 1),
        ("shared", "反炒信市场共享名单（仅限参与企业）", 1),
    }
    with db.session() as s:
        report = stats.monthly(s, f"{TODAY:%Y-%m}")
    assert {(r["key"], r["count"]) for r in report["by_list"]} == {("public", 1), ("shared", 1)}
    assert {(b["code"], b["entries"]["published"]) for b in report["entries_by_list"]} == {
        ("public", 1),
        ("shared", 1),
    }


def test_a_revoked_finding_gets_no_public_correction_but_the_feed_tells_the_enterprises(client, market, db):
    shop, finding, penalty = market["shop"], market["finding"], market["penalty"]
    with db.session() as s:
        take_step(s, REVIEWER, s.get(Entry, finding), Action.revoke, reason="报送有误", today=TODAY)
    assert client.get("/v1/public/corrections").json()["corrections"] == []
    assert FINDING_NAME not in client.get("/console/public/corrections").text
    with db.session() as s:
        assert s.scalar(select(CorrectionNotice).where(CorrectionNotice.entry_id == finding)) is None
    op = shop.headers(Role.enterprise_operator)
    events = client.get("/v1/feed", headers=op).json()["events"]
    assert ("revoked", str(finding)) in {(e["event"], e["record"]["entry_id"]) for e in events}
    # The public list's revocation is announced in public.
    with db.session() as s:
        take_step(s, REVIEWER, s.get(Entry, penalty), Action.revoke, reason="处罚决定被撤销", today=TODAY)
    notices = client.get("/v1/public/corrections").json()["corrections"]
    assert [n["subject_name"] for n in notices] == [PENALTY_NAME]
    assert PENALTY_NAME in client.get("/console/public/corrections").text


# --- remedies on the public query: a link only when possible ---------------------------------------------------


def _entry_row(html: str) -> str:
    return html.split('class="entry-row"', 1)[1].split("</div>", 1)[0]


def _remedies(client, entry_id) -> str:  # type: ignore[no-untyped-def]
    """The record page's remedies (#17: the links moved from the results to the record page)."""
    page = client.get(f"/console/public/records/{entry_id}")
    assert page.status_code == 200, page.text
    return page.text.split('id="remedies"', 1)[1].split("</section>", 1)[0]


def test_objection_and_repair_links_appear_only_when_possible(client, market, db):
    penalty = market["penalty"]
    with db.session() as s:
        min_end = s.get(Entry, penalty).min_end_on
    assert min_end is not None and min_end > TODAY
    assert f'href="/console/public/records/{penalty}"' in _entry_row(query(client, "uscc", PENALTY_USCC))
    row = _remedies(client, penalty)
    assert f'href="/console/public/objection?entry={penalty}"' in row
    # Repair is not possible yet: no link, the first day instead.
    assert "repair-link" not in row
    assert re.search(rf"可于 {min_end.isoformat()} 起申请信用修复", row)

    # An objection is filed: no second objection link while it is open (the entry is disputed).
    with db.session() as s:
        due_process.file_objection(
            s, Actor("public"), entry_id=penalty, identifier_type="uscc", identifier_value=PENALTY_USCC,
            grounds="处罚决定已被复议撤销，附复议决定书。", contact_email="legal@example.com", channel="public",
        )  # fmt: skip
    assert 'data-disputed="1"' in _entry_row(query(client, "uscc", PENALTY_USCC))
    row = _remedies(client, penalty)
    assert "objection?entry=" not in row and "objection-open" in row

    # Once the minimum period has passed, the repair link appears.
    with db.session() as s:
        s.execute(update(Entry).where(Entry.id == penalty).values(min_end_on=TODAY))
    row = _remedies(client, penalty)
    assert f'href="/console/public/repair?entry={penalty}"' in row and "可于" not in row


def test_the_remedies_rule_is_one_function_of_the_entry_and_its_open_cases(market, db):
    with db.session() as s:
        e = s.get(Entry, market["penalty"])
        got = remedies.remedies_of(s, [e], today=TODAY)[e.id]
        assert got.objection == remedies.Remedy(True)
        assert got.repair == remedies.Remedy(False, "not_yet", e.min_end_on)
        assert remedies.repair_remedy(e, repair_open=False, today=e.min_end_on).possible
        assert remedies.repair_remedy(e, repair_open=True, today=e.min_end_on).why == "case_open"
        assert remedies.objection_remedy(e, objection_open=True).why == "case_open"
        e.status = "revoked"
        assert remedies.objection_remedy(e, objection_open=False).why == "not_in_force"
        assert remedies.repair_remedy(e, repair_open=False, today=TODAY).why == "not_in_force"
        s.rollback()


def test_an_objection_revoking_a_finding_confirms_it_without_a_public_notice(client, market, db):
    with db.session() as s:
        filing = due_process.file_objection(
            s, Actor("public"), entry_id=market["finding"], identifier_type="uscc",
            identifier_value=FINDING_USCC, grounds="订单均为真实交易，附银行流水。",
            contact_email="legal@example.com", channel="public",
        )  # fmt: skip
        tracking, secret = filing.case.tracking_number, filing.secret
        due_process.decide_objection(
            s, REVIEWER, filing.case, outcome="revoked", reason="证据不足", public_reason="认定证据不足",
            identity_verification="核对营业执照",
        )  # fmt: skip
    assert client.get("/v1/public/corrections").json()["corrections"] == []
    page = client.get(f"/v1/objections/{tracking}/confirmation", headers={"X-Case-Secret": secret})
    assert page.status_code == 200 and "撤销确认书" in page.text
    assert "不发布公开更正公告" in page.text and "更正公告已在平台公示" not in page.text
