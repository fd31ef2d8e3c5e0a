"""X-Forwarded-For is believed only from FCX_TRUSTED_PROXIES (issue #13, point 6).

The limits per client address (console sign-in, public query, public filings) count `request.client`,
which the server (uvicorn) sets. These tests take the server options `fcx serve` and `fcx node serve`
pass to uvicorn, let uvicorn build its application from them as it does when serving, and send
requests from a chosen peer address.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from fanchaoxin.cli import app as cli
from fanchaoxin.core.auth import proxy_header_options, trusted_proxies
from fanchaoxin.core.settings import get_settings
from fanchaoxin.node import cli as node_cli
from tests.console.console_helpers import csrf_of


def _serve_options(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What `fcx serve` hands to uvicorn.run (which is not started)."""
    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(kw))
    r = CliRunner().invoke(cli, ["serve"])
    assert r.exit_code == 0, r.output
    return {k: v for k, v in seen.items() if k != "factory"}


def _trust(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("FCX_TRUSTED_PROXIES", value)
    get_settings.cache_clear()


def _served(app: Any, options: dict[str, Any], peer: str) -> TestClient:
    config = uvicorn.Config(app, **options)
    config.load()
    return TestClient(config.loaded_app, client=(peer, 40000), raise_server_exceptions=False)


def _sign_in_attempts(client: TestClient, addresses: list[str]) -> list[int]:
    token = csrf_of(client.get("/console/login").text)
    return [
        client.post(
            "/console/login",
            data={
                "csrf_token": token,
                "method": "password",
                "username": "nobody",
                "password": "wrong password",
            },
            headers={"X-Forwarded-For": address},
        ).status_code
        for address in addresses
    ]


def _queries(client: TestClient, addresses: list[str]) -> list[int]:
    token = csrf_of(client.get("/console/public").text)
    return [
        client.post(
            "/console/public",
            data={"csrf_token": token, "q": "刷单公司"},
            headers={"X-Forwarded-For": address},
        ).status_code
        for address in addresses
    ]


ROTATING = ["203.0.113.1", "203.0.113.2", "203.0.113.3"]
Attempts = Callable[[TestClient, list[str]], list[int]]
LIMITS = [(_sign_in_attempts, "console_login_attempts"), (_queries, "console_query_rate_per_address")]


@pytest.mark.parametrize(("attempts", "limit"), LIMITS)
def test_by_default_rotating_x_forwarded_for_does_not_escape_the_limits(
    app, settings, monkeypatch, attempts: Attempts, limit: str
):
    """Sent from loopback, where uvicorn believes the header unless told otherwise."""
    monkeypatch.setattr(settings, limit, 2)
    with _served(app, _serve_options(monkeypatch), "127.0.0.1") as client:
        assert attempts(client, ROTATING)[-1] == 429


@pytest.mark.parametrize(("attempts", "limit"), LIMITS)
def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client(
    app, settings, monkeypatch, attempts: Attempts, limit: str
):
    _trust(monkeypatch, "10.0.0.0/8, 192.0.2.7")
    monkeypatch.setattr(get_settings(), limit, 2)
    options = _serve_options(monkeypatch)
    with _served(app, options, "10.1.2.3") as proxy:
        assert 429 not in attempts(proxy, ROTATING)  # three clients, one attempt each
        assert attempts(proxy, ["198.51.100.9"] * 3)[-1] == 429  # one client, three attempts
        # a chain through two proxies: the client is the last address that is not a proxy
        assert attempts(proxy, ["198.51.100.9, 192.0.2.7"])[-1] == 429
    with _served(app, options, "192.0.2.99") as stranger:  # not a configured proxy: its header is ignored
        assert attempts(stranger, ["198.51.100.20", "198.51.100.21", "198.51.100.22"])[-1] == 429


def test_serve_refuses_a_trusted_proxy_it_cannot_read(settings, monkeypatch):
    _trust(monkeypatch, "10.0.0.0/33")
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: pytest.fail("must not serve"))
    r = CliRunner().invoke(cli, ["serve"])
    assert r.exit_code == 1
    assert "FCX_TRUSTED_PROXIES" in r.output and "10.0.0.0/33" in r.output


def test_trusted_proxies_are_read_as_addresses_and_networks():
    assert trusted_proxies("") == [] and trusted_proxies(" , ") == []
    assert trusted_proxies("10.0.0.1/8, ::1 ,192.0.2.7") == ["10.0.0.0/8", "::1", "192.0.2.7"]
    assert proxy_header_options("") == {"proxy_headers": False, "forwarded_allow_ips": ""}
    for bad in ("*", "proxy.internal", "300.1.1.1"):
        with pytest.raises(ValueError, match="FCX_TRUSTED_PROXIES"):
            trusted_proxies(bad)


async def _echo_client(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An application that answers with the client address the server gave it."""
    if scope["type"] != "http":
        return
    body = scope["client"][0].encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


def _node_client_address(peer: str, forwarded_for: str) -> str:
    config = node_cli.server_config(_echo_client, "127.0.0.1", 0)
    config.load()
    client = TestClient(config.loaded_app, client=(peer, 40000))  # no lifespan: the echo has none
    return client.get("/", headers={"X-Forwarded-For": forwarded_for}).text


@pytest.fixture
def node_settings() -> Iterator[None]:
    yield
    get_settings.cache_clear()  # nothing read under this test's environment outlives it


def test_the_node_believes_x_forwarded_for_only_from_trusted_proxies(monkeypatch, node_settings):
    _trust(monkeypatch, "")
    assert _node_client_address("127.0.0.1", "203.0.113.1") == "127.0.0.1"
    _trust(monkeypatch, "10.0.0.0/8")
    assert _node_client_address("10.0.0.2", "203.0.113.1") == "203.0.113.1"
    assert _node_client_address("127.0.0.1", "203.0.113.1") == "127.0.0.1"
