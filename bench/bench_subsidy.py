"""刷单骗补 subsidy-brushing detector: quality on simulator ground truth, then time and memory at 10⁷ trips.

    .venv/bin/python -m bench.bench_subsidy [--seeds 7 8 9] [--scale 1] [--big-trips 10000000]
                                           [--big-scale S] [--runs 1] [--skip-big] [--keep DIR]

Quality: for each seed, `fcx simulate rides --scale S` (scale 1 ≈ 190,000 trips, 40 planted rings
and every kind of hard negative), then the detector (in-process, with the subsidies file), and:
precision and recall at account level (flagged accounts against the planted rings' accounts), at
ring level (a planted ring is found when one finding holds at least half of its accounts; a finding
is right when at least half of its accounts belong to one planted ring), the flagged accounts of each
hard-negative kind, and the missed accounts per ring kind. Medians over the seeds are printed last.

Scale: generates about `--big-trips` trips once into a temporary directory (chunked, memory flat),
runs the whole CLI `fcx detect subsidy-brushing` in a child process (`--runs` times), and prints the
wall time and the child's peak RSS (from wait4), the machine and its load; the files are deleted
afterwards unless `--keep` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from fanchaoxin.detect import io, subsidy
from fanchaoxin.simulate import rides

TRIPS_PER_SCALE = 190_000  # about, at scale 1


def machine() -> str:
    cpu, mem = platform.processor() or "unknown CPU", ""
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
    return (
        f"{cpu}, {os.cpu_count()} logical CPUs{mem}; {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}, numpy {np.__version__}, duckdb {duckdb.__version__}"
    )


def load() -> str:
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def evaluate(out: Path) -> dict[str, Any]:
    truth = json.loads((out / "truth.json").read_text(encoding="utf-8"))
    con = io.connect()
    started = time.perf_counter()
    rel, optional = subsidy.load_trips(out / "trips.csv", con=con)
    sub = subsidy.load_subsidies(out / "subsidies.csv", con=con)
    findings = subsidy.detect_subsidy_brushing(rel, con=con, optional=optional, subsidies=sub)
    seconds = time.perf_counter() - started
    # the margin: every scored pair (threshold 0), planted pairs against all others
    everything = subsidy.detect_subsidy_brushing(
        rel, con=con, optional=optional, subsidies=sub, params=subsidy.Params(min_pair_score=0.0)
    )
    ring_of = {a: r["ring"] for r in truth["rings"] for a in r["drivers"] + r["riders"]}
    kind_of = {r["ring"]: r["kind"] for r in truth["rings"]}
    flagged = {a for f in findings for a in f.subject_ids}
    tp = len(flagged & set(ring_of))
    found = sum(
        1
        for r in truth["rings"]
        if any(
            len(set(r["drivers"] + r["riders"]) & set(f.subject_ids)) * 2 >= len(r["drivers"] + r["riders"])
            for f in findings
        )
    )
    right = 0
    for f in findings:
        ring, n = Counter(ring_of.get(a, -1) for a in f.subject_ids).most_common(1)[0]
        right += ring >= 0 and n * 2 >= len(f.subject_ids)
    hn = truth["hard_negatives"]
    negatives = {
        "commuters": set(hn["commuters"]) | {d for d, _ in hn["regular_driver_commuters"]},
        "campus": {a for c in hn["campus"] for a in c["drivers"] + c["riders"]},
        "airport": set(hn["airport_drivers"]) | {a for p in hn["frequent_flyers"] for a in p if a},
        "families": {a for fam in hn["families"] for a in [*fam["riders"], fam["driver"]] if a},
        "busy drivers": set(hn["busy_drivers"]),
    }
    pairs = [p for f in everything for p in f.evidence["pairs"]]
    same_ring = [p["score"] for p in pairs if ring_of.get(p["driver"], -1) == ring_of.get(p["rider"], -2)]
    others = [p["score"] for p in pairs if ring_of.get(p["driver"], -1) != ring_of.get(p["rider"], -2)]
    return {
        "trips": truth["files"]["trips.csv"],
        "lowest_planted_pair": min(same_ring, default=float("nan")),
        "highest_other_pair": max(others, default=float("nan")),
        "rings": len(truth["rings"]),
        "accounts": len(ring_of),
        "flagged": len(flagged),
        "account_precision": tp / len(flagged) if flagged else 1.0,
        "account_recall": tp / len(ring_of),
        "ring_precision": right / len(findings) if findings else 1.0,
        "ring_recall": found / len(truth["rings"]),
        "hard_negatives_flagged": {k: len(v & flagged) for k, v in negatives.items()},
        "hard_negative_accounts": {k: len(v) for k, v in negatives.items()},
        "missed_by_kind": dict(Counter(kind_of[ring_of[a]] for a in set(ring_of) - flagged)),
        "seconds": seconds,
    }


def quality(seeds: list[int], scale: float, root: Path) -> None:
    print(f"quality at scale {scale} (seeds {', '.join(map(str, seeds))}); {load()}")
    results = []
    for seed in seeds:
        out = root / f"seed{seed}"
        t0 = time.perf_counter()
        rides.generate(out, seed=seed, scale=scale)
        gen = time.perf_counter() - t0
        r = evaluate(out)
        results.append(r)
        print(
            f"  seed {seed}: {r['trips']:,} trips, {r['rings']} rings / {r['accounts']} accounts planted; "
            f"accounts P {r['account_precision']:.3f} R {r['account_recall']:.3f}; "
            f"rings P {r['ring_precision']:.3f} R {r['ring_recall']:.3f}; "
            f"hard negatives flagged {r['hard_negatives_flagged']} of {r['hard_negative_accounts']}; "
            f"missed {r['missed_by_kind'] or 'none'}; pair scores: lowest planted "
            f"{r['lowest_planted_pair']:.3f}, highest other {r['highest_other_pair']:.3f}; "
            f"generate {gen:.1f} s, detect {r['seconds']:.1f} s"
        )
        shutil.rmtree(out, ignore_errors=True)
    for key in ("account_precision", "account_recall", "ring_precision", "ring_recall"):
        vals = [r[key] for r in results]
        print(f"  {key}: median {statistics.median(vals):.3f}, min {min(vals):.3f}  (target ≥ 0.9)")


def big(n_trips: int, scale: float | None, runs: int, root: Path) -> None:
    scale = scale or n_trips / TRIPS_PER_SCALE
    out = root / "big"
    print(f"scale: generating about {n_trips:,} trips (scale {scale:.1f}) into {out}; {load()}")
    t0 = time.perf_counter()
    truth = rides.generate(out, seed=7, scale=scale)
    size = (out / "trips.csv").stat().st_size
    print(
        f"  generated {truth['files']['trips.csv']:,} trips ({size / 2**30:.2f} GiB CSV) in "
        f"{time.perf_counter() - t0:.0f} s; {load()}"
    )
    walls, rss = [], []
    for i in range(runs):
        cmd = [
            sys.executable,
            "-m",
            "fanchaoxin.launch",
            "detect",
            "subsidy-brushing",
            "-i",
            str(out / "trips.csv"),
            "--subsidies",
            str(out / "subsidies.csv"),
            "-o",
            str(out / "rings.json"),
        ]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        err = proc.stderr.read() if proc.stderr else ""
        if status != 0:
            raise SystemExit(f"detector failed ({status}): {err}")
        peak = usage.ru_maxrss / 1024  # KiB on Linux
        walls.append(wall)
        rss.append(peak)
        print(
            f"  run {i + 1}: {wall:.1f} s wall, peak RSS {peak:,.0f} MiB; {err.strip().splitlines()[-1]}; {load()}"
        )
    doc = json.loads((out / "rings.json").read_text(encoding="utf-8"))
    flagged = {a for f in doc["findings"] for a in f["subject_ids"]}
    planted = {a for ring in truth["rings"] for a in ring["drivers"] + ring["riders"]}
    tp = len(flagged & planted)
    print(
        f"  big-run result: {doc['count']:,} rings, accounts P {tp / max(len(flagged), 1):.3f} "
        f"R {tp / len(planted):.3f} ({len(planted):,} planted)"
    )
    print(f"  median: {statistics.median(walls):.1f} s wall, peak RSS {statistics.median(rss):,.0f} MiB")
    print(
        f"  (own RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--big-trips", type=int, default=10_000_000)
    ap.add_argument(
        "--big-scale", type=float, default=None, help="Scale of the big run (default from --big-trips)."
    )
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--keep", type=Path, default=None, help="Generate into DIR and keep the files.")
    args = ap.parse_args()
    print(machine())
    root = args.keep or Path(tempfile.mkdtemp(prefix="fcx-bench-subsidy-", dir="/tmp"))
    try:
        quality(args.seeds, args.scale, root)
        if not args.skip_big:
            big(args.big_trips, args.big_scale, args.runs, root)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
