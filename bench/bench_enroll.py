"""Enrolment at scale (issue #16): `fcx node enroll` of N synthetic users against a platform on loopback.

    .venv/bin/python -m bench.bench_enroll [--users 100000] [--chunk 10000] [--users 1000000]

The platform (`fanchaoxin.app:create_served_app`, one uvicorn process, SQLite) and the node (this process)
run on this machine. The enterprise's quota is raised for the run (`declared_users` = N, evaluations per
minute 100,000,000): the figure is the node's and the platform's work, not the quota's. The time the
default per-minute quota (FCX_QUOTA_EVALUATIONS_PER_MINUTE) alone would impose is printed beside it.

Timed: `node.enroll.enroll_file` on a CSV of N users (distinct phone numbers; the file is written first,
not timed): the validation pass over the file, then chunks of `--chunk` rows — blind, evaluate on the
platform in batches of 1,000 (one DLEQ proof each), verify, unblind, commit. Printed: rows/s, the
projected time for 1,000,000 users (target ≤ 20 minutes), and the process's peak RSS before and after
(streamed: it does not grow with the file).
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import httpx

from bench.bench_oprf import machine
from fanchaoxin.core import vault
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.db import Database
from fanchaoxin.core.roles import BusinessType, OrgKind, Role
from fanchaoxin.core.settings import get_settings
from fanchaoxin.node.enroll import check_file, enroll_file
from fanchaoxin.node.store import Store
from fanchaoxin.node.sync import initialise
from fanchaoxin.orgs import service as org_service

TARGET_SECONDS_1M = 20 * 60


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_csv(path: Path, users: int) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["user_id", "phone"])
        for i in range(users):
            w.writerow((f"user-{i}", f"13{i:09d}"))


def setup_platform(url: str, users: int) -> str:
    """The enterprise and its node key; its quota raised for the run. Returns the node key."""
    db = Database(url)
    db.upgrade()
    actor = Actor("bench:enroll")
    with db.session() as s:
        org = org_service.create_organisation(
            s, actor, kind=OrgKind.enterprise, name="基准电商", business_types=[BusinessType.ecommerce],
            agreement_signed_on=date(2017, 1, 1), declared_users=users,
        )  # fmt: skip
        org.quota_evaluations_per_minute = 100_000_000
        key = org_service.create_key(s, actor, org, Role.enterprise_node).secret
    db.dispose()
    return key


def start_platform(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    log = (tmp / "platform.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "fanchaoxin.app:create_served_app",
         "--fd", str(sock.fileno()), "--log-level", "warning"],
        env=os.environ.copy(), pass_fds=[sock.fileno()], stdout=log, stderr=log,
    )  # fmt: skip
    sock.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.terminate()
    raise SystemExit(f"the platform did not start; see {tmp / 'platform.log'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=100_000, help="synthetic users in the CSV")
    ap.add_argument("--chunk", type=int, default=10_000, help="rows a chunk (read, evaluated, committed)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fcx_bench_enroll_"))
    os.environ["FCX_DATABASE_URL"] = f"sqlite:///{tmp / 'platform.db'}"
    os.environ["FCX_SHARING_KEY_DIR"] = str(tmp / "keys")
    os.environ["FCX_DATA_KEY_FILE"] = str(tmp / "data.json")
    os.environ["FCX_JOBS_INTERVAL_SECONDS"] = "0"
    get_settings.cache_clear()
    vault.write_ring(vault.new_ring(Path(os.environ["FCX_DATA_KEY_FILE"])), exclusive=True)
    default_per_minute = get_settings().quota_evaluations_per_minute
    print(machine())
    key = setup_platform(os.environ["FCX_DATABASE_URL"], args.users)
    proc, url = start_platform(tmp)
    try:
        csv_path = tmp / "users.csv"
        write_csv(csv_path, args.users)
        size_mb = csv_path.stat().st_size / 1e6
        store_path = str(tmp / "node.db")
        initialise(store_path, url, key)
        store = Store(store_path)
        rss_before = rss_mb()
        t0 = time.perf_counter()
        check_file(csv_path, "user_id", "phone", "phone")
        validate_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = enroll_file(store, csv_path, "user_id", "phone", "phone", chunk_size=args.chunk)
        wall = time.perf_counter() - t0
        assert result.enrolled == args.users, result
        rate = args.users / wall
        projected = 1_000_000 / rate
        quota_floor = 1_000_000 / default_per_minute * 60
        print(
            f"\nenrolment of {args.users:,} users ({size_mb:.1f} MB CSV), chunks of {args.chunk:,} rows, "
            f"evaluation batches of 1,000, platform and node on loopback"
        )
        print(f"  validation pass alone:       {validate_s:7.1f} s ({args.users / validate_s:,.0f} rows/s)")
        print(
            f"  enroll_file (validation + chunks): {wall:7.1f} s — {rate:,.0f} rows/s; "
            f"{result.chunks} chunks, {result.batches} evaluation requests, 429 waits {result.waited_seconds:.0f} s"
        )
        verdict = "met" if projected <= TARGET_SECONDS_1M else "MISSED"
        print(
            f"  projected for 1,000,000 users: {projected / 60:5.1f} min (target ≤ 20 min: {verdict}); "
            f"the default quota of {default_per_minute:,} evaluations/min alone would take "
            f"{quota_floor / 60:.1f} min"
        )
        print(f"  peak RSS of the node process: {rss_before:.0f} MB before, {rss_mb():.0f} MB after")
        store.dispose()
    finally:
        proc.terminate()
        proc.wait(30)


if __name__ == "__main__":
    main()
