"""`fcx db upgrade --check` says what would run and changes nothing; `fcx db upgrade` holds back contract
steps the running API was not checked against until --contract."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text
from typer.testing import CliRunner, Result

from fanchaoxin.cli import UPGRADE_PENDING, UPGRADE_WAITS_FOR_CONTRACT, app
from fanchaoxin.core.settings import get_settings
from tests.upgrade.conftest import PREVIOUS, FreshDatabase


@pytest.fixture
def fcx(fresh: FreshDatabase, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("FCX_DATABASE_URL", fresh.url)
    monkeypatch.setenv("COLUMNS", "200")  # one migration a line, as an operator's terminal shows it
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def run(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(app, ["db", "upgrade", *args])


def test_check_at_the_previous_release_lists_what_would_run_and_writes_nothing(fcx, fresh) -> None:  # type: ignore[no-untyped-def]
    fresh.db.upgrade(PREVIOUS.schema_head)
    head = fresh.db.head_revision()
    r = run(fcx, "--check")
    assert r.exit_code == UPGRADE_PENDING, r.output
    assert f"当前版本 {PREVIOUS.schema_head}" in r.output and f"release {PREVIOUS.version}" in r.output
    assert "0030  扩展 expand" in r.output and "keeps working" in r.output
    assert "the request that caused each change-feed event" in r.output
    assert fresh.db.current_revision() == PREVIOUS.schema_head  # nothing written

    r = run(fcx)  # expand steps only: applied while the previous release serves
    assert r.exit_code == 0, r.output
    assert fresh.db.current_revision() == head
    r = run(fcx, "--check")
    assert r.exit_code == 0, r.output
    assert "nothing would run" in r.output


def test_contract_steps_the_running_code_was_not_checked_against_wait_for_contract(fcx, fresh) -> None:  # type: ignore[no-untyped-def]
    fresh.db.upgrade("0020")  # code from before the first release: 0025 and 0026 rename what it reads
    r = run(fcx, "--check")
    assert r.exit_code == UPGRADE_WAITS_FOR_CONTRACT, r.output
    assert "0024  扩展 expand" in r.output
    assert "0025  收缩 contract" in r.output and "需 --contract" in r.output
    assert fresh.db.current_revision() == "0020"

    r = run(fcx)
    assert r.exit_code == UPGRADE_WAITS_FOR_CONTRACT, r.output
    assert fresh.db.current_revision() == "0024"  # the expand steps before the first contract step
    assert "fcx db upgrade --contract" in r.output

    r = run(fcx, "--contract")
    assert r.exit_code == 0, r.output
    assert fresh.db.current_revision() == fresh.db.head_revision()


def test_an_empty_database_takes_everything(fcx, fresh) -> None:  # type: ignore[no-untyped-def]
    r = run(fcx, "--check")
    assert r.exit_code == UPGRADE_PENDING, r.output
    assert "an empty database" in r.output
    assert fresh.db.current_revision() is None


def test_a_schema_newer_than_this_code_is_named_not_touched(fcx, fresh) -> None:  # type: ignore[no-untyped-def]
    fresh.db.upgrade()
    with fresh.db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    r = run(fcx, "--check")
    assert r.exit_code == 1 and "newer than this release knows" in r.output, r.output
    r = run(fcx)
    assert r.exit_code == 1
    assert fresh.db.current_revision() == "9999"
