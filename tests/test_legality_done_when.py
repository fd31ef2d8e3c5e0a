"""Issue #15 "Done when", taken as its users take it: over the HTTP API and the console, on both backends.

An enterprise finding is published after its notice (告知书) and the subject's statement (陈述申辩),
reaches participating enterprises and never a public page; an administrative penalty appears publicly;
a general case gives no memoranda measure and neither measure 3 nor 13; measure 11 reaches the employer
and its peers as two different instructions; a breach of a credit commitment is flagged to the reviewer.

Time passes the way the other lifecycle tests let it: the notice's last day and the minimum period are
moved into the past in the database (a step never sleeps); everything else goes through the routes.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import update

from fanchaoxin.appeals.notify import LogNotifier, set_notifier
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.roles import BusinessType as B
from fanchaoxin.core.roles import Role
from fanchaoxin.orgs.models import Organisation
from tests.console.console_helpers import csrf_of

FINDING_USCC = "91330100MA2D7K8Q9U"
FINDING_NAME = "杭州示范刷单网络科技有限公司"
PENALTY_USCC = "91110000600037341L"
PENALTY_NAME = "北京示范炒信信息技术有限公司"
EMPLOYER_USCC = "91350100M000100Y43"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def outbox():
    notifier = LogNotifier()
    previous = set_notifier(notifier)
    yield notifier
    set_notifier(previous)


@pytest.fixture
def parties(world, db):
    p = {
        "platform": world.platform(),
        "shop": world.enterprise("示范电商平台", business_types=[B.ecommerce]),
        "search": world.enterprise("示范搜索广告", business_types=[B.search_ads]),
        "employer": world.enterprise("示范快递公司", business_types=[B.logistics]),
        "peer": world.enterprise("另一家快递公司", business_types=[B.logistics]),
        "market": world.department("示范市场监管局", kind="market_regulation"),
    }
    with db.session() as s:
        s.execute(
            update(Organisation).where(Organisation.id == p["employer"].org.id).values(uscc=EMPLOYER_USCC)
        )
    return p


def reviewer(p):
    return p["platform"].headers(Role.platform_reviewer)


def submit(client, tenant, body, role=Role.enterprise_operator) -> str:
    r = client.post("/v1/entries", json=body, headers=tenant.headers(role))
    assert r.status_code == 201, r.text
    return r.json()["id"]


def step(client, p, entry_id, action, *, reason="", answers=None, expect=200):
    version = client.get(f"/v1/entries/{entry_id}", headers=reviewer(p)).json()["version"]
    body = {"action": action, "reason": reason, "version": version, "answers": answers or {}}
    r = client.post(f"/v1/entries/{entry_id}/transitions", json=body, headers=reviewer(p))
    assert r.status_code == expect, r.text
    return r.json()


def finding(**over):
    body = {
        "subject": {
            "kind": "unit",
            "name": FINDING_NAME,
            "identifiers": [{"type": "uscc", "value": FINDING_USCC}],
        },
        "behaviours": ["order_brushing"],
        "role": "organizer",
        "severity": "general",
        "basis": "enterprise_finding",
        "facts": "2026 年 9 月组织刷单 1,200 笔，获得信用积分 1,150 分。",
        "gains": {"brushed_orders": 1200, "points_gained": 1150},
        "contact": {"email": "legal@shuadan.example"},
        "liable_persons": [
            {
                "role": "legal_representative",
                "name": "赵示范",
                "identifiers": [{"type": "resident_id", "value": "11010519491231002X"}],
            }
        ],
    }
    body.update(over)
    return body


def penalty(**over):
    body = {
        "subject": {
            "kind": "unit",
            "name": PENALTY_NAME,
            "identifiers": [{"type": "uscc", "value": PENALTY_USCC}],
        },
        "behaviours": ["order_brushing"],
        "role": "organizer",
        "severity": "general",
        "basis": "administrative_penalty",
        "document_number": "京市监罚〔2026〕88号",
        "issuing_authority": "北京市市场监督管理局",
        "document_date": "2026-01-05",
        "facts": "组织刷单 300 笔，罚款 20 万元。",
    }
    body.update(over)
    return body


def sign_in(client, api_key: str) -> None:
    login = client.get("/console/login")
    r = client.post(
        "/console/login", data={"csrf_token": csrf_of(login.text), "method": "api_key", "api_key": api_key}
    )
    assert r.status_code in (200, 303), r.text


def public_query(client, q: str) -> str:
    token = csrf_of(client.get("/console/public").text)
    r = client.post(
        "/console/public", data={"csrf_token": token, "by": "uscc", "q": q}, headers={"HX-Request": "true"}
    )
    assert r.status_code == 200, r.text
    return r.text


def instructions(client, tenant, entry_id, role=Role.enterprise_operator):
    r = client.get("/v1/instructions", params={"entry_id": entry_id}, headers=tenant.headers(role))
    assert r.status_code == 200, r.text
    return {i["measure"]: i for i in r.json()["instructions"] if i["kind"] == "apply"}


def test_a_finding_is_published_after_notice_and_statement_shared_never_public(client, parties, db, outbox):
    p = parties
    entry_id = submit(client, p["shop"], finding())
    step(client, p, entry_id, "start_review")

    # The reviewer sees the liable persons the submission names before anything is published.
    before = client.get(f"/v1/entries/{entry_id}", headers=reviewer(p)).json()
    assert [lp["role"] for lp in before["liable_persons"]] == ["legal_representative"]

    # 告知: the notice goes to the subject's e-mail with the PDF, and is recorded.
    opened = step(client, p, entry_id, "open_notice")
    number = opened["notice"]["number"]
    mails = [m for m in outbox.sent if number in m.body]
    assert mails and mails[0].to == "legal@shuadan.example"
    html = client.get(f"/v1/entries/{entry_id}/notice", headers=reviewer(p)).text
    for words in ("告知书", FINDING_NAME, "刷单炒信", "企业监测发现", "陈述申辩", number):
        assert words in html, words
    pdf = client.get(f"/v1/entries/{entry_id}/notice.pdf", headers=reviewer(p))
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")

    # 陈述申辩: the subject files a statement through the public form (no key), with its notice number.
    token = csrf_of(client.get("/console/public/statement").text)
    page = client.post(
        "/console/public/statement",
        data={
            "csrf_token": token,
            "notice_number": number,
            "identifier_type": "uscc",
            "identifier_value": FINDING_USCC,
            "text": "涉事订单系真实促销活动产生，附活动方案与物流单据，请求不予列入。",
        },
    )
    assert page.status_code == 201, page.text
    listed = client.get(f"/v1/entries/{entry_id}/statements", headers=reviewer(p)).json()
    (statement,) = listed["statements"]
    assert statement["status"] == "received"
    # The reviewer's decision page shows the notice, the statement and the liable person before publishing.
    sign_in(client, p["platform"].keys[Role.platform_reviewer])
    page = client.get(f"/console/review/{entry_id}")
    assert page.status_code == 200 and number in page.text and statement["text"] in page.text
    assert 'id="liable-persons"' in page.text and "赵*范" in page.text
    client.cookies.clear()

    # Not before the notice period has run, and never without an answer to the statement.
    step(client, p, entry_id, "publish", expect=409)
    with db.session() as s:
        s.get(Entry, uuid.UUID(entry_id)).notice_ends_on = china_today() - timedelta(days=1)
    unanswered = step(client, p, entry_id, "publish", expect=422)
    assert statement["id"] in str(unanswered)
    answer = "经核查物流轨迹为空包裹，促销活动方案不能说明 1,200 笔订单，陈述理由不成立。"
    published = step(client, p, entry_id, "publish", answers={statement["id"]: answer})
    assert published["status"] == "published"
    after = client.get(f"/v1/entries/{entry_id}/statements", headers=reviewer(p)).json()
    assert after["statements"][0]["answer"] == answer

    # Shared with the participating enterprises ...
    peer = p["peer"].headers(Role.enterprise_operator)
    assert client.get(f"/v1/entries/{entry_id}", headers=peer).json()["status"] == "published"
    events = client.get("/v1/feed", headers=peer).json()["events"]
    assert entry_id in {e["record"]["entry_id"] for e in events if e["event"] == "published"}
    # ... measure 5 deducts the points the finding establishes, not a fixed number ...
    assert instructions(client, p["shop"], entry_id)["deduct_credit_points"]["params"]["points"] == 1150
    # ... and never on a public page, never a department's 失信 record.
    answer_page = public_query(client, FINDING_USCC)
    assert 'id="no-results"' in answer_page and FINDING_NAME not in answer_page
    stats = client.get("/v1/stats/public").json()
    assert stats["list"]["code"] == "public" and stats["in_force"]["total"] == 0
    dept = p["market"].headers(Role.department_officer)
    assert client.get(f"/v1/entries/{entry_id}", headers=dept).status_code == 404
    assert instructions(client, p["market"], entry_id, Role.department_officer) == {}


def test_an_administrative_penalty_appears_publicly(client, parties):
    p = parties
    entry_id = submit(client, p["market"], penalty(severity="serious"), Role.department_officer)
    step(client, p, entry_id, "start_review")
    step(client, p, entry_id, "publish")
    found = public_query(client, PENALTY_USCC)
    assert PENALTY_NAME in found and "京市监罚〔2026〕88号" in found


def test_a_general_case_gets_no_memoranda_measure_and_neither_3_nor_13(client, parties):
    p = parties
    entry_id = submit(client, p["market"], penalty(severity="general"), Role.department_officer)
    step(client, p, entry_id, "start_review")
    step(client, p, entry_id, "publish")
    shop, search = instructions(client, p["shop"], entry_id), instructions(client, p["search"], entry_id)
    assert shop and search and "restrict_listings" not in shop and "restrict_online_ads" not in search
    assert instructions(client, p["market"], entry_id, Role.department_officer) == {}

    serious = submit(
        client,
        p["market"],
        penalty(severity="serious", document_number="京市监罚〔2026〕89号"),
        Role.department_officer,
    )
    step(client, p, serious, "start_review")
    step(client, p, serious, "publish")
    assert "restrict_listings" in instructions(client, p["shop"], serious)
    assert "restrict_online_ads" in instructions(client, p["search"], serious)
    assert instructions(client, p["market"], serious, Role.department_officer)


def test_measure_11_reaches_the_employer_and_its_peers_as_two_instructions(client, parties):
    p = parties
    body = penalty(
        subject={
            "kind": "courier_staff",
            "name": "钱示范",
            "identifiers": [{"type": "courier_staff", "value": f"{EMPLOYER_USCC}:SZ0042"}],
        },
        behaviours=["empty_parcel"],
        role="participant",
        severity="serious",
        facts="合谋寄递空包裹 800 件用于刷单。",
    )
    entry_id = submit(client, p["market"], body, Role.department_officer)
    step(client, p, entry_id, "start_review")
    step(client, p, entry_id, "publish")
    employer = instructions(client, p["employer"], entry_id)["dismiss_and_notify_courier_staff"]
    peer = instructions(client, p["peer"], entry_id)["dismiss_and_notify_courier_staff"]
    assert employer["id"] != peer["id"]
    assert (employer["audience"], peer["audience"]) == ("employer", "peers")
    assert {"dismiss", "notify_peers"} <= {a["code"] for a in employer["actions"]}
    assert [a["code"] for a in peer["actions"]] == ["do_not_hire"]
    assert "dismiss_and_notify_courier_staff" not in instructions(client, p["shop"], entry_id)


def test_a_breach_of_a_credit_commitment_is_flagged_to_the_reviewer(client, parties, db):
    p = parties
    entry_id = submit(client, p["market"], penalty(), Role.department_officer)
    step(client, p, entry_id, "start_review")
    step(client, p, entry_id, "publish")
    with db.session() as s:  # the minimum period has passed
        s.get(Entry, uuid.UUID(entry_id)).min_end_on = china_today()

    commitment = "本公司承诺今后诚信经营，不再组织或参与刷单炒信，接受社会监督。"
    filed = client.post(
        "/v1/repairs",
        json={
            "entry_id": entry_id,
            "identifier": {"type": "uscc", "value": PENALTY_USCC},
            "commitment_accepted": True,
            "commitment_text": commitment,
            "rectification": "已关闭涉事店铺，处分责任人，上线风控系统。",
            "contact_email": "legal@chaoxin.example",
        },
    )
    assert filed.status_code == 201, filed.text
    tracking, secret = filed.json()["tracking_number"], filed.json()["secret"]
    r = client.post(
        "/v1/attachments/repairs/" + tracking,
        files={"file": ("整改报告.pdf", PDF, "application/pdf")},
        headers={"X-Case-Secret": secret},
    )
    assert r.status_code == 201, r.text
    repairs = client.get("/v1/repairs", headers=reviewer(p)).json()["repairs"]
    (repair,) = [x for x in repairs if x["tracking_number"] == tracking]
    r = client.post(
        f"/v1/repairs/{repair['id']}/decision",
        json={"outcome": "approved", "reason": "整改到位", "identity_verification": "核对营业执照原件"},
        headers=reviewer(p),
    )
    assert r.status_code == 200, r.text
    published = client.get("/v1/public/commitments").json()["commitments"]
    assert [(c["document_number"], c["text"]) for c in published] == [("京市监罚〔2026〕88号", commitment)]

    # A new finding against the same subject within the term: the reviewer is told, with the commitment.
    again = submit(
        client,
        p["shop"],
        finding(
            subject={
                "kind": "unit",
                "name": PENALTY_NAME,
                "identifiers": [{"type": "uscc", "value": PENALTY_USCC}],
            }
        ),
    )
    step(client, p, again, "start_review")
    breaches = client.get(f"/v1/entries/{again}/commitment-breaches", headers=reviewer(p)).json()["breaches"]
    assert breaches and breaches[0]["text"] == commitment
    sign_in(client, p["platform"].keys[Role.platform_reviewer])
    page = client.get(f"/console/review/{again}")
    assert page.status_code == 200 and 'id="commitment-breaches"' in page.text and commitment in page.text
