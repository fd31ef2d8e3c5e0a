"""FRAUDAR dense blocks: `fcx detect dense-blocks` against the reference implementation, as whole commands.

    .venv/bin/python -m bench.bench_fraudar [--edges 1000000] [--runs 3] [--seed 1] [--no-reference]
                                            [--reader python|pyarrow|package|both|all] [--algorithm]

Graph: accounts × items (E/10 accounts, E/50 items, item popularity Zipf-like ∝ rank^-0.8), plus a
planted ring of 300 accounts × 150 items at density 0.5 whose members also add as many camouflage
edges again to items drawn by popularity (FRAUDAR's "biased camouflage"). It is written once as a CSV
of text ids (``account,item``), and both sides are timed as whole commands, start-up, reading and
writing included — what a person waits for — median of `--runs`:

- ours: the ``fcx`` console script (``fcx detect dense-blocks -i edges.csv --src account --dst item``),
  or ``python -m fanchaoxin`` when the installed script does not go through `fanchaoxin.launch`;
- reference: rgmining-fraudar (``pip install '.[bench]'``) as a ``python -c`` command that reads the
  same CSV, numbers the ids, builds the binary scipy matrix as its ``listToSparseMatrix`` does and runs
  ``logWeightedAveDegree``. `--reader python` (default) reads as the package's own ``readData`` does,
  line by line in Python (the package reads only integer ids, so the ids are numbered in a dict on the
  way); `--reader pyarrow` reads with pyarrow's multi-threaded C parser instead, the fastest reading
  the reference could be given; `--reader package` runs the package's documented interface,
  ``fraudar.ReviewGraph`` (``new_reviewer``, ``new_product``, ``add_review``, ``update()``), as its users
  call it; it names the block's accounts only, so those are compared; `both` times python and pyarrow,
  `all` the three.

Both blocks are compared by their ids. `--algorithm` adds the in-process timings of the two peelings on
the same integer-coded edges (building the matrix not timed), as measured before #20.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
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

REFERENCE = {
    "python": """
import contextlib, io, json, sys
from fraudar.export import greedy

src_ids, dst_ids, rows, cols = {}, {}, [], []
with open(sys.argv[1], encoding="utf-8") as fh:
    next(fh)
    for line in fh:
        a, b = line.rstrip("\\n").split(",")
        rows.append(src_ids.setdefault(a, len(src_ids)))
        cols.append(dst_ids.setdefault(b, len(dst_ids)))
m = greedy.listToSparseMatrix(rows, cols)
with contextlib.redirect_stdout(io.StringIO()):  # it prints its progress
    (r, c), score = greedy.logWeightedAveDegree(m.tocsr())
src, dst = list(src_ids), list(dst_ids)
with open(sys.argv[2], "w") as fh:
    json.dump({"src": [src[i] for i in r], "dst": [dst[j] for j in c], "score": score}, fh)
""",
    # the package's documented interface: ReviewGraph + update() (it writes the graph to a temporary
    # file, reads it back with readData and peels with detectMultiple), as its users call it
    "package": """
import csv, json, sys
import fraudar

graph = fraudar.ReviewGraph(blocks=1)
reviewers, products = {}, {}
with open(sys.argv[1], encoding="utf-8", newline="") as fh:
    rows = csv.reader(fh)
    next(rows)
    for a, b in rows:
        r = reviewers.get(a) or reviewers.setdefault(a, graph.new_reviewer(a))
        p = products.get(b) or products.setdefault(b, graph.new_product(b))
        graph.add_review(r, p, 1.0)
graph.update()
# the interface marks the block's reviewers only (anomalous_score 1): no products, no score
src = sorted(r.name for r in graph.reviewers if r.anomalous_score == 1)
with open(sys.argv[2], "w") as fh:
    json.dump({"src": src, "dst": None, "score": None}, fh)
""",
    "pyarrow": """
import contextlib, io, json, sys
import numpy as np
import pyarrow.compute as pc
import pyarrow.csv as pv
from scipy import sparse
from fraudar.export import greedy

types = {"account": "string", "item": "string"}
table = pv.read_csv(sys.argv[1], convert_options=pv.ConvertOptions(column_types=types))
src = pc.dictionary_encode(table.column("account")).combine_chunks()
dst = pc.dictionary_encode(table.column("item")).combine_chunks()
r, c = src.indices.to_numpy(), dst.indices.to_numpy()
shape = (len(src.dictionary), len(dst.dictionary))
m = (sparse.coo_matrix((np.ones(len(r)), (r, c)), shape=shape) > 0).astype("int")
with contextlib.redirect_stdout(io.StringIO()):  # it prints its progress
    (rows, cols), score = greedy.logWeightedAveDegree(m.tocsr())
out = {"src": src.dictionary.take(sorted(rows)).to_pylist(), "dst": dst.dictionary.take(sorted(cols)).to_pylist(), "score": score}
with open(sys.argv[2], "w") as fh:
    json.dump(out, fh)
