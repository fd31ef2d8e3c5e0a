"""Every `fcx detect` job on both engines (#21): wall time, peak memory, Spark's shuffle volume, and a
check that both engines wrote byte-identical outputs.

    .venv/bin/python -m bench.bench_spark_jobs [--jobs all|subsidy-brushing,parcels,…] [--scale 1]
                                              [--spark-master local[2]] [--driver-memory 4g] [--keep DIR]

The inputs come from the simulators (`fcx simulate marketplace|rides|review-events|data-access` at
``--scale``, so a data team can regenerate them). Each job runs the real CLI in a child process, once
with ``--engine duckdb`` and once with ``--engine spark``; the wall time is the whole command (Spark's
JVM start included), the peak memory is summed over the process tree (the CLI, Spark's JVM, its Python
workers; bench/bench_spark.py's sampler) and the shuffle volume is the line the Spark run logs
(`engines.shuffle_line`, from Spark's status store): what a job moves between machines on a cluster.
Order brushing at 10⁶–10⁸ orders has its own script (bench/bench_spark.py).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.bench_brushing import machine
from bench.bench_spark import run_once

# job → (simulator, inputs of the command as [option, file] pairs, other options, output file name)
JOBS: dict[str, tuple[str, list[tuple[str, str]], list[str], str]] = {
    "lockstep": ("marketplace", [("-i", "actions.csv")], [], "lockstep.json"),
    "registrations": ("marketplace", [("-i", "registrations.csv")], [], "registrations.json"),
    "parcels": ("marketplace", [("-i", "waybills.csv")], [], "parcels.json"),
    "dense-blocks": (
        "marketplace",
        [("-i", "edges.csv")],
        ["--method", "dcube", "--behaviour", "fake_review", "--src", "userid", "--dst", "productid"],
        "blocks.json",
    ),
    "subsidy-brushing": (
        "rides",
        [("-i", "trips.csv"), ("--subsidies", "subsidies.csv")],
        [],
        "rings.json",
    ),
    "review-deletion": (
        "review-events",
        [
            ("--reviews", "reviews.csv"),
            ("--after-sales", "after_sales.csv"),
            ("--merchants", "merchants.csv"),
        ],
        [],
        "deletion.json",
    ),
    "data-trade": (
        "data-access",
        [
            ("--registrations", "registrations.csv"),
            ("--orders", "orders.csv"),
            ("--access-log", "access_log.csv"),
            ("--staff", "staff.csv"),
        ],
        [],
        "datatrade.json",
    ),
}


def _rows(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(1 for _ in fh) - 1


def _simulate(kind: str, scale: float, into: Path) -> float:
    if into.is_dir() and any(into.iterdir()):
        return 0.0
    t = time.perf_counter()
    cmd = [sys.executable, "-m", "fanchaoxin", "simulate", kind, "--out", str(into)]
    subprocess.run([*cmd, "--seed", "7", "--scale", str(scale)], check=True, capture_output=True)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", default="all")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--spark-master", default="local[2]")
    ap.add_argument("--driver-memory", default="4g")
    ap.add_argument("--keep", type=Path, help="directory to keep the generated inputs and outputs in")
    args = ap.parse_args()
    jobs = list(JOBS) if args.jobs == "all" else args.jobs.split(",")
    unknown = [j for j in jobs if j not in JOBS]
    if unknown:
        raise SystemExit(f"unknown job(s) {', '.join(unknown)}; one of {', '.join(JOBS)}")

    print("machine:", machine())
    env = dict(os.environ, PYSPARK_SUBMIT_ARGS=f"--driver-memory {args.driver_memory} pyspark-shell")
    with tempfile.TemporaryDirectory(prefix="bench-spark-jobs-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        rows: list[str] = []
        for job in jobs:
            kind, inputs, extra, out_name = JOBS[job]
            data = work / f"{kind}-{args.scale:g}"
            took = _simulate(kind, args.scale, data)
            sizes = ", ".join(f"{name} {_rows(data / name):,} rows" for _, name in inputs)
            print(f"\n{job}: {sizes}" + (f" (simulated in {took:.0f} s)" if took else ""), flush=True)
            result: dict[str, tuple[float, float, str]] = {}
            for engine in ("duckdb", "spark"):
                out = work / f"{job}-{engine}-{out_name}"
                cmd = [sys.executable, "-m", "fanchaoxin", "detect", job]
                for opt, name in inputs:
                    cmd += [opt, str(data / name)]
                cmd += [*extra, "-o", str(out), "--engine", engine, "--spark-master", args.spark_master]
                shuffle: list[str] = []
                wall, _, peak = run_once(cmd, env, on_stderr=_grab(shuffle))
                result[engine] = (wall, peak, shuffle[0] if shuffle else "")
                print(
                    f"  {engine}: wall {wall:.1f} s, peak RSS (tree) {peak:.2f} GiB {' '.join(shuffle)}",
                    flush=True,
                )
            same = _without_run_times(work / f"{job}-duckdb-{out_name}") == _without_run_times(
                work / f"{job}-spark-{out_name}"
            )
            print(f"  outputs byte-identical (but for the run's seconds): {same}")
            (dw, dp, _), (sw, sp, sh) = result["duckdb"], result["spark"]
            rows.append(
                f"| {job} | {sizes} | {dw:.1f} s, {dp:.2f} GiB | {sw:.1f} s, {sp:.2f} GiB | {sh} | {same} |"
            )
        print(
            "\n| job | input | DuckDB | Spark | Spark shuffle | identical |\n| --- | --- | --- | --- | --- | --- |"
        )
        print("\n".join(rows))


def _without_run_times(path: Path) -> str:
    """A findings file without the run's own seconds (and generation time), which differ run to run."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r'"seconds": [0-9.e+-]+', '"seconds": 0', text)
    return re.sub(r'"generated_at": "[^"]*"', '"generated_at": ""', text)


def _grab(into: list[str]) -> Callable[[str], None]:
    def take(err: str) -> None:
        m = re.search(r"^Spark shuffle: (.*)$", err, re.M)
        if m:
            into.append(m.group(1))

    return take


if __name__ == "__main__":
    main()
