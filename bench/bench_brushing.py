"""Order-brushing detector at scale: wall time and peak memory of `fcx detect order-brushing`.

    .venv/bin/python -m bench.bench_brushing [--orders 1000000] [--runs 3] [--input-format csv|parquet]
                                            [--output-format shopee|detail] [--keep DIR]

Generates Shopee-like orders with DuckDB (shops with Zipf-like popularity, buyers at random over five
days, plus 1 % of shops with a planted burst: one fresh buyer, 4 orders in 45 minutes), then runs
the real CLI in a child process `--runs` times and prints, per run, the wall time of the whole
command (Python start and imports included), the detector's own time (reading and validating,
sorting, sweeping, writing; from its log line) and the child's peak RSS; then the medians, the
machine, and whether every planted shop was found with its planted buyer.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    mem = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f", {int(line.split()[1]) / 1024 / 1024:.0f} GiB RAM"
                break
    except OSError:
        pass
    load = ""
    if hasattr(os, "getloadavg"):
        load = f", load average {os.getloadavg()[0]:.1f} at start"
    return (
        f"{cpu}, {os.cpu_count()} logical CPUs{mem}{load}; {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}, numpy {np.__version__}, duckdb {duckdb.__version__}"
    )


def generate(path: Path, n: int, fmt: str) -> int:
    """n orders (ids 0..n-1) at `path`; returns the number of planted brushing shops."""
    shops = max(n // 20, 10)
    users = max(n // 3, 10)
    planted = max(shops // 100, 1)
    background = n - planted * 4
    con = duckdb.connect()
    con.sql("SELECT setseed(0.42)").fetchall()
    ts = "TIMESTAMP '2019-12-27 00:00:00'"
    # planted shop j: shop (j * 97) mod shops, buyer 900000000 + j, 4 orders 15 minutes apart
    query = f"""
        SELECT range AS orderid,
               CAST(floor(pow(random(), 2.5) * {shops}) AS BIGINT) + 10000 AS shopid,
               CAST(floor(random() * {users}) AS BIGINT) + 1000000 AS userid,
               strftime({ts} + to_seconds(CAST(floor(random() * 432000) AS BIGINT)), '%Y-%m-%d %H:%M:%S')
                   AS event_time
        FROM range({background})
        UNION ALL
        SELECT {background} + range,
               10000 + (range // 4) * 97 % {shops},
               900000000 + range // 4,
               strftime({ts} + to_seconds(86400 + (range // 4) * 7 % 86400 + (range % 4) * 900),
                        '%Y-%m-%d %H:%M:%S')
        FROM range({planted * 4})
    """
    opts = "(FORMAT parquet)" if fmt == "parquet" else "(HEADER, DELIMITER ',')"
    con.sql(f"COPY ({query}) TO '{path}' {opts}").fetchall()
    return planted


def run_once(inp: Path, out: Path, output_format: str) -> tuple[float, float | None, float]:
    """(wall seconds, detector seconds from its log, peak RSS in GiB) of one CLI run in a child."""
    cmd = [sys.executable, "-m", "fanchaoxin", "detect", "order-brushing", "-i", str(inp), "-o", str(out)]
    cmd += ["--format", output_format]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    err = proc.stderr.read() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"fcx failed ({proc.returncode}):\n{err}")
    m = re.search(r"in ([0-9.]+) s", err)
    return wall, float(m.group(1)) if m else None, usage.ru_maxrss / 1024 / 1024


def check(out: Path, planted: int, n: int) -> str:
    shops = max(n // 20, 10)
    want = {10000 + j * 97 % shops: 900000000 + j for j in range(planted)}
    got = {}
    with out.open() as fh:
        next(fh)
        for line in fh:
            shop, users = line.rstrip("\n").split(",")[:2]
            got[int(shop)] = users
    found = sum(1 for s in want if got.get(s, "0") != "0")
    with_buyer = sum(1 for s, u in want.items() if str(u) in got.get(s, "").split("&"))
    brushing = sum(1 for v in got.values() if v != "0")
    return (
        f"planted shops found {found}/{len(want)}, with the planted buyer {with_buyer}/{len(want)}; "
        f"{brushing} brushing shops of {len(got)} in all (a burst planted in a busy shop can stay under "
        "the rate: 4 orders / 1 buyer among other buyers' orders is then not brushing by the rule)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--orders", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--input-format", choices=["csv", "parquet"], default="csv")
    ap.add_argument("--output-format", choices=["shopee", "detail"], default="shopee")
    ap.add_argument("--keep", type=Path, help="directory to keep the generated input and output in")
    args = ap.parse_args()

    print("machine:", machine())
    with tempfile.TemporaryDirectory(prefix="bench-brushing-") as tmp:
        d = args.keep or Path(tmp)
        d.mkdir(parents=True, exist_ok=True)
        inp = d / f"orders.{args.input_format}"
        t = time.perf_counter()
        planted = generate(inp, args.orders, args.input_format)
        size = inp.stat().st_size / 2**20
        print(
            f"input: {args.orders:,} orders, {args.input_format}, {size:,.0f} MiB, generated in "
            f"{time.perf_counter() - t:.1f} s"
        )
        out = d / "answer.csv"
        walls, own, rss = [], [], []
        for i in range(args.runs):
            w, o, r = run_once(inp, out, args.output_format)
            walls.append(w)
            rss.append(r)
            if o is not None:
                own.append(o)
            print(f"run {i + 1}: wall {w:.2f} s (detector {o} s), peak RSS {r:.2f} GiB")
        print(
            f"median of {args.runs}: wall {statistics.median(walls):.2f} s, detector "
            f"{statistics.median(own) if own else float('nan'):.2f} s, peak RSS {max(rss):.2f} GiB (max)"
        )
        if args.output_format == "shopee":
            print("check:", check(out, planted, args.orders))


if __name__ == "__main__":
    main()
