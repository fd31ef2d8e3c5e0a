"""No English on a zh-CN page in any error path (#17, Done when): one walk in Chromium through the error
paths of every area — the public site, sign-in, the staff pages, the operator's workbench, administration
— checking the whole of each page's main text, not only its error box: no two English words in a row (a
sentence left untranslated), no field path, no rule tag, no framework wording."""

from __future__ import annotations

import re

import pytest

from .test_console_browser import browser, shot, sign_in, site  # noqa: F401  (fixtures)
from .test_problems import KEPT_ASCII, LEAKS

pytestmark = pytest.mark.browser

# Two English words in a row with a space between (prose, not a key's label such as demo-enterprise or a
# piece of an id), once the technical names a Chinese page keeps are taken out.
ENGLISH = re.compile(r"[A-Za-z]{2,}[,.;:'’]?[ \t]+[A-Za-z]{2,}")
KEPT = re.compile(r"\b(?:" + "|".join(sorted(KEPT_ASCII, key=len, reverse=True)) + r")\b")
CJK = re.compile(r"[\u4e00-\u9fff]")


def english_in(text: str) -> list[str]:
    return ENGLISH.findall(KEPT.sub(" ", text))


def check(page, where: str) -> None:  # type: ignore[no-untyped-def]
    """The page's main text is Chinese, with an error said, and nothing of it in English."""
    main = page.inner_text("main")
    alerts = " ".join(
        page.locator("main [role=alert], main .field-error, main .alert.error, main .error").all_inner_texts()
    )
    problem = page.locator("main #problem").count()  # the error page (404, 422 …): its own sentence
    assert alerts.strip() or problem, f"{where}: no error shown"
    assert CJK.search(main), f"{where}: no Chinese on the page"
    assert not english_in(main), f"{where}: English on a zh-CN page: {english_in(main)}"
    assert not LEAKS.search(page.content()), (
        f"{where}: a field path or framework wording: {LEAKS.search(page.content())}"
    )


def submit(page, form: str = "main form:has(button[type=submit])") -> None:  # type: ignore[no-untyped-def]
    """Send the form as it is; the browser's own checks (required, min …) are turned off, so that what the
    server says is what is checked."""
    target = page.locator(form).first
    target.evaluate("f => { f.noValidate = true; }")
    with page.expect_navigation():
        target.locator("button[type=submit]").first.click()


def test_every_error_path_walked_in_zh_cn_is_said_in_chinese(site, browser):  # noqa: F811
    base, users = site["base"], site["users"]
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page_errors: list[str] = []
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))

    # --- the public: a mistyped code, then every form sent empty, a wrong progress secret ------------------
    page.goto(f"{base}/console/public")
    page.fill("#q", "9135010000010Y43")  # a USCC of 16 characters
    page.click("form[role=search] button[type=submit]")
    page.wait_for_selector("#results .alert, #results [role=alert]")
    check(page, "public query")
    for path in ("objection", "repair", "report", "access", "statement", "progress"):
        page.goto(f"{base}/console/public/{path}")
        submit(page)
        check(page, f"public {path}, sent empty")
        shot(page, f"errors-public-{path}")
    page.goto(f"{base}/console/public/progress")
    page.locator("main form input:not([type=hidden])").first.fill("YY20261205-0000")
    page.locator("main form input:not([type=hidden])").nth(1).fill("not-the-secret")
    submit(page)
    check(page, "progress, a wrong secret")
    page.goto(f"{base}/console/public/records/00000000-0000-4000-8000-000000000000")
    check(page, "a record that is not public")

    # --- sign-in, and pages that do not exist -------------------------------------------------------------
    page.goto(f"{base}/console/login")
    page.fill("#username", "reviewer")
    page.fill("#password", "not the password")
    submit(page, "form:has(#username)")
    check(page, "sign-in, a wrong password")
    sign_in(page, base, "reviewer", users["reviewer"])
    for path in ("no-such-page", "entries/not-a-uuid", "entries/00000000-0000-4000-8000-000000000000"):
        page.goto(f"{base}/console/{path}")
        check(page, path)
    page.goto(f"{base}/console/entries?from=2026-12-05&to=2026-01-01")
    check(page, "entries, a range that ends before it starts")
    page.goto(f"{base}/console/?date_from=2026-12-05&date_to=2026-01-01")
    check(page, "dashboard, a range that ends before it starts")
    shot(page, "errors-dashboard-range")
    # the due-process cases: an objection decided with no outcome and no reason, a report dismissed
    # with no reason
    for queue, form in (("objections", "#decide-form"), ("reports", "#triage-form")):
        page.goto(f"{base}/console/{queue}")
        with page.expect_navigation():
            page.locator(f"main a[href*='/console/{queue}/']").first.click()
        if queue == "reports":
            page.select_option("#tr-action", "dismiss")
        submit(page, form)
        check(page, f"{queue}: a decision sent empty")
        shot(page, f"errors-{queue}-decide")
    page.goto(f"{base}/console/repairs/{site['repair_id']}")
    submit(page, "#repair-form")
    check(page, "credit repair: a decision sent empty")
    context.clear_cookies()

    # --- the operator: bulk feedback with nothing chosen, a 报送 sent empty ----------------------------------
    sign_in(page, base, "shop", users["shop"])
    page.goto(f"{base}/console/workbench?tab=to_ack")
    submit(page, "#wb-bulk")  # nothing selected, no outcome
    check(page, "workbench, a bulk step with nothing selected")
    page.goto(f"{base}/console/workbench/submit")
    submit(page)
    check(page, "报送, sent empty")
    shot(page, "errors-workbench-submit")
    context.clear_cookies()

    # --- administration: an audit filter with a bad date, a key with a lifetime out of range ----------------
    sign_in(page, base, "admin", users["admin"])
    page.goto(f"{base}/console/audit?date_from=yesterday")
    check(page, "audit log, a bad date")
    page.goto(f"{base}/console/keys")
    lifetime = page.locator("main form input[type=number]").first
    lifetime.evaluate("el => { el.removeAttribute('min'); el.removeAttribute('max'); }")
    lifetime.fill("0")
    submit(page, "main form:has(input[type=number])")
    check(page, "a key valid for 0 days")
    shot(page, "errors-key-form")
    assert page_errors == []
    context.close()
