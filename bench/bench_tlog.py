"""Transparency-log benchmarks (透明日志, #19): the Merkle tree of core.tlog at a million leaves.

    .venv/bin/python -m bench.bench_tlog [--leaves 1000000] [--proofs 20000] [--profile international]

1. Appending: ``--leaves`` leaves of ~200 bytes (a shared record's size) appended one by one, then the
   root. The issue's target: 100,000 events appended ≤ 10 s (the rate at 100,000 is printed too).
2. Inclusion proofs at n = ``--leaves``: proofs/s and the p99 of one proof (target ≤ 5 ms p99), then
   verification/s.
3. Consistency proofs from a random older size to n: proofs/s, p99, and verification/s (a node's check
   at each sync, target ≤ 50 ms).
4. Tiles: writing every tile of the tree, and an inclusion proof built from tiles (fetched from a dict,
   so the cost of reading and authenticating them, not of the network).
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import time

from fanchaoxin.core.crypto import profile
from fanchaoxin.core.tlog import (
    MerkleLog,
    TileReader,
    consistency_proof,
    inclusion_proof,
    verify_consistency,
    verify_inclusion,
)


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--proofs", type=int, default=20_000)
    parser.add_argument("--profile", default="international", choices=["international", "gm"])
    args = parser.parse_args()
    hash_fn = profile(args.profile).digest
    rng = random.Random(19)
    n = args.leaves
    print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print(f"profile: {args.profile}, leaves: {n:,}")

    # 1. appending
    record = bytes(rng.getrandbits(8) for _ in range(200))
    log = MerkleLog(hash_fn)
    start = time.perf_counter()
    at_100k = None
    for i in range(n):
        log.append(i.to_bytes(8, "big") + record)
        if i + 1 == 100_000:
            at_100k = time.perf_counter() - start
    appended = time.perf_counter() - start
    start = time.perf_counter()
    root = log.root()
    root_s = time.perf_counter() - start
    print(f"append: {n:,} leaves in {appended:.2f} s ({n / appended:,.0f} leaves/s)", end="")
    print(f"; first 100,000 in {at_100k:.2f} s" if at_100k is not None else "")
    print(f"root at n = {n:,}: {root_s * 1e6:.0f} µs ({root.hex()[:16]}…)")

    # 2. inclusion proofs
    indices = [rng.randrange(n) for _ in range(args.proofs)]
    times, proofs = [], []
    for index in indices:
        t = time.perf_counter()
        proofs.append(log.inclusion_proof(index))
        times.append(time.perf_counter() - t)
    total = sum(times)
    print(
        f"inclusion proof at n = {n:,}: {len(times) / total:,.0f} proofs/s, "
        f"p99 {p99(times) * 1e3:.3f} ms, {len(proofs[0])} hashes"
    )
    start = time.perf_counter()
    for index, proof in zip(indices, proofs, strict=True):
        verify_inclusion(index, n, log.leaf_hash(index), proof, root, hash_fn)
    print(f"inclusion verify: {len(indices) / (time.perf_counter() - start):,.0f} verifications/s")

    # 3. consistency proofs
    olds = [rng.randrange(1, n) for _ in range(args.proofs)]
    times, cproofs = [], []
    for old in olds:
        t = time.perf_counter()
        cproofs.append(log.consistency_proof(old))
        times.append(time.perf_counter() - t)
    total = sum(times)
    print(
        f"consistency proof to n = {n:,}: {len(times) / total:,.0f} proofs/s, p99 {p99(times) * 1e3:.3f} ms"
    )
    old_roots = [log.root(old) for old in olds]
    times = []
    for old, old_root, proof in zip(olds, old_roots, cproofs, strict=True):
        t = time.perf_counter()
        verify_consistency(old, n, old_root, root, proof, hash_fn)
        times.append(time.perf_counter() - t)
    print(
        f"consistency verify: {len(times) / sum(times):,.0f} verifications/s, p99 {p99(times) * 1e3:.3f} ms"
    )

    # 4. tiles
    start = time.perf_counter()
    tiles = dict(log.tiles())
    tiles_s = time.perf_counter() - start
    size_mb = sum(len(t) for t in tiles.values()) / 1e6
    print(f"tiles: {len(tiles):,} tiles ({size_mb:.1f} MB) in {tiles_s:.2f} s")
    reader = TileReader(n, tiles.__getitem__, hash_fn, root=root)
    start = time.perf_counter()
    reader.check_root(root)
    first = time.perf_counter() - start
    sample = indices[: min(2000, len(indices))]
    start = time.perf_counter()
    for index in sample:
        assert inclusion_proof(reader, index, n) == log.inclusion_proof(index)
    from_tiles = time.perf_counter() - start
    print(
        f"proof from tiles (authenticated against the root; root check {first * 1e3:.1f} ms): "
        f"{len(sample) / from_tiles:,.0f} proofs/s including the same proof from the tree to compare"
    )
    start = time.perf_counter()
    consistency_proof(reader, olds[0], n)
    print(f"consistency proof from tiles: {(time.perf_counter() - start) * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
