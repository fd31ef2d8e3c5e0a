"""The information-sharing agreement in Debian's chromium (Playwright, #22): the platform publishes a version
(in Chinese), the demo shop's operator signs it with a PDF upload (a file that is not a PDF first, in
English), the platform suspends the shop and its page shows the reason. Screenshots:
artifacts/screenshots/agreement-*.png."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from fanchaoxin.console.auth import LANG_COOKIE
from fanchaoxin.core.db import Database
from fanchaoxin.demo import load_demo
from fanchaoxin.orgs.models import Organisation

from .console_helpers import serve
from .test_console_browser import CHROMIUM, UNLABELLED, browser, shot, sign_in  # noqa: F401

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
]

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    url = f"sqlite:///{tmp_path_factory.mktemp('agreements') / 'fcx.db'}"
    db = Database(url)
    db.upgrade()
    keys = load_demo(db)
    assert keys is not None
    users = {u.username: u for u in keys.users}
    with db.session() as s:
        shop = s.scalar(select(Organisation.id).where(Organisation.name == users["shop"].organisation))
    try:
        with serve(db, url) as served:
            yield {"base": served["base"], "users": users, "shop": shop}
    finally:
        db.dispose()


def test_publish_sign_suspend(site, browser, tmp_path: Path):  # noqa: F811
    base, users, shop = site["base"], site["users"], site["shop"]
    errors: list[str] = []

    # the platform publishes a version, in Chinese
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, base, "admin", users["admin"].password)
    page.click("nav.main-nav a[href='/console/agreements']")
    assert page.inner_text("h1") == "信息共享协议"
    page.fill("#v-version", "2026.2")  # the demo published 2026.1
    page.fill("#v-title", "反炒信信息共享协议")
    page.fill("#v-text", "第一条 双方依法共享炒信黑名单信息……")
    page.fill("#v-summary", "Share the blacklist lawfully; never leak it.")
    page.click("#publish-form button[type=submit]")
    page.wait_for_selector("#done")
    assert page.inner_text("#done") == "协议版本已发布。"
    assert "现行" in page.inner_text("#versions")
    assert page.evaluate(UNLABELLED) == []
    shot(page, "agreement-platform")
    context.close()

    # the shop's operator signs it, in English: a file that is not a PDF is refused first
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en")
    context.add_cookies([{"name": LANG_COOKIE, "value": "en", "url": f"{base}/console/"}])
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, base, "shop", users["shop"].password)
    page.click("nav.main-nav a[href='/console/agreement']")
    assert "In force" in page.inner_text("#standing")  # signed 2026.1 in the demo: still in force
    not_pdf, pdf = tmp_path / "scan.png", tmp_path / "signed.pdf"
    not_pdf.write_bytes(b"\x89PNG\r\n\x1a\n not a pdf")
    pdf.write_bytes(PDF)
    page.fill("#s-signatory", "张三")
    page.fill("#s-title", "法务总监")
    page.set_input_files("#s-file", str(not_pdf))
    page.click("#sign-form button[type=submit]")
    page.wait_for_selector("#agreement-errors")
    assert "The signed agreement must be a PDF file." in page.inner_text("#agreement-errors")
    page.fill("#s-signatory", "张三")
    page.set_input_files("#s-file", str(pdf))
    page.click("#sign-form button[type=submit]")
    page.wait_for_selector("#done")
    assert page.inner_text("#done") == "The signature is recorded: the enterprise takes part."
    assert "Version 2026.2, signed on" in page.inner_text("#standing")
    assert page.locator("#signatures tr.signature").count() == 2  # the demo's 2026.1, and this one
    assert page.evaluate(UNLABELLED) == []
    shot(page, "agreement-enterprise")
    context.close()

    # the platform suspends the shop; the shop's page shows the reason
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, base, "admin", users["admin"].password)
    page.goto(f"{base}/console/agreements")
    row = page.locator(f"tr.participant[data-org='{shop}']")
    row.locator("input[name=reason]").fill("数据泄露")
    row.locator("button[type=submit]").click()
    page.wait_for_selector("#done")
    assert "已暂停" in page.locator(f"tr.participant[data-org='{shop}']").inner_text()
    page.goto(f"{base}/console/orgs/{shop}")
    text = page.inner_text("#agreement")
    assert "已暂停" in text and "数据泄露" in text
    assert page.get_attribute("#rulebook-link", "href") == f"/console/orgs/{shop}/rulebook"
    shot(page, "agreement-suspended")
    context.close()
    assert errors == []
