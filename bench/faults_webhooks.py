"""Duplicate webhook deliveries with two delivery workers and a slow receiver (issue #13, point 15).

    .venv/bin/python bench/faults_webhooks.py [--events 100] [--delay 0.75] [--workers 2]
        [--backend postgresql|sqlite] [--lease SECONDS] [--timeout SECONDS] [--deadline 300]

Before a change, on a read-only copy of the code at HEAD:

    git worktree add /tmp/before HEAD
    PYTHONPATH=/tmp/before/src .venv/bin/python bench/faults_webhooks.py

Setup: a fresh database (a new PostgreSQL schema on 127.0.0.1, dropped at the end, or a new SQLite file),
an enterprise subscribed to one webhook, ``--events`` entries published (one feed event and one outbox
row each). The receiver is ``http.server`` on 127.0.0.1 (threaded) that sleeps ``--delay`` seconds per
request, answers 204 and counts each request by its ``X-FCX-Event-Id``. Then ``--workers`` processes each
run the delivery loop of ``fcx sharing deliver --loop`` (``outbox.deliver_due``, 1 s pause when a round
found nothing) until no row is pending, or until ``--deadline`` seconds.

Reported: requests received, distinct events, duplicate deliveries (requests − distinct events), the
events delivered more than once, requests per worker and the wall time. ``--lease`` overrides
``outbox.LEASE_SECONDS`` (default: the code's own, 60 s); the default delay makes one worker's round of
100 rows (75 s) outlast a 60 s lease. Nothing is sent anywhere but 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import queue
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from sqlalchemy import create_engine, func, select, text

import fanchaoxin
from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.blacklist.schemas import EntryIn
from fanchaoxin.core.audit import SYSTEM
from fanchaoxin.core.db import Database
from fanchaoxin.core.roles import BusinessType, OrgKind
from fanchaoxin.core.settings import get_settings
from fanchaoxin.orgs import service as orgs
from fanchaoxin.sharing import keys, outbox
from fanchaoxin.sharing.models import OutboxItem
from fanchaoxin.workflows.entries import take_step

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def fresh_database(backend: str) -> tuple[str, Callable[[], None]]:
    """A database URL reachable from other processes, and its removal."""
    if backend == "sqlite":
        folder = tempfile.mkdtemp(prefix="fcx_faults_webhooks_")
        url = f"sqlite:///{folder}/bench.db"
        db = Database(url)
        db.upgrade()
        db.dispose()
        return url, lambda: shutil.rmtree(folder, ignore_errors=True)
    schema = f"fcx_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG)
    with admin.begin() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    db = Database(PG, schema=schema)
    db.upgrade()
    db.dispose()

    def drop() -> None:
        with admin.begin() as c:
            c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return f"{PG}?options=-csearch_path%3D{schema}", drop


class Receiver:
    """A slow webhook receiver that counts every request by event id."""

    def __init__(self, delay: float) -> None:
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []  # (event id, worker)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                time.sleep(delay)
                with receiver.lock:
                    receiver.requests.append(
                        (self.headers.get("X-FCX-Event-Id", "?"), self.headers.get("X-Bench-Worker", "?"))
                    )
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def setup(url: str, events: int, hook_url: str) -> None:
    keys.init()
    db = Database(url)
    try:
        with db.session() as s:
            shop = orgs.create_organisation(
                s,
                SYSTEM,
                kind=OrgKind.enterprise,
                name="电商",
                business_types=[BusinessType.ecommerce],
                agreement_signed_on=date(2017, 1, 1),
            )
            reporter = orgs.create_organisation(
                s,
                SYSTEM,
                kind=OrgKind.enterprise,
                name="出行",
                business_types=[BusinessType.sharing_economy],
                agreement_signed_on=date(2017, 1, 1),
            )
            outbox.subscribe(s, SYSTEM, shop, hook_url)
            reporter_id = reporter.id
        for i in range(events):
            body = {
                "subject": {
                    "kind": "individual",
                    "name": f"用户{i}",
                    "identifiers": [{"type": "phone", "value": f"138{i:08d}"}],
                },
                "behaviours": ["order_brushing"],
                "role": "participant",
                "severity": "minor",
                "basis": "enterprise_finding",
                "facts": "参与刷单。",
            }
            with db.session() as s:
                e = registry.submit(s, SYSTEM, reporter_id, EntryIn.model_validate(body))
                take_step(s, SYSTEM, e, Action.start_review)
                take_step(s, SYSTEM, e, Action.open_notice)
                e.notice_ends_on = date.today() - timedelta(days=1)
                take_step(s, SYSTEM, e, Action.publish)
    finally:
        db.dispose()


def pending(db: Any) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).where(OutboxItem.status == "pending")) or 0)


def worker(name: str, url: str, lease: float | None, deadline: float, out: Any) -> None:
    """One delivery process: ``fcx sharing deliver --loop`` with a header naming the worker."""
    if lease is not None:
        outbox.LEASE_SECONDS = lease  # type: ignore[misc]
    settings = get_settings()
    db = Database(url)
    client = httpx.Client(timeout=settings.sharing_webhook_timeout_seconds, headers={"X-Bench-Worker": name})
    rounds = 0
    try:
        while time.monotonic() < deadline:
            counts = outbox.deliver_due(db, settings=settings, client=client)
            rounds += 1
            if not any(counts.values()):
                if pending(db) == 0:
                    break
                time.sleep(settings.sharing_deliver_interval_seconds)
    finally:
        client.close()
        db.dispose()
        out.put((name, rounds))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--delay", type=float, default=0.75, help="receiver's sleep per request (s)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backend", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--lease", type=float, default=None, help="override outbox.LEASE_SECONDS")
    parser.add_argument("--timeout", type=float, default=None, help="FCX_SHARING_WEBHOOK_TIMEOUT_SECONDS")
    parser.add_argument("--deadline", type=float, default=300.0, help="stop the workers after (s)")
    args = parser.parse_args(argv)
    if not 1 <= args.events <= 10_000 or not 1 <= args.workers <= 8 or args.deadline > 1800:
        parser.error("--events 1..10000, --workers 1..8, --deadline ≤ 1800")

    tmp = tempfile.mkdtemp(prefix="fcx_faults_webhooks_keys_")
    url, remove = fresh_database(args.backend)
    receiver = Receiver(args.delay)
    os.environ.update(
        {
            "FCX_DATABASE_URL": url,
            "FCX_SHARING_KEY_DIR": f"{tmp}/keys",
            "FCX_SHARING_WEBHOOK_ALLOW_PRIVATE": "true",  # the receiver is on 127.0.0.1
        }
    )
    if args.timeout is not None:
        os.environ["FCX_SHARING_WEBHOOK_TIMEOUT_SECONDS"] = str(args.timeout)
    get_settings.cache_clear()
    try:
        setup(url, args.events, receiver.url)
        ctx = multiprocessing.get_context("spawn")
        out = ctx.Queue()
        started = time.monotonic()
        deadline = started + args.deadline
        procs = [
            ctx.Process(target=worker, args=(f"w{i + 1}", url, args.lease, deadline, out))
            for i in range(args.workers)
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=max(1.0, deadline - time.monotonic()) + 30)
            if p.is_alive():
                p.kill()
        wall = time.monotonic() - started
        rounds: dict[str, int] = {}
        for _ in procs:
            with contextlib.suppress(queue.Empty):
                name, n = out.get(timeout=5)
                rounds[name] = n
        with receiver.lock:
            requests = list(receiver.requests)
        per_event = Counter(e for e, _ in requests)
        twice = sorted((e for e, n in per_event.items() if n > 1), key=lambda e: int(e.split("_")[1]))
        result = {
            "code": os.path.dirname(fanchaoxin.__file__),
            "backend": args.backend,
            "events": args.events,
            "workers": args.workers,
            "receiver_delay_s": args.delay,
            "lease_s": args.lease or "code default",
            "requests": len(requests),
            "distinct_events": len(per_event),
            "duplicate_deliveries": len(requests) - len(per_event),
            "events_delivered_more_than_once": twice,
            "requests_per_worker": dict(Counter(w for _, w in requests)),
            "rounds_per_worker": rounds,
            "wall_s": round(wall, 1),
        }
        print(json.dumps(result, ensure_ascii=False, indent=1))
    finally:
        receiver.close()
        remove()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
