"""The console in a real browser: Debian's /usr/bin/chromium driven by Playwright (never a downloaded one).

The platform runs under uvicorn in a thread, on a free port, on a temporary SQLite file with the demo
data. Screenshots of the main pages (desktop and a 390 px phone) go to artifacts/screenshots/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright
from sqlalchemy import select

from fanchaoxin.appeals import attachments, repair
from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.core.audit import SYSTEM
from fanchaoxin.core.db import Database
from fanchaoxin.demo import load_demo
from fanchaoxin.orgs.models import Organisation
from fanchaoxin.workflows.entries import take_step

from .console_helpers import penalty_entry, serve

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install chromium)"
    ),
]

USCC = "91350100M000100Y43"
COMPANY = "示范测试刷单有限公司"
REPAIR_COMPANY = "示范整改完成有限公司"
REPAIR_USCC = "93330782MA28D4W70N"

COUNT_INK = """(sel) => {
  const c = document.querySelector(sel);
  if (!c) return -1;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
  return n;
}"""

UNLABELLED = """() => Array.from(document.querySelectorAll('input, select, textarea'))
  .filter(el => el.type !== 'hidden')
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
  .map(el => el.outerHTML)"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'fcx.db'}"
    db = Database(url)
    db.upgrade()
    keys = load_demo(db)
    assert keys is not None
    users = {u.username: u.password for u in keys.users}
    with db.session() as s:
        market = s.scalar(select(Organisation.id).where(Organisation.name == "示范市市场监督管理局"))
    entry_id = penalty_entry(db, market, name=COMPANY, uscc=USCC)
    repair_entry, repair_id = _repair_case(db, market)
    try:
        with serve(db, url) as served:
            yield {
                "base": served["base"],
                "users": users,
                "entry_id": entry_id,
                "repair_entry": repair_entry,
                "repair_id": repair_id,
            }
    finally:
        db.dispose()


def _repair_case(db, market):  # type: ignore[no-untyped-def]
    """A minor entry (no minimum period), published, with a credit repair application and its proof."""
    entry_id = penalty_entry(db, market, name=REPAIR_COMPANY, uscc=REPAIR_USCC)
    with db.session() as s:
        e = s.get(Entry, entry_id)
        e.severity = "minor"
        take_step(s, SYSTEM, e, Action.start_review)
        take_step(s, SYSTEM, e, Action.publish)
        filing = repair.file_repair(
            s, SYSTEM, entry_id=entry_id, identifier_type="uscc", identifier_value=REPAIR_USCC,
            commitment_accepted=True, commitment_text="本单位承诺依法诚信经营，不再组织刷单。",
            rectification="已关闭刷单渠道并完成整改。", contact_email="repair@example.cn", channel="public",
        )  # fmt: skip
        attachments.add_attachment(
            s, SYSTEM, "repair", filing.case, filename="rectification.txt", declared_type="text/plain",
            data="整改报告 Rectification report".encode(),
        )  # fmt: skip
        return entry_id, filing.case.id


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def public_query(page, base: str, by: str, q: str) -> None:  # type: ignore[no-untyped-def]
    """The public query is one box (#17) and a POST (htmx swaps the results in): nothing searched lands in
    a URL. `by` is the kind the box must recognise in `q` (an identifier type, or `name`)."""
    page.goto(f"{base}/console/public")
    page.fill("#q", q)
    page.click("form[role=search] button[type=submit]")
    page.wait_for_selector("#results h2, #no-results, #results .alert")
    assert "q=" not in page.url
    if page.locator("#q-kind").count():
        assert page.get_attribute("#q-kind", "data-kind") == by


