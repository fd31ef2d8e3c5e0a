"""`fcx serve` prints the URLs it actually serves: its --host and --port, not a fixed 8000 (#17)."""

from __future__ import annotations

import pytest
import uvicorn
from typer.testing import CliRunner

from fanchaoxin.cli import app as cli
from fanchaoxin.cli import served_url


@pytest.mark.parametrize(
    ("host", "port", "url"),
    [
        ("127.0.0.1", 8000, "http://127.0.0.1:8000"),
        ("0.0.0.0", 9123, "http://127.0.0.1:9123"),
        ("::", 8443, "http://[::1]:8443"),
        ("[::1]", 8001, "http://[::1]:8001"),
        ("fe80::1", 81, "http://[fe80::1]:81"),
        ("fcx.example.cn", 8080, "http://fcx.example.cn:8080"),
    ],
)
def test_served_url(host, port, url):
    assert served_url(host, port) == url


def test_the_banner_and_the_demo_name_the_port_served(db, settings, monkeypatch):
    served: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: served.update(kw))
    r = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--port", "8765", "--demo"])
    assert r.exit_code == 0, r.output
    assert served["port"] == 8765 and served["host"] == "0.0.0.0"
    assert "http://127.0.0.1:8765/console/" in r.output
    assert "http://127.0.0.1:8765/docs" in r.output
    assert "every interface" in r.output
    assert ":8000" not in r.output
