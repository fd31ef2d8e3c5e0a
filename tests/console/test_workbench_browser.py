"""The instruction workbench in Debian's chromium (Playwright): the demo shop's operator filters, selects
every row and reports them in one go, uploads a feedback file (a wrong one first), submits an entry
with evidence, in Chinese and in English. Screenshots: artifacts/screenshots/workbench-*.png."""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.core.audit import SYSTEM
from fanchaoxin.core.db import Database
from fanchaoxin.core.identifiers import org_code_check_char, uscc_check_char
from fanchaoxin.demo import load_demo
from fanchaoxin.orgs.models import Organisation
from fanchaoxin.workflows.entries import take_step

from .console_helpers import penalty_entry, serve
from .test_console_browser import CHROMIUM, UNLABELLED, browser, shot, sign_in  # noqa: F401

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
]


def uscc(n: int) -> str:
    """A valid unified social credit code (GB 11714 and GB 32100 check characters) numbered n."""
    org = f"M{n:07d}"
    first17 = "91350100" + org + org_code_check_char(org)
    return first17 + uscc_check_char(first17)


# The companies the shop is instructed about besides the demo's: enough rows to select at once.
EXTRA = [(uscc(9000 + n), f"示范批量刷单{n:02d}有限公司") for n in range(16)]
AXE = (
    Path(__file__).resolve().parents[2]
    / "src"
    / "fanchaoxin"
    / "console"
    / "static"
    / "vendor"
    / "axe.min.js"
)
SERIOUS = """async () => (await axe.run(document)).violations
  .filter(v => v.impact === 'serious' || v.impact === 'critical')
  .map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).slice(0, 3).join(', '))"""
# An English sentence (three Latin words in a row) in an error message of a zh-CN page.
ENGLISH = re.compile(r"[A-Za-z]{2,}[ ,:]+[A-Za-z]{2,}[ ,:]+[A-Za-z]{2,}")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    url = f"sqlite:///{tmp_path_factory.mktemp('workbench') / 'fcx.db'}"
    db = Database(url)
    db.upgrade()
    keys = load_demo(db)
    assert keys is not None
    with db.session() as s:
        market = s.scalar(select(Organisation.id).where(Organisation.name == "示范市市场监督管理局"))
    for uscc, name in EXTRA:
        entry_id = penalty_entry(db, market, name=name, uscc=uscc)
        with db.session() as s:
            e = s.get(Entry, entry_id)
            take_step(s, SYSTEM, e, Action.start_review)
            take_step(s, SYSTEM, e, Action.publish)
    try:
        with serve(db, url) as served:
            yield {
                "base": served["base"],
                "users": {u.username: u.password for u in keys.users},
            }
    finally:
        db.dispose()


def serious_violations(page) -> list[str]:  # type: ignore[no-untyped-def]
    """What axe-core (vendored) calls serious or critical on the page; nothing when it is not vendored."""
    if not AXE.exists():
        return []
    page.add_script_tag(path=str(AXE))
    return page.evaluate(SERIOUS)  # type: ignore[no-any-return]


def count(page, tab: str) -> int:  # type: ignore[no-untyped-def]
    return int(page.inner_text(f"#tab-{tab} .wb-count"))


def error_text(page) -> str:  # type: ignore[no-untyped-def]
    return " ".join(page.locator(".alert.error, .field-error").all_inner_texts())


def test_operator_filters_selects_all_and_reports_in_bulk(site, browser):  # noqa: F811
    base, users = site["base"], site["users"]
    context = browser.new_context(
        viewport={"width": 1366, "height": 900}, locale="zh-CN", accept_downloads=True
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, base, "shop", users["shop"])
    page.click("nav.main-nav a[href='/console/workbench']")
    page.wait_for_selector("#wb-table")
    assert page.inner_text("h1") == "执行指令工作台"
    to_ack = count(page, "to_ack") + count(page, "overdue")
    assert to_ack >= 20, "the demo shop and the extra entries give many instructions to acknowledge"
    # The shop's own account, which it submitted itself, in full; the person's name masked.
    page.goto(f"{base}/console/workbench?tab=done&q=demo-select:shop-2231")
    assert "demo-select:shop-2231" in page.inner_text("#wb-table")
    page.goto(f"{base}/console/workbench")
    assert page.evaluate(UNLABELLED) == []
    shot(page, "workbench-list")

    # Filter by a measure, rows per page 500, select every row: acknowledge them in one request.
    page.select_option("#f-measure", "downgrade_credit_level")
    page.select_option("#f-size", "500")
    page.click("#f-apply")
    page.wait_for_url("**measure=downgrade_credit_level**")
    filtered = count(page, "to_ack")
    assert 0 < filtered < to_ack
    shot(page, "workbench-filtered")
    assert filtered >= len(EXTRA)
    page.check("#select-all")
    assert page.inner_text("#wb-selected") == str(filtered)
    page.click("#bulk-ack")
    page.wait_for_selector("#done")
    assert f"已确认接收 {filtered} 条指令" in page.inner_text("#done")
    assert count(page, "to_ack") == 0

    # Everything to execute, all selected: the outcome must be chosen, so the first try is refused.
    page.goto(f"{base}/console/workbench?tab=to_execute&size=500")
    pending = count(page, "to_execute")
    assert pending >= filtered
    page.check("#select-all")
    assert page.inner_text("#wb-selected") == str(pending)
    page.click("#bulk-feedback")
    page.wait_for_selector("#wb-errors")
    assert "请选择执行结果" in error_text(page) and not ENGLISH.search(error_text(page))
    shot(page, "workbench-outcome-required")
    # What was selected stays selected; failed without a reason names every instruction, in Chinese.
    assert page.inner_text("#wb-selected") == str(pending)
    page.select_option("#bulk-outcome", "failed")
    page.click("#bulk-feedback")
    page.wait_for_selector("#wb-errors")
    assert not ENGLISH.search(error_text(page)), error_text(page)
    page.check("#select-all")
    page.select_option("#bulk-outcome", "not_applicable")
    page.fill("#bulk-reason", "本平台无该主体账户")
    started = time.monotonic()
    page.click("#bulk-feedback")
    page.wait_for_selector("#done")
    assert time.monotonic() - started < 10
    assert f"已反馈 {pending} 条指令的执行情况" in page.inner_text("#done")
    assert count(page, "to_execute") == 0
    shot(page, "workbench-reported")
    assert errors == []


