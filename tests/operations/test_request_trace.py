"""Issue #23 "done when": the logs of one objection can be followed by its request id from the public form
to the enterprise node's answer.

An objection is filed through the public route with ``X-Request-ID``; the id is then found in the
platform's lines of that request, on the change-feed event it wrote, on the webhook the outbox POSTs to a
local receiver (header and delivery line), on the node's line applying the event, and on the node's line
answering a decision that matches the entry. What the node sends back to the platform carries the id the
node runs under, and the platform answers with the same id.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from fanchaoxin.appeals.notify import LogNotifier, set_notifier
from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.blacklist.schemas import EntryIn
from fanchaoxin.core import logs
from fanchaoxin.core.audit import SYSTEM, Actor
from fanchaoxin.core.roles import Role
from fanchaoxin.core.settings import get_settings
from fanchaoxin.node import decision_log
from fanchaoxin.node.app import create_node_app
from fanchaoxin.node.client import PlatformClient
from fanchaoxin.node.store import Store
from fanchaoxin.node.sync import initialise, sync
from fanchaoxin.orgs.models import Organisation
from fanchaoxin.sharing import outbox, translog
from fanchaoxin.sharing.models import FeedEvent
from fanchaoxin.workflows.entries import take_step
from tests.blacklist.registry_helpers import USCC_B, judicial

REVIEWER = Actor("test:reviewer")
TRACE = "objection-7f3a9c"  # what a proxy or the public form's client would send
SCENE = "account_registration"


@pytest.fixture
def settings(settings, monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FCX_SHARING_KEY_DIR", str(tmp_path / "keys"))
    monkeypatch.setenv("FCX_METRICS_QUEUE_CACHE_SECONDS", "0")
    get_settings.cache_clear()
    translog.forget_trees()
    yield get_settings()
    get_settings.cache_clear()
    translog.forget_trees()


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """Every ``fanchaoxin`` line as a served process writes it: JSON, identifiers masked, request ids."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.IdentifierMaskFilter())
    handler.addFilter(logs.RequestIdFilter())
    logger = logging.getLogger("fanchaoxin")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    notifier = set_notifier(LogNotifier())
    yield stream
    set_notifier(notifier)
    logger.removeHandler(handler)
    logger.setLevel(level)


