"""Faults (issue #13): an unexpected error keeps the client's connection; a database that is gone or
frozen is answered 503 with Retry-After within the configured budgets — never a 500, never a hang.

Faults are made without root, on 127.0.0.1 (tests/core/faults.py): a closed port, a server that never
answers, a proxy that freezes, a table locked by another session, SQLite's write lock held.
"""

from __future__ import annotations

import http.client
import json
import logging
import sqlite3

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from fanchaoxin.app import create_app
from fanchaoxin.core.auth import Principal, allow_public
from fanchaoxin.core.db import Database
from fanchaoxin.core.roles import Role
from fanchaoxin.core.settings import Settings, get_settings
from tests.core.faults import HANG_GUARD_SECONDS, SilentServer, TcpProxy, closed_port, finishes, served

SECRET = "password=hunter2 at db.internal:5432"


def _problem(status: int, headers: dict[str, str], body: dict[str, object]) -> None:
    assert body["status"] == status
    assert headers["content-type"].startswith("application/problem+json")
    assert body["title_zh"] and body["title"] and body["detail"]


def _settings(url: str, **timeouts: float) -> Settings:
    """Settings with one-second budgets: every wait in these tests ends in a second or two."""
    values: dict[str, object] = {
        "database_url": url,
        "database_connect_timeout_seconds": 1,
        "database_statement_timeout_seconds": 1,
        "database_lock_timeout_seconds": 1,
        "database_pool_timeout_seconds": 1,
        "database_retry_after_seconds": 7,
        **{f"database_{k}_timeout_seconds": v for k, v in timeouts.items()},
    }
    return Settings(**values)  # type: ignore[arg-type]


def _pg_url_via(backend_url: str, port: int) -> str:
    return make_url(backend_url).set(host="127.0.0.1", port=port).render_as_string(hide_password=False)


# --- 11: a 500 keeps the connection -------------------------------------------------------------------


def _raise_unexpected(_: Principal = allow_public()) -> None:
    raise RuntimeError(SECRET)


def _raise_sqlite(message: str):  # type: ignore[no-untyped-def]
    def route(_: Principal = allow_public()) -> None:
        raise OperationalError("SELECT 1", {}, sqlite3.OperationalError(message))

    return route


def test_an_unexpected_error_answers_500_and_the_connection_carries_on(db, settings, caplog):
    app = create_app(settings, db=db)
    app.add_api_route("/__test__/boom", _raise_unexpected, methods=["GET"])  # this test's app only
    caplog.set_level(logging.ERROR)
    with served(app) as port:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HANG_GUARD_SECONDS)
        conn.request("GET", "/__test__/boom")
        r = conn.getresponse()
        body = json.loads(r.read())
        assert r.status == 500
        _problem(500, {k.lower(): v for k, v in r.getheaders()}, body)
        assert body["title_zh"] == "服务器内部错误"
        assert "hunter2" not in json.dumps(body) and "RuntimeError" not in json.dumps(body)
        sock = conn.sock
        assert sock is not None, "the server asked the client to close"
        # The next, unrelated request on the same keep-alive connection.
        conn.request("GET", "/healthz")
        r = conn.getresponse()
        assert (r.status, json.loads(r.read())) == (200, {"status": "ok"})
        assert conn.sock is sock, "the client had to open a new connection"
        conn.close()
    logged = [rec for rec in caplog.records if rec.exc_info and SECRET in str(rec.exc_info[1])]
    assert logged and logged[0].levelno == logging.ERROR


@pytest.mark.parametrize(
    ("message", "status"),
    [
        ("unable to open database file", 503),
        ("database is locked", 503),
        ("no such table: organisations", 500),  # a bug, not an outage
        ('near "SELEC": syntax error', 500),
    ],
)
def test_sqlite_errors_are_told_apart(db, settings, message, status):
    app = create_app(settings, db=db)
    app.add_api_route("/__test__/sqlite", _raise_sqlite(message), methods=["GET"])
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/__test__/sqlite")
    assert r.status_code == status
    _problem(status, dict(r.headers), r.json())
    assert message not in r.text
    assert ("retry-after" in r.headers) == (status == 503)


# --- 12: a database that is gone gives 503 with Retry-After ------------------------------------------


@pytest.fixture
def gone_url(backend, tmp_path):
    """A database that is not there: PostgreSQL on a port nobody listens on; SQLite at a path that is
    a directory."""
    if backend.name == "postgresql":
        return f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/test"
    folder = tmp_path / "fcx.db"
    folder.mkdir()
    return f"sqlite:///{folder}"


def test_an_unreachable_database_answers_503_and_the_connection_carries_on(gone_url):
    app = create_app(_settings(gone_url))
    with served(app) as port:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HANG_GUARD_SECONDS)
        conn.request("GET", "/v1/organisations", headers={"Authorization": "Bearer fcx_abcdef_secret"})
        r = conn.getresponse()
        raw = r.read()
        body = json.loads(raw)
        assert r.status == 503, raw
        _problem(503, {k.lower(): v for k, v in r.getheaders()}, body)
        assert r.getheader("Retry-After") == "7"
        assert body["type"].endswith("/database-unavailable")
        assert "127.0.0.1" not in raw.decode() and "fcx.db" not in raw.decode()
        sock = conn.sock
        conn.request("GET", "/healthz")
        r = conn.getresponse()
        assert (r.status, json.loads(r.read())) == (200, {"status": "ok"})
        assert conn.sock is sock is not None
        conn.close()


