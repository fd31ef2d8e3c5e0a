"""Helpers shared by the console tests (TestClient and browser)."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import uvicorn

from fanchaoxin.app import create_app
from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.schemas import EntryIn
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.db import Database
from fanchaoxin.core.settings import Settings

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def penalty_entry(
    db: Database,
    org_id,
    *,
    name: str = "示范测试刷单有限公司",
    uscc: str = "91350100M000100Y43",
    severity: str = "general",
):  # type: ignore[no-untyped-def]
    """A department's administrative penalty against a company: publishable right after review."""
    with db.session() as s:
        e = registry.submit(
            s,
            Actor("test:dept", org_id),
            org_id,
            EntryIn.model_validate(
                {
                    "subject": {
                        "kind": "unit",
                        "name": name,
                        "identifiers": [{"type": "uscc", "value": uscc}],
                    },
                    "behaviours": ["order_brushing"],
                    "role": "organizer",
                    "severity": severity,
                    "basis": "administrative_penalty",
                    "document_number": "测罚〔2026〕1号",
                    "issuing_authority": "示范市市场监督管理局",
                    "document_date": date(2026, 1, 5).isoformat(),
                    "facts": "组织刷单 300 笔。",
                }
            ),
        )
        return e.id


@contextmanager
def serve(db: Database, url: str) -> Iterator[dict[str, Any]]:
    """The platform served by uvicorn in a thread on a free port (browser tests); its base URL."""
    app = create_app(Settings(database_url=url, jobs_interval_seconds=0), db=db)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield {"base": f"http://127.0.0.1:{port}"}
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
