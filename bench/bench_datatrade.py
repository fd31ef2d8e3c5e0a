"""Personal-data trade (泄露倒卖个人信息): quality on simulator ground truth, and the detector at 10⁷ events.

    .venv/bin/python -m bench.bench_datatrade [--seeds 7 8 9] [--scale 1] [--big-scale 34] [--skip-big]
                                              [--keep DIR]

1. Quality: for each seed, `fcx simulate data-access` at `--scale` (scale 1: ≈ 300,000 access events,
   47,000 registrations, 60,000 orders) and the detector on all four files; precision and recall of
   each analysis against truth_staff.csv (staff accounts) and truth_accounts.csv (accounts registered
   with or shipping to leaked identifiers), recall per planted kind, and the false positives by kind
   of hard negative they hit.
2. Scale: one simulation at `--big-scale` (34 ≈ 10,000,000 access events) into a temporary directory,
   then the whole command `fcx detect data-trade` on all four files in a child process: wall time
   (Python start and imports included) and the child's peak RSS. The files are deleted afterwards
   (unless --keep).
"""

from __future__ import annotations

import argparse
import csv
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
from pathlib import Path

from fanchaoxin.detect import datatrade
from fanchaoxin.simulate.data_access import generate


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    mem = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            mem = f", {int(line.split()[1]) / 1024 / 1024:.0f} GiB RAM"
            break
    return f"{cpu}, {os.cpu_count()} logical CPUs{mem}; Python {platform.python_version()}"


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} / {fifteen:.1f}"


def _pr(found: set[str], truth: set[str]) -> tuple[float, float]:
    tp = len(found & truth)
    return (tp / len(found) if found else 1.0), (tp / len(truth) if truth else 1.0)


def quality(seed: int, scale: float, work: Path) -> dict[str, float]:
    d = work / f"seed{seed}"
    t0 = time.perf_counter()
    truth = generate(d, seed=seed, scale=scale)
    t_gen = time.perf_counter() - t0
    t0 = time.perf_counter()
    inp = datatrade.load_inputs(
        registrations=d / "registrations.csv",
        orders=d / "orders.csv",
        access_log=d / "access_log.csv",
        staff=d / "staff.csv",
    )
    findings, _ = datatrade.detect(inp)
    t_det = time.perf_counter() - t0
    staff = {f.subject_ids[0] for f in findings if f.detector == datatrade.DETECTOR_STAFF}
    accounts = {f.subject_ids[0] for f in findings if f.detector == datatrade.DETECTOR_IDENTIFIERS}
    with (d / "truth_staff.csv").open(encoding="utf-8") as fh:
        t_staff = {r["staff"]: r["kind"] for r in csv.DictReader(fh)}
    with (d / "truth_accounts.csv").open(encoding="utf-8") as fh:
        t_acc = {r["account"]: r["kind"] for r in csv.DictReader(fh)}
    sp, sr = _pr(staff, set(t_staff))
    ap, ar = _pr(accounts, set(t_acc))
    kinds = sorted(set(t_staff.values()))
    per_kind = {
        k: sum(1 for s, v in t_staff.items() if v == k and s in staff)
        / sum(1 for v in t_staff.values() if v == k)
        for k in kinds
    }
    hn = truth["hard_negatives"]
    fp_staff = staff - set(t_staff)
    families = {str(a) for f in hn["family_accounts"] for a in f}
    fp_acc = accounts - set(t_acc)
    # a legitimate account shipping to a customer whose phone was misused (a gift) looks like a buyer
    # of the list: the flagged use is an order, never a registration
    gifts = {
        f.subject_ids[0]
        for f in findings
        if f.subject_ids[0] in fp_acc and all(i["used_as"] == ["order"] for i in f.evidence["identifiers"])
    }
    print(
        f"seed {seed}: {truth['files']['access_log.csv']:,} access events, "
        f"{truth['files']['registrations.csv']:,} registrations, {truth['files']['orders.csv']:,} orders "
        f"(generated in {t_gen:.1f} s); detector {t_det:.1f} s\n"
        f"  staff accounts    precision {sp:.3f} recall {sr:.3f}  ({len(staff)} flagged, {len(t_staff)} planted; "
        + ", ".join(f"{k} {v:.2f}" for k, v in per_kind.items())
        + f"); false positives {sorted(fp_staff)}\n"
        f"  leaked-identifier accounts precision {ap:.3f} recall {ar:.3f}  ({len(accounts)} flagged, "
        f"{len(t_acc)} planted); false positives {len(fp_acc)} (family accounts {len(fp_acc & families)}, "
        f"orders only, e.g. gifts {len(gifts)})"
    )
    return {"staff_p": sp, "staff_r": sr, "acc_p": ap, "acc_r": ar, "seconds": t_det}


