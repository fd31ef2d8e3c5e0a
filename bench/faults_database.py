"""The database goes away, then freezes, under load: what do clients get? (issue #13, points 11–13)

    .venv/bin/python -m bench.faults_database [--clients 8] [--outage 30] [--workers 1]

A fresh PostgreSQL schema (dropped at the end) gets two enterprises (keys) and `--entries`
published entries. The platform runs as `fcx serve` does (uvicorn, `create_served_app`, 127.0.0.1)
and reaches PostgreSQL only through a local TCP proxy (tests/core/faults.py `TcpProxy`). `--clients`
threads, each on one keep-alive connection, send lookups (GET /v1/lookup, which also writes an
audit row; half the clients) or decisions (POST /v1/decisions; the other half), as fast as answers
come, through five phases:

    healthy (5 s) → cut (--outage s: new connections refused, open ones dropped) → healthy (10 s)
    → frozen (--outage s: connections open, nothing forwarded) → healthy (10 s)

Every answer is counted by phase, route and status; a request with no answer after 60 s is a
"timeout", one answered after more than --hang seconds (35) a "hang", a dropped connection "dropped".
The load is bounded in time (the phases) and in count (--max-requests).

To measure the code before a change, run it against a worktree of that commit:

    PYTHONPATH=/tmp/before/src .venv/bin/python -m bench.faults_database
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from tests.core.faults import TcpProxy

from bench.bench_uploads import make_uscc
from bench.loadgen import wait_until_serving
from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.blacklist.schemas import EntryIn
from fanchaoxin.core.audit import SYSTEM
from fanchaoxin.core.db import Database
from fanchaoxin.core.roles import BusinessType, OrgKind, Role
from fanchaoxin.orgs import service as orgs
from fanchaoxin.workflows.entries import take_step

PG = os.environ.get("FCX_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REQUEST_TIMEOUT = 60.0  # seconds: no answer by then is a "timeout"
START_TIMEOUT = 60.0


def _entry(uscc: str, i: int) -> dict[str, Any]:
    return {
        "subject": {
            "kind": "unit",
            "name": f"某刷单公司{i}",
            "identifiers": [{"type": "uscc", "value": uscc}],
        },
        "behaviours": ["order_brushing"],
        "role": "organizer",
        "severity": "serious",
        "basis": "judicial_decision",
        "document_number": f"(2026)京0105刑初{200 + i}号",
        "issuing_authority": "北京市朝阳区人民法院",
        "facts": "组织刷单。",
    }


def seed(db: Database, entries: int, rng: random.Random) -> tuple[str, str, list[str]]:
    """(operator key for lookups, node key for decisions, published USCCs)."""
    with db.session() as s:
        shop = orgs.create_organisation(
            s, SYSTEM, kind=OrgKind.enterprise, name="基准电商", business_types=[BusinessType.ecommerce],
            agreement_signed_on=date(2017, 1, 1),
        )  # fmt: skip
        bank = orgs.create_organisation(
            s, SYSTEM, kind=OrgKind.enterprise, name="基准金融",
            business_types=[BusinessType.internet_finance], agreement_signed_on=date(2017, 1, 1),
        )  # fmt: skip
        operator = orgs.create_key(s, SYSTEM, shop, Role.enterprise_operator).secret
        node = orgs.create_key(s, SYSTEM, bank, Role.enterprise_node).secret
        shop_id = shop.id
    usccs = [make_uscc(rng) for _ in range(entries)]
    with db.session() as s:
        for i, uscc in enumerate(usccs):
            entry = registry.submit(s, SYSTEM, shop_id, EntryIn.model_validate(_entry(uscc, i)))
            take_step(s, SYSTEM, entry, Action.start_review)
            take_step(s, SYSTEM, entry, Action.publish)
    return operator, node, usccs


@dataclass
class Tally:
    hang_after: float
    counts: collections.Counter[tuple[str, str, str]] = field(default_factory=collections.Counter)
    seconds: collections.defaultdict[str, list[float]] = field(
        default_factory=lambda: collections.defaultdict(list)
    )
    samples: dict[tuple[str, str], str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: int = 0
    trace: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def add(
        self, phase: str, route: str, outcome: str, seconds: float, sample: str = "", client: int = 0
    ) -> None:
        with self.lock:
            at = time.monotonic() - self.started - seconds
            self.trace.append(f"{client},{route},{phase},{at:.3f},{seconds:.3f},{outcome}")
            self.counts[(phase, route, outcome)] += 1
            if seconds > self.hang_after:
                self.counts[(phase, route, "hang")] += 1
            self.seconds[phase].append(seconds)
            if outcome != "200" and (phase, outcome) not in self.samples:
                self.samples[(phase, outcome)] = f"{route}, {seconds:.1f} s: {sample[:240]}"


class Phases:
    def __init__(self, schedule: list[tuple[str, float]]) -> None:
        self.schedule = schedule
        self.current = schedule[0][0]
        self.over = threading.Event()


def client(base: str, operator: str, node: str, usccs: list[str], phases: Phases, tally: Tally,
           max_requests: int, seed_: int) -> None:  # fmt: skip
    rng = random.Random(seed_)
    # Half the clients look up, half ask for decisions: a client waiting on one route does not hold
    # back the other's count.
    route = "decisions" if seed_ % 2 else "lookup"
    with httpx.Client(base_url=base, timeout=REQUEST_TIMEOUT) as c:
        while not phases.over.is_set():
            with tally.lock:
                if tally.sent >= max_requests:
                    return
                tally.sent += 1
            uscc = rng.choice(usccs) if rng.random() < 0.5 else make_uscc(rng)
            phase = phases.current
            started = time.monotonic()
            try:
                if route == "lookup":
                    r = c.get("/v1/lookup", params={"type": "uscc", "value": uscc},
                              headers={"X-API-Key": operator})  # fmt: skip
                else:
                    body = {"scene": "internet_finance", "identifiers": [{"type": "uscc", "value": uscc}]}
                    r = c.post("/v1/decisions", json=body, headers={"X-API-Key": node})
                outcome, sample = str(r.status_code), r.text
            except httpx.TimeoutException:
                outcome, sample = "timeout", ""
            except httpx.TransportError as exc:  # the server closed the connection under the request
                outcome, sample = "dropped", repr(exc)
            tally.add(phase, route, outcome, time.monotonic() - started, sample, seed_)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--outage", type=float, default=30.0, help="seconds cut, then seconds frozen")
    ap.add_argument("--entries", type=int, default=20)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--hang", type=float, default=35.0, help="an answer slower than this is a hang")
    ap.add_argument("--max-requests", type=int, default=500_000)
    ap.add_argument("--server-log", default="/tmp/fcx_faults_database_server.log")
    ap.add_argument("--trace", help="write every request (client,route,phase,start,seconds,outcome) here")
    args = ap.parse_args()
    if not 1 <= args.clients <= 64 or not 1 <= args.outage <= 120 or not 1 <= args.entries <= 1000:
        ap.error("1 ≤ clients ≤ 64, 1 ≤ outage ≤ 120 s, 1 ≤ entries ≤ 1000")

    schema = f"fcx_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG)
    with admin.begin() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    db = Database(PG, schema=schema)
    pg = make_url(PG)
    server = None
    server_log = None
    proxy = TcpProxy(pg.host or "127.0.0.1", pg.port or 5432)
    tally = Tally(hang_after=args.hang)
    try:
        db.upgrade()
        operator, node, usccs = seed(db, args.entries, random.Random(13))
        via_proxy = pg.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        port = free_port()
        env = {
            **os.environ,
            "FCX_DATABASE_URL": f"{via_proxy}?options=-csearch_path%3D{schema}",
            "FCX_JOBS_INTERVAL_SECONDS": "0",
        }
        server_log = open(args.server_log, "w")  # noqa: SIM115  (open while the server runs)
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "fanchaoxin.app:create_served_app", "--factory",
             "--host", "127.0.0.1", "--port", str(port), "--workers", str(args.workers),
             "--log-level", "warning"],
            env=env, stdout=server_log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        wait_until_serving(f"{base}/readyz", server, START_TIMEOUT)

        schedule = [("healthy", 5.0), ("cut", args.outage), ("after cut", 10.0),
                    ("frozen", args.outage), ("after freeze", 10.0)]  # fmt: skip
        phases = Phases(schedule)
        tally.started = time.monotonic()
        threads = [
            threading.Thread(
                target=client, args=(base, operator, node, usccs, phases, tally, args.max_requests, n),
                daemon=True,
            )
            for n in range(args.clients)
        ]  # fmt: skip
        for t in threads:
            t.start()
        for name, seconds in schedule:
            phases.current = name
            if name == "cut":
                proxy.cut()
            elif name == "frozen":
                proxy.freeze()
            elif name.startswith("after"):
                proxy.restore()
            time.sleep(seconds)
        phases.over.set()
        for t in threads:
            t.join(REQUEST_TIMEOUT + 5)
        report(tally, schedule, args)
        if args.trace:
            with open(args.trace, "w") as f:
                f.write("client,route,phase,start,seconds,outcome\n" + "\n".join(tally.trace) + "\n")
    finally:
        proxy.close()
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        if server_log is not None:
            server_log.close()
        db.dispose()
        with admin.begin() as c:
            c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def report(tally: Tally, schedule: list[tuple[str, float]], args: argparse.Namespace) -> None:
    code = sys.modules["fanchaoxin"].__file__
    print(f"code: {code}; {args.clients} clients, {args.workers} worker(s), outage {args.outage:g} s")
    outcomes = [*sorted({o for _, _, o in tally.counts} - {"hang"}), "hang"]
    print(f"{'phase':<13} {'route':<10} " + " ".join(f"{o:>8}" for o in outcomes)
          + "   seconds: median / 99% / max (both routes)")  # fmt: skip
    totals: collections.Counter[str] = collections.Counter()
    for phase, _ in schedule:
        times = sorted(tally.seconds[phase]) or [0.0]
        spread = (
            f"{statistics.median(times):.2f} / {times[int(0.99 * (len(times) - 1))]:.2f} / {times[-1]:.1f}"
        )
        for route in ("lookup", "decisions"):
            row = [tally.counts[(phase, route, o)] for o in outcomes]
            for o, v in zip(outcomes, row, strict=True):
                totals[o] += v
            print(f"{phase:<13} {route:<10} " + " ".join(f"{v:>8}" for v in row)
                  + (f"   {spread}" if route == "lookup" else ""))  # fmt: skip
    print(f"{'total':<24} " + " ".join(f"{totals[o]:>8}" for o in outcomes))
    print(f"(by the phase a request started in; hang: answered, or not, after more than {args.hang:g} s)")
    for (phase, outcome), sample in tally.samples.items():
        print(f"  first {outcome} in {phase}: {sample}")


if __name__ == "__main__":
    main()
