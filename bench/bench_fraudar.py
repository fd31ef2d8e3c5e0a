"""FRAUDAR dense blocks: our peeling against the reference implementation, and a planted ring.

    .venv/bin/python -m bench.bench_fraudar [--edges 1000000] [--runs 3] [--no-reference] [--seed 1]

Graph: accounts × items (E/10 accounts, E/50 items, item popularity Zipf-like ∝ rank^-0.8), plus a
planted ring of 300 accounts × 150 items at density 0.5 whose members also add as many camouflage
edges again to items drawn by popularity (FRAUDAR's "biased camouflage"). Times, median of `--runs`:

- ours: `fanchaoxin.detect.fraudar.dense_blocks` on integer-coded edges (deduplication included);
- reference: rgmining-fraudar's `fraudar.export.greedy.logWeightedAveDegree` on the same binary
  scipy matrix (building the matrix is not timed, for either).

Prints both scores (density g of the block found), the speed-up, and the ring's recall/precision.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import scipy
from scipy import sparse

from fanchaoxin.detect import fraudar

try:
    from fraudar.export import greedy
except ImportError:  # the reference implementation is optional: pip install '.[bench]'
    greedy = None


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = f", load average {os.getloadavg()[0]:.1f} at start" if hasattr(os, "getloadavg") else ""
    return (
        f"{cpu}, {os.cpu_count()} logical CPUs{load}; Python {platform.python_version()}, "
        f"numpy {np.__version__}, scipy {scipy.__version__}"
    )


def graph(n_edges: int, seed: int) -> tuple[np.ndarray, np.ndarray, int, int, set[int], set[int]]:
    rng = np.random.default_rng(seed)
    m, n = max(n_edges // 10, 1000), max(n_edges // 50, 300)
    pop = 1 / np.arange(1, n + 1) ** 0.8
    pop /= pop.sum()
    r, c = rng.integers(0, m, n_edges), rng.choice(n, n_edges, p=pop)
    ring_r, ring_c = rng.choice(m, 300, replace=False), rng.choice(n, 150, replace=False)
    mask = rng.random((300, 150)) < 0.5
    pr, pc = np.repeat(ring_r, 150)[mask.ravel()], np.tile(ring_c, 300)[mask.ravel()]
    camo_r = np.repeat(ring_r, 75)
    camo_c = rng.choice(n, len(camo_r), p=pop)
    rows = np.concatenate([r, pr, camo_r])
    cols = np.concatenate([c, pc, camo_c])
    return rows, cols, m, n, set(ring_r.tolist()), set(ring_c.tolist())


def scores(found_r: set, found_c: set, ring_r: set, ring_c: set) -> str:
    hit = len(found_r & ring_r) + len(found_c & ring_c)
    recall = hit / (len(ring_r) + len(ring_c))
    precision = hit / max(len(found_r) + len(found_c), 1)
    return f"{len(found_r)}×{len(found_c)}, ring recall {recall:.3f}, precision {precision:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--edges", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-reference", action="store_true")
    args = ap.parse_args()

    print("machine:", machine())
    rows, cols, m, n, ring_r, ring_c = graph(args.edges, args.seed)
    n_unique = len(np.unique(rows.astype(np.int64) * n + cols))
    print(f"graph: {len(rows):,} edges ({n_unique:,} distinct), {m:,} accounts × {n:,} items, ring 300×150")

    ours = []
    for _ in range(args.runs):
        t = time.perf_counter()
        (block,) = fraudar.dense_blocks(rows, cols, m, n, k=1)
        ours.append(time.perf_counter() - t)
    t_ours = statistics.median(ours)
    print(
        f"ours:      median {t_ours:.3f} s of {args.runs} ({', '.join(f'{x:.3f}' for x in ours)}), "
        f"g = {block.score:.6f}, block {scores(set(block.src), set(block.dst), ring_r, ring_c)}"
    )

    if args.no_reference:
        return
    if greedy is None:
        print("reference: rgmining-fraudar not installed (pip install '.[bench]')")
        return
    matrix = (sparse.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(m, n)) > 0).astype(int).tocsr()
    ref = []
    for _ in range(args.runs):
        t = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # it prints its progress
            (ref_r, ref_c), ref_score = greedy.logWeightedAveDegree(matrix)
        ref.append(time.perf_counter() - t)
    t_ref = statistics.median(ref)
    print(
        f"reference: median {t_ref:.3f} s of {args.runs} ({', '.join(f'{x:.3f}' for x in ref)}), "
        f"g = {ref_score:.6f}, block {scores(set(ref_r), set(ref_c), ring_r, ring_c)}"
    )
    same = set(ref_r) == set(block.src) and set(ref_c) == set(block.dst)
    print(
        f"speed-up {t_ref / t_ours:.1f}×; our g − reference g = {block.score - ref_score:+.3e}; "
        f"same block: {same}"
    )


if __name__ == "__main__":
    main()
