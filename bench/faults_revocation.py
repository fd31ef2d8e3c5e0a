"""How long a revoked API key keeps working in the other API processes (issue #13, point 4).

    .venv/bin/python -m bench.faults_revocation

A fresh PostgreSQL schema (dropped at the end) and two API processes on it (uvicorn, one worker each,
on two ports of 127.0.0.1: two workers behind one balancer, told apart). An enterprise_node key is
used on both until both have it cached; it is revoked through process A; then both are hammered with
it for `--seconds` (35) by `--threads` clients each, at most `--max-requests` requests in all. Printed
per process: requests that succeeded after the revocation, and the latest of them (seconds after the
revocation was answered).

To measure the code before a change, run it against a worktree of that commit:

    PYTHONPATH=/tmp/before/src .venv/bin/python -m bench.faults_revocation
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import date

import httpx
from sqlalchemy import create_engine, select, text

import fanchaoxin
from bench.loadgen import wait_until_serving
from fanchaoxin.core.audit import SYSTEM
from fanchaoxin.core.db import Database
from fanchaoxin.core.roles import BusinessType, OrgKind, Role
from fanchaoxin.orgs import service as orgs
from fanchaoxin.orgs.models import ApiKey

PG = os.environ.get("FCX_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REQUEST_TIMEOUT = 10.0  # seconds; a request that takes longer is counted as an error
START_TIMEOUT = 60.0  # seconds for a server to answer /healthz


@dataclass
class Tally:
    ok: int = 0
    refused: int = 0
    other: int = 0
    last_ok: float | None = None  # seconds after the revocation
    first_refused: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


def _keys(db: Database) -> tuple[str, str, uuid.UUID]:
    with db.session() as s:
        ent = orgs.create_organisation(
            s,
            SYSTEM,
            kind=OrgKind.enterprise,
            name="基准电商",
            business_types=[BusinessType.ecommerce],
            agreement_signed_on=date(2017, 1, 1),
        )
        operator = orgs.create_key(s, SYSTEM, ent, Role.enterprise_operator).secret
        node = orgs.create_key(s, SYSTEM, ent, Role.enterprise_node).secret
    with db.session() as s:
        key_id = s.scalar(select(ApiKey.id).where(ApiKey.prefix == node.split("_")[1]))
    assert key_id is not None
    return operator, node, key_id


def _start(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "fanchaoxin.app:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "error"],
        env=env,
    )  # fmt: skip


def _wait(base: str, server: subprocess.Popen[bytes]) -> None:
    wait_until_serving(f"{base}/healthz", server, START_TIMEOUT)


def _hammer(base: str, key: str, t0: float, seconds: float, budget: list[int], tally: Tally) -> None:
    with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=REQUEST_TIMEOUT) as c:
        while time.monotonic() - t0 < seconds:
            with tally.lock:
                if budget[0] <= 0:
                    return
                budget[0] -= 1
            try:
                status = c.get("/v1/whoami").status_code
            except httpx.HTTPError:
                status = 0
            at = time.monotonic() - t0
            with tally.lock:
                if status == 200:
                    tally.ok += 1
                    tally.last_ok = at
                elif status == 401:
                    tally.refused += 1
                    if tally.first_refused is None:
                        tally.first_refused = at
                else:
                    tally.other += 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=35.0, help="how long to hammer after the revocation")
    ap.add_argument("--threads", type=int, default=4, help="clients per process")
    ap.add_argument("--max-requests", type=int, default=200_000, help="all processes together")
    ap.add_argument("--port", type=int, default=18795, help="process A; B listens on the next port")
    args = ap.parse_args()
    if not 1 <= args.seconds <= 120 or not 1 <= args.threads <= 32 or not 1 <= args.max_requests <= 1_000_000:
        ap.error("1 ≤ seconds ≤ 120, 1 ≤ threads ≤ 32, 1 ≤ max-requests ≤ 1,000,000")
    print(f"code under test: {os.path.dirname(fanchaoxin.__file__)}")

    schema = f"fcx_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG)
    with admin.begin() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    db = Database(PG, schema=schema)
    servers: list[subprocess.Popen[bytes]] = []
    try:
        db.upgrade()
        operator, node, key_id = _keys(db)
        env = {
            **os.environ,
            "FCX_DATABASE_URL": f"{PG}?options=-csearch_path%3D{schema}",
            "FCX_JOBS_INTERVAL_SECONDS": "0",
        }
        bases = [f"http://127.0.0.1:{args.port + i}" for i in range(2)]
        servers = [_start(args.port + i, env) for i in range(2)]
        for base, server in zip(bases, servers, strict=True):
            _wait(base, server)
        for base in bases:  # both processes now hold the key in their caches
            for _ in range(3):
                r = httpx.get(f"{base}/v1/whoami", headers={"X-API-Key": node}, timeout=REQUEST_TIMEOUT)
                assert r.status_code == 200, r.text
        r = httpx.post(
            f"{bases[0]}/v1/keys/{key_id}/revoke",
            json={"reason": "benchmark: revoked"},
            headers={"X-API-Key": operator},
            timeout=REQUEST_TIMEOUT,
        )
        assert r.status_code == 200, r.text
        t0 = time.monotonic()
        tallies = [Tally(), Tally()]
        budget = [args.max_requests]
        threads = [
            threading.Thread(target=_hammer, args=(base, node, t0, args.seconds, budget, tally))
            for base, tally in zip(bases, tallies, strict=True)
            for _ in range(args.threads)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(f"revoked through A; both hammered for {args.seconds:.0f} s with {args.threads} clients each")
        for name, tally in zip(("A (revoked here)", "B (other process)"), tallies, strict=True):
            last = f"{tally.last_ok:.3f} s" if tally.last_ok is not None else "-"
            first = f"{tally.first_refused:.3f} s" if tally.first_refused is not None else "-"
            print(
                f"  {name:18} accepted after revocation: {tally.ok:6}  latest accepted: {last:>9}  "
                f"refused: {tally.refused:6} (first at {first})  other: {tally.other}"
            )
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        db.dispose()
        with admin.begin() as c:
            c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
