"""axe-core in Debian's chromium: the console's main pages in zh-CN have no serious or critical
accessibility violation (#17).

axe-core is vendored (static/vendor/axe.min.js, VENDORED.md) and injected into the page under test only;
no template loads it. The platform runs under uvicorn in a thread on the demo data, as in
test_console_browser.py, with one entry of the public list published for the public record page.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
from .test_console_browser import CHROMIUM, browser, shot  # noqa: F401  (the fixture)

AXE = (
    Path(__file__).resolve().parents[2]
    / "src"
    / "fanchaoxin"
    / "console"
    / "static"
    / "vendor"
    / "axe.min.js"
)
USCC = "91350100M000100Y43"
COMPANY = "示范无障碍测试刷单有限公司"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install chromium)"
    ),
]

# Only what axe calls serious or critical fails the test; its moderate and minor findings are reported
# in the failure message of a page that fails for another reason.
BLOCKING = ("serious", "critical")
RUN_AXE = """async () => {
  const r = await axe.run(document);
  return {passes: r.passes.length, violations: r.violations.map(v => ({id: v.id, impact: v.impact,
    help: v.help, nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}))};
}"""


@pytest.fixture(scope="module")
def admin_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The demo platform, with a department's penalty published on the public list."""
    url = f"sqlite:///{tmp_path_factory.mktemp('a11y') / 'fcx.db'}"
    db = Database(url)
    db.upgrade()
    keys = load_demo(db)
    assert keys is not None
    users = {u.username: u.password for u in keys.users}
    with db.session() as s:
        market = s.scalar(select(Organisation.id).where(Organisation.name == "示范市市场监督管理局"))
    entry_id = penalty_entry(db, market, name=COMPANY, uscc=USCC)
    with db.session() as s:
        e = s.get(Entry, entry_id)
        take_step(s, SYSTEM, e, Action.start_review)
        take_step(s, SYSTEM, e, Action.publish)
    try:
        with serve(db, url) as site:
            yield {**site, "users": users, "entry_id": entry_id, "db": db}
    finally:
        db.dispose()


def sign_in(page, base: str, username: str, password: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/console/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("form:has(#username) button[type=submit]")
    page.wait_for_url(f"{base}/console/**")


def search_public(page, base: str, q: str) -> None:  # type: ignore[no-untyped-def]
    """The public query, whichever form it has: one search box, or a type and a value."""
    page.goto(f"{base}/console/public")
    if page.locator("#q-by").count():
        page.select_option("#q-by", "name")
    page.fill("#q", q)
    page.click("form[role=search] button[type=submit]")
    page.wait_for_selector("#results h2, #no-results, #results .alert, #results article")


def violations(page) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """axe-core's violations of the page as it is now (injected here only, never served by a page; the
    context bypasses the console's CSP, which rightly refuses an injected inline script)."""
    if page.evaluate("typeof window.axe") == "undefined":
        page.add_script_tag(path=str(AXE))
    result = page.evaluate(RUN_AXE)
    assert result["passes"] > 10, "axe checked next to nothing: is the page empty?"
    return result["violations"]  # type: ignore[no-any-return]


def check(page, name: str, found: dict[str, list]) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_load_state("networkidle")
    result = violations(page)
    found[name] = [v for v in result if v["impact"] in BLOCKING]
    shot(page, f"a11y-{name}")


def test_main_pages_have_no_serious_or_critical_violation(admin_site, browser):  # noqa: F811
    base, users = admin_site["base"], admin_site["users"]
    found: dict[str, list] = {}
    errors: list[str] = []

    public = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN", bypass_csp=True)
    pp = public.new_page()
    pp.on("pageerror", lambda exc: errors.append(str(exc)))
    pp.goto(f"{base}/console/public")
    assert pp.evaluate("typeof window.axe") == "undefined"  # no page serves axe to users
    check(pp, "public-query", found)
    search_public(pp, base, "无障碍测试")
    check(pp, "public-results", found)
    pp.goto(f"{base}/console/public/records/{admin_site['entry_id']}")
    if pp.locator("main h1").count() and "404" not in pp.title():
        check(pp, "public-record", found)
    pp.goto(f"{base}/console/login")
    check(pp, "login", found)
    # The check can fail: a button without a name is a critical violation.
    pp.evaluate(
        "document.querySelector('main').insertAdjacentHTML('beforeend', '<button id=\"nameless\"></button>')"
    )
    assert any(v["id"] == "button-name" and v["impact"] == "critical" for v in violations(pp))
    public.close()

    pages = {
        "reviewer": [
            ("dashboard", "/console/"),
            ("entries", "/console/entries"),
            ("review", "/console/review"),
        ],
        "admin": [
            ("policy", "/console/policy"),
            ("keys", "/console/keys"),
            # #22: taking part
            ("agreements", "/console/agreements"),
            ("rulebooks", "/console/rulebooks"),
            ("consultation", "/console/consultation"),
            ("coordination", "/console/coordination"),
        ],
        "auditor": [("audit", "/console/audit")],
        "shop": [
            ("workbench", "/console/workbench"),
            ("agreement", "/console/agreement"),
            ("action items", "/console/consultation/action-items"),
        ],
        "market": [("department", "/console/org")],
    }
    for user, paths in pages.items():
        ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN", bypass_csp=True)
        page = ctx.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        sign_in(page, base, user, users[user])
        for name, path in paths:
            page.goto(base + path)
            check(page, name, found)
        ctx.close()

    bad = {name: v for name, v in found.items() if v}
    assert not bad, "serious or critical axe violations:\n" + "\n".join(
        f"{name}: {v['id']} ({v['impact']}) {v['help']} at {v['nodes']}"
        for name, vs in bad.items()
        for v in vs
    )
    assert errors == [], errors
