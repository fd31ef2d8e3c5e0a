"""Precision and recall of the group / logistics detectors on simulated ground truth.

    .venv/bin/python -m bench.bench_detectors --scale 1 [--seeds 3] [--seed 7] [--keep DIR]

For each seed it generates a marketplace with `fanchaoxin.simulate.marketplace` (the files and
``truth.json`` an analyst would get from ``fcx simulate marketplace``), runs each detector the way the
CLI does (strict reading included in the time) with default parameters, and compares with the truth:

lockstep (CopyCatch)   accounts in reported groups vs planted lockstep accounts; planted groups
                       recovered (Jaccard ≥ 0.5 with some reported group); reported groups that match
                       no planted group ("false groups").
registrations          accounts in reported clusters vs accounts of planted bulk clusters; clusters.
parcels                flagged waybills vs planted empty parcels; reported senders vs senders of
                       empty parcels; reported couriers vs colluding courier staff.
order brushing         (fanchaoxin.detect.brushing) brushing shops vs planted shops;
                       (shop, buyer) pairs vs planted brushers.
dense blocks           (fanchaoxin.detect.fraudar) accounts / products of the first
                       (densest) block vs all planted blocks.

Precision = |found ∩ truth| / |found|, recall = |found ∩ truth| / |truth|. Timing is wall-clock on
this machine (printed at the end), one process, no warm-up.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import scipy

# parcels and registrations import these when they first score / link; loaded here so that no
# detector's time includes an import
import scipy.sparse.csgraph
import scipy.stats

from fanchaoxin.detect import brushing, fraudar
from fanchaoxin.detect.lockstep import copycatch, load_actions, lockstep_findings
from fanchaoxin.detect.parcels import detect_empty_parcels, load_waybills
from fanchaoxin.detect.registrations import find_clusters, load_registrations
from fanchaoxin.simulate.marketplace import generate


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f", {int(line.split()[1]) / 1024 / 1024:.0f} GiB RAM"
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} logical CPUs{mem}, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
        f"duckdb {duckdb.__version__}"
    )


def pr(found: Iterable[Any], truth: Iterable[Any]) -> tuple[float, float, int, int]:
    f, t = {str(x) for x in found}, {str(x) for x in truth}
    hit = len(f & t)
    return (hit / len(f) if f else 1.0, hit / len(t) if t else 1.0, len(f), len(t))


def group_match(found: list[set[str]], planted: list[set[str]], thr: float = 0.5) -> tuple[int, int]:
    """(planted groups recovered with Jaccard ≥ thr, found groups matching no planted group)."""

    def jac(a: set[str], b: set[str]) -> float:
        return len(a & b) / len(a | b) if a | b else 0.0

    recovered = sum(1 for p in planted if any(jac(p, f) >= thr for f in found))
    false = sum(1 for f in found if not any(len(f & p) > 0.5 * len(f) for p in planted))
    return recovered, false


Row = dict[str, Any]


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def bench_lockstep(d: Path, truth: dict) -> list[Row]:
    def run() -> Any:
        ul, il, uc, ic, t = load_actions(d / "actions.csv", user="userid", item="itemid", time="event_time")
        return lockstep_findings(copycatch(uc, ic, t), ul, il, window=3600, rho=0.5), len(t)

    (fs, n), secs = timed(run)
    planted = [{str(u) for u in g["users"]} for g in truth["lockstep"]["groups"]]
    found = [set(f.subject_ids) for f in fs]
    rec, false = group_match(found, planted)
    p, r, nf, nt = pr(set().union(*found) if found else set(), set().union(*planted))
    return [
        {
            "detector": "lockstep (CopyCatch)",
            "unit": "accounts",
            "P": p,
            "R": r,
            "found": nf,
            "truth": nt,
            "extra": f"groups {rec}/{len(planted)} recovered, {false} false",
            "rows": n,
            "s": secs,
        }
    ]


def bench_registrations(d: Path, truth: dict) -> list[Row]:
    def run() -> Any:
        reg = load_registrations(d / "registrations.csv")
        return find_clusters(reg), len(reg.account)

    (fs, n), secs = timed(run)
    planted = [{str(a) for a in c["accounts"]} for c in truth["registrations"]["clusters"]]
    found = [set(f.subject_ids) for f in fs]
    rec, false = group_match(found, planted)
    p, r, nf, nt = pr(set().union(*found) if found else set(), set().union(*planted))
    return [
        {
            "detector": "bulk registration",
            "unit": "accounts",
            "P": p,
            "R": r,
            "found": nf,
            "truth": nt,
            "extra": f"clusters {rec}/{len(planted)} recovered, {false} false",
            "rows": n,
            "s": secs,
        }
    ]


def bench_parcels(d: Path, truth: dict) -> list[Row]:
    def run() -> Any:
        w = load_waybills(d / "waybills.csv")
        return detect_empty_parcels(w), len(w.waybill)

    (fs, n), secs = timed(run)
    t = truth["empty_parcels"]
    rows = []
    for level, unit, key, tr in (
        ("waybill", "waybills", "waybill", t["waybills"]),
        ("sender", "senders", None, t["senders"]),
        ("courier", "couriers", None, t["couriers"]),
    ):
        found = [f.evidence[key] if key else f.subject_ids[0] for f in fs if f.evidence["level"] == level]
        p, r, nf, nt = pr(found, tr)
        rows.append(
            {
                "detector": "empty parcels",
                "unit": unit,
                "P": p,
                "R": r,
                "found": nf,
                "truth": nt,
                "extra": "",
                "rows": n,
                "s": secs if level == "waybill" else None,
            }
        )
    return rows


def bench_brushing(d: Path, truth: dict) -> list[Row]:
    def run() -> Any:
        rel = brushing.read_orders(str(d / "orders.csv"))
        shops = [s for chunk in brushing.detect_order_brushing(rel) for s in chunk.shops]
        return shops, rel.aggregate("count(*)").fetchall()[0][0]

    (shops, n), secs = timed(run)
    t = truth["order_brushing"]
    pairs_t = {f"{e['shopid']}:{u}" for e in t["events"] for u in e["userids"]}
    pairs_f = {f"{s.shopid}:{u}" for s in shops for u, _ in s.users}
    pairs_a = {f"{sh}:{u}" for sh, us in t["shopee_answer"].items() for u in us}
    p1, r1, f1, t1 = pr([s.shopid for s in shops], t["shops"])
    p2, r2, f2, t2 = pr(pairs_f, pairs_t)
    p3, r3, f3, t3 = pr(pairs_f, pairs_a)
    # The rule names the top buyer(s) per shop over the union of its windows, while several hired
    # brushers may be planted per shop; pair recall is bounded by that definition, not by a miss.
    return [
        {
            "detector": "order brushing",
            "unit": "shops",
            "P": p1,
            "R": r1,
            "found": f1,
            "truth": t1,
            "extra": "",
            "rows": n,
            "s": secs,
        },
        {
            "detector": "order brushing",
            "unit": "shop×buyer",
            "P": p2,
            "R": r2,
            "found": f2,
            "truth": t2,
            "extra": "vs every planted brusher; the rule names only the top buyer(s)",
            "rows": n,
            "s": None,
        },
        {
            "detector": "order brushing",
            "unit": "shop×top",
            "P": p3,
            "R": r3,
            "found": f3,
            "truth": t3,
            "extra": "vs the Shopee-rule answer (truth shopee_answer)",
            "rows": n,
            "s": None,
        },
    ]


def bench_fraudar(d: Path, truth: dict) -> list[Row]:
    blocks_t = truth["dense_blocks"]
    blocks, secs = timed(
        # k = 1: FRAUDAR's densest block takes in all planted blocks at once (they are the densest
        # part of the graph together); further blocks peel the ordinary graph
        lambda: fraudar.detect_dense_blocks(str(d / "edges.csv"), "userid", "productid", k=1)
    )
    u_f = {str(x) for b in blocks for x in b.src}
    p_f = {str(x) for b in blocks for x in b.dst}
    u_t = {str(x) for b in blocks_t for x in b["users"]}
    p_t = {str(x) for b in blocks_t for x in b["products"]}
    r1 = pr(u_f, u_t)
    r2 = pr(p_f, p_t)
    return [
        {
            "detector": "dense blocks (FRAUDAR)",
            "unit": "accounts",
            "P": r1[0],
            "R": r1[1],
            "found": r1[2],
            "truth": r1[3],
            "extra": f"first block (k = 1) vs {len(blocks_t)} planted block(s)",
            "rows": truth["files"]["edges.csv"],
            "s": secs,
        },
        {
            "detector": "dense blocks (FRAUDAR)",
            "unit": "products",
            "P": r2[0],
            "R": r2[1],
            "found": r2[2],
            "truth": r2[3],
            "extra": "",
            "rows": truth["files"]["edges.csv"],
            "s": None,
        },
    ]


BENCHES: list[tuple[str, Callable[[Path, dict], list[Row]]]] = [
    ("lockstep", bench_lockstep),
    ("registrations", bench_registrations),
    ("parcels", bench_parcels),
    ("brushing", bench_brushing),
    ("fraudar", bench_fraudar),
]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=7, help="first seed")
    ap.add_argument("--seeds", type=int, default=1, help="number of seeds (seed, seed+1, …)")
    ap.add_argument("--keep", type=Path, default=None, help="keep the generated data under this directory")
    args = ap.parse_args(argv)

    all_rows: list[tuple[int, Row]] = []
    for seed in range(args.seed, args.seed + args.seeds):
        base = args.keep or Path(tempfile.mkdtemp(prefix="fcx-bench-"))
        d = base / f"seed{seed}" if args.keep else base
        truth, gen_s = timed(lambda d=d, seed=seed: generate(d, seed=seed, scale=args.scale))
        files = ", ".join(f"{k.removesuffix('.csv')} {v:,}" for k, v in truth["files"].items())
        print(f"seed {seed}, scale {args.scale:g}: generated in {gen_s:.1f} s ({files})")
        for name, fn in BENCHES:
            try:
                rows = fn(d, truth)
            except Exception as exc:  # a neighbour's detector changing its API must not hide the others
                print(f"  {name}: failed: {type(exc).__name__}: {exc}")
                continue
            all_rows += [(seed, r) for r in rows]
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)

    print()
    head = (
        f"{'detector':24} {'unit':11} {'seed':>4} {'precision':>9} {'recall':>7} {'found':>7} {'truth':>7} "
        f"{'input rows':>10} {'seconds':>8}  notes"
    )
    print(head)
    print("-" * len(head))
    for seed, r in all_rows:
        secs = f"{r['s']:.2f}" if r["s"] is not None else ""
        print(
            f"{r['detector']:24} {r['unit']:11} {seed:>4} {r['P']:>9.3f} {r['R']:>7.3f} {r['found']:>7,} "
            f"{r['truth']:>7,} {r['rows']:>10,} {secs:>8}  {r['extra']}"
        )
    if args.seeds > 1:
        print()
        print("mean over seeds:")
        keys = list(dict.fromkeys((r["detector"], r["unit"]) for _, r in all_rows))
        for det, unit in keys:
            rs = [r for _, r in all_rows if (r["detector"], r["unit"]) == (det, unit)]
            ts = [r["s"] for r in rs if r["s"] is not None]
            tm = f"{np.mean(ts):.2f}" if ts else ""
            print(
                f"{det:24} {unit:11} {'':>4} {np.mean([r['P'] for r in rs]):>9.3f} "
                f"{np.mean([r['R'] for r in rs]):>7.3f} {'':>7} {'':>7} {'':>10} {tm:>8}"
            )
    print()
    print("machine:", machine())
    print("seconds = reading the file strictly + detecting, wall clock, one process")


if __name__ == "__main__":
    main()