def _parsed(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


class Receiver:
    """A subscriber's webhook endpoint on 127.0.0.1: keeps each POST's headers."""

    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []
        received = self.headers

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append({k.lower(): v for k, v in self.headers.items()})
                self.send_response(204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _metric(client: TestClient, name: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not on /metrics")


def test_one_objection_followed_by_its_request_id_to_the_nodes_answer(  # type: ignore[no-untyped-def]
    app, client, db, world, tmp_path: Path, lines: io.StringIO, receiver: Receiver
) -> None:
    shop = world.enterprise("电商")
    with db.session() as s:
        entry = registry.submit(
            s,
            REVIEWER,
            shop.org.id,
            EntryIn.model_validate(
                judicial(subject={"kind": "unit", "name": "杭州某公司",
                                  "identifiers": [{"type": "uscc", "value": USCC_B}]})
            ),
        )  # fmt: skip
        take_step(s, REVIEWER, entry, Action.start_review)
        take_step(s, REVIEWER, entry, Action.publish, today=date.today() - timedelta(days=1))
        entry_id = str(entry.id)

    # The enterprise's node, talking to this platform in process; every call it makes is recorded.
    sent: list[tuple[str, str | None, str | None]] = []  # (path, X-Request-ID sent, X-Request-ID answered)
    api_key = shop.keys[Role.enterprise_node]
    node_client = PlatformClient("http://testserver", api_key)
    node_client.http.close()
    node_client.http = TestClient(app, base_url="http://testserver", headers={"X-API-Key": api_key})
    node_client.http.event_hooks = {
        "response": [
            lambda r: sent.append(
                (r.request.url.path, r.request.headers.get("x-request-id"), r.headers.get("x-request-id"))
            )
        ]
    }
    store_path = str(tmp_path / "node.db")
    initialise(store_path, "http://testserver", api_key, client=node_client)
    store = Store(store_path)
    sync(store, node_client)  # the entry as published: no request behind it (made in process)

    with db.session() as s:
        outbox.subscribe(s, SYSTEM, s.get(Organisation, shop.org.id), receiver.url)

    # 1. The public form: no key, the subject's identifier, the client's request id.
    filed = client.post(
        "/v1/objections",
        json={
            "entry_id": entry_id,
            "identifier": {"type": "uscc", "value": USCC_B},
            "grounds": "我司从未组织刷单，涉案订单为真实交易。",
            "contact_email": "Legal@Example.COM",
        },
        headers={"X-Request-ID": TRACE},
    )
    assert filed.status_code == 201, filed.text
    assert filed.headers["x-request-id"] == TRACE
    platform_lines = [x for x in _parsed(lines) if x["request_id"] == TRACE]
    assert platform_lines, _parsed(lines)  # the notification to the objector, at least
    assert all("legal@example.com" not in json.dumps(x).lower() for x in _parsed(lines))  # masked

    # 2. The change feed keeps the request that made the change.
    with db.session() as s:
        event = s.scalars(select(FeedEvent).where(FeedEvent.event == "disputed")).one()
        assert event.request_id == TRACE
        disputed_seq = event.seq
    assert _metric(client, "fcx_outbox_pending") == 1.0

    # 3. The outbox POSTs the webhook with the id, and logs the delivery under it.
    assert outbox.deliver_due(db) == {"delivered": 1, "failed": 0, "dead": 0}
    assert [h.get("x-request-id") for h in receiver.headers] == [TRACE]
    delivered = [x for x in _parsed(lines) if x["logger"] == "fanchaoxin.sharing.outbox"]
    assert [(x["request_id"], x["seq"]) for x in delivered] == [(TRACE, disputed_seq)]
    assert _metric(client, "fcx_outbox_pending") == 0.0

    # 4. The node applies the event, logging it under the platform's id (its sync has an id of its own,
    #    sent with every call, and the platform answers with it).
    sent.clear()
    result = sync(store, node_client)
    assert result.head_after == disputed_seq
    applied = [x for x in _parsed(lines) if x["logger"] == "fanchaoxin.node.sync.events"]
    assert [(x["request_id"], x["event"], x["entry_id"]) for x in applied] == [(TRACE, "disputed", entry_id)]
    sync_id = applied[0]["sync_id"]
    assert sync_id.startswith("job-node-sync-")
    assert sent and all(asked == answered == sync_id for _path, asked, answered in sent), sent

    # 5. The node answers a decision on the subject: its line names its own id and the objection's.
    node_app = create_node_app(store_path, sync_interval=3600, sync_loop=False, live=False)
    with TestClient(node_app) as node:
        answer = node.post(
            "/v1/decisions",
            json={"scene": SCENE, "identifiers": [{"type": "uscc", "value": USCC_B}]},
            headers={"X-Request-ID": "shop-signup-1"},
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["entry_ids"] == [entry_id] and answer.json()["disputed"] is True
        assert answer.headers["x-request-id"] == "shop-signup-1"
    decided = [x for x in _parsed(lines) if x["logger"] == "fanchaoxin.node.decisions"]
    assert len(decided) == 1
    assert decided[0]["request_id"] == "shop-signup-1"
    assert decided[0]["change_request_ids"] == [TRACE] and decided[0]["entry_ids"] == [entry_id]

    # 6. What the node reports back (its decision log) goes with the id it runs under.
    sent.clear()
    with logs.request_context("job-node-report-1"):
        assert decision_log.relay(store, node_client)["sent"] == 1
    assert [(p, a, b) for p, a, b in sent if p == "/v1/decision-log/node"] == [
        ("/v1/decision-log/node", "job-node-report-1", "job-node-report-1")
    ]

    # One grep of the objection's id: the form, the feed, the webhook, the node's sync and its answer.
    followed = {x["logger"] for x in _parsed(lines) if TRACE in json.dumps(x, ensure_ascii=False)}
    assert {
        "fanchaoxin.sharing.outbox",
        "fanchaoxin.node.sync.events",
        "fanchaoxin.node.decisions",
    } <= followed
    store.dispose()
    node_client.close()


def test_a_change_made_by_a_job_has_the_jobs_id(db, world, settings) -> None:  # type: ignore[no-untyped-def]
    shop = world.enterprise("电商")
    with logs.request_context(logs.job_request_id("registry")) as job_id, db.session() as s:
        entry = registry.submit(s, REVIEWER, shop.org.id, EntryIn.model_validate(judicial()))
        take_step(s, REVIEWER, entry, Action.start_review)
        take_step(s, REVIEWER, entry, Action.publish)
    with db.session() as s:
        assert s.scalars(select(FeedEvent.request_id)).all() == [job_id]
    with db.session() as s:  # outside any request or job: no id, and the column stays empty
        take_step(s, REVIEWER, s.get(type(entry), entry.id), Action.revoke, reason="wrongly listed")
    with db.session() as s:
        assert s.scalars(select(FeedEvent.request_id).order_by(FeedEvent.seq)).all() == [job_id, None]
