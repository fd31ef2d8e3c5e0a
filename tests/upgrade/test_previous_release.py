"""The previous release's API keeps working on the new schema (#23: upgrades without downtime).

The database is migrated to the new head by the new code; then the previous release (releases.yaml,
extracted from git) serves on it in a subprocess while the new release serves beside it in this one.
Each writes through its API what the other then reads: an entry, an objection through the public API,
a decision; the public query answers. Both backends."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from fanchaoxin.app import create_app
from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.blacklist.schemas import EntryIn
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.roles import Role
from fanchaoxin.core.settings import get_settings
from fanchaoxin.workflows.entries import take_step
from tests.blacklist.registry_helpers import USCC_A, judicial, person_entry
from tests.conftest import World
from tests.upgrade.conftest import FreshDatabase, PreviousRelease

pytestmark = pytest.mark.slow

# The previous release serves as `fcx serve` serves it, minus the migration (its code knows only its own
# head) and the scheduled jobs (they are not what this test is about, and would write beside it).
SERVE = """
import sys, fanchaoxin
print("FCX_IMPORTED", fanchaoxin.__file__, flush=True)
import uvicorn
uvicorn.run("fanchaoxin.app:create_served_app", factory=True, host="127.0.0.1", port=int(sys.argv[1]),
            log_level="warning")
"""
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
START_SECONDS = 90  # importing the platform on a busy 2-core CI machine, not a performance bound


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def old_api(
    previous_release: PreviousRelease, fresh: FreshDatabase, tmp_path: Path
) -> Iterator[httpx.Client]:
    """The previous release's API on `fresh` (already at the new head when this starts)."""
    port = _free_port()
    log = tmp_path / "old-api.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", SERVE, str(port)],
            env=previous_release.env(FCX_DATABASE_URL=fresh.url, FCX_JOBS_INTERVAL_SECONDS="0"),
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(f"the previous release's API exited ({process.returncode}):\n{log.read_text()}")
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"the previous release's API did not start in {START_SECONDS} s:\n{log.read_text()}"
                )
            time.sleep(0.2)
        imported = next(
            line.split(" ", 1)[1] for line in log.read_text().splitlines() if line.startswith("FCX_IMPORTED")
        )
        # The venv has the working tree installed (editable): PYTHONPATH must win, or this tests nothing.
        assert Path(imported).is_relative_to(previous_release.src), imported
        yield client
        assert process.poll() is None, log.read_text()  # still serving after everything the test did
    finally:
        client.close()
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def migrated(fresh: FreshDatabase) -> FreshDatabase:
    fresh.db.upgrade()  # the new code's head
    return fresh


def _publish(world: World, org_id, body: dict, today: date) -> str:  # type: ignore[no-untyped-def,type-arg]
    actor = Actor("test:reviewer")
    with world.db.session() as s:
        entry = registry.submit(s, actor, org_id, EntryIn.model_validate(body))
        take_step(s, actor, entry, Action.start_review, today=today)
        take_step(s, actor, entry, Action.publish, today=today)
        return str(entry.id)


def test_previous_release_serves_on_the_new_schema_beside_the_new_release(  # type: ignore[no-untyped-def]
    migrated, old_api, monkeypatch
) -> None:
    world = World(migrated.db)
    platform, shop = world.platform(), world.enterprise("电商", business_types=None)
    published = _publish(world, shop.org.id, judicial(), date.today() - timedelta(days=1))
    operator, reviewer = shop.headers(Role.enterprise_operator), platform.headers(Role.platform_reviewer)

    monkeypatch.setenv("FCX_DATABASE_URL", migrated.url)
    get_settings.cache_clear()
    new_app = create_app(get_settings(), db=migrated.db)
    with TestClient(new_app, raise_server_exceptions=False) as new_api:
        # Health, and the public query (a POST with the form's CSRF token), on the previous release.
        assert old_api.get("/healthz").json() == {"status": "ok"}
        token = CSRF.search(old_api.get("/console/public").text)
        assert token, "the public query page has no form"
        found = old_api.post("/console/public", data={"csrf_token": token.group(1), "q": USCC_A})
        assert found.status_code == 200 and "北京某某网络科技有限责任公司" in found.text

        # The previous release writes: an entry (API key), a decision, an objection (public, no key).
        body = person_entry()
        body["facts"] = "旧版提交：参与刷单。"
        r = old_api.post("/v1/entries", json=body, headers=operator)
        assert r.status_code == 201, r.text
        old_entry = r.json()["id"]
        r = old_api.post(
            "/v1/decisions",
            json={"scene": "account_registration", "identifiers": [{"type": "uscc", "value": USCC_A}]},
            headers=operator,
        )
        assert r.status_code == 200, r.text
        r = old_api.post(
            "/v1/objections",
            json={
                "entry_id": published,
                "identifier": {"type": "uscc", "value": USCC_A},
                "grounds": "我司从未组织刷单，涉案订单为真实交易。",
                "contact_email": "legal@example.com",
            },
        )
        assert r.status_code == 201, r.text
        objection = r.json()["id"]

        # The new release, at the same time, reads what the previous one wrote.
        r = new_api.get(f"/v1/entries/{old_entry}", headers=operator)
        assert r.status_code == 200 and r.json()["facts"] == "旧版提交：参与刷单。", r.text
        r = new_api.get(f"/v1/objections/{objection}", headers=reviewer)
        assert r.status_code == 200, r.text
        assert new_api.get(f"/v1/entries/{published}", headers=reviewer).json()["status"] == "disputed"

        # And the previous release reads what the new one writes.
        body["facts"] = "新版提交：参与刷单。"
        body["subject"]["identifiers"] = [{"type": "phone", "value": "13800138001"}]
        r = new_api.post("/v1/entries", json=body, headers=operator)
        assert r.status_code == 201, r.text
        r = old_api.get(f"/v1/entries/{r.json()['id']}", headers=operator)
        assert r.status_code == 200 and r.json()["facts"] == "新版提交：参与刷单。", r.text
    get_settings.cache_clear()
