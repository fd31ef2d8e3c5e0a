"""Order brushing on both engines (#21): wall time and peak memory of `fcx detect order-brushing`.

    .venv/bin/python -m bench.bench_spark [--orders 1000000] [--runs 1] [--input-format csv|parquet]
                                         [--output-format shopee|detail] [--spark-master local[2]]
                                         [--driver-memory 2g]

The orders are those of bench/bench_brushing.py (Zipf-like shops, 1 % planted bursts). The real CLI
runs in a child process with ``--engine duckdb`` and ``--engine spark``; per run it prints the whole
command's wall time (Spark's JVM start included), the detector's own time (from its log line) and the
peak memory of the process tree — summed over the CLI, Spark's JVM and its Python workers, sampled
every 0.1 s from /proc — and checks that both engines wrote byte-identical answers.
"""

from __future__ import annotations

import argparse
import contextlib
import filecmp
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bench.bench_brushing import check, generate, machine

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                kids = Path(f"/proc/{p}/task/{task}/children").read_text().split()
                todo.extend(int(k) for k in kids)
        except OSError:
            continue
    return out


def _rss(pids: list[int]) -> int:
    total = 0
    for p in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):  # a process that has just ended
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * _PAGE
    return total


def run_once(
    cmd: list[str], env: dict[str, str], on_stderr: Callable[[str], None] | None = None
) -> tuple[float, float | None, float]:
    """(wall seconds, detector seconds from its log, peak RSS of the process tree in GiB); `on_stderr`
    gets the command's log."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss(_tree(proc.pid)))
            done.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    done.set()
    sampler.join()
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"fcx failed ({proc.returncode}):\n{err[-4000:]}")
    if on_stderr is not None:
        on_stderr(err)
    m = re.search(r"in ([0-9.]+) s$", err.strip(), re.M)
    shuffle = re.search(r"^Spark shuffle: .*$", err, re.M)
    if shuffle:
        print("  ", shuffle.group(0))
    return wall, float(m.group(1)) if m else None, peak / 2**30


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--orders", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--input-format", choices=["csv", "parquet"], default="csv")
    ap.add_argument("--output-format", choices=["shopee", "detail"], default="shopee")
    ap.add_argument("--spark-master", default="local[2]")
    ap.add_argument(
        "--driver-memory", default="2g", help="Spark driver's JVM heap (local mode: all of Spark)"
    )
    ap.add_argument("--keep", type=Path, help="directory to keep the generated input and outputs in")
    args = ap.parse_args()

    print("machine:", machine())
    env = dict(os.environ)
    env["PYSPARK_SUBMIT_ARGS"] = f"--driver-memory {args.driver_memory} pyspark-shell"
    with tempfile.TemporaryDirectory(prefix="bench-spark-") as tmp:
        d = args.keep or Path(tmp)
        d.mkdir(parents=True, exist_ok=True)
        inp = d / f"orders.{args.input_format}"
        t = time.perf_counter()
        planted = generate(inp, args.orders, args.input_format)
        print(
            f"input: {args.orders:,} orders, {args.input_format}, {inp.stat().st_size / 2**20:,.0f} MiB, "
            f"generated in {time.perf_counter() - t:.1f} s"
        )
        outs = {}
        for engine in ("duckdb", "spark"):
            out = outs[engine] = d / f"answer-{engine}.csv"
            cmd = [
                sys.executable,
                "-m",
                "fanchaoxin",
                "detect",
                "order-brushing",
                "-i",
                str(inp),
                "-o",
                str(out),
            ]
            cmd += ["--format", args.output_format, "--engine", engine, "--spark-master", args.spark_master]
            walls, own, rss = [], [], []
            for i in range(args.runs):
                w, o, r = run_once(cmd, env)
                walls.append(w)
                rss.append(r)
                if o is not None:
                    own.append(o)
                print(f"{engine} run {i + 1}: wall {w:.2f} s (detector {o} s), peak RSS (tree) {r:.2f} GiB")
            print(
                f"{engine}: median of {args.runs}: wall {statistics.median(walls):.2f} s, detector "
                f"{statistics.median(own) if own else float('nan'):.2f} s, peak RSS {max(rss):.2f} GiB"
            )
        same = filecmp.cmp(outs["duckdb"], outs["spark"], shallow=False)
        print("answers byte-identical:", same)
        if args.output_format == "shopee":
            print("check:", check(outs["spark"], planted, args.orders))
        if not same:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
