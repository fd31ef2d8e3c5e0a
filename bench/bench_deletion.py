"""Review deletion (删除不利评价): quality on simulator ground truth, and the whole command on 10⁷ reviews.

    .venv/bin/python -m bench.bench_deletion [--seeds 7,8,9] [--scale 1] [--reviews 10000000] [--runs 1]
                                             [--keep DIR]

1. Quality: for each seed, `fcx simulate review-events --scale S` (scale 1 ≈ 120,000 reviews) and the
   detector in process; precision and recall at merchant level (planted: induced, off-log and the
   clients of deletion services) and at service-account level, and how many hard negatives of each kind
   were flagged (must be 0).
2. Scale: the simulator writes about `--reviews` reviews and as many after-sales events into a
   temporary directory, then the real CLI runs in a child process `--runs` times; printed: the generator's time and
   peak RSS, per run the wall time of the whole command (Python start included), the detector's own time
   (from its log line) and the child's peak RSS, the medians, precision and recall at that size, and the
   machine with its load. The directory is deleted at the end unless --keep is given.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from fanchaoxin.detect.deletion import detect_review_deletion
from fanchaoxin.simulate.review_events import REVIEWS_PER_SCALE, generate

HARD = ("genuine_fix", "food_delivery", "trolled", "big", "cs_staff", "outsourced_cs", "agency")


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
    return (
        f"{cpu}, {os.cpu_count()} logical CPUs{mem}; {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}, numpy {np.__version__}, duckdb {duckdb.__version__}"
    )


def load() -> str:
    return (
        "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else ""
    )


def score(findings: list[dict[str, Any]], truth: dict[str, Any]) -> dict[str, Any]:
    """Precision / recall of merchants and service accounts, and the hard negatives flagged."""
    flagged_m = {f["subject_ids"][0] for f in findings if f["evidence"]["level"] == "merchant"}
    flagged_s = {f["subject_ids"][0] for f in findings if f["evidence"]["level"] == "service"}
    planted_m = {str(m) for kind in truth["merchants"].values() for m in kind}
    planted_s = {str(s["account"]) for s in truth["services"]}

    def pr(flagged: set[str], planted: set[str]) -> tuple[float, float]:
        tp = len(flagged & planted)
        return tp / max(len(flagged), 1), tp / max(len(planted), 1)

    hard = {k: len({str(x) for x in truth["hard_negatives"][k]} & (flagged_m | flagged_s)) for k in HARD}
    return {
        "merchants": (*pr(flagged_m, planted_m), len(flagged_m), len(planted_m)),
        "services": (*pr(flagged_s, planted_s), len(flagged_s), len(planted_s)),
        "hard": hard,
    }


def line(seed: Any, s: dict[str, Any]) -> str:
    m, v = s["merchants"], s["services"]
    hard = sum(s["hard"].values())
    which = ", ".join(f"{k} {v}" for k, v in s["hard"].items() if v)
    return (
        f"{seed!s:>6}  merchants P {m[0]:.3f} R {m[1]:.3f} ({m[2]} flagged / {m[3]} planted)   "
        f"services P {v[0]:.3f} R {v[1]:.3f} ({v[2]} / {v[3]})   hard negatives flagged {hard}"
        + (f" ({which})" if which else "")
    )


def quality(seeds: list[int], scale: float, work: Path) -> None:
    print(f"quality at scale {scale:g} (about {REVIEWS_PER_SCALE * scale:,.0f} reviews), seeds {seeds}:")
    results = []
    for seed in seeds:
        out = work / f"q{seed}"
        truth = generate(out, seed=seed, scale=scale)
        started = time.perf_counter()
        found = detect_review_deletion(out / "reviews.csv", out / "after_sales.csv", out / "merchants.csv")
        secs = time.perf_counter() - started
        s = score([f.to_dict() for f in found], truth)
        results.append(s)
        print(line(seed, s) + f"   detector {secs:.2f} s")
        shutil.rmtree(out)
    for level in ("merchants", "services"):
        p = [r[level][0] for r in results]
        r = [r[level][1] for r in results]
        print(
            f"  {level}: precision median {statistics.median(p):.3f} (min {min(p):.3f}), "
            f"recall median {statistics.median(r):.3f} (min {min(r):.3f})"
        )
    kinds = {k: sum(r["hard"][k] for r in results) for k in HARD}
    print("  hard negatives flagged over all seeds: " + ", ".join(f"{k} {v}" for k, v in kinds.items()))


def child(cmd: list[str], log: Path) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in GiB, stderr) of one child process; output goes to files, not pipes."""
    started = time.perf_counter()
    with log.open("w") as err, open(os.devnull, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    text = log.read_text(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd[2:5])} failed:\n{text}")
    return wall, usage.ru_maxrss / 1024 / 1024, text


def at_scale(reviews: int, runs: int, work: Path) -> None:
    scale = reviews / REVIEWS_PER_SCALE
    data = work / "big"
    print(f"\nscale: {reviews:,} reviews requested (--scale {scale:.2f}); {load()}")
    cmd = [sys.executable, "-m", "fanchaoxin", "simulate", "review-events", "--out", str(data)]
    # about as many after-sales events as reviews: 10⁷ rows of each input
    cmd += ["--seed", "7", "--scale", f"{scale:.4f}", "--after-sales-per-review", "1.15"]
    wall, rss, _ = child(cmd, work / "sim.log")
    truth = json.loads((data / "truth.json").read_text(encoding="utf-8"))
    size = sum(p.stat().st_size for p in data.glob("*.csv")) / 2**30
    files = ", ".join(f"{k} {v:,} rows" for k, v in truth["files"].items())
    print(f"  generated {files} ({size:.2f} GiB of CSV) in {wall:.1f} s, peak RSS {rss:.2f} GiB")
    walls, own, peaks = [], [], []
    out = work / "found.json"
    for i in range(runs):
        cmd = [sys.executable, "-m", "fanchaoxin", "detect", "review-deletion"]
        cmd += ["--reviews", str(data / "reviews.csv"), "--after-sales", str(data / "after_sales.csv")]
        cmd += ["--merchants", str(data / "merchants.csv"), "-o", str(out)]
        wall, rss, err = child(cmd, work / "detect.log")
        m = re.search(r"\(([0-9.]+) s\)", err)
        walls.append(wall)
        peaks.append(rss)
        if m:
            own.append(float(m.group(1)))
        print(
            f"  run {i + 1}: whole command {wall:.1f} s, detector {m.group(1) if m else '?'} s, peak RSS {rss:.2f} GiB; {load()}"
        )
    print(
        f"  median of {runs}: whole command {statistics.median(walls):.1f} s"
        + (f", detector {statistics.median(own):.1f} s" if own else "")
        + f", peak RSS {statistics.median(peaks):.2f} GiB"
    )
    doc = json.loads(out.read_text(encoding="utf-8"))
    print(line(f"{truth['files']['reviews.csv']:,}", score(doc["findings"], truth)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="7,8,9")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--reviews", type=int, default=10_000_000, help="0 skips the run at scale")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--keep", type=Path, default=None, help="keep the generated files in this directory")
    args = ap.parse_args()
    print(f"machine: {machine()}; {load()}")
    work = args.keep or Path(tempfile.mkdtemp(prefix="fcx-bench-deletion-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        quality([int(s) for s in args.seeds.split(",") if s], args.scale, work)
        if args.reviews:
            at_scale(args.reviews, args.runs, work)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