""",
}


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
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


def account_id(i: int) -> str:
    return f"u{i:07d}"


def item_id(j: int) -> str:
    return f"p{j:06d}"


def write_csv(path: Path, rows: np.ndarray, cols: np.ndarray) -> None:
    with path.open("w", encoding="utf-8") as fh:
        fh.write("account,item\n")
        fh.writelines(f"u{r:07d},p{c:06d}\n" for r, c in zip(rows.tolist(), cols.tolist(), strict=True))


def fcx_command() -> tuple[list[str], str]:
    """The installed console script when it dispatches through fanchaoxin.launch, else `python -m`."""
    script = Path(sys.executable).with_name("fcx")
    if script.is_file() and "fanchaoxin.launch" in script.read_text(encoding="utf-8", errors="replace"):
        return [str(script)], f"{script}"
    return [sys.executable, "-m", "fanchaoxin"], (
        f"{sys.executable} -m fanchaoxin (the installed fcx script predates fanchaoxin.launch: "
        "pip install -e . --no-deps)"
    )


def timed(cmd: list[str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        out.append(time.perf_counter() - t)
        if res.returncode != 0:
            raise SystemExit(f"failed ({res.returncode}): {' '.join(cmd)}\n{res.stderr[-2000:]}")
    return out


def scores(found_r: set, found_c: set, ring_r: set, ring_c: set) -> str:
    hit = len(found_r & ring_r) + len(found_c & ring_c)
    recall = hit / (len(ring_r) + len(ring_c))
    precision = hit / max(len(found_r) + len(found_c), 1)
    return f"{len(found_r)}×{len(found_c)}, ring recall {recall:.3f}, precision {precision:.3f}"


def fmt(ts: list[float]) -> str:
    return f"median {statistics.median(ts):.3f} s of {len(ts)} ({', '.join(f'{x:.3f}' for x in ts)})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--edges", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-reference", action="store_true")
    ap.add_argument("--reader", choices=["python", "pyarrow", "package", "both", "all"], default="python")
    ap.add_argument("--algorithm", action="store_true", help="also time the two peelings in-process")
    args = ap.parse_args()

    print("machine:", machine())
    rows, cols, m, n, ring_r, ring_c = graph(args.edges, args.seed)
    n_unique = len(np.unique(rows.astype(np.int64) * n + cols))
    print(f"graph: {len(rows):,} edges ({n_unique:,} distinct), {m:,} accounts × {n:,} items, ring 300×150")
    ring_ids = ({account_id(x) for x in ring_r}, {item_id(x) for x in ring_c})

    with tempfile.TemporaryDirectory(prefix="fcx-bench-fraudar-") as tmp:
        edges, ours_out, ref_out = Path(tmp, "edges.csv"), Path(tmp, "blocks.json"), Path(tmp, "ref.json")
        write_csv(edges, rows, cols)
        print(f"input: {edges.stat().st_size / 1e6:.1f} MB CSV")
        fcx, how = fcx_command()
        print(f"ours:      {how} detect dense-blocks -i edges.csv --src account --dst item -o blocks.json")
        t_ours = timed(
            [
                *fcx,
                "detect",
                "dense-blocks",
                "-i",
                str(edges),
                "--src",
                "account",
                "--dst",
                "item",
                "-o",
                str(ours_out),
            ],
            args.runs,
        )
        (block, *_) = json.loads(ours_out.read_text(encoding="utf-8"))
        ours_r, ours_c = set(block["src"]), set(block["dst"])
        print(
            f"ours:      {fmt(t_ours)}, g = {block['score']:.6f}, {block['status']}, "
            f"block {scores(ours_r, ours_c, *ring_ids)}"
        )
        if not args.no_reference and greedy is None:
            print("reference: rgmining-fraudar not installed (pip install '.[bench]')")
        elif not args.no_reference:
            readers = {"both": ("python", "pyarrow"), "all": ("package", "python", "pyarrow")}
            for reader in readers.get(args.reader, (args.reader,)):
                t_ref = timed([sys.executable, "-c", REFERENCE[reader], str(edges), str(ref_out)], args.runs)
                ref = json.loads(ref_out.read_text(encoding="utf-8"))
                ref_r = set(ref["src"])
                if ref["dst"] is None:  # ReviewGraph names the block's accounts only
                    print(f"reference ({reader}): {fmt(t_ref)}, block accounts {len(ref_r)}")
                    print(
                        f"whole commands ({reader}): speed-up "
                        f"{statistics.median(t_ref) / statistics.median(t_ours):.1f}×; "
                        f"same accounts: {ref_r == ours_r}"
                    )
                    continue
                ref_c = set(ref["dst"])
                print(
                    f"reference ({reader} reader): {fmt(t_ref)}, g = {ref['score']:.6f}, "
                    f"block {scores(ref_r, ref_c, *ring_ids)}"
                )
                same = ref_r == ours_r and ref_c == ours_c
                print(
                    f"whole commands ({reader} reader): speed-up "
                    f"{statistics.median(t_ref) / statistics.median(t_ours):.1f}×; "
                    f"our g − reference g = {block['score'] - ref['score']:+.3e}; same block: {same}"
                )

    if args.algorithm:
        algorithm(rows, cols, m, n, args.runs, args.no_reference)


def algorithm(rows: np.ndarray, cols: np.ndarray, m: int, n: int, runs: int, no_reference: bool) -> None:
    """The peelings alone, in-process, on integer-coded edges."""
    ours = []
    for _ in range(runs):
        t = time.perf_counter()
        (block,) = fraudar.dense_blocks(rows, cols, m, n, k=1)
        ours.append(time.perf_counter() - t)
    print(f"algorithm, ours:      {fmt(ours)}, g = {block.score:.6f}")
    if no_reference or greedy is None:
        return
    matrix = (sparse.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(m, n)) > 0).astype(int).tocsr()
    ref = []
    for _ in range(runs):
        t = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # it prints its progress
            (ref_r, ref_c), ref_score = greedy.logWeightedAveDegree(matrix)
        ref.append(time.perf_counter() - t)
    same = set(ref_r) == set(block.src) and set(ref_c) == set(block.dst)
    print(
        f"algorithm, reference: {fmt(ref)}, g = {ref_score:.6f}; speed-up "
        f"{statistics.median(ref) / statistics.median(ours):.1f}×; same block: {same}"
    )


if __name__ == "__main__":
    main()
