"""Transparency-log service benchmarks (透明日志, #19): the platform's log with its database.

    .venv/bin/python -m bench.bench_translog [--leaves 1000000] [--proofs 5000] [--database-url URL]

FCX_CRYPTO_PROFILE picks the profile (the log's hash and key). Without ``--database-url``, a fresh
SQLite file in a temporary directory.

1. Appending: 100,000 feed leaves of a shared record's size (~600 bytes), each through
   ``translog.append_leaves`` as the feed's hook calls it (one leaf, the head row's lock, one insert),
   committed every 1,000. Target: 100,000 appended ≤ 10 s.
2. The log filled to ``--leaves`` in batches, then a new process's first read: the tree rebuilt from
   the stored leaf hashes; the first checkpoint (signing, and storing every full tile); a restart
   again, the tree now rebuilt from the stored full tiles.
3. Inclusion proof served at ``--leaves`` (``translog.inclusion(index=…)``: the leaf row, the checkpoint
   with its cosignatures, the tree caught up, the proof), p50/p99. Target ≤ 5 ms p99. The same through
   the HTTP route (in-process TestClient) for a share of them.
4. Consistency proof served from a random older size, p99.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

from fanchaoxin.app import create_app
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.crypto import active
from fanchaoxin.core.db import Database
from fanchaoxin.core.roles import OrgKind, Role
from fanchaoxin.core.settings import get_settings
from fanchaoxin.orgs import service as org_service
from fanchaoxin.sharing import translog


def p(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100)[q - 1] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--proofs", type=int, default=5_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="fcx-bench-tlog-"))
    os.environ["FCX_SHARING_KEY_DIR"] = str(tmp / "keys")
    url = args.database_url or f"sqlite:///{tmp}/bench.db"
    os.environ["FCX_DATABASE_URL"] = url

    get_settings.cache_clear()  # the environment above is what the settings read
    db = Database(url)
    db.upgrade()
    keys = translog.load_log_keys()
    rng = random.Random(19)
    record = {
        "entry_id": "00000000-0000-0000-0000-000000000000",
        "subject_kind": "individual",
        "severity": "serious",
        "basis": "judicial_decision",
        "status": "published",
        "published_at": "2026-12-05T00:00:00+00:00",
        "min_end_on": "2027-12-05",
        "max_end_on": "2029-12-05",
        "parent_entry_id": None,
        "policy_version": "2026-1",
        "measures": [{"code": f"m{i}", "params": {}} for i in range(5)],
        "tags": [f"k1:{rng.getrandbits(256):064x}" for _ in range(3)],
    }
    print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print(f"profile: {active().name} (hash {keys.hash_name}), database: {db.engine.dialect.name}")

    # 1. appending, one leaf at a time as the feed's hook does
    n_append = 100_000
    start, cpu = time.perf_counter(), time.process_time()
    seq = 0
    for _ in range(n_append // 1000):
        with db.session() as s:
            for _ in range(1000):
                seq += 1
                leaf = translog.feed_leaf(seq, {**record, "seq_hint": seq})
                translog.append_leaves(s, [translog.NewLeaf("feed", leaf, feed_seq=seq)], keys)
    took, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(
        f"append {n_append:,} leaves one by one (~{len(leaf)} bytes): {took:.2f} s ({n_append / took:,.0f}/s), "
        f"CPU {cpu:.2f} s; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )

    # 2. fill to --leaves in batches; checkpoint; a new process's first read rebuilds the tree
    start = time.perf_counter()
    batch = 10_000
    while seq < args.leaves:
        k = min(batch, args.leaves - seq)
        with db.session() as s:
            translog.append_leaves(
                s,
                [
                    translog.NewLeaf("feed", translog.feed_leaf(seq + j + 1, record), feed_seq=seq + j + 1)
                    for j in range(k)
                ],
                keys,
            )
        seq += k
    print(f"filled to {seq:,} leaves in {time.perf_counter() - start:.1f} s (batches of {batch:,})")
    translog.forget_trees()
    with db.session() as s:
        start = time.perf_counter()
        size = translog.tree(s, keys).size
        rebuilt = time.perf_counter() - start
        start = time.perf_counter()
        cp = translog.publish_checkpoint(s, keys)
        signed = time.perf_counter() - start
    print(
        f"tree rebuilt from {size:,} stored leaf hashes: {rebuilt:.2f} s; checkpoint signed: {signed:.2f} s"
    )
    assert cp.size == size
    translog.forget_trees()
    with db.session() as s:
        start = time.perf_counter()
        assert translog.tree(s, keys).size == size
        print(f"tree rebuilt again, from the stored full tiles: {time.perf_counter() - start:.2f} s")

    # 3. inclusion proofs served
    samples, cpus = [], []
    with db.session() as s:
        translog.inclusion(s, index=0, keys=keys)
        for _ in range(args.proofs):
            i = rng.randrange(size)
            t0, c0 = time.perf_counter(), time.process_time()
            out = translog.inclusion(s, index=i, keys=keys)
            samples.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
            assert out["leaves"][0]["index"] == i
    # on a loaded host the wall-clock tail is the scheduler's; the CPU time is the proof's own
    print(
        f"inclusion proof served (service, {args.proofs:,}): p50 {p(samples, 50):.2f} ms, "
        f"p99 {p(samples, 99):.2f} ms (CPU p99 {p(cpus, 99):.2f} ms; load average {os.getloadavg()[0]:.1f})"
    )
    get_settings.cache_clear()
    app = create_app(get_settings(), db=db)
    with db.session() as s:
        org = org_service.create_organisation(
            s, Actor("bench"), kind=OrgKind.platform, name="平台", business_types=[]
        )
        secret = org_service.create_key(s, Actor("bench"), org, Role.platform_admin).secret
    headers = {"Authorization": f"Bearer {secret}"}
    http = []
    with TestClient(app) as client:
        client.get("/v1/log/proof/inclusion", params={"index": 0}, headers=headers)
        for _ in range(min(args.proofs, 2000)):
            i = rng.randrange(size)
            t0 = time.perf_counter()
            r = client.get("/v1/log/proof/inclusion", params={"index": i}, headers=headers)
            http.append(time.perf_counter() - t0)
            assert r.status_code == 200, r.text
        print(
            f"inclusion proof over HTTP (in-process client, {len(http):,}): p50 {p(http, 50):.2f} ms, "
            f"p99 {p(http, 99):.2f} ms"
        )

    # 4. consistency proofs served
    samples = []
    with db.session() as s:
        for _ in range(args.proofs):
            m = rng.randrange(1, size)
            t0 = time.perf_counter()
            translog.consistency(s, m, size, keys)
            samples.append(time.perf_counter() - t0)
    print(f"consistency proof served: p50 {p(samples, 50):.2f} ms, p99 {p(samples, 99):.2f} ms")
    db.dispose()


if __name__ == "__main__":
    main()