def sign_in(page, base: str, username: str, password: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/console/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("form:has(#username) button[type=submit]")
    page.wait_for_url(f"{base}/console/**")


def test_review_publish_query_object_and_switch_language(site, browser):
    base, users, entry_id = site["base"], site["users"], site["entry_id"]
    staff = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = staff.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    # Keyboard: the first Tab reaches the skip link, which is visible when focused.
    page.goto(f"{base}/console/login")
    shot(page, "desktop-login")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    assert page.is_visible(".skip-link")

    sign_in(page, base, "reviewer", users["reviewer"])
    # The dashboard draws its charts: the ECharts canvas has ink.
    page.wait_for_selector("#chart-behaviour[data-drawn='1'] canvas")
    page.wait_for_function(f"({COUNT_INK})('#chart-behaviour canvas') > 200")
    assert page.evaluate(COUNT_INK, "#chart-severity canvas") > 200
    # Measures by enterprise: issued / executed / overdue bars.
    page.wait_for_selector("#chart-measures[data-drawn='1'] canvas")
    assert page.evaluate(COUNT_INK, "#chart-measures canvas") > 200
    shot(page, "desktop-dashboard")

    # Review queue: start review, then publish, both as bulk actions.
    for action in ("start_review", "publish"):
        page.goto(f"{base}/console/review")
        page.check(f"#sel-{entry_id}")
        page.select_option("#bulk-action", action)
        page.click("#bulk-form button[type=submit]")
        page.wait_for_selector("#bulk-done")
    shot(page, "desktop-review")
    page.goto(f"{base}/console/entries/{entry_id}")
    assert page.inner_text("h1").startswith(COMPANY)
    assert "· 用户 reviewer" in page.inner_text(
        "#h-timeline + ol"
    )  # the user by name, not "user:reviewer" (#17)
    shot(page, "desktop-entry")
    assert page.evaluate(UNLABELLED) == []

    # The public finds it by USCC, files an objection, and sees it disputed.
    public = browser.new_context(viewport={"width": 1280, "height": 900})
    pp = public.new_page()
    pp.on("pageerror", lambda exc: errors.append(str(exc)))
    public_query(pp, base, "uscc", USCC)
    pp.wait_for_selector(f"#results li.result:has-text('{COMPANY}')")
    shot(pp, "desktop-public-query")
    assert pp.evaluate(UNLABELLED) == []
    pp.click(f"#results a.button[href$='{entry_id}']")
    pp.click("#object")  # #17: the objection starts from the record page
    pp.wait_for_selector("#o-grounds")
    pp.select_option("#o-type", "uscc")
    pp.fill("#o-value", USCC)
    pp.fill("#o-grounds", "处罚决定已被行政复议撤销，请核实并更正。")
    pp.fill("#o-email", "legal@example.cn")
    pp.click("form.card button[type=submit]")
    pp.wait_for_selector("#tracking")
    tracking = pp.inner_text("#tracking")
    assert tracking.startswith("YY")
    shot(pp, "desktop-objection-filed")
    public_query(pp, base, "uscc", USCC)
    assert pp.is_visible("[data-disputed='1']")

    # The reviewer decides the objection from the console: revoked. A missing reason is named at its field.
    page.goto(f"{base}/console/objections")
    page.click(f"a:text-is('{tracking}')")
    page.wait_for_selector("#decide-form")
    page.check("#dc-outcome-revoked")
    page.fill("#dc-identity", "营业执照原件核验")
    page.click("#decide-form button[type=submit]")
    page.wait_for_selector("#err-dc-reason")
    assert page.evaluate(UNLABELLED) == []
    shot(page, "desktop-objection-error")
    page.check("#dc-outcome-revoked")
    page.fill("#dc-reason", "行政处罚决定已被复议撤销")
    page.fill("#dc-public", "行政处罚决定已被撤销")
    page.click("#decide-form button[type=submit]")
    page.wait_for_selector("#done")
    assert "撤销" in page.inner_text("#decision")
    shot(page, "desktop-objection-decided")
    assert page.is_visible("#h-case + dl .st-revoked")

    # The enterprise sees the entry revoked, with the instructions to lift its measures.
    shop = browser.new_context(viewport={"width": 1280, "height": 900})
    sp = shop.new_page()
    sp.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(sp, base, "shop", users["shop"])
    sp.goto(f"{base}/console/workbench")
    row = sp.locator(f"tbody.wb-row:has(tr.kind-lift):has(a[href$='{entry_id}'])").first
    assert row.is_visible()
    assert row.locator(".st-revoked").is_visible()
    shot(sp, "desktop-enterprise-lift")
    shop.close()

    # Credit repair, in English: the queue with its deadline badge, then the application approved.
    page.click("nav.lang a[hreflang=en]")
    page.wait_for_selector("html[lang=en]")
    page.goto(f"{base}/console/repairs")
    page.wait_for_selector("#repairs .badge.due-ok")
    shot(page, "desktop-repairs-en")
    page.click(f"a[href='/console/repairs/{site['repair_id']}']")
    page.wait_for_selector("#repair-form")
    page.check("#rp-outcome-approved")
    page.fill("#rp-reason", "Rectification verified")
    page.fill("#rp-identity", "Business licence checked")
    page.click("#repair-form button[type=submit]")
    page.wait_for_selector("#done")
    assert page.inner_text("#decision").startswith("Approved")
    assert page.is_visible(".st-repaired")
    shot(page, "desktop-repair-decided-en")
    page.goto(f"{base}/console/entries/{site['repair_entry']}")
    assert "Lift" in page.inner_text("#h-ins + .table-wrap")
    page.click("nav.lang a[hreflang=zh-CN]")
    page.wait_for_selector("html[lang=zh-CN]")

    # Language switch: English, and back.
    pp.click("nav.lang a[hreflang=en]")
    pp.wait_for_selector("html[lang=en]")
    assert pp.inner_text("h1") == "Query the credit-hyping blacklist"
    pp.goto(f"{base}/console/public/stats")
    pp.wait_for_selector("#chart-behaviour[data-drawn='1'] canvas")
    assert pp.evaluate(COUNT_INK, "#chart-behaviour canvas") > 200
    shot(pp, "desktop-public-stats-en")
    pp.click("nav.lang a[hreflang=zh-CN]")
    pp.wait_for_selector("html[lang=zh-CN]")
    assert errors == [], errors
    staff.close()
    public.close()


def test_department_page(site, browser):
    base, users = site["base"], site["users"]
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    sign_in(page, base, "market", users["market"])
    page.goto(f"{base}/console/org")
    page.wait_for_selector("#department-measures")
    assert page.locator("#based-entries tbody tr a").count() >= 1
    assert page.evaluate(UNLABELLED) == []
    shot(page, "desktop-department")
    ctx.close()


def test_phone_width_pages(site, browser):
    base, users = site["base"], site["users"]
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = phone.new_page()
    public_query(page, base, "name", "刷单")
    shot(page, "phone-public-query")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    pages = {
        "phone-public-report": "/console/public/report",
        "phone-public-repair": "/console/public/repair",
        "phone-public-stats": "/console/public/stats",
        "phone-corrections": "/console/public/corrections",
    }
    for name, path in pages.items():
        page.goto(base + path)
        shot(page, name)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} is {width}px wide on a 390px screen"
    sign_in(page, base, "shop", users["shop"])
    page.goto(f"{base}/console/org")
    shot(page, "phone-enterprise")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    sign_in(page, base, "reviewer", users["reviewer"])
    page.wait_for_selector("#chart-behaviour[data-drawn='1'] canvas")
    shot(page, "phone-dashboard")
    page.goto(f"{base}/console/review")
    shot(page, "phone-review")
    phone.close()
