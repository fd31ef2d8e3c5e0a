"""The coordination page (协同情况) in Debian's chromium (Playwright): the platform administrator opens it
in Chinese, picks another month, mistypes one, switches to English; the demo shop's operator sees its own
row only; the market regulator sees every enterprise. Screenshots: artifacts/screenshots/coordination-*.png."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from fanchaoxin.consultation.models import ActionItem, Meeting
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.db import Database
from fanchaoxin.demo import load_demo
from fanchaoxin.orgs.models import Organisation

from .console_helpers import serve
from .test_console_browser import CHROMIUM, UNLABELLED, browser, shot, sign_in  # noqa: F401

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    url = f"sqlite:///{tmp_path_factory.mktemp('coordination') / 'fcx.db'}"
    db = Database(url)
    db.upgrade()
    keys = load_demo(db)
    assert keys is not None
    users = {u.username: u.password for u in keys.users}
    today = china_today()
    with db.session() as s:
        shop = s.scalar(select(Organisation).where(Organisation.id.in_(_org_of(s, "shop", keys))))
        assert shop is not None
        meeting = Meeting(
            kind="ad_hoc",
            title="数据质量专题会商",
            starts_at=datetime.now(UTC) - timedelta(days=30),
            created_by="test",
        )
        s.add(meeting)
        s.flush()
        s.add(
            ActionItem(
                meeting_id=meeting.id, owner_org_id=shop.id, title="补报核查结果", due_on=today - timedelta(days=3),
                created_by="test", created_at=datetime.now(UTC) - timedelta(days=20),
            )
        )  # fmt: skip
        shop_name = shop.name
    try:
        with serve(db, url) as served:
            yield {"base": served["base"], "users": users, "shop": shop_name, "today": today}
    finally:
        db.dispose()


def _org_of(session, username: str, keys) -> list:  # type: ignore[no-untyped-def]
    name = next(u.organisation for u in keys.users if u.username == username)
    return list(session.scalars(select(Organisation.id).where(Organisation.name == name)))


def test_coordination_page_month_languages_and_own_row(site, browser):  # noqa: F811
    base, users, today = site["base"], site["users"], site["today"]
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, base, "admin", users["admin"])
    page.goto(f"{base}/console/coordination")
    page.wait_for_selector("#coordination")
    assert page.inner_text("h1") == "协同情况统计"
    this_month = f"{today:%Y-%m}"
    assert page.input_value("#c-month") == this_month
    rows = page.locator("#coordination tbody tr[data-org]")
    assert rows.count() >= 2  # every demo enterprise
    # The shop's overdue action item is highlighted.
    shop_row = page.locator(f"#coordination tbody tr:has-text('{site['shop']}')")
    assert "逾期 1" in shop_row.locator(".badge.due-overdue").last.inner_text()
    assert page.evaluate(UNLABELLED) == []
    shot(page, "coordination-zh")

    # Another month, through the picker.
    page.fill("#c-month", "2026-01")
    page.click("#month-form button[type=submit]")
    page.wait_for_url("**month=2026-01**")
    assert "2026-01-01" in page.inner_text("#as-of") and "2026-01-31" in page.inner_text("#as-of")

    # A month that does not exist: said in the reader's words, by the field.
    page.goto(f"{base}/console/coordination?month=2026-13")
    assert "2026-11" in page.inner_text("#err-c-month") and "月份" in page.inner_text("#err-c-month")

    # English.
    page.goto(f"{base}/console/lang/en?next=/console/coordination")
    page.wait_for_selector("#coordination")
    assert page.inner_text("h1") == "Coordination figures"
    assert "Overdue 1" in page.inner_text("#coordination")
    shot(page, "coordination-en")
    context.close()

    # The shop's operator: its own row, linked to its own page.
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, base, "shop", users["shop"])
    page.goto(f"{base}/console/coordination")
    page.wait_for_selector("#own-only")
    rows = page.locator("#coordination tbody tr[data-org]")
    assert rows.count() == 1 and site["shop"] in rows.first.inner_text()
    assert rows.first.locator("a").get_attribute("href") == "/console/org"
    context.close()

    # A department takes part in the consultation: every enterprise, not linked to pages it cannot open.
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, base, "market", users["market"])
    page.goto(f"{base}/console/coordination?month={this_month}")
    page.wait_for_selector("#coordination")
    assert page.locator("#coordination tbody tr[data-org]").count() >= 2
    assert page.locator("#coordination tbody tr[data-org] a").count() == 0
    context.close()
    assert errors == []
