"""Administration pages (#17 part 5): the policy matrix, the API key form, the audit log, the dashboard's
date range. Both backends, through the HTTP client."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from sqlalchemy import select, update

from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.console import labels
from fanchaoxin.console.audit_log import facts, state_change
from fanchaoxin.core import audit
from fanchaoxin.core.audit import Actor, AuditEvent
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.settings import get_settings
from fanchaoxin.orgs.models import ApiKey
from fanchaoxin.workflows.entries import take_step

from .console_helpers import csrf_of, penalty_entry
from .test_console import sign_in, staff  # noqa: F401  (the fixture)

ENGLISH_SENTENCE = re.compile(r"[A-Za-z]{3,}(?: [A-Za-z]{2,}){2,}")


def _main(html: str) -> str:
    return html[html.index("<main") : html.index("</main>")]


def _cell(html: str, table: str, severity: str) -> str:
    """The matrix cell(s) of one severity row of one table."""
    t = html[html.index(f'id="{table}"') :]
    t = t[: t.index("</table>")]
    return "".join(re.findall(rf'<td[^>]*data-severity="{severity}"[^>]*>(.*?)</td>', t, re.S))


def test_policy_is_a_matrix_in_the_readers_language(client, staff):  # noqa: F811
    sign_in(client, "shop")
    html = client.get("/console/policy").text
    assert "<pre" not in html and '"rules"' not in html  # no raw JSON
    serious, minor = _cell(html, "matrix-entries", "serious"), _cell(html, "matrix-entries", "minor")
    # The engine's answer: measure 3 (限制发布商品及服务) for serious cases only, with its parameter.
    assert "限制发布商品及服务" in serious and "限制发布商品及服务" not in minor
    assert "每天最多发布 10 件新商品" in serious
    assert "扣除信用积分" in minor and "以认定结果为准" in minor
    # Measure 10 only for courier companies, and the page says so.
    courier = re.search(r"限制严重失信寄递物流企业入驻.*?</li>", serious, re.S).group(0)
    assert "仅适用于" in courier and "寄递物流企业" in courier
    # Liable persons get 1, 6 and 7.
    assert "限制新设立账户" in _cell(html, "matrix-liable", "minor")
    # Department measures for the public list only, serious cases only.
    assert "限制融资和发行债券" in _cell(html, "matrix-departments-public", "serious")
    assert "限制融资和发行债券" not in _cell(html, "matrix-departments-public", "general")
    assert 'id="no-departments-shared"' in html
    # Codes are never shown raw.
    main = _main(html)
    for code in ("restrict_listings", "deduct_credit_points", "order_brushing", "serious", "courier_company"):
        assert f">{code}<" not in main and f" {code} " not in main
    assert 'id="policy-versions"' in html
    client.get("/console/lang/en")
    en = client.get("/console/policy").text
    assert "at most 10 new listings a day" in _cell(en, "matrix-entries", "serious")


def test_key_form_offers_the_kinds_roles_with_valid_defaults(client, db, staff):  # noqa: F811
    sign_in(client, "admin")
    html = client.get("/console/keys").text
    days = re.search(r'id="k-days"[^>]*value="(\d+)"', html).group(1)
    assert int(days) == get_settings().api_key_default_days
    label = re.search(r'id="k-label"[^>]*value="([^"]*)"', html).group(1)
    assert label.startswith("控制台密钥")
    chosen = re.search(r'<option value="([^"]+)" data-kind="(\w+)" selected', html)
    # Every role the page offers selectable belongs to the chosen organisation's kind.
    offered = re.findall(r'<option value="(\w+)" data-kind="(\w+)"(?! hidden)', html)
    assert offered and all(kind == chosen.group(2) for _r, kind in offered)
    # The defaults as they stand make a key.
    enabled_role = offered[0][0]
    r = client.post(
        "/console/keys",
        data={
            "csrf_token": csrf_of(html),
            "org_id": chosen.group(1),
            "role": enabled_role,
            "label": label,
            "expires_in_days": days,
        },
    )
    assert r.status_code == 201, _main(r.text)
    assert 'id="issued-key"' in r.text


def test_key_form_errors_are_shown_on_the_form_in_the_readers_language(client, db, staff):  # noqa: F811
    sign_in(client, "admin")
    html = client.get("/console/keys").text
    token = csrf_of(html)
    shop = str(staff["shop"].org.id)
    # A role of another kind of organisation: refused at the role field, nothing written.
    r = client.post(
        "/console/keys",
        data={
            "csrf_token": token,
            "org_id": shop,
            "role": "platform_admin",
            "label": "x",
            "expires_in_days": "30",
        },
    )
    assert r.status_code == 422
    assert 'id="err-k-role"' in r.text and 'id="key-form"' in r.text
    err = re.search(r'id="err-k-role">([^<]+)<', r.text).group(1)
    assert not ENGLISH_SENTENCE.search(err), err
    # What was typed is kept.
    assert re.search(r'id="k-label"[^>]*value="x"', r.text)
    # Too long a life, and not a number.
    r = client.post(
        "/console/keys",
        data={
            "csrf_token": token,
            "org_id": shop,
            "role": "enterprise_node",
            "label": "x",
            "expires_in_days": "99999",
        },
    )
    assert r.status_code == 422 and 'id="err-k-days"' in r.text
    r = client.post(
        "/console/keys",
        data={
            "csrf_token": token,
            "org_id": shop,
            "role": "enterprise_node",
            "label": "x",
            "expires_in_days": "abc",
        },
    )
    assert r.status_code == 422 and 'id="err-k-days"' in r.text
    err = re.search(r'id="err-k-days">([^<]+)<', r.text).group(1)
    assert not ENGLISH_SENTENCE.search(err), err
    with db.session() as s:
        assert s.scalar(select(ApiKey.id).where(ApiKey.label == "x")) is None
    # In English, the same refusal in English.
    client.get("/console/lang/en")
    r = client.post(
        "/console/keys",
        data={
            "csrf_token": token,
            "org_id": shop,
            "role": "enterprise_node",
            "label": "x",
            "expires_in_days": "0",
        },
    )
    assert r.status_code == 422
    err = re.search(r'id="err-k-days">([^<]+)<', r.text).group(1)
    assert ENGLISH_SENTENCE.search(err) and not re.search(r"[\u4e00-\u9fff]", err), err
    # Left empty, the lifetime is the platform's default.
    r = client.post(
        "/console/keys",
        data={
            "csrf_token": token,
            "org_id": shop,
            "role": "enterprise_node",
            "label": "y",
            "expires_in_days": "",
        },
    )
    assert r.status_code == 201
    with db.session() as s:
        key = s.scalar(select(ApiKey).where(ApiKey.label == "y"))
        assert (
            round((key.expires_at - key.created_at).total_seconds() / 86400)
            == get_settings().api_key_default_days
        )


def test_an_operator_is_offered_its_own_kinds_roles_only(client, staff):  # noqa: F811
    sign_in(client, "shop")
    html = client.get("/console/keys").text
    roles = set(re.findall(r'<option value="(\w+)" data-kind="\w+"', html))
    assert roles == {"enterprise_operator", "enterprise_node"}


# --- the audit log ---------------------------------------------------------------------------------------


def test_audit_log_reads_in_words_with_a_diff_and_the_chain_status(client, db, staff):  # noqa: F811
    entry_id = penalty_entry(db, staff["dept"].org.id)
    with db.session() as s:
        e = s.get(Entry, entry_id)
        take_step(s, Actor("user:reviewer", staff["platform"].org.id), e, Action.start_review)
    sign_in(client, "auditor")
    html = client.get("/console/audit", params={"action": "entry.start_review"}).text
    row = re.search(r'<tr id="ev-\d+" data-action="entry.start_review">(.*?)</tr>', html, re.S).group(1)
    # The action and the actor in words; the code stays only in the tooltip.
    assert f'title="entry.start_review">{labels.label("audit_action", "entry.start_review", "zh_CN")}<' in row
    assert labels.actor("user:reviewer", "zh_CN") in row
    # The status moved: from 已提交 to 审核中, as a diff.
    frm, to = (
        labels.label("entry_status", "submitted", "zh_CN"),
        labels.label("entry_status", "under_review", "zh_CN"),
    )
    assert f"<del>{frm}</del> → <ins>{to}</ins>" in row
    assert "状态已变更" in row
    # The chain is intact, checked from the first event.
    chain = html[html.index('id="chain-status"') :]
    assert 'data-ok="1"' in html and "完整" in chain[: chain.index("</section>")]
    # An event altered behind the platform's back breaks it, and the page says where, in Chinese.
    with db.session() as s:
        ev = s.scalar(select(AuditEvent).where(AuditEvent.action == "entry.start_review"))
        s.execute(update(AuditEvent).where(AuditEvent.id == ev.id).values(detail={"from": "x", "to": "y"}))
        broken_at = ev.id
    # The page shows the walk made minutes ago, and says when (a walk costs seconds on a large log);
    # "check now" walks the chain again and finds the break.
    html = client.get("/console/audit").text
    assert 'data-ok="1"' in html and 'id="chain-checked-at"' in html and "check=now" in html
    html = client.get("/console/audit", params={"check": "now"}).text
    assert 'data-ok="0"' in html
    assert f"第 {broken_at} 条事件在写入后被篡改" in html


def test_audit_log_filters_and_pages(client, db, staff):  # noqa: F811
    with db.session() as s:
        audit.record_many(
            s,
            Actor("cli:ops"),
            [{"action": "policy.load", "target_type": "policy", "target_id": f"v{i}"} for i in range(130)],
        )
    sign_in(client, "auditor")
    first = client.get("/console/audit", params={"action": "policy.load"}).text
    assert first.count('data-action="policy.load"') == 100
    older = re.search(r'id="audit-older" href="([^"]+)"', first) or re.search(
        r'href="([^"]+)" id="audit-older"', first
    )
    nxt = client.get(older.group(1).replace("&amp;", "&"), headers={"HX-Request": "true"})
    assert nxt.text.lstrip().startswith('<div id="audit-rows">')
    assert nxt.text.count('data-action="policy.load"') == 30
    assert 'id="audit-newest"' in nxt.text and 'id="audit-older"' not in nxt.text
    # The action filter offers the actions by name; the actor filter takes a wildcard.
    assert re.search(r'<option value="policy.load" selected>[^<a-z]+</option>', first)
    by_actor = client.get("/console/audit", params={"actor": "cli:*", "action": "policy.load"}).text
    assert by_actor.count('data-action="policy.load"') == 100
    # A bad date is named at its field, in the reader's language, and nothing is searched.
    bad = client.get("/console/audit", params={"date_from": "yesterday"}).text
    assert 'id="err-a-from"' in bad and "年-月-日" in bad
    bad = client.get("/console/audit", params={"date_from": "2026-12-05", "date_to": "2026-12-01"}).text
    assert 'id="err-a-to"' in bad


# --- the dashboard ---------------------------------------------------------------------------------------


def _chart(html: str, name: str) -> list:
    return json.loads(
        re.search(rf'<script type="application/json" id="data-{name}">(.*?)</script>', html).group(1)
    )


def test_dashboard_has_a_date_range_and_says_as_of_when(client, db, staff):  # noqa: F811
    penalty_entry(db, staff["dept"].org.id)
    sign_in(client, "reviewer")
    html = client.get("/console/").text
    today = china_today()
    assert re.search(rf'id="d-from"[^>]*value="{(today - timedelta(days=29)).isoformat()}"', html)
    assert re.search(rf'id="d-to"[^>]*value="{today.isoformat()}"', html)
    assert _chart(html, "behaviour") == [{"name": "刷单炒信", "value": 1}]
    assert "数据截至" in html[html.index('id="as-of"') :]
    # A range before the entry was submitted counts nothing; the queue is the queue now.
    old = client.get("/console/", params={"date_from": "2020-01-01", "date_to": "2020-01-31"}).text
    assert _chart(old, "behaviour") == []
    assert 'id="empty-behaviour"' in old and 'id="empty-behaviour"' not in html
    assert "2020-01-01" in old[old.index('id="as-of"') :]
    assert re.search(r'<span class="kpi">1</span>', old)
    # A range that ends before it starts is named at the field; the default range is shown instead.
    bad = client.get("/console/", params={"date_from": "2026-12-05", "date_to": "2026-12-01"})
    assert bad.status_code == 200 and 'id="err-d-to"' in bad.text
    assert _chart(bad.text, "behaviour") == [{"name": "刷单炒信", "value": 1}]


def test_an_events_detail_reads_as_a_diff():
    ev = AuditEvent(
        action="entry.correct",
        target_type="entry",
        target_id="x",
        before_digest="a" * 64,
        after_digest="b" * 64,
        detail={
            "measures_added": ["restrict_listings"],
            "measures_removed": ["deduct_credit_points"],
            "late": True,
            "outcome": "corrected",
        },
    )
    by_name = {f.name: f for f in facts(ev, "zh_CN")}
    assert by_name["惩戒措施"].added == ["限制发布商品及服务"]
    assert by_name["惩戒措施"].removed == ["扣除信用积分"]
    assert by_name["是否逾期"].value == "是"
    assert by_name["处理结果"].value == labels.label("outcome", "corrected", "zh_CN") != "corrected"
    assert state_change(ev) == "changed"
    ev.before_digest = None
    assert state_change(ev) == "created"
    moved = facts(AuditEvent(target_type="entry", detail={"from": "published", "to": "revoked"}), "en")
    assert (moved[0].before, moved[0].value) == ("Published", "Revoked")


def test_a_refused_revocation_is_shown_at_the_keys_row(client, db, staff):  # noqa: F811
    sign_in(client, "shop")
    html = client.get("/console/keys").text
    with db.session() as s:
        key_id = s.scalar(select(ApiKey.id).where(ApiKey.owner_org_id == staff["shop"].org.id))
    r = client.post(f"/console/keys/{key_id}/revoke", data={"csrf_token": csrf_of(html), "reason": ""})
    assert r.status_code == 422
    err = re.search(rf'id="err-rv-{key_id}">([^<]+)<', r.text).group(1)
    assert re.search(r"[\u4e00-\u9fff]", err) and not ENGLISH_SENTENCE.search(err), err
    assert 'id="key-errors"' in r.text
