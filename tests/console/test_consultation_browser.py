"""The regular consultation (定期会商) in Debian's chromium (Playwright): the platform's administrator
schedules a meeting (one in the past refused at its field), the demo shop's operator raises a disputed
measure on it, the administrator holds it, records a decision and an action item for the shop (one
without an owner refused), and the shop closes its action item with a note — in Chinese, then in
English. Screenshots: artifacts/screenshots/consultation-*.png."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from fanchaoxin.core.calendar import SHANGHAI
from fanchaoxin.core.db import Database
from fanchaoxin.demo import load_demo

from .console_helpers import serve
from .test_console_browser import CHROMIUM, UNLABELLED, browser, shot, sign_in  # noqa: F401

SHOP = "示例优选电子商务有限公司"  # the demo shop, whose operator signs in as "shop"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    url = f"sqlite:///{tmp_path_factory.mktemp('consultation') / 'fcx.db'}"
    db = Database(url)
    db.upgrade()
    keys = load_demo(db)
    assert keys is not None
    try:
        with serve(db, url) as served:
            yield {"base": served["base"], "users": {u.username: u.password for u in keys.users}}
    finally:
        db.dispose()


def _local(dt: datetime) -> str:
    return dt.astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M")


def test_schedule_raise_hold_decide_and_close_in_both_languages(site, browser):  # noqa: F811
    base, users = site["base"], site["users"]
    admin = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN").new_page()
    errors: list[str] = []
    admin.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(admin, base, "admin", users["admin"])

    # A meeting in the past is refused, in Chinese, next to its field; then one next week is scheduled.
    admin.goto(f"{base}/console/consultation")
    admin.select_option("#s-kind", "ad_hoc")
    admin.fill("#s-title", "临时会商：新型刷单")
    admin.fill("#s-starts", _local(datetime.now(SHANGHAI) - timedelta(days=1)))
    admin.click("#schedule-form button[type=submit]")
    err = admin.locator("#s-starts + p.field-error")
    assert "过去" in err.inner_text()
    assert admin.get_attribute("#s-starts", "aria-invalid") == "true"
    admin.fill("#s-starts", _local(datetime.now(SHANGHAI) + timedelta(days=7)))
    admin.fill("#s-place", "北京")
    admin.click("#schedule-form button[type=submit]")
    admin.wait_for_selector("#done")
    meeting_url = admin.url.split("?")[0]
    assert "已安排" in admin.inner_text("#meeting-status")
    assert admin.evaluate(UNLABELLED) == []
    shot(admin, "consultation-meeting-zh")

    # The shop raises a disputed measure on it.
    shop = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN").new_page()
    sign_in(shop, base, "shop", users["shop"])
    shop.goto(f"{base}/console/consultation")
    shop.select_option("#r-kind", "disputed_measure")
    shop.fill("#r-title", "措施4的适用条件")
    shop.select_option("#r-meeting", value=meeting_url.rsplit("/", 1)[1])  # the demo has its own meeting
    shop.click("#raise-form button[type=submit]")
    assert "有争议" in shop.locator("#r-measure ~ p.field-error").inner_text()
    shop.select_option("#r-measure", index=4)
    shop.click("#raise-form button[type=submit]")
    shop.wait_for_selector("#done")
    assert "措施4的适用条件" in shop.inner_text("#agenda-items")
    assert shop.locator("#schedule-form").count() == 0  # only the platform schedules

    # Held, a decision, an action item (without an owner first: refused at the field).
    admin.goto(meeting_url)
    assert "措施4的适用条件" in admin.inner_text("#agenda")
    admin.fill("#mi-text", "会议纪要：各方同意收紧措施4。")
    admin.click("#hold")
    admin.wait_for_selector("#done")
    assert "已召开" in admin.inner_text("#meeting-status")
    admin.fill("#d-text", "收紧措施4的适用条件")
    admin.select_option("#d-item", index=1)
    admin.click("#decision-form button[type=submit]")
    admin.wait_for_selector("#done")
    admin.fill("#ac-title", "提交措施4的适用数据")
    admin.fill("#ac-days", "5")
    admin.click("#action-form button[type=submit]")
    assert "责任单位" in admin.locator("#ac-owner ~ p.field-error").inner_text()
    admin.select_option("#ac-owner", label=SHOP)
    admin.click("#action-form button[type=submit]")
    admin.wait_for_selector("#done")
    assert "提交措施4的适用数据" in admin.inner_text("#meeting-actions")
    assert errors == []

    # In English: the shop's action items, closed with a note.
    shop.goto(f"{base}/console/lang/en?next=/console/consultation/action-items")
    rows = shop.locator("#actions tbody tr")
    assert "提交措施4的适用数据" in shop.inner_text("#actions")
    assert "Open" in rows.first.inner_text()
    shop.click("#actions form button[type=submit]")
    assert "Say what was done" in shop.inner_text("#actions")
    shop.fill("#actions input[name=note]", "Data sent on time")
    shop.click("#actions form button[type=submit]")
    shop.wait_for_selector("#done")
    assert "Closed" in shop.inner_text("#actions")
    shot(shop, "consultation-actions-en")
    shop.goto(f"{base}/console/consultation")
    assert "Regular consultation" in shop.inner_text("h1")
