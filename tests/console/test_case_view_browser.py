"""The reviewer's case view in Chromium (#17), in Chinese and in English: only the steps possible now,
a refused step's reason on the page, a revocation confirmed first, the entries search, and a request for
more material (补正) on an objection and on a credit repair application. Screenshots: review-*.png."""

from __future__ import annotations

import re

import pytest

from .test_console_browser import browser, shot, sign_in, site  # noqa: F401  (the fixtures)

pytestmark = pytest.mark.browser

ENGLISH_SENTENCE = re.compile(r"[A-Za-z]{3,}(?: [A-Za-z]{2,}){2,}")
CJK = re.compile(r"[\u4e00-\u9fff]")


def _steps(page) -> set[str]:  # type: ignore[no-untyped-def]
    ids = page.eval_on_selector_all("#steps li.step", "els => els.map(e => e.id)")
    return {i.removeprefix("step-") for i in ids}


def _error(page) -> str:  # type: ignore[no-untyped-def]
    return page.inner_text("#decide-errors")


def test_reviewer_works_a_case_in_chinese(site, browser):  # noqa: F811
    base, users, entry_id = site["base"], site["users"], site["entry_id"]
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, base, "reviewer", users["reviewer"])

    # A submitted entry offers one step: starting the review; it says what will happen.
    page.goto(f"{base}/console/entries/{entry_id}")
    assert _steps(page) == {"start_review"}
    assert "记录进入审核" in page.inner_text("#step-start_review")
    page.click("#take-start_review")
    page.wait_for_url(re.compile(rf".*/console/entries/{entry_id}\?done=start_review.*"))
    assert page.is_visible("#done")
    # Under review, an administrative penalty: notice, publish or reject — publish says who is instructed.
    assert _steps(page) == {"open_notice", "publish", "reject"}
    assert "个单位将收到" in page.inner_text("#step-publish")
    shot(page, "review-case-zh")

    # Meanwhile another tab publishes it: this tab's publish is refused, on the page, in Chinese.
    other = context.new_page()
    other.goto(f"{base}/console/entries/{entry_id}")
    other.click("#take-publish")
    other.wait_for_url(re.compile(r".*done=publish.*"))
    page.click("#take-publish")
    page.wait_for_selector("#decide-errors")
    message = _error(page)
    assert CJK.search(message) and not ENGLISH_SENTENCE.search(message), message
    assert page.is_visible("#steps")
    shot(page, "review-refused-zh")

    # Published: revoking is the one step, confirmed on its own page; without a reason it is refused.
    page.goto(f"{base}/console/entries/{entry_id}")
    assert _steps(page) == {"revoke"}
    page.click("#confirm-revoke")
    page.wait_for_selector("#confirm-form")
    assert "更正公告" in page.inner_text("#confirm")
    shot(page, "review-confirm-zh")
    page.click("#confirm-yes")
    page.wait_for_selector("#decide-errors")
    message = _error(page)
    assert "理由" in message and not ENGLISH_SENTENCE.search(message), message
    page.fill("#c-reason", "处罚决定已被行政复议撤销。")
    page.click("#confirm-yes")
    page.wait_for_url(re.compile(r".*/console/entries\?done=revoke"))
    assert "记录已撤销" in page.inner_text("#done")

    # The entries search: part of a listed company's name.
    page.fill("#f-q", "刷刷乐")
    page.click("#entry-search button[type=submit]")
    page.wait_for_url(re.compile(r".*qs=.*"))
    assert "刷刷乐" not in page.url  # the term travels sealed, never plain in an address
    names = page.inner_text("#entries tbody")
    assert "示范市刷刷乐网络科技有限责任公司" in names and "小明刷单工作室" not in names
    shot(page, "review-search-zh")

    # The objection queue shows the subject; the reviewer asks the objector for more material (补正).
    page.goto(f"{base}/console/objections")
    queue = page.inner_text("#objections tbody")
    assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}", queue), queue
    page.click("#objections tbody a[href^='/console/objections/']")
    page.wait_for_selector("#supplement-form")
    page.click("#supplement-form button[type=submit]")
    page.wait_for_selector("#err-sp-materials")
    said = page.inner_text("#err-sp-materials")
    assert CJK.search(said) and not ENGLISH_SENTENCE.search(said), said
    page.fill("#sp-materials", "请提交行政复议决定书复印件。")
    page.click("#supplement-form button[type=submit]")
    page.wait_for_selector("#awaiting-material")
    assert "待补正" in page.inner_text("#awaiting-material")
    shot(page, "review-supplement-zh")
    assert errors == []
    context.close()


def test_reviewer_asks_for_material_in_english(site, browser):  # noqa: F811
    base, users = site["base"], site["users"]
    context = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, base, "reviewer", users["reviewer"])
    page.goto(f"{base}/console/lang/en?next=/console/repairs")
    page.click(f"a[href='/console/repairs/{site['repair_id']}']")
    page.wait_for_selector("#supplement-form")
    page.fill("#sp-due", "")
    page.fill("#sp-materials", "The signed rectification report.")
    page.click("#supplement-form button[type=submit]")
    page.wait_for_selector("#err-sp-due_on")
    said = page.inner_text("#err-sp-due_on")
    assert not CJK.search(said) and "date" in said, said
    page.goto(f"{base}/console/repairs/{site['repair_id']}")
    page.fill("#sp-materials", "The signed rectification report.")
    page.click("#supplement-form button[type=submit]")
    page.wait_for_selector("#awaiting-material")
    assert "Awaiting material" in page.inner_text("#awaiting-material")
    shot(page, "review-supplement-en")
    # The queue shows the wait; the case view of an entry speaks English too.
    page.goto(f"{base}/console/repairs")
    assert "Awaiting material" in page.inner_text("#repairs tbody")
    page.goto(f"{base}/console/entries/{site['repair_entry']}")
    assert "What will happen" in page.inner_text("#steps")
    shot(page, "review-case-en")
    assert errors == []
    context.close()
