"""The audit chain's append under each crypto profile (#18 target: under gm within 2x of SHA-256's).

    .venv/bin/python -m bench.bench_audit_append [--events 20000] [--rounds 5] [--postgres URL]

For each profile a fresh database (SQLite in a temporary directory, or a schema of its own on the given
PostgreSQL) is created under that profile; each round records ``--events`` audit events in one
transaction and appends them to the hash chain (``record_many`` + ``append_queued``: the chain hashes
and the insert). Prints the machine, then per profile the median microseconds per event of the append
and of the chain step alone, and the gm/international ratio. The profiles alternate round by round, so
that a noisy neighbour hurts both alike.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
import uuid

from sqlalchemy import create_engine, text

from fanchaoxin.core import audit
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.crypto import CRYPTO_PROFILES, profile
from fanchaoxin.core.db import Database, utcnow
from fanchaoxin.core.settings import get_settings
from fanchaoxin.models import Base  # noqa: F401  (registers every table)


def _events(n: int) -> list[dict[str, object]]:
    return [
        {
            "action": "entry.create",
            "target_type": "entry",
            "target_id": f"id-{i}",
            "after": {"id": i, "status": "published", "identifiers": ["phone:138****8000:" + "ab" * 32]},
            "detail": {"n": i},
        }
        for i in range(n)
    ]


def _use(name: str) -> None:
    os.environ["FCX_CRYPTO_PROFILE"] = name
    get_settings.cache_clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--postgres", default="", help="a PostgreSQL URL (default: SQLite files)")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="fcx-bench-audit-")
    os.environ.setdefault("FCX_DATA_KEY_FILE", os.path.join(tmp, "data.json"))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}; "
          f"{'PostgreSQL' if args.postgres else 'SQLite'}; {args.events} events per round")  # fmt: skip
    dbs: dict[str, Database] = {}
    schemas: list[str] = []
    for name in CRYPTO_PROFILES:
        _use(name)  # each database records the profile it was created under
        if args.postgres:
            schema = f"fcx_bench_{uuid.uuid4().hex[:8]}"
            with create_engine(args.postgres).begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            schemas.append(schema)
            dbs[name] = Database(args.postgres, schema=schema)
        else:
            dbs[name] = Database(f"sqlite:///{tmp}/{name}.db")
        dbs[name].upgrade()
    events = _events(args.events)
    append: dict[str, list[float]] = {n: [] for n in CRYPTO_PROFILES}
    chain: dict[str, list[float]] = {n: [] for n in CRYPTO_PROFILES}
    try:
        for _ in range(args.rounds):
            for name in CRYPTO_PROFILES:
                _use(name)
                with dbs[name].session() as s:
                    t0 = time.perf_counter()
                    audit.record_many(s, Actor("bench"), events)
                    audit.append_queued(s)
                    append[name].append((time.perf_counter() - t0) / args.events * 1e6)
                p, prev = profile(name), audit.GENESIS_HASH
                content = audit.event_content(
                    seq=1, at=utcnow(), actor="bench", actor_org_id=None, action="entry.create",
                    target_type="entry", target_id="id-1", before_digest=None, after_digest="ab" * 32,
                    detail={"n": 1},
                )  # fmt: skip
                t0 = time.perf_counter()
                for _ in range(args.events):
                    prev = audit.chain_hash(prev, content, p)
                chain[name].append((time.perf_counter() - t0) / args.events * 1e6)
    finally:
        for db in dbs.values():
            db.dispose()
        if args.postgres:
            with create_engine(args.postgres).begin() as conn:
                for schema in schemas:
                    conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    for name in CRYPTO_PROFILES:
        print(f"{name:14s} append {statistics.median(append[name]):7.1f} us/event   "
              f"chain step alone {statistics.median(chain[name]):5.2f} us ({profile(name).hash_algorithm})")  # fmt: skip
    ratio = statistics.median(append["gm"]) / statistics.median(append["international"])
    print(f"gm / international, whole append: {ratio:.2f}x (target <= 2x)")


if __name__ == "__main__":
    main()
