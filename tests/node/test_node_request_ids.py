"""The platform's request ids on the node (#23): kept per entry from the deltas, logged with each applied
event, named by the hits webhook's lines; against the fake platform of test_node_support.py."""

from __future__ import annotations

import csv
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from fanchaoxin.core import logs
from fanchaoxin.node import hits
from fanchaoxin.node.enroll import enroll, read_rows
from fanchaoxin.node.sdk import Node
from fanchaoxin.node.store import Store
from fanchaoxin.node.sync import initialise, sync
from fanchaoxin.sharing import protocol as P
from tests.node.test_node_support import SIGNING, FakePlatform, record

PHONE = "13812345678"


@pytest.fixture
def fake() -> Iterator[FakePlatform]:
    f = FakePlatform()
    yield f
    f.close()


@pytest.fixture
def store(tmp_path: Path, fake: FakePlatform) -> Iterator[Store]:
    path = str(tmp_path / "node.db")
    initialise(path, fake.url, "fcx_test_key", fingerprint=P.fingerprint(SIGNING.public))
    users = tmp_path / "users.csv"
    with users.open("w", newline="") as fh:
        csv.writer(fh).writerows([["user_id", "phone"], ["u1", PHONE]])
    s = Store(path)
    enroll(s, read_rows(users, "user_id", "phone", "phone"))
    yield s
    s.dispose()


def _publish(fake: FakePlatform, entry_id: str, request_id: str | None) -> None:
    fake.publish(record(entry_id, tags=[fake.tag("phone", PHONE)]))
    if request_id is not None:
        fake.events[-1]["request_id"] = request_id  # as the platform's delta lines carry it


class _AsLogged(logging.Handler):
    """The fields of each record as the events logger emits it: before a handler further up (the process's
    logging configuration, which another test may have installed) fills in a missing request id."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seen: list[tuple[str, str | None, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append((record.entry_id, record.request_id, record.sync_id))  # type: ignore[attr-defined]


def test_applied_events_keep_and_log_the_platforms_request_id(store: Store, fake: FakePlatform) -> None:
    _publish(fake, "e1", "plat-req-1")
    _publish(fake, "e2", None)  # a platform from before #23, or a change made without a request
    events = logging.getLogger("fanchaoxin.node.sync.events")
    as_logged, level = _AsLogged(), events.level
    events.addHandler(as_logged)
    events.setLevel(logging.INFO)
    try:
        sync(store)
    finally:
        events.removeHandler(as_logged)
        events.setLevel(level)
    assert [(entry, rid) for entry, rid, _ in as_logged.seen] == [("e1", "plat-req-1"), ("e2", None)]
    assert all(sync_id.startswith("job-node-sync-") for _, _, sync_id in as_logged.seen)
    node = Node(store, refresh_seconds=None, live=False)
    assert node.requests_behind(["e1", "e2", "e9"]) == {"e1": "plat-req-1"}

    # a later change without an id: the entry no longer names the earlier one
    fake.revoke("e1")
    sync(store)
    node.refresh()
    assert node.requests_behind(["e1"]) == {}


class Receiver:
    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []
        got = self.headers

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                got.append({k.lower(): v for k, v in self.headers.items()})
                self.send_response(200)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hits"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_the_hits_webhook_carries_its_id_and_logs_the_changes_behind_the_hits(
    store: Store, fake: FakePlatform, caplog: pytest.LogCaptureFixture
) -> None:
    _publish(fake, "e1", "plat-req-1")
    sync(store)
    receiver = Receiver()
    try:
        with (
            httpx.Client() as http,
            caplog.at_level(logging.INFO, logger="fanchaoxin.node.hits"),
            logs.request_context("hits-run-1"),
        ):
            assert hits.deliver(store, receiver.url, b"secret", http) == 1
    finally:
        receiver.close()
    assert [h["x-request-id"] for h in receiver.headers] == ["hits-run-1"]
    (line,) = [r for r in caplog.records if r.name == "fanchaoxin.node.hits"]
    assert line.request_id == "hits-run-1" and line.change_request_ids == ["plat-req-1"]  # type: ignore[attr-defined]
    assert line.entry_ids == ["e1"]  # type: ignore[attr-defined]