# --- 13: a frozen database ends every request within its budget --------------------------------------


def test_a_database_that_never_answers_gives_503_and_readyz_503():
    """A server that accepts and never answers: connecting gives up after the connect timeout."""
    with SilentServer() as silent:
        app = create_app(_settings(f"postgresql+psycopg://postgres@127.0.0.1:{silent.port}/test"))
        with (
            served(app) as port,
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=HANG_GUARD_SECONDS) as c,
        ):
            ready = c.get("/readyz")
            api = c.get("/v1/organisations", headers={"Authorization": "Bearer fcx_abcdef_secret"})
    assert ready.status_code == 503, ready.text
    _problem(503, dict(ready.headers), ready.json())
    assert ready.headers["retry-after"] == "7"
    assert api.status_code == 503, api.text
    _problem(503, dict(api.headers), api.json())
    assert api.headers["retry-after"] == "7"


@pytest.fixture
def proxy(backend):
    if backend.name != "postgresql":
        pytest.skip("a TCP proxy stands between the platform and PostgreSQL; SQLite has no socket")
    url = make_url(backend.url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as p:
        yield p


def test_a_database_that_freezes_under_open_connections_gives_503_then_recovers(backend, db, world, proxy):
    headers = world.platform().headers(Role.platform_admin)
    app = create_app(_settings(_pg_url_via(backend.url, proxy.port)))
    with (
        served(app) as port,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=HANG_GUARD_SECONDS) as c,
    ):
        assert c.get("/v1/organisations", headers=headers).status_code == 200  # a pooled connection now
        proxy.freeze()
        frozen = c.get("/v1/organisations", headers=headers)
        ready = c.get("/readyz")
        proxy.thaw()
        again = c.get("/v1/organisations", headers=headers)
    assert frozen.status_code == 503, frozen.text
    assert frozen.headers["retry-after"] == "7"
    _problem(503, dict(frozen.headers), frozen.json())
    assert ready.status_code == 503
    assert again.status_code == 200, again.text


@pytest.mark.parametrize("limit", ["lock", "statement"])
def test_a_table_locked_by_another_session_gives_503(backend, db, world, limit):
    """LOCK TABLE … ACCESS EXCLUSIVE in another session: the request gives up after the lock timeout (or,
    with no lock timeout, the statement timeout) instead of waiting for the lock's holder."""
    if backend.name != "postgresql":
        pytest.skip("PostgreSQL's lock and statement timeouts (SQLite: the write-lock test below)")
    headers = world.platform().headers(Role.platform_admin)
    app = create_app(_settings(backend.url, **{("statement" if limit == "lock" else "lock"): 0}))
    with (
        served(app) as port,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=HANG_GUARD_SECONDS) as c,
    ):
        assert c.get("/v1/whoami", headers=headers).status_code == 200  # the key is known before the lock
        with db.engine.connect() as locker:
            locker.execute(text("LOCK TABLE organisations IN ACCESS EXCLUSIVE MODE"))
            r = c.get("/v1/organisations", headers=headers)
            locker.rollback()
        after = c.get("/v1/organisations", headers=headers)
    assert r.status_code == 503, r.text
    _problem(503, dict(r.headers), r.json())
    assert r.headers["retry-after"] == "7"
    assert after.status_code == 200


def test_sqlite_write_lock_held_elsewhere_gives_503(backend, db, world):
    if backend.name != "sqlite":
        pytest.skip("SQLite's busy wait (PostgreSQL: the LOCK TABLE test above)")
    headers = world.platform().headers(Role.platform_admin)
    app = create_app(_settings(backend.url))
    new_org = {"kind": "department", "name": "锁等待局", "department_kind": "market_regulation"}
    with TestClient(app, raise_server_exceptions=False) as c:
        assert c.get("/v1/whoami", headers=headers).status_code == 200
        locker = sqlite3.connect(make_url(backend.url).database, isolation_level=None)
        try:
            locker.execute("BEGIN IMMEDIATE")  # the one writer's lock, held
            r = finishes(lambda: c.post("/v1/organisations", json=new_org, headers=headers))
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        after = c.post("/v1/organisations", json=new_org, headers=headers)
    assert r.status_code == 503, r.text
    _problem(503, dict(r.headers), r.json())
    assert r.headers["retry-after"] == "7"
    assert after.status_code == 201, after.text


def test_a_statement_the_database_never_answers_ends(backend, proxy, monkeypatch):
    """A frozen server never sends the cancel of its own statement_timeout: the platform's watchdog ends
    the wait (statement timeout + a second) by closing the connection."""
    monkeypatch.setenv("FCX_DATABASE_STATEMENT_TIMEOUT_SECONDS", "1")
    get_settings.cache_clear()
    database = Database(_pg_url_via(backend.url, proxy.port))
    try:
        with database.engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
            proxy.freeze()
            try:
                with pytest.raises(OperationalError):
                    finishes(lambda: conn.execute(text("SELECT 2")))
            finally:
                proxy.thaw()  # before the connection is closed: a hung call would hold it
    finally:
        database.dispose()
        get_settings.cache_clear()
