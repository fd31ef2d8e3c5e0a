"""The web console (/console): sign-in, CSRF, pages per role, bulk review, public pages, i18n, a11y."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.blacklist.schemas import EntryIn
from fanchaoxin.cli import app as cli
from fanchaoxin.console.auth import create_user
from fanchaoxin.console.i18n import extract, po_files
from fanchaoxin.core import vault
from fanchaoxin.core.audit import SYSTEM, Actor, AuditEvent
from fanchaoxin.core.identifiers import mask
from fanchaoxin.core.roles import Role
from fanchaoxin.core.settings import get_settings
from fanchaoxin.orgs import service as orgs
from fanchaoxin.orgs.models import ApiKey, Organisation
from fanchaoxin.sanctions.models import Instruction
from fanchaoxin.subjects.models import SubjectIdentifier
from fanchaoxin.workflows.entries import take_step

from .console_helpers import csrf_of, penalty_entry

CONSOLE = Path(__file__).resolve().parents[2] / "src" / "fanchaoxin" / "console"
PASSWORD = "correct horse battery"


def make_user(db, tenant, role: Role, username: str) -> None:  # type: ignore[no-untyped-def]
    with db.session() as s:
        org = s.get(Organisation, tenant.org.id)
        create_user(s, SYSTEM, username=username, password=PASSWORD, org=org, role=role)


def sign_in(client, username: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    page = client.get("/console/login")
    r = client.post(
        "/console/login",
        data={
            "csrf_token": csrf_of(page.text),
            "method": "password",
            "username": username,
            "password": password,
        },
        follow_redirects=False,
    )
    return r


@pytest.fixture
def staff(db, world):  # type: ignore[no-untyped-def]
    platform = world.platform()
    dept = world.department("示范市市场监督管理局")
    shop = world.enterprise("示例电商")
    make_user(db, platform, Role.platform_reviewer, "reviewer")
    make_user(db, platform, Role.platform_admin, "admin")
    make_user(db, platform, Role.auditor, "auditor")
    make_user(db, dept, Role.department_officer, "market")
    make_user(db, shop, Role.enterprise_operator, "shop")
    return {"platform": platform, "dept": dept, "shop": shop}


def test_pages_need_sign_in_and_redirect_to_it(client, staff):
    r = client.get("/console/review", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/console/login?next=%2Fconsole%2Freview"
    assert "text/html" in client.get("/console/login").headers["content-type"]


def test_wrong_password_is_refused_and_audited(client, db, staff):
    r = sign_in(client, "reviewer", "not the password")
    assert r.status_code == 401
    assert "fcx_session" not in r.headers.get("set-cookie", "")
    with db.session() as s:
        actions = [e.action for e in s.scalars(select(AuditEvent))]
    assert "console.sign_in_failed" in actions
    assert sign_in(client, "nobody").status_code == 401


def test_session_cookie_is_signed_httponly_lax_and_secure_on_https(app, staff):
    with TestClient(app, base_url="https://testserver") as c:
        r = sign_in(c, "reviewer")
        assert r.status_code == 303, r.text
        cookie = next(
            v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("fcx_session=")
        )
        assert (
            "HttpOnly" in cookie
            and "SameSite=lax" in cookie
            and "Secure" in cookie
            and "Path=/console" in cookie
        )
        # A tampered cookie is not a session.
        value = cookie.split(";")[0].split("=", 1)[1]
        c.cookies.set(
            "fcx_session", value[:-2] + ("AA" if not value.endswith("AA") else "BB"), path="/console"
        )
        assert c.get("/console/review", follow_redirects=False).status_code == 303
    with TestClient(app) as c:
        r = sign_in(c, "reviewer")
        cookie = next(
            v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("fcx_session=")
        )
        assert "Secure" not in cookie


def test_every_post_needs_the_csrf_token(client, staff):
    r = client.post(
        "/console/login", data={"method": "password", "username": "reviewer", "password": PASSWORD}
    )
    assert r.status_code == 403
    assert "表单已失效或并非来自本站" in r.text  # the page's language (#17), never "CSRF"
    client.get("/console/login")
    r = client.post(
        "/console/login",
        data={"csrf_token": "0" * 64, "method": "password", "username": "reviewer", "password": PASSWORD},
    )
    assert r.status_code == 403
    assert sign_in(client, "reviewer").status_code == 303
    # Signed in, the token of an anonymous page no longer counts for another browser's session.
    r = client.post("/console/review/bulk", data={"action": "start_review"})
    assert r.status_code == 403


def test_roles_see_their_pages_only(client, staff):
    allowed = {
        "reviewer": [
            "/console/",
            "/console/review",
            "/console/entries",
            "/console/objections",
            "/console/policy",
        ],
        "auditor": ["/console/", "/console/audit", "/console/entries", "/console/orgs"],
        "admin": ["/console/audit", "/console/keys", "/console/review"],
        "market": ["/console/org", "/console/entries", "/console/keys", "/console/reports"],
        "shop": ["/console/org", "/console/keys", "/console/objections"],
    }
    denied = {
        "reviewer": ["/console/audit", "/console/keys", "/console/org"],
        "auditor": ["/console/review", "/console/keys"],
        "market": ["/console/review", "/console/audit", "/console/orgs"],
        "shop": ["/console/review", "/console/audit"],
    }
    for user in allowed:
        client.cookies.clear()
        assert sign_in(client, user).status_code == 303
        for path in allowed[user]:
            r = client.get(path)
            assert r.status_code == 200, (user, path, r.text[:300])
            assert r.headers["content-security-policy"].startswith("default-src 'self'")
        for path in denied.get(user, []):
            r = client.get(path)
            assert r.status_code == 403, (user, path)
            assert "text/html" in r.headers["content-type"]
    # An enterprise user's home is its organisation page.
    client.cookies.clear()
    sign_in(client, "shop")
    r = client.get("/console/", follow_redirects=False)
    assert r.headers["location"] == "/console/org"


def test_api_key_sign_in_ends_with_the_key(client, db, staff):
    key = staff["platform"].keys[Role.platform_reviewer]
    page = client.get("/console/login")
    r = client.post(
        "/console/login",
        data={"csrf_token": csrf_of(page.text), "method": "api_key", "api_key": key},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert client.get("/console/review").status_code == 200
    with db.session() as s:
        orgs.revoke_key(s, SYSTEM, orgs.find_key(s, key.split("_")[1]), reason="test")
    assert client.get("/console/review", follow_redirects=False).status_code == 303
    # A machine's key is for the API only.
    client.cookies.clear()
    page = client.get("/console/login")
    r = client.post(
        "/console/login",
        data={
            "csrf_token": csrf_of(page.text),
            "method": "api_key",
            "api_key": staff["shop"].keys[Role.enterprise_node],
        },
    )
    assert r.status_code == 401


def test_sign_out_ends_the_session(client, staff):
    sign_in(client, "reviewer")
    page = client.get("/console/review")
    r = client.post("/console/logout", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get("/console/review", follow_redirects=False).status_code == 303


def _bulk(client, action: str, ids: list, reason: str = ""):  # type: ignore[no-untyped-def]
    page = client.get("/console/review")
    return client.post(
        "/console/review/bulk",
        data={
            "csrf_token": csrf_of(page.text),
            "action": action,
            "reason": reason,
            "entry_ids": [str(i) for i in ids],
        },
        follow_redirects=False,
    )


def test_bulk_review_is_all_or_nothing(client, db, staff):
    dept = staff["dept"].org.id
    a = penalty_entry(db, dept)
    b = penalty_entry(db, dept, name="另一家刷单公司", uscc="91110000600037341L")
    sign_in(client, "reviewer")
    r = _bulk(client, "start_review", [a, b])
    assert r.status_code == 303, r.text
    r = _bulk(client, "publish", [a, b])
    assert r.status_code == 303
    with db.session() as s:
        assert {e.status for e in s.scalars(select(Entry))} == {"published"}
    # Rejecting needs a reason; publishing a published entry is not possible: nothing changes, both named.
    c = penalty_entry(db, dept, name="第三家公司", uscc="91330100MA2D7K8Q9U")
    r = _bulk(client, "reject", [a, c])
    assert r.status_code == 422
    assert "第三家公司" in r.text and "示范测试刷单有限公司" in r.text
    with db.session() as s:
        assert s.get(Entry, c).status == "submitted"
    # The timeline of the entry names the console user, by name (#17: not as the raw actor code).
    r = client.get(f"/console/entries/{a}")
    timeline = r.text.split('id="timeline"')[1]
    assert "reviewer" in timeline and "user:reviewer" not in timeline


def test_review_shows_the_identifiers_a_submission_adds_and_the_submitter_what_it_sent(client, db, staff):
    """Issue #13: a submission's new identifiers for a known subject are the reviewer's to accept."""
    dept, shop = staff["dept"].org.id, staff["shop"]
    listed = penalty_entry(db, dept)  # a department's unit, published below
    with db.session() as s:
        take_step(s, SYSTEM, s.get(Entry, listed), Action.start_review)
        take_step(s, SYSTEM, s.get(Entry, listed), Action.publish)
        sent = registry.submit(s, Actor("test:shop", shop.org.id), shop.org.id, EntryIn.model_validate({
            "subject": {"kind": "unit", "name": "商家自报名称", "identifiers": [
                {"type": "uscc", "value": "91350100M000100Y43"}, {"type": "domain", "value": "shuadan.example.cn"}]},
            "behaviours": ["order_brushing"], "role": "organizer", "severity": "general",
            "basis": "enterprise_finding", "facts": "组织刷单。",
        })).id  # fmt: skip
    sign_in(client, "reviewer")
    queue = client.get("/console/review").text
    assert f'id="offered-{sent}"' in queue and "shuadan.example.cn" in queue
    page = client.get(f"/console/entries/{sent}")
    assert 'id="proposed"' in page.text and "shuadan.example.cn" in page.text
    assert "示范测试刷单有限公司" in page.text  # the reviewer sees the subject it was matched to
    r = client.post(
        re.search(r'action="(/console/entries/[^"]+/reject)"', page.text).group(1),
        data={"csrf_token": csrf_of(page.text), "reason": "域名不属于该企业", "version": "1"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    page = client.get(f"/console/entries/{sent}").text
    assert "域名不属于该企业" in page and "/reject" not in page
    with db.session() as s:
        assert s.scalar(select(SubjectIdentifier).where(SubjectIdentifier.type == "domain")) is None
    # the enterprise sees what it sent, not the department's (unpublished to it) subject
    client.cookies.clear()
    sign_in(client, "shop")
    mine = client.get(f"/console/entries/{sent}").text
    assert "商家自报名称" in mine and "示范测试刷单有限公司" not in mine and 'id="proposed"' not in mine
    listing = client.get("/console/entries?status=submitted").text
    assert "商家自报名称" in listing and "示范测试刷单有限公司" not in listing


def test_public_query_masks_personal_data_and_hides_minor_entries(client, db, staff):
    dept = staff["dept"].org.id
    with db.session() as s:
        for sev, name, rid in (
            ("general", "张三丰", "110101199003071233"),
            ("minor", "李四光", "11010519491231002X"),
        ):
            e = registry.submit(s, Actor("t", dept), dept, EntryIn.model_validate({
                "subject": {"kind": "individual", "name": name, "identifiers": [{"type": "resident_id", "value": rid}]},
                "behaviours": ["fake_review"], "role": "participant", "severity": sev,
                "basis": "administrative_penalty", "document_number": "测罚〔2026〕2号",
                "issuing_authority": "示范市市场监督管理局", "facts": "虚假评价。",
            }))  # fmt: skip
            take_step(s, SYSTEM, e, Action.start_review)
            take_step(s, SYSTEM, e, Action.publish)
    token = csrf_of(client.get("/console/public").text)

    def query(by: str, q: str, full_name: str = ""):  # type: ignore[no-untyped-def]
        data = {"csrf_token": token, "by": by, "q": q, "full_name": full_name}
        return client.post("/console/public", data=data)

    r = query("resident_id", "110101199003071233", "张三丰")
    assert r.status_code == 200
    assert "张*丰" in r.text.split('id="results"')[1] and "张三丰" not in r.text.split('id="results"')[1]
    assert mask("resident_id", "110101199003071233") in r.text
    assert "110101199003071233" not in r.text.replace('value="110101199003071233"', "")
    r = query("resident_id", "11010519491231002X", "李四光")
    assert "李" not in r.text.split('id="results"')[1]
    assert 'id="no-results"' in r.text
    r = query("uscc", "91350100M000100Y44")  # one search box (#17): a code with a slip is named
    assert 'id="query-errors"' in r.text and "校验码" in r.text


def test_public_query_is_rate_limited(client, staff, monkeypatch):
    monkeypatch.setattr(get_settings(), "console_query_rate_per_address", 2)
    token = csrf_of(client.get("/console/public").text)
    codes = [
        client.post("/console/public", data={"csrf_token": token, "q": "刷单公司"}).status_code
        for _ in range(3)
    ]
    assert codes == [200, 200, 429]


def test_public_objection_marks_the_entry_disputed(client, db, staff):
    entry_id = penalty_entry(db, staff["dept"].org.id)
    with db.session() as s:
        e = s.get(Entry, entry_id)
        take_step(s, SYSTEM, e, Action.start_review)
        take_step(s, SYSTEM, e, Action.publish)
    page = client.get(f"/console/public/objection?entry={entry_id}")
    form = {
        "csrf_token": csrf_of(page.text),
        "entry_id": str(entry_id),
        "identifier_type": "uscc",
        "identifier_value": "91350100M000100Y43",
        "grounds": "处罚决定已被行政复议撤销，请核实。",
        "contact_email": "legal@example.cn",
    }
    bad = client.post("/console/public/objection", data={**form, "identifier_value": "91110000600037341L"})
    assert bad.status_code == 422 and 'id="form-errors"' in bad.text
    short = client.post("/console/public/objection", data={**form, "grounds": "短"})
    assert short.status_code == 422 and "grounds" in short.text
    r = client.post("/console/public/objection", data=form)
    assert r.status_code == 201, r.text
    assert re.search(r'id="tracking">YY', r.text)
    with db.session() as s:
        assert s.get(Entry, entry_id).status == "disputed"
    r = client.post(
        "/console/public",
        data={"csrf_token": csrf_of(page.text), "by": "uscc", "q": "91350100M000100Y43"},
    )
    assert 'data-disputed="1"' in r.text


def test_public_report_form(client, staff):
    page = client.get("/console/public/report")
    token = csrf_of(page.text)
    r = client.post("/console/public/report", data={"csrf_token": token, "description": "短"})
    assert r.status_code == 422
    r = client.post(
        "/console/public/report",
        data={
            "csrf_token": token,
            "description": "该店铺组织刷单并返现好评。",
            "shop": "好评返现店",
            "behaviours": ["order_brushing"],
        },
    )
    assert r.status_code == 201, r.text
    assert 'id="tracking">JB' in r.text


def test_enterprise_acknowledges_and_reports_execution(client, db, staff):
    entry_id = penalty_entry(db, staff["dept"].org.id)
    with db.session() as s:
        e = s.get(Entry, entry_id)
        take_step(s, SYSTEM, e, Action.start_review)
        take_step(s, SYSTEM, e, Action.publish)
        ids = [
            i.id
            for i in s.scalars(select(Instruction).where(Instruction.owner_org_id == staff["shop"].org.id))
        ]
    assert ids, "publishing must issue instructions to the enterprise"
    sign_in(client, "shop")
    page = client.get("/console/org")
    assert page.status_code == 200 and 'id="feedback-rate">0%' in page.text
    token = csrf_of(page.text)
    assert client.post(f"/console/instructions/{ids[0]}/ack", data={"csrf_token": token}).status_code == 200
    r = client.post(f"/console/instructions/{ids[0]}/report", data={"csrf_token": token, "outcome": "failed"})
    assert r.status_code == 422 and "reason" in r.text
    r = client.post(
        f"/console/instructions/{ids[0]}/report", data={"csrf_token": token, "outcome": "executed"}
    )
    assert r.status_code == 200
    with db.session() as s:
        ins = s.scalar(select(Instruction).where(Instruction.id == ids[0]))
        assert ins.status == "executed" and ins.acknowledged_at is not None
    # Another tenant's instruction is not found.
    client.cookies.clear()
    sign_in(client, "market")
    page = client.get("/console/org")
    r = client.post(f"/console/instructions/{ids[1]}/ack", data={"csrf_token": csrf_of(page.text)})
    assert r.status_code == 404


def test_api_key_is_shown_once_and_revoked(client, db, staff):
    sign_in(client, "shop")
    page = client.get("/console/keys")
    token = csrf_of(page.text)
    r = client.post(
        "/console/keys",
        data={
            "csrf_token": token,
            "org_id": str(staff["shop"].org.id),
            "role": "enterprise_node",
            "label": "node 2",
        },
    )
    assert r.status_code == 201
    secret = re.search(r'id="issued-key">([^<]+)<', r.text).group(1)
    assert secret.startswith("fcx_")
    assert secret not in client.get("/console/keys").text
    # An operator may not make a key for the platform.
    r = client.post(
        "/console/keys",
        data={"csrf_token": token, "org_id": str(staff["platform"].org.id), "role": "platform_admin"},
    )
    assert r.status_code == 404
    with db.session() as s:
        key_id = s.scalar(select(ApiKey.id).where(ApiKey.prefix == secret.split("_")[1]))
    r = client.post(f"/console/keys/{key_id}/revoke", data={"csrf_token": token, "reason": ""})
    assert r.status_code == 422
    r = client.post(f"/console/keys/{key_id}/revoke", data={"csrf_token": token, "reason": "测试"})
    assert r.status_code == 200
    assert client.get("/v1/whoami", headers={"Authorization": f"Bearer {secret}"}).status_code == 401


def test_subject_merge_and_split(client, db, staff):
    dept = staff["dept"].org.id
    a = penalty_entry(db, dept)
    b = penalty_entry(db, dept, name="示范测试刷单公司", uscc="91110000600037341L")
    with db.session() as s:
        sa, sb = s.get(Entry, a).subject_id, s.get(Entry, b).subject_id
    sign_in(client, "reviewer")
    page = client.get(f"/console/subjects/{sa}")
    assert page.status_code == 200
    token = csrf_of(page.text)
    r = client.post(
        f"/console/subjects/{sa}/merge", data={"csrf_token": token, "other_id": str(sb), "reason": ""}
    )
    assert r.status_code == 422
    r = client.post(
        f"/console/subjects/{sa}/merge", data={"csrf_token": token, "other_id": str(sb), "reason": "同一公司"}
    )
    assert r.status_code == 200, r.text
    with db.session() as s:
        assert s.get(Entry, b).subject_id == sa
        moved = s.scalar(select(SubjectIdentifier.id).where(
                SubjectIdentifier.value_index == vault.identifier_index("uscc", "91110000600037341L")
            ))
    r = client.post(
        f"/console/subjects/{sa}/split",
        data={
            "csrf_token": token,
            "identifier_ids": [str(moved)],
            "entry_ids": [str(b)],
            "reason": "不是同一公司",
        },
    )
    assert r.status_code == 200, r.text
    with db.session() as s:
        assert s.get(Entry, b).subject_id != sa


def test_audit_search(client, staff):
    sign_in(client, "auditor")
    r = client.get("/console/audit", params={"action": "console.*"})
    assert r.status_code == 200
    assert "console.sign_in" in r.text
    r = client.get("/console/audit", params={"action": "console.*"}, headers={"HX-Request": "true"})
    assert r.text.lstrip().startswith('<div id="audit-rows">')
    r = client.get("/console/audit", params={"date_from": "yesterday"})
    assert "date_from" in r.text


def test_dashboard_embeds_the_chart_data(client, db, staff):
    penalty_entry(db, staff["dept"].org.id)
    sign_in(client, "reviewer")
    r = client.get("/console/")
    assert r.status_code == 200
    data = re.search(r'<script type="application/json" id="data-behaviour">(.*?)</script>', r.text).group(1)
    assert json.loads(data) == [{"name": "刷单炒信", "value": 1}]
    assert "/console/static/vendor/echarts.min.js" in r.text


def test_language_switch(client, staff):
    r = client.get("/console/public")
    assert '<html lang="zh-CN">' in r.text and "炒信黑名单查询" in r.text
    r = client.get("/console/lang/en?next=/console/public", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/public"
    r = client.get("/console/public")
    assert '<html lang="en">' in r.text and "Query the credit-hyping blacklist" in r.text
    assert (
        client.get("/console/lang/en?next=https://evil.example/", follow_redirects=False).headers["location"]
        == "/console/"
    )


def test_error_pages_are_html_and_the_api_keeps_problem_json(client, staff):
    sign_in(client, "reviewer")
    r = client.get("/console/entries/00000000-0000-0000-0000-000000000000")
    assert r.status_code == 404 and "text/html" in r.headers["content-type"]
    r = client.get("/console/entries/not-a-uuid")
    assert r.status_code == 422 and "text/html" in r.headers["content-type"]
    r = client.get("/v1/entries/00000000-0000-0000-0000-000000000000")
    assert r.headers["content-type"] == "application/problem+json"


# --- catalogues, vendored files, accessibility --------------------------------------------------------------


def test_every_string_is_in_both_catalogues():

    ids = {m for m, _f, _l in extract()}
    assert len(ids) > 200
    for locale in ("zh_CN", "en"):
        catalog: dict[str, str] = {}
        for path in po_files(locale):
            with path.open("rb") as f:
                here = {m.id: m.string for m in read_po(f) if m.id}
            twice = sorted(set(here) & set(catalog))
            assert not twice, f"{locale}: {path.name} repeats msgids of another file: {twice[:10]}"
            catalog.update(here)
        missing = sorted(i for i in ids if not catalog.get(i))
        assert not missing, f"{locale}: untranslated: {missing}"
    with (CONSOLE / "locales" / "messages.pot").open("rb") as f:
        template = {m.id for m in read_po(f) if m.id}
    assert ids <= template, f"messages.pot is stale: {sorted(ids - template)}"


def test_vendored_files_match_their_record():
    vendor = CONSOLE / "static" / "vendor"
    record = (vendor / "VENDORED.md").read_text()
    for name in ("htmx.min.js", "echarts.min.js", "axe.min.js"):
        digest = hashlib.sha256((vendor / name).read_bytes()).hexdigest()
        assert digest in record, f"{name}: sha256 {digest} not in VENDORED.md"
    for lic in ("htmx.LICENSE", "echarts.LICENSE", "echarts.NOTICE", "axe.LICENSE"):
        assert (vendor / lic).stat().st_size > 100


def _luminance(hex_colour: str) -> float:
    h = hex_colour.lstrip("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    channels = [int(h[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_text_colours_have_enough_contrast():
    css = (CONSOLE / "static" / "console.css").read_text()
    root = re.search(r":root\s*\{(.*?)\}", css, re.S).group(1)
    colours = dict(re.findall(r"(--[\w-]+):\s*(#[0-9a-fA-F]{3,6})", root))
    checked = []
    for selector, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css):
        fg = re.search(r"(?<![-\w])color:\s*var\((--[\w-]+)\)", body)
        if not fg:
            continue
        bg = re.search(r"background(?:-color)?:\s*var\((--[\w-]+)\)", body) or re.search(
            r"/\*\s*on:\s*(--[\w-]+)\s*\*/", body
        )
        bg_name = bg.group(1) if bg else "--bg"
        ratio = contrast(colours[fg.group(1)], colours[bg_name])
        checked.append(selector.strip())
        assert ratio >= 4.5, f"{selector.strip()}: {fg.group(1)} on {bg_name} is {ratio:.2f}:1"
    assert len(checked) >= 15
    assert contrast("#777777", "#ffffff") < 4.5  # the check can fail


def test_every_form_control_has_a_label(client, db, staff):
    """Every input, select and textarea of the main pages has a <label for=…> or an aria-label."""
    penalty_entry(db, staff["dept"].org.id)
    pages = ["/console/login", "/console/public", "/console/public/report", "/console/public/objection"]
    staff_pages = [
        "/console/review",
        "/console/entries",
        "/console/audit",
        "/console/keys",
        "/console/policy",
    ]
    for user, paths in (("", pages), ("admin", staff_pages), ("shop", ["/console/org", "/console/keys"])):
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
                ok = "aria-label=" in tag or (ident is not None and ident.group(1) in labelled)
                assert ok, f"{path}: control without a label: {tag}"


def test_cli_adds_a_console_user(client, world, settings):

    world.platform()
    runner = CliRunner()
    args = [
        "console",
        "add-user",
        "carol",
        "--org",
        "平台",
        "--role",
        "platform_reviewer",
        "--password-stdin",
    ]
    r = runner.invoke(cli, args, input="short\n")
    assert r.exit_code == 1 and "password" in r.output
    r = runner.invoke(cli, args, input=f"{PASSWORD}\n")
    assert r.exit_code == 0, r.output
    assert sign_in(client, "carol").status_code == 303
    r = runner.invoke(
        cli,
        [*args[:3], "--org", "平台", "--role", "department_officer", "--password-stdin"],
        input=f"{PASSWORD}\n",
    )
    assert r.exit_code == 1 and "role" in r.output


def test_a_departments_page_shows_its_unpublished_entries_as_it_sent_them(client, db, staff):
    """Issue #13: an entry matched to another tenant's unpublished subject never shows that subject."""
    shop = staff["shop"].org.id
    with db.session() as s:
        registry.submit(s, Actor("test:shop", shop), shop, EntryIn.model_validate({
            "subject": {"kind": "unit", "name": "店铺报送的公司名", "identifiers": [
                {"type": "uscc", "value": "91350100M000100Y43"}]},
            "behaviours": ["order_brushing"], "role": "organizer", "severity": "general",
            "basis": "enterprise_finding", "facts": "组织刷单。",
        }))  # fmt: skip
    penalty_entry(db, staff["dept"].org.id, name="部门自报名称")  # the same USCC: matched to the shop's subject
    sign_in(client, "market")
    page = client.get("/console/org").text
    assert "部门自报名称" in page and "店铺报送的公司名" not in page
