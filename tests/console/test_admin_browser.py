"""The administration pages in Debian's chromium, in Chinese and in English (#17 part 5): the key form
offers the chosen organisation's roles and shows a refusal on the form, the policy matrix, the
dashboard's date range, the audit log in words with its chain status; radio buttons beside their labels.
Screenshots: artifacts/screenshots/admin-*.png.
"""

from __future__ import annotations

import re

import pytest

from .test_accessibility_browser import CHROMIUM, admin_site, sign_in  # noqa: F401  (the fixture)
from .test_console_browser import browser, shot  # noqa: F401  (the fixture)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install chromium)"
    ),
]

ENGLISH_SENTENCE = re.compile(r"[A-Za-z]{3,}(?: [A-Za-z]{2,}){2,}")
CJK = re.compile(r"[\u4e00-\u9fff]")
VISIBLE_ROLES = (
    "() => Array.from(document.querySelectorAll('#k-role option')).filter(o => !o.hidden).map(o => o.value)"
)


def _key_refused(page, base: str) -> str:  # type: ignore[no-untyped-def]
    """Choose an enterprise, ask for a lifetime beyond the limit (the browser's own check removed, as an
    old browser would), and return the message shown at the field."""
    page.goto(f"{base}/console/keys")
    enterprise = page.eval_on_selector("#k-org option[data-kind=enterprise]", "o => o.value")
    page.select_option("#k-org", enterprise)
    assert sorted(page.evaluate(VISIBLE_ROLES)) == ["enterprise_node", "enterprise_operator"]
    assert page.eval_on_selector("#k-role", "s => s.selectedOptions[0].dataset.kind") == "enterprise"
    page.eval_on_selector("#k-days", "i => i.removeAttribute('max')")
    page.fill("#k-days", "99999")
    page.click("#key-form button[type=submit]")
    page.wait_for_selector("#err-k-days")
    # What was chosen is kept.
    assert page.eval_on_selector("#k-org", "s => s.value") == enterprise
    return page.inner_text("#err-k-days")


def test_admin_pages_in_both_languages(admin_site, browser):  # noqa: F811
    base, users = admin_site["base"], admin_site["users"]
    errors: list[str] = []
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = ctx.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, base, "admin", users["admin"])

    # The key form: the roles follow the organisation's kind; a refusal is shown at its field, in Chinese.
    page.goto(f"{base}/console/keys")
    platform = page.eval_on_selector("#k-org option[data-kind=platform]", "o => o.value")
    page.select_option("#k-org", platform)
    assert set(page.evaluate(VISIBLE_ROLES)) == {"platform_admin", "platform_reviewer", "auditor"}
    message = _key_refused(page, base)
    assert CJK.search(message) and not ENGLISH_SENTENCE.search(message), message
    shot(page, "admin-keys-error")
    page.fill("#k-days", "30")
    page.click("#key-form button[type=submit]")
    page.wait_for_selector("#issued-key")
    assert page.inner_text("#issued-key").startswith("fcx_")
    shot(page, "admin-keys-issued")

    # The policy as a matrix: measure 3 only for serious cases, with its parameter.
    page.goto(f"{base}/console/policy")
    serious = page.inner_text("#matrix-entries td[data-severity=serious]")
    assert "限制发布商品及服务" in serious and "10" in serious
    assert "限制发布商品及服务" not in page.inner_text("#matrix-entries td[data-severity=minor]")
    shot(page, "admin-policy")

    # The dashboard over a chosen range, and when its figures were taken.
    page.goto(f"{base}/console/")
    page.fill("#d-from", "2020-01-01")
    page.fill("#d-to", "2020-01-31")
    page.click("#range-form button[type=submit]")
    page.wait_for_url(re.compile(r".*date_from=2020-01-01.*"))
    assert "2020-01-01" in page.inner_text("#as-of") and "数据截至" in page.inner_text("#as-of")
    shot(page, "admin-dashboard-range")

    # The audit log, as the auditor: the chain is intact; the key just made, in words.
    sign_in(page, base, "auditor", users["auditor"])
    page.goto(f"{base}/console/audit")
    assert page.get_attribute("#chain-status", "data-ok") == "1"
    page.select_option("#a-action", "api_key.create")
    page.click("form.filters button[type=submit]")
    page.wait_for_selector("#audit-rows tr[data-action='api_key.create']")
    row = page.locator("#audit-rows tr[data-action='api_key.create']").first
    assert "api_key.create" not in row.inner_text() and CJK.search(row.inner_text())
    assert "状态" in row.inner_text()
    shot(page, "admin-audit")

    # Radio buttons sit beside their labels (the objection decision of the demo's open objection).
    sign_in(page, base, "reviewer", users["reviewer"])
    page.goto(f"{base}/console/objections")
    page.locator("main a[href^='/console/objections/']").first.click()
    radio = page.locator("main input[type=radio]").first
    radio.wait_for()
    box = radio.bounding_box()
    text = page.locator(f"label[for='{radio.get_attribute('id')}']").bounding_box()
    assert 0 <= text["x"] - (box["x"] + box["width"]) < 16, (box, text)
    assert abs((text["y"] + text["height"] / 2) - (box["y"] + box["height"] / 2)) < 12, (box, text)
    shot(page, "admin-radio")

    # In English: the same refusal in English, the policy and the audit log in English.
    page.click("nav.lang a[hreflang=en]")
    page.wait_for_selector("html[lang=en]")
    sign_in(page, base, "admin", users["admin"])
    message = _key_refused(page, base)
    assert ENGLISH_SENTENCE.search(message) and not CJK.search(message), message
    shot(page, "admin-keys-error-en")
    page.goto(f"{base}/console/policy")
    assert "at most 10 new listings a day" in page.inner_text("#matrix-entries td[data-severity=serious]")
    shot(page, "admin-policy-en")
    sign_in(page, base, "auditor", users["auditor"])
    page.goto(f"{base}/console/audit?action=api_key.create")
    assert "Intact" in page.inner_text("#chain-status")
    assert "Issued an API key" in page.inner_text("#audit-rows tr[data-action='api_key.create']")
    shot(page, "admin-audit-en")
    page.click("nav.lang a[hreflang=zh-CN]")
    page.wait_for_selector("html[lang=zh-CN]")
    assert errors == [], errors
    ctx.close()
