"""A citizen on a phone (375×812), in Chinese and in English (#17 part 4): finds a listed company by part of
its name, opens its record, files an objection from it (with a file and a mobile number, after a wrong
mobile number is named at its field) and checks its progress. Screenshots: artifacts/screenshots/public-*.png.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.core.audit import SYSTEM
from fanchaoxin.core.db import Database
from fanchaoxin.demo import load_demo
from fanchaoxin.orgs.models import Organisation
from fanchaoxin.workflows.entries import take_step

from .console_helpers import penalty_entry, serve
from .test_accessibility_browser import BLOCKING, violations
from .test_console_browser import browser, pytestmark, shot  # noqa: F401  (fixture, marks, screenshots)

PHONE = {"width": 375, "height": 812}
COMPANIES = {
    "zh_CN": ("浙江示范炒信网络科技有限公司", "91350100M000100Y43", "炒信网络"),
    "en": ("宁波示范虚假评价电子商务有限公司", "93330782MA28D4W70N", "虚假评价电子"),
}
# An English sentence (two words of three letters or more) where a zh-CN page shows an error.
ENGLISH = re.compile(r"[A-Za-z]{3,}\s+[A-Za-z]{3,}")
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture(scope="module")
def public_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    url = f"sqlite:///{tmp_path_factory.mktemp('public-browser') / 'fcx.db'}"
    db = Database(url)
    db.upgrade()
    assert load_demo(db) is not None
    with db.session() as s:
        market = s.scalar(select(Organisation.id).where(Organisation.name == "示范市市场监督管理局"))
    entries = {}
    for locale, (name, uscc, _part) in COMPANIES.items():
        entries[locale] = penalty_entry(db, market, name=name, uscc=uscc)
        with db.session() as s:
            e = s.get(Entry, entries[locale])
            take_step(s, SYSTEM, e, Action.start_review)
            take_step(s, SYSTEM, e, Action.publish)
    try:
        with serve(db, url) as served:
            yield {"base": served["base"], "entries": entries}
    finally:
        db.dispose()


def _fits(page, what: str) -> None:  # type: ignore[no-untyped-def]
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{what} is {width}px wide on a {PHONE['width']}px screen"


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_a_citizen_on_a_phone_finds_objects_and_follows_up(public_site, browser, locale):  # noqa: F811
    base, entry_id = public_site["base"], public_site["entries"][locale]
    name, uscc, part = COMPANIES[locale]
    sfx = "" if locale == "zh_CN" else "-en"
    ctx = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale="zh-CN")
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{base}/console/public")
    if locale == "en":
        page.click("nav.lang a[hreflang=en]")
        page.wait_for_selector("html[lang=en]")

    # The guides are in the navigation.
    page.click("nav.main-nav a[href='/console/public/guide/repair']")
    page.wait_for_selector("#guide-periods")
    _fits(page, "the repair guide")
    shot(page, f"public-guide-repair{sfx}")
    page.click("nav.main-nav a[href='/console/public/guide/objection']")
    page.wait_for_selector("#guide-time-limits")
    _fits(page, "the objection guide")

    # One box, part of the name: the company is found; nothing searched is in the URL.
    page.goto(f"{base}/console/public")
    page.fill("#q", part)
    page.click("form[role=search] button[type=submit]")
    page.wait_for_selector(f"#results .result:has-text('{name}')")
    assert page.get_attribute("#q-kind", "data-kind") == "name"
    assert "q=" not in page.url and part not in page.url
    _fits(page, "the search results")
    shot(page, f"public-search{sfx}")

    # Its record: who decided, the document, the dates.
    page.click(f"#results a.record-link[href='/console/public/records/{entry_id}']")
    page.wait_for_selector("#record-facts")
    assert page.inner_text("#record-name") == name
    assert page.inner_text("#record-authority") == "示范市市场监督管理局"
    assert "测罚〔2026〕1号" in page.inner_text("#record-document")
    _fits(page, "the record page")
    shot(page, f"public-record{sfx}")

    # The objection starts from the record: no id to type. A wrong mobile number is named at its field.
    page.click("#object")
    page.wait_for_selector("#objection-form")
    assert page.locator("#objection-form input[name=entry_id]").get_attribute("type") == "hidden"
    page.select_option("#o-type", "uscc")
    page.fill("#o-value", uscc)
    page.fill("#o-grounds", "处罚决定已被行政复议撤销，请核实并更正。")
    page.set_input_files(
        "#o-files", files=[{"name": "复议决定书.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    assert re.search(r"复议决定书\.pdf · \d+ B", page.inner_text("#o-files-list"))
    page.fill("#o-email", "legal@example.cn")
    page.fill("#o-phone", "12345")
    page.click("#objection-form button[type=submit]")
    page.wait_for_selector("#err-contact_phone")
    said = page.inner_text("#form-errors") + page.inner_text("#err-contact_phone")
    if locale == "zh_CN":
        assert "手机号码" in said and not ENGLISH.search(said), said
    else:
        assert "mobile number" in said
    _fits(page, "the objection form with its errors")
    shot(page, f"public-objection-error{sfx}")

    # Put right and sent (the file is chosen again: a browser never keeps a file across a page).
    page.fill("#o-value", uscc)
    page.set_input_files(
        "#o-files", files=[{"name": "复议决定书.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    page.fill("#o-phone", "138 0013 8000")
    shot(page, f"public-objection{sfx}")
    page.click("#objection-form button[type=submit]")
    page.wait_for_selector("#tracking")
    assert page.inner_text("#tracking").startswith("YY")
    _fits(page, "the filing confirmation")
    shot(page, f"public-filed{sfx}")

    # The confirmation's progress check works: the case, its status and its one file.
    page.click("#progress-now button[type=submit]")
    page.wait_for_selector("#case[data-kind=objection]")
    assert page.inner_text("#case-files") == "1"
    _fits(page, "the progress page")
    shot(page, f"public-progress{sfx}")

    # The record now shows the objection being examined.
    page.goto(f"{base}/console/public/records/{entry_id}")
    assert page.get_attribute("#record-status", "data-status") == "disputed"
    assert page.locator("#object").count() == 0
    assert errors == [], errors
    ctx.close()


def test_the_public_forms_and_guides_pass_axe_at_phone_size(public_site, browser):  # noqa: F811
    """axe-core (vendored, injected by the test only) finds nothing serious or critical on the pages this
    part adds, the form shown with its errors included."""
    base, entry_id = public_site["base"], public_site["entries"]["zh_CN"]
    ctx = browser.new_context(viewport=PHONE, is_mobile=True, locale="zh-CN", bypass_csp=True)
    page = ctx.new_page()
    found: dict[str, list] = {}
    for path in (
        "/console/public/guide/objection",
        "/console/public/guide/repair",
        f"/console/public/records/{entry_id}",
        f"/console/public/repair?entry={entry_id}",
        f"/console/public/report?entry={entry_id}",
        "/console/public/objection",
        "/console/public/progress",
    ):
        page.goto(base + path)
        found[path] = [v for v in violations(page) if v["impact"] in BLOCKING]
    page.goto(f"{base}/console/public/report")
    page.click("#report-form button[type=submit]", no_wait_after=True)  # the browser's own checks stop it
    page.evaluate("document.querySelector('#report-form').noValidate = true")
    page.click("#report-form button[type=submit]")
    page.wait_for_selector("#form-errors")
    found["report with errors"] = [v for v in violations(page) if v["impact"] in BLOCKING]
    ctx.close()
    bad = {k: v for k, v in found.items() if v}
    assert not bad, bad