def test_workbench_on_a_phone(site, browser):  # noqa: F811
    base, users = site["base"], site["users"]
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = phone.new_page()
    sign_in(page, base, "shop", users["shop"])
    page.goto(f"{base}/console/workbench?tab=done")
    page.wait_for_selector("#wb-table")
    shot(page, "workbench-phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.goto(f"{base}/console/workbench/submit")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    phone.close()


def test_feedback_file_and_submission_in_both_languages(site, browser):  # noqa: F811
    base, users = site["base"], site["users"]
    context = browser.new_context(
        viewport={"width": 1366, "height": 900}, locale="zh-CN", accept_downloads=True
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, base, "shop", users["shop"])
    # In English: the tabs, the rows, and a report without an outcome refused in English.
    page.goto(f"{base}/console/lang/en?next=/console/workbench")
    page.goto(f"{base}/console/workbench?tab=to_ack")
    assert "To acknowledge" in page.inner_text(".wb-tabs")
    page.check("#select-all")
    page.click("#bulk-feedback")
    page.wait_for_selector("#wb-errors")
    assert "Choose the outcome: executed, not applicable or failed." in error_text(page)
    shot(page, "workbench-en")
    page.goto(f"{base}/console/lang/zh_CN?next=/console/workbench")

    page.goto(f"{base}/console/workbench?tab=to_ack&size=500")
    with page.expect_download() as download:
        page.click("#export-csv")
    lines = list(csv.reader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8-sig"))))
    header, rows = lines[0], lines[1:]
    assert header[0] == "指令编号" and rows
    outcome = header.index("执行结果")
    for row in rows:
        row[outcome] = "不适用"
    rows[0][outcome] = "已办"  # not an outcome
    upload = Path(download.value.path()).with_name("feedback.csv")

    def send(lines_: list[list[str]]) -> None:
        text = io.StringIO()
        csv.writer(text).writerows(lines_)
        upload.write_text(text.getvalue(), encoding="utf-8-sig")
        page.set_input_files("#import-file", str(upload))
        page.click("#import-submit")

    send([header, *rows])
    page.wait_for_selector("#import-report")
    report = page.inner_text("#import-report")
    assert re.search(r"^2\s+未知的执行结果", report, re.M), report
    assert not ENGLISH.search(" ".join(page.locator(".import-error").all_inner_texts()))
    shot(page, "workbench-import-report")
    assert count(page, "to_ack") >= len(rows)  # nothing was applied
    rows[0][outcome] = "不适用"
    send([header, *rows])
    page.wait_for_selector("#done")
    assert f"已反馈 {len(rows)} 条指令" in page.inner_text("#done")
    shot(page, "workbench-import-done")

    # 报送: the form refuses what is missing, on the form, in Chinese; then takes the entry and its evidence.
    page.click("#wb-submit-link")
    page.wait_for_selector("#submit-form")
    page.select_option("#s-subject_kind", "platform_account")
    page.fill("#s-id_value_0", "demo-select:u77000001")
    page.select_option("#s-id_type_0", "platform_account")
    page.click("#submit-entry")
    page.wait_for_selector("#submit-errors")
    assert page.locator(".field-error").count() >= 3
    assert not ENGLISH.search(error_text(page)), error_text(page)
    assert page.input_value("#s-id_value_0") == "demo-select:u77000001"
    shot(page, "workbench-submit-errors")
    page.fill("#s-subject_name", "刷单账户乙")
    page.check("#s-b-order_brushing")
    page.select_option("#s-role", "participant")
    page.select_option("#s-severity", "general")
    page.fill("#s-facts", "该账户于 2026 年 11 月参与刷单 86 笔，订单记录见附件。")
    evidence = upload.with_name("orders.txt")
    evidence.write_text("订单号 20261101-0001 至 20261101-0086", encoding="utf-8")
    page.set_input_files("#s-evidence", str(evidence))
    page.click("#submit-entry")
    page.wait_for_url("**/console/entries/**")
    assert "orders.txt" in page.content()
    shot(page, "workbench-submitted")
    assert errors == []


@pytest.mark.skipif(not AXE.exists(), reason="axe-core is not vendored")
def test_workbench_pages_have_no_serious_accessibility_violation(site, browser):  # noqa: F811
    """axe-core, injected into the page under test only (its context lets the test's script past the CSP)."""
    base, users = site["base"], site["users"]
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN", bypass_csp=True)
    page = context.new_page()
    sign_in(page, base, "shop", users["shop"])
    found = {}
    page.goto(f"{base}/console/workbench?tab=done")
    found["list"] = serious_violations(page)
    page.goto(f"{base}/console/workbench")
    page.click("#bulk-feedback")  # nothing selected, no outcome: the errors shown on the list
    page.wait_for_selector("#wb-errors")
    found["errors"] = serious_violations(page)
    page.goto(f"{base}/console/workbench/submit")
    page.click("#submit-entry")
    page.wait_for_selector("#submit-errors")
    found["submit"] = serious_violations(page)
    assert found == {"list": [], "errors": [], "submit": []}
    context.close()
