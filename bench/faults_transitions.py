"""Concurrent lifecycle steps on the same entries: every lost race must be a 409, never a 500.

    .venv/bin/python -m bench.faults_transitions --entries 5 --attempts 55

A fresh PostgreSQL schema (dropped at the end) gets `--entries` entries under review; a real server
(uvicorn, `--workers` workers, 127.0.0.1) is started on it; then `--attempts` reviewers, each with a key
of its own, fire at once — first `publish`, then `revoke`, each sent with the version they read, spread
over the entries — and
the answers are counted by status code. One step per entry can win each round (200); every other
attempt must be told so with a 409 problem. The numbers in the issue (#13) came from this script.

To measure the code before a change, run it against a worktree of that commit:

    PYTHONPATH=/tmp/before/src .venv/bin/python -m bench.faults_transitions
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import threading
import uuid
from datetime import date
from typing import Any

import httpx
from sqlalchemy import create_engine, text

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
WHY_409 = (
    ("at the same time", "lost race"),
    ("changed since you read it", "stale version"),
    ("Cannot ", "state"),
)
REQUEST_TIMEOUT = 60.0  # seconds; a request that takes longer is counted as "timeout"
START_TIMEOUT = 60.0  # seconds for the server to answer /healthz


def _body(i: int) -> dict[str, Any]:
    return {
        "subject": {
            "kind": "website",
            "name": f"刷单网站{i}",
            "identifiers": [{"type": "domain", "value": f"race{i}.example.cn"}],
        },
        "behaviours": ["order_brushing"],
        "role": "organizer",
        "severity": "serious",
        "basis": "judicial_decision",
        "document_number": f"(2026)京0105刑初{100 + i}号",
        "issuing_authority": "北京市朝阳区人民法院",
        "facts": "组织刷单。",
    }


def _organisations(db: Database, reviewers: int) -> tuple[list[str], uuid.UUID]:
    """The platform with one key per reviewer (reviewers act with their own keys), and an enterprise."""
    with db.session() as s:
        platform = orgs.create_organisation(s, SYSTEM, kind=OrgKind.platform, name="平台")
        keys = [orgs.create_key(s, SYSTEM, platform, Role.platform_reviewer).secret for _ in range(reviewers)]
        ent = orgs.create_organisation(
            s,
            SYSTEM,
            kind=OrgKind.enterprise,
            name="基准电商",
            business_types=[BusinessType.ecommerce],
            agreement_signed_on=date(2017, 1, 1),
        )
        return keys, ent.id


def _under_review(db: Database, org_id: uuid.UUID, first: int, entries: int) -> list[uuid.UUID]:
    ids = []
    with db.session() as s:
        for i in range(first, first + entries):
            entry = registry.submit(s, SYSTEM, org_id, EntryIn.model_validate(_body(i)))
            take_step(s, SYSTEM, entry, Action.start_review)
            ids.append(entry.id)
    return ids


def _round(
    base: str, keys: list[str], ids: list[uuid.UUID], attempts: int, action: str, reason: str
) -> tuple[collections.Counter[str], list[str]]:
    with httpx.Client(base_url=base, headers={"X-API-Key": keys[0]}, timeout=REQUEST_TIMEOUT) as c:
        versions = {i: c.get(f"/v1/entries/{i}").json()["version"] for i in ids}
    barrier = threading.Barrier(attempts, timeout=REQUEST_TIMEOUT)
    codes: collections.Counter[str] = collections.Counter()
    samples: list[str] = []
    lock = threading.Lock()

    def one(n: int) -> None:
        entry_id = ids[n % len(ids)]
        body = {"action": action, "reason": reason, "version": versions[entry_id]}
        headers = {"X-API-Key": keys[n % len(keys)]}
        with httpx.Client(base_url=base, headers=headers, timeout=REQUEST_TIMEOUT) as c:
            c.get("/healthz")  # the connection is open before the barrier: the steps leave together
            barrier.wait()
            try:
                r = c.post(f"/v1/entries/{entry_id}/transitions", json=body)
                code = str(r.status_code)
                problem = r.headers.get("content-type", "").startswith("application/problem+json")
                if r.status_code == 409:
                    # Which guard answered: the race itself, the version sent, or the state machine.
                    said = r.json().get("detail", "") if problem else ""
                    why = next((w for k, w in WHY_409 if k in said), "other")
                    code = f"409 {why}" if problem else "409 (not problem+json)"
                detail = r.text[:200]
            except httpx.TimeoutException:
                code, detail = "timeout", ""
        with lock:
            codes[code] += 1
            if not code.startswith(("200", "409 ")) and len(samples) < 3:
                samples.append(f"{code}: {detail}")

    threads = [threading.Thread(target=one, args=(n,)) for n in range(attempts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return codes, samples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=5)
    ap.add_argument("--attempts", type=int, default=55, help="concurrent requests per round")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--port", type=int, default=18791)
    ap.add_argument("--rounds", type=int, default=1, help="repeat publish+revoke on fresh entries")
    args = ap.parse_args()
    if not 1 <= args.attempts <= 500 or not 1 <= args.entries <= args.attempts or not 1 <= args.rounds <= 20:
        ap.error("1 ≤ entries ≤ attempts ≤ 500, 1 ≤ rounds ≤ 20")

    schema = f"fcx_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG)
    with admin.begin() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    db = Database(PG, schema=schema)
    server = None
    totals: collections.Counter[str] = collections.Counter()
    try:
        db.upgrade()
        env = {
            **os.environ,
            "FCX_DATABASE_URL": f"{PG}?options=-csearch_path%3D{schema}",
            "FCX_JOBS_INTERVAL_SECONDS": "0",
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "fanchaoxin.app:create_app", "--factory",
             "--host", "127.0.0.1", "--port", str(args.port), "--workers", str(args.workers),
             "--log-level", "error"],
            env=env,
        )  # fmt: skip
        base = f"http://127.0.0.1:{args.port}"
        wait_until_serving(f"{base}/healthz", server, START_TIMEOUT)
        keys, org_id = _organisations(db, args.attempts)
        # Not counted: the first publications of a fresh worker are slow (policy, catalogues, caches),
        # long enough for 55 waiting requests to run out of pooled connections (503, not a race).
        warm = _under_review(db, org_id, 10_000, 2)
        for action, reason in (("publish", ""), ("revoke", "撤销：预热")):
            codes, _ = _round(base, keys, warm, 16, action, reason)
            print(f"warm-up {action}: " + ", ".join(f"{k}: {v}" for k, v in sorted(codes.items())))
        for r in range(args.rounds):
            ids = _under_review(db, org_id, r * args.entries, args.entries)
            for action, reason in (("publish", ""), ("revoke", "撤销：并发测试")):
                codes, samples = _round(base, keys, ids, args.attempts, action, reason)
                totals.update(codes)
                print(
                    f"round {r + 1} {action}: {args.attempts} attempts on {args.entries} entries → "
                    + ", ".join(f"{k}: {v}" for k, v in sorted(codes.items()))
                )
                for line in samples:
                    print("   ", line)
        print("total: " + ", ".join(f"{k}: {v}" for k, v in sorted(totals.items())))
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        db.dispose()
        with admin.begin() as c:
            c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    if any(not k.startswith(("200", "409 ")) for k in totals):
        sys.exit(1)


if __name__ == "__main__":
    main()
