"""Registry benchmarks: bulk submission and lookup by identifier, on PostgreSQL (or SQLite).

    .venv/bin/python -m bench.bench_registry --rows 100000 --published 1000000

1. Bulk submission: a realistic CSV of `--rows` entries (bench.bench_uploads' generator: valid USCCs
   and resident IDs, Chinese names, liable persons) posted to `POST /v1/uploads` through the ASGI app,
   end to end: multipart, parsing, validation, entity resolution, inserts, the audit chain, commit.
2. Lookup: `--published` published entries seeded with bulk SQL, then `--lookups` requests to
   `GET /v1/lookup?type=uscc&value=…` (each one audited, as in production); p50/p95/p99 latency.

Each run uses a fresh PostgreSQL schema (dropped at the end) or a fresh SQLite file.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, insert, text

from bench.bench_uploads import generate_rows, machine, make_uscc, to_csv
from fanchaoxin.app import create_app
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.core import vault
from fanchaoxin.core.audit import SYSTEM
from fanchaoxin.core.db import Database
from fanchaoxin.core.roles import BusinessType, OrgKind, Role
from fanchaoxin.core.settings import Settings, get_settings
from fanchaoxin.orgs import service as orgs
from fanchaoxin.subjects.models import Subject, SubjectIdentifier

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def fresh_database(backend: str) -> tuple[Database, callable]:  # type: ignore[valid-type]
    if backend == "sqlite":
        path = tempfile.mkdtemp() + "/bench.db"
        db = Database(f"sqlite:///{path}")
        db.upgrade()
        return db, db.dispose
    schema = f"fcx_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG)
    with admin.begin() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    db = Database(PG, schema=schema)
    db.upgrade()

    def drop() -> None:
        db.dispose()
        with admin.begin() as c:
            c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return db, drop


def db_url(db: Database) -> str:
    """A URL that reaches the same schema from another process."""
    if db.schema:
        return f"{PG}?options=-csearch_path%3D{db.schema}"
    return db.url


def tenant(db: Database) -> tuple[uuid.UUID, str]:
    with db.session() as s:
        org = orgs.create_organisation(
            s,
            SYSTEM,
            kind=OrgKind.enterprise,
            name="基准电商",
            business_types=[BusinessType.ecommerce],
            agreement_signed_on=date(2017, 1, 1),
        )
        return org.id, orgs.create_key(s, SYSTEM, org, Role.enterprise_operator).secret


def bench_bulk(backend: str, rows: int) -> None:
    db, drop = fresh_database(backend)
    try:
        _, key = tenant(db)
        body = to_csv(generate_rows(rows, seed=7)).encode("utf-8")
        settings = Settings(database_url=db.url, max_upload_bytes=512 * 1024 * 1024)
        with TestClient(create_app(settings, db=db)) as client:
            t0 = time.perf_counter()
            r = client.post(
                "/v1/uploads", files={"file": ("bench.csv", body, "text/csv")}, headers={"X-API-Key": key}
            )
            elapsed = time.perf_counter() - t0
        out = r.json()
        print(
            f"bulk submission [{backend}]: {rows:,} CSV rows ({len(body) / 1e6:.1f} MB) → HTTP {r.status_code}, "
            f"{out.get('accepted', 0):,} accepted, {out.get('rejected_rows', 0):,} rejected, "
            f"{elapsed:.1f} s ({rows / elapsed:,.0f} rows/s)"
        )
        if out.get("errors"):
            print("  first errors:", out["errors"][:3])
    finally:
        drop()


def seed_published(db: Database, org_id: uuid.UUID, n: int, seed: int = 3) -> list[str]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    usccs: list[str] = []
    seen: set[str] = set()
    chunk = 20_000
    with db.engine.begin() as conn:
        for start in range(0, n, chunk):
            subjects, idents, entries = [], [], []
            for _ in range(min(chunk, n - start)):
                u = make_uscc(rng)
                while u in seen:
                    u = make_uscc(rng)
                seen.add(u)
                usccs.append(u)
                sid, eid = uuid.uuid4(), uuid.uuid4()
                subjects.append(
                    {
                        "id": sid,
                        "kind": "unit",
                        "name": f"公司{u}",
                        "name_key": f"公司{u}".lower(),
                        "created_at": now,
                        "proposals_checked_at": now,
                    }
                )
                idents.append(
                    {
                        "id": uuid.uuid4(),
                        "subject_id": sid,
                        "type": "uscc",
                        "value": u,  # sealed by the column type (core.vault)
                        "value_index": vault.identifier_index("uscc", u),
                        "created_at": now,
                    }
                )
                entries.append({
                    "id": eid, "subject_id": sid, "owner_org_id": org_id, "shared_with_all": True, "status": "published",
                    "behaviours": ["order_brushing"], "role": "organizer", "services": [], "severity": "general",
                    "basis": "enterprise_finding", "facts": "刷单", "submitted_at": now, "submitted_by": "bench",
                    "published_at": now, "min_end_on": date(2027, 3, 1), "max_end_on": date(2027, 12, 1),
                    "updated_at": now, "version": 1,
                })  # fmt: skip
            conn.execute(insert(Subject), subjects)
            conn.execute(insert(SubjectIdentifier), idents)
            conn.execute(insert(Entry), entries)
        if db.engine.dialect.name == "postgresql":
            conn.execute(text("ANALYZE"))
    return usccs


def bench_lookup(backend: str, published: int, lookups: int) -> None:
    db, drop = fresh_database(backend)
    try:
        org_id, _ = tenant(db)
        with db.session() as s:
            reader = orgs.create_organisation(
                s,
                SYSTEM,
                kind=OrgKind.enterprise,
                name="查询方",
                business_types=[BusinessType.logistics],
                agreement_signed_on=date(2017, 1, 1),
            )
            key = orgs.create_key(s, SYSTEM, reader, Role.enterprise_node).secret
        t0 = time.perf_counter()
        usccs = seed_published(db, org_id, published)
        print(f"seeded {published:,} published entries in {time.perf_counter() - t0:.0f} s")
        rng = random.Random(11)
        latencies = []
        # A real server on loopback (uvicorn, one worker) and a keep-alive client: what a node sees.
        env = {**os.environ, "FCX_DATABASE_URL": db_url(db), "FCX_JOBS_INTERVAL_SECONDS": "0"}
        port = 18765
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "fanchaoxin.app:create_app", "--factory", "--port", str(port),
             "--log-level", "warning"],
            env=env,
        )  # fmt: skip
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": key}) as client:
                for _ in range(100):
                    try:
                        client.get("/healthz")
                        break
                    except httpx.TransportError:
                        time.sleep(0.2)
                for _ in range(50):  # warm-up
                    client.get(f"/v1/lookup?type=uscc&value={usccs[0]}")
                for i in range(lookups):
                    value = rng.choice(usccs) if i % 10 else make_uscc(rng)  # one in ten is a miss
                    t = time.perf_counter()
                    r = client.get(f"/v1/lookup?type=uscc&value={value}")
                    latencies.append((time.perf_counter() - t) * 1000)
                    assert r.status_code == 200, r.text
        finally:
            server.terminate()
            server.wait()
        q = statistics.quantiles(latencies, n=100)
        print(
            f"lookup by USCC [{backend}], {published:,} published entries, {lookups:,} HTTP requests, "
            f"each audited: p50 {q[49]:.1f} ms, p95 {q[94]:.1f} ms, p99 {q[98]:.1f} ms"
        )
    finally:
        drop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=["postgresql", "sqlite"], default="postgresql")
    ap.add_argument("--rows", type=int, default=100_000, help="bulk submission rows (0 = skip)")
    ap.add_argument(
        "--published", type=int, default=1_000_000, help="published entries for lookups (0 = skip)"
    )
    ap.add_argument("--lookups", type=int, default=2000)
    args = ap.parse_args()
    if "FCX_DATA_KEY_FILE" not in os.environ:
        # A data key ring of this run's own, for the rows it seals and the server it starts (inherited).
        os.environ["FCX_DATA_KEY_FILE"] = os.path.join(
            tempfile.mkdtemp(prefix="fcx_bench_keys_"), "data.json"
        )
        get_settings.cache_clear()
        vault.write_ring(vault.new_ring(Path(os.environ["FCX_DATA_KEY_FILE"])), exclusive=True)
    # The bench is one enterprise asking thousands of times a minute: past the default matching quota.
    for name in ("FCX_QUOTA_PLAIN_PER_MINUTE", "FCX_QUOTA_PLAIN_PER_DAY"):
        os.environ.setdefault(name, "100000000")
    print(machine())
    if args.rows:
        bench_bulk(args.backend, args.rows)
    if args.published:
        bench_lookup(args.backend, args.published, args.lookups)


if __name__ == "__main__":
    main()
