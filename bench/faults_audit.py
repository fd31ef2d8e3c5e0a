"""Audited reads while a bulk upload runs: do look-ups stall behind the audit chain head?

    .venv/bin/python -m bench.faults_audit --rows 50000 --published 20000

On a fresh PostgreSQL schema: `--published` published entries are seeded with bulk SQL, then two
uvicorn servers (one worker each, like two workers of one deployment) are started on the same
database. One receives a `--rows`-row CSV on `POST /v1/uploads`; meanwhile a loop sends audited
`GET /v1/lookup?type=uscc&value=…` to the other, one at a time, until the upload has answered (at
most `--max-lookups` requests and `--max-seconds` seconds). Printed: the look-up latency before the
upload (baseline) and during it — count, p50, p99 and max — and the upload's own time.

A look-up is audited (`audit.record_read`), so it appends to the audit chain; if the upload held the
chain head's row lock for its whole transaction, every look-up would wait for the upload to commit.

To measure the code before a change, point PYTHONPATH at a worktree of the older commit (the servers
inherit it): `PYTHONPATH=/tmp/before/src .venv/bin/python -m bench.faults_audit …`.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from datetime import date
from typing import Any

import httpx

import fanchaoxin
from bench.bench_registry import db_url, fresh_database, seed_published, tenant
from bench.bench_uploads import generate_rows, machine, make_uscc, to_csv
from fanchaoxin.core.audit import SYSTEM
from fanchaoxin.core.roles import BusinessType, OrgKind, Role
from fanchaoxin.orgs import service as orgs


def _serve(url: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "FCX_DATABASE_URL": url,
        "FCX_JOBS_INTERVAL_SECONDS": "0",
        "FCX_MAX_UPLOAD_BYTES": str(512 * 1024 * 1024),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "fanchaoxin.app:create_app", "--factory", "--port", str(port),
         "--host", "127.0.0.1", "--log-level", "warning"],
        env=env,
    )  # fmt: skip


def _wait_up(client: httpx.Client) -> None:
    for _ in range(150):
        try:
            client.get("/healthz")
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit("server did not start")


def _summary(name: str, ms: list[float]) -> str:
    if not ms:
        return f"{name}: no requests"
    q = statistics.quantiles(ms, n=100) if len(ms) >= 2 else [ms[0]] * 99
    return f"{name}: {len(ms):,} look-ups, p50 {q[49]:.1f} ms, p99 {q[98]:.1f} ms, max {max(ms):.1f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=50_000, help="rows in the uploaded CSV")
    ap.add_argument("--published", type=int, default=20_000, help="published entries to look up")
    ap.add_argument("--baseline", type=int, default=300, help="look-ups before the upload")
    ap.add_argument("--max-lookups", type=int, default=50_000, help="bound on look-ups during the upload")
    ap.add_argument("--max-seconds", type=float, default=600, help="bound on the whole upload phase")
    ap.add_argument("--port", type=int, default=18771)
    args = ap.parse_args()
    print(machine())
    print(f"code under test: {os.path.dirname(fanchaoxin.__file__)}")

    db, drop = fresh_database("postgresql")
    servers: list[subprocess.Popen[bytes]] = []
    try:
        org_id, upload_key = tenant(db)
        with db.session() as s:
            reader = orgs.create_organisation(
                s, SYSTEM, kind=OrgKind.enterprise, name="查询方",
                business_types=[BusinessType.logistics], agreement_signed_on=date(2017, 1, 1),
            )  # fmt: skip
            lookup_key = orgs.create_key(s, SYSTEM, reader, Role.enterprise_node).secret
        usccs = seed_published(db, org_id, args.published)
        body = to_csv(generate_rows(args.rows, seed=7)).encode("utf-8")
        url = db_url(db)
        servers = [_serve(url, args.port), _serve(url, args.port + 1)]
        up = httpx.Client(base_url=f"http://127.0.0.1:{args.port}", headers={"X-API-Key": upload_key},
                          timeout=args.max_seconds)  # fmt: skip
        look = httpx.Client(base_url=f"http://127.0.0.1:{args.port + 1}", headers={"X-API-Key": lookup_key},
                            timeout=args.max_seconds)  # fmt: skip
        _wait_up(up)
        _wait_up(look)
        rng = random.Random(11)

        def one_lookup() -> tuple[float, int]:
            value = rng.choice(usccs) if rng.random() < 0.9 else make_uscc(rng)
            t = time.perf_counter()
            r = look.get(f"/v1/lookup?type=uscc&value={value}")
            return (time.perf_counter() - t) * 1000, r.status_code

        for _ in range(50):  # warm-up
            one_lookup()
        baseline = [one_lookup()[0] for _ in range(args.baseline)]

        result: dict[str, Any] = {}

        def upload() -> None:
            t = time.perf_counter()
            r = up.post("/v1/uploads", files={"file": ("bench.csv", body, "text/csv")})
            result["seconds"] = time.perf_counter() - t
            result["status"] = r.status_code
            result["body"] = r.json() if r.headers.get("content-type", "").find("json") >= 0 else r.text

        thread = threading.Thread(target=upload)
        during: list[float] = []
        statuses: dict[int, int] = {}
        started = time.monotonic()
        thread.start()
        while thread.is_alive() and len(during) < args.max_lookups:
            if time.monotonic() - started > args.max_seconds:
                break
            ms, code = one_lookup()
            during.append(ms)
            statuses[code] = statuses.get(code, 0) + 1
        thread.join(args.max_seconds)
        out = result.get("body")
        accepted = out.get("accepted") if isinstance(out, dict) else out
        print(
            f"upload: {args.rows:,} CSV rows ({len(body) / 1e6:.1f} MB) → HTTP {result.get('status')}, "
            f"accepted {accepted}, {result.get('seconds', float('nan')):.1f} s"
        )
        print(_summary("baseline (no upload)", baseline))
        print(_summary("during the upload", during) + f"; statuses {statuses}")
        slow = sum(1 for ms in during if ms > 1000)
        print(f"look-ups slower than 1 s during the upload: {slow}")
        look.close()
        up.close()
    finally:
        for p in servers:
            p.terminate()
        for p in servers:
            p.wait(30)
        drop()


if __name__ == "__main__":
    main()
