"""Rulebooks in Debian's chromium (Playwright, #22): the demo shop's operator excludes measure 4 with a
clause (a missing clause first), in Chinese; the platform's overview shows it, in English.
Screenshots: artifacts/screenshots/rulebook-*.png."""

from __future__ import annotations

from collections.abc import Iterator

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

CLAUSE = "《示范商城用户协议》第8.3条：本平台不开展促销活动"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    url = f"sqlite:///{tmp_path_factory.mktemp('rulebooks') / 'fcx.db'}"
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


def test_operator_excludes_measure_4_and_the_platform_sees_why(site, browser):  # noqa: F811
    base, users, shop = site["base"], site["users"], site["shop"]
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, base, "shop", users["shop"].password)
    page.goto(f"{base}/console/orgs/{shop}/rulebook")
    assert page.inner_text("h1").startswith("企业规则")
    assert page.locator("#rulebook tbody tr").count() == 13
    assert page.evaluate(UNLABELLED) == []
    # excluded without a clause: refused, the row named, nothing saved
    page.select_option("#choice-restrict_promotions", "excluded")
    page.click("#rulebook-save")
    assert "请注明允许或排除该措施的用户协议或平台规则条款" in page.inner_text(
        "#err-clause-restrict_promotions"
    )
    page.fill("#clause-restrict_promotions", CLAUSE)
    page.click("#rulebook-save")
    page.wait_for_selector("#done")
    assert page.inner_text("#done") == "企业规则已保存。"
    assert page.get_attribute("#rule-restrict_promotions", "data-choice") == "excluded"
    assert page.input_value("#clause-restrict_promotions") == CLAUSE
    shot(page, "rulebook-operator")
    context.close()

    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en")
    context.add_cookies([{"name": LANG_COOKIE, "value": "en", "url": f"{base}/console/"}])
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, base, "admin", users["admin"].password)
    page.goto(f"{base}/console/rulebooks")
    assert page.inner_text("h1") == "Enterprises' rulebooks"
    row = page.locator("#exclusions tbody tr[data-measure='restrict_promotions']")
    assert "No promotions or shop celebrations" in row.inner_text() and CLAUSE in row.inner_text()
    row.locator("a").click()
    page.wait_for_selector("#rulebook")
    assert page.locator("#choice-restrict_promotions").input_value() == "excluded"
    shot(page, "rulebook-platform")
    context.close()
    assert errors == []
