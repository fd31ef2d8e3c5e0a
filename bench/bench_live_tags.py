"""Live tags for first-seen identifiers (issue #16): the platform and a node on loopback.

    .venv/bin/python -m bench.bench_live_tags [--rate 200] [--seconds 10] [--listed 100]
                                              [--http-seconds 5] [--concurrency 16] [--decisions 200000]

1. The platform (`uvicorn fanchaoxin.app:create_served_app`, SQLite, one process) with one enterprise and
   `--listed` published serious entries on natural persons (by phone); a node (`fcx node serve`, its own
   process) initialised and synced, enrolling nobody.
2. First-seen: an open-loop client sends `--rate` requests a second, each naming a phone never seen
   before (1 in 10 a listed one), for `--seconds`; every request's latency is timed from its scheduled
   start (a slow answer delays no later request). Each needs a live tag: blinded evaluation on the
   platform, batched by the node across concurrent requests. Target p99 ≤ 30 ms at 200 req/s.
3. Repeats over HTTP: the same phones again, closed-loop keep-alive load (bench/loadgen.py) at
   `--concurrency` for `--http-seconds`: their tags are held, nothing leaves the node. Target ≥ 10,000
   req/s (today's figure for enrolled users).
4. Repeats in process: a `Node` on the same store (it loads the live tags the server wrote) decides
   `--decisions` times on one core. Target ≥ 200,000/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.loadgen import python_run, wait_until_serving
from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.blacklist.schemas import EntryIn
from fanchaoxin.core import vault
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.db import Database
from fanchaoxin.core.roles import BusinessType, OrgKind, Role
from fanchaoxin.core.settings import get_settings
from fanchaoxin.node import Node
from fanchaoxin.node.store import Store
from fanchaoxin.node.sync import initialise, sync
from fanchaoxin.orgs import service as org_service
from fanchaoxin.sharing import oprf
from fanchaoxin.sharing import protocol as P
from fanchaoxin.workflows.entries import take_step

SCENE = "account_registration"
ACTOR = Actor("bench:live-tags")


def phone(i: int) -> str:
    return f"13{i % 10}{i:08d}"[:11]


def setup_platform(url: str, listed: int) -> str:
    """One enterprise (its node key returned) and `listed` published serious entries on persons."""
    db = Database(url)
    db.upgrade()
    with db.session() as s:
        org = org_service.create_organisation(
            s, ACTOR, kind=OrgKind.enterprise, name="某电商平台", business_types=[BusinessType.ecommerce],
            agreement_signed_on=date(2017, 1, 1), declared_users=10_000_000,
        )  # fmt: skip
        key = org_service.create_key(s, ACTOR, org, Role.enterprise_node).secret
        org_id = org.id
    for i in range(listed):
        body = {
            "subject": {"kind": "individual", "name": f"张{i}",
                        "identifiers": [{"type": "phone", "value": phone(i)}]},
            "behaviours": ["order_brushing"], "role": "organizer", "severity": "serious",
            "basis": "enterprise_finding", "facts": "组织刷单。",
        }  # fmt: skip
        with db.session() as s:
            e = registry.submit(s, ACTOR, org_id, EntryIn.model_validate(body))
            take_step(s, ACTOR, e, Action.start_review)
            take_step(s, ACTOR, e, Action.open_notice)
            e.notice_ends_on = date.today() - timedelta(days=1)
            take_step(s, ACTOR, e, Action.publish)
    db.dispose()
    return key


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def open_loop(port: int, phones: list[str], rate: float) -> tuple[list[float], dict[str, int]]:
    """Send one request per phone at `rate` a second (scheduled, not waiting for answers)."""
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30) as c:
        latencies: list[float] = []
        counts: dict[str, int] = {}

        async def one(p: str, at: float) -> None:
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            r = await c.post(
                "/v1/decisions", json={"scene": SCENE, "identifiers": [{"type": "phone", "value": p}]}
            )
            latencies.append(time.perf_counter() - at)
            body = r.json() if r.status_code == 200 else {}
            k = f"{r.status_code} {body.get('verdict')} {body.get('live_tag')}"
            counts[k] = counts.get(k, 0) + 1

        start = time.perf_counter() + 0.2
        await asyncio.gather(*(one(p, start + i / rate) for i, p in enumerate(phones)))
        return latencies, counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--listed", type=int, default=100)
    ap.add_argument("--http-seconds", type=float, default=5.0)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--decisions", type=int, default=200_000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-live-"))
    procs: list[subprocess.Popen[Any]] = []
    env = {
        **os.environ, "FCX_DATABASE_URL": f"sqlite:///{tmp / 'platform.db'}", "FCX_SHARING_KEY_DIR": str(tmp / "keys"),
        "FCX_JOBS_INTERVAL_SECONDS": "0", "FCX_SHARING_TAG_WORKERS": "1",
        "FCX_QUOTA_EVALUATIONS_PER_MINUTE": "10000000", "FCX_NODE_LOG_LEVEL": "WARNING",
    }  # fmt: skip
    if "FCX_DATA_KEY_FILE" not in os.environ:  # a data key ring of this run's own (core.vault)
        env["FCX_DATA_KEY_FILE"] = str(tmp / "data.json")
        vault.write_ring(vault.new_ring(tmp / "data.json"), exclusive=True)
    os.environ.update(env)
    get_settings.cache_clear()
    try:
        key = setup_platform(env["FCX_DATABASE_URL"], args.listed)
        pport = free_port()
        log = (tmp / "platform.log").open("ab")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "fanchaoxin.app:create_served_app", "--host", "127.0.0.1",
             "--port", str(pport), "--log-level", "warning"], env=env, stdout=log, stderr=log,
        ))  # fmt: skip
        platform = f"http://127.0.0.1:{pport}"
        wait_until_serving(platform + "/healthz", procs[0], 120)
        store_path = tmp / "node.db"
        initialise(str(store_path), platform, key)
        store = Store(store_path)
        t = time.perf_counter()
        sync(store)
        print(f"platform with {args.listed} listed persons; node synced in {time.perf_counter() - t:.1f} s")
        port_file = tmp / "node.port"
        nlog = (tmp / "node.log").open("ab")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "fanchaoxin", "node", "serve", "--store", str(store_path), "--port", "0",
             "--port-file", str(port_file), "--sync-interval", "3600", "--status-interval", "0"],
            env=env, stdout=nlog, stderr=nlog,
        ))  # fmt: skip
        while not port_file.exists():
            if procs[1].poll() is not None:
                raise SystemExit(f"node did not start; see {tmp / 'node.log'}")
            time.sleep(0.1)
        port = int(port_file.read_text())
        wait_until_serving(f"http://127.0.0.1:{port}/readyz", procs[1], 60)

        rng = random.Random(16)
        n = int(args.rate * args.seconds)
        fresh = [phone(args.listed + 1000 + i) for i in range(n)]
        listed = [phone(i) for i in range(args.listed)]
        for i in range(0, n, 10):  # 1 in 10 a listed person
            fresh[i] = listed[(i // 10) % len(listed)] if i // 10 < len(listed) else fresh[i]
        rng.shuffle(fresh)
        # warm the connections and the platform's first evaluation (not timed)
        asyncio.run(open_loop(port, [phone(90_000_000 + i) for i in range(20)], 50))
        # one at a time: a live evaluation's own cost, and the platform's part of it
        seq_lat, direct = [], []
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
            for i in range(50):
                t = time.perf_counter()
                c.post(
                    "/v1/decisions",
                    json={"scene": SCENE, "identifiers": [{"type": "phone", "value": phone(91_000_000 + i)}]},
                )
                seq_lat.append(time.perf_counter() - t)
        blinded = [P.b64(oprf.blind(b"phone:+8613900000000")[1])]
        with httpx.Client(base_url=platform, headers={"X-API-Key": key}) as c:
            for _ in range(50):
                t = time.perf_counter()
                c.post("/v1/sharing/evaluate", json={"blinded": blinded}).raise_for_status()
                direct.append(time.perf_counter() - t)
        print(
            f"first-seen, one request at a time: median {statistics.median(seq_lat) * 1000:.1f} ms a decision, "
            f"of which the platform's POST /v1/sharing/evaluate of one element {statistics.median(direct) * 1000:.1f} ms"
        )
        lat, counts = asyncio.run(open_loop(port, fresh, args.rate))
        q = statistics.quantiles(lat, n=100)
        print(
            f"first-seen identifiers at {args.rate:.0f} req/s for {args.seconds:.0f} s ({len(lat)} requests, "
            f"each a live evaluation): p50 {q[49] * 1000:.1f} ms, p99 {q[98] * 1000:.1f} ms, "
            f"max {max(lat) * 1000:.1f} ms (target p99 ≤ 30 ms); answers {counts}; "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        bodies = [json.dumps({"scene": SCENE, "identifiers": [{"type": "phone", "value": p}]}) for p in fresh]
        python_run(port, "none", bodies, 4, 1.0)
        r = python_run(port, "none", bodies, args.concurrency, args.http_seconds)
        print(
            f"repeat identifiers over HTTP, {args.concurrency} connections: {r['requests'] / r['seconds']:,.0f} "
            f"req/s (p50 {r['p50']:.1f} ms, p99 {r['p99']:.1f} ms, {r['bad']} non-200; target ≥ 10,000 req/s)"
        )
        time.sleep(1.5)  # the server's background writer has stored the live tags
        node = Node(store_path, refresh_seconds=None)
        held = len(node.live.tags) if node.live else 0
        pairs = [("phone", p) for p in fresh]
        for p in pairs:
            node.decide([p], SCENE)
        t = time.perf_counter()
        m = len(pairs)
        for i in range(args.decisions):
            node.decide([pairs[i % m]], SCENE)
        dt = time.perf_counter() - t
        stats = node.live_stats()
        print(
            f"repeat identifiers in process: {args.decisions / dt:,.0f} decisions/s on one core "
            f"({held} live tags loaded from the store; evaluations in process: "
            f"{stats['calls'] if stats else 0}; target ≥ 200,000/s)"
        )
        node.close()
    finally:
        for p in reversed(procs):
            p.terminate()
            p.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