def big(scale: float, work: Path) -> None:
    d = work / "big"
    print(f"\nscale {scale}: generating into {d} … ({load()})", flush=True)
    t0 = time.perf_counter()
    truth = generate(d, seed=7, scale=scale)
    files = truth["files"]
    print(
        f"  {files['access_log.csv']:,} access events, {files['registrations.csv']:,} registrations, "
        f"{files['orders.csv']:,} orders, {files['staff.csv']:,} staff in {time.perf_counter() - t0:.0f} s; "
        f"access log {(d / 'access_log.csv').stat().st_size / 2**20:,.0f} MiB",
        flush=True,
    )
    cmd = [sys.executable, "-m", "fanchaoxin", "detect", "data-trade"]
    for opt, name in (
        ("--registrations", "registrations.csv"),
        ("--orders", "orders.csv"),
        ("--access-log", "access_log.csv"),
        ("--staff", "staff.csv"),
    ):
        cmd += [opt, str(d / name)]
    cmd += ["-o", str(d / "found.json")]
    before = load()
    t0 = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - t0
    out = child.stdout.read() if child.stdout else ""
    if status != 0:
        print(out)
        raise SystemExit(f"the detector failed (status {status})")
    found = json.loads((d / "found.json").read_text(encoding="utf-8"))
    staff = {f["subject_ids"][0] for f in found["findings"] if f["detector"] == datatrade.DETECTOR_STAFF}
    with (d / "truth_staff.csv").open(encoding="utf-8") as fh:
        t_staff = {r["staff"] for r in csv.DictReader(fh)}
    sp, sr = _pr(staff, t_staff)
    print(
        f"  fcx detect data-trade on all four files: {wall:.1f} s wall, peak RSS "
        f"{usage.ru_maxrss / 1024:,.0f} MiB (child; DuckDB capped at half the RAM), "
        f"{found['count']:,} findings; staff precision {sp:.3f} recall {sr:.3f}\n"
        f"  {before} before, {load()} after"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--big-scale", type=float, default=34.0)
    ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--keep", type=Path, help="Keep the generated files under this directory.")
    args = ap.parse_args()
    print(f"{machine()}; {load()}")
    work = args.keep or Path(tempfile.mkdtemp(prefix="fcx-bench-datatrade-"))
    try:
        rows = [quality(s, args.scale, work) for s in args.seeds]
        print("\nover seeds " + ", ".join(map(str, args.seeds)) + " (min / median):")
        for key, label in (
            ("staff_p", "staff precision"),
            ("staff_r", "staff recall"),
            ("acc_p", "leaked-identifier accounts precision"),
            ("acc_r", "leaked-identifier accounts recall"),
        ):
            vals = [r[key] for r in rows]
            print(f"  {label}: {min(vals):.3f} / {statistics.median(vals):.3f}")
        print(f"  detector seconds (median): {statistics.median(r['seconds'] for r in rows):.1f}")
        if not args.skip_big:
            big(args.big_scale, work)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"bench process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")


if __name__ == "__main__":
    main()
