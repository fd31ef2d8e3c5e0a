"""Identifier-tag benchmarks: RFC 9497 VOPRF (ristretto255-SHA512) through libsodium.

    .venv/bin/python -m bench.bench_oprf [--ids 1000000] [--workers 2] [--batch 1000] [--batches 20]

0. Machine: CPU, cores, libsodium; one-core medians (µs) of the primitives a tag costs.
1. Platform tags: `evaluate` + `tag` for `--ids` distinct identifiers ("phone:1xxxxxxxxxx"), on a
   multiprocessing pool of `--workers` processes, chunks of 10,000: wall time and ids/s (median of
   `--tag-repeats` runs). Target: 1,000,000 ids in <= 60 s on 2 cores.
2. Blinded evaluation: `--batches` batches of `--batch` blinded elements (blinded beforehand by a
   client, not timed); the pool answers each batch with its evaluated elements and ONE batched DLEQ
   proof: elements/s (median of `--repeats` runs), plus the one-core latency of one batch. Target:
   >= 10,000 elements/s on 2 cores, batches of 1,000. The client's side (verify the proof, unblind)
   of one batch is timed too, and its outputs are checked against the platform's direct tags.

3. The platform's own path (`--platform-tags`): `sharing.feed.compute_tags` — the function that fills
   the `sharing_identifier_tags` cache for snapshots — over `--ids` identifiers on `--workers` spawned
   processes, start-up included.

Quick run: `--ids 50000 --batches 6 --repeats 1`.
"""

from __future__ import annotations

import argparse
import ctypes
import multiprocessing
import os
import platform
import statistics
import time
from pathlib import Path

import pysodium

from fanchaoxin.sharing import feed, oprf

SEED = b"fanchaoxin bench seed, not a real key 0000"[:32]
INFO = b"bench"
_SK: bytes = b""


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    load = ""
    if hasattr(os, "getloadavg"):
        load = ", load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    sodium = pysodium.sodium
    sodium.sodium_version_string.restype = ctypes.c_char_p
    return (
        f"{cpu}, {os.cpu_count()} logical CPUs ({usable} usable){load}; {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}, libsodium {sodium.sodium_version_string().decode()} "
        f"via pysodium"
    )


def _median_us(fn, n: int = 400, rounds: int = 5) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        times.append((time.perf_counter() - t) / n * 1e6)
    return statistics.median(times)


def primitives(sk: bytes) -> None:
    x = b"phone:13800138000"
    point = oprf.hash_to_group(x)
    h = os.urandom(64)
    rows = {
        "scalarmult (variable base)": lambda: pysodium.crypto_scalarmult_ristretto255(sk, point),
        "scalarmult_base": lambda: pysodium.crypto_scalarmult_ristretto255_base(sk),
        "from_hash (element map)": lambda: pysodium.crypto_core_ristretto255_from_hash(h),
        "ristretto255 add": lambda: pysodium.crypto_core_ristretto255_add(point, point),
        "hash_to_group (xmd + map)": lambda: oprf.hash_to_group(x),
        "evaluate (one tag)": lambda: oprf.evaluate(sk, x),
    }
    print("one core, median µs per call:")
    for name, fn in rows.items():
        print(f"  {name:<28} {_median_us(fn):8.1f}")


# --- workers ------------------------------------------------------------------------------------------


def _init(sk: bytes) -> None:
    global _SK
    _SK = sk


def _tag_chunk(bounds: tuple[int, int]) -> tuple[list[str], float]:
    cpu = time.process_time()
    sk, evaluate, tag = _SK, oprf.evaluate, oprf.tag
    tags = [tag("k1", evaluate(sk, b"phone:1%010d" % i)) for i in range(*bounds)]
    return tags, time.process_time() - cpu


def _evaluate_batch(blinded: list[bytes]) -> tuple[tuple[list[bytes], bytes], float]:
    cpu = time.process_time()
    answer = oprf.blind_evaluate(_SK, blinded)
    return answer, time.process_time() - cpu


# --- runs ---------------------------------------------------------------------------------------------


def bench_tags(pool, workers: int, n: int, repeats: int, chunk: int = 10_000) -> None:
    chunks = [(i, min(i + chunk, n)) for i in range(0, n, chunk)]
    walls, cpus = [], []
    for r in range(repeats):
        t = time.perf_counter()
        count, cpu = 0, 0.0
        distinct: set[str] = set()
        for tags, chunk_cpu in pool.imap_unordered(_tag_chunk, chunks):
            count += len(tags)
            cpu += chunk_cpu
            distinct.update(tags)
        wall = time.perf_counter() - t
        assert count == n == len(distinct), "tags must be distinct"
        walls.append(wall)
        cpus.append(cpu)
        print(
            f"  run {r + 1}: {n:,} tags in {wall:.1f} s = {n / wall:,.0f} tags/s; "
            f"worker CPU {cpu:.1f} s = {cpu / n * 1e6:.0f} µs/tag"
        )
    med, med_cpu = statistics.median(walls), statistics.median(cpus)
    print(
        f"tags for {n:,} identifiers: median {med:.1f} s wall, {n / med:,.0f} tags/s "
        f"(target <= 60 s for 1,000,000 on 2 cores)"
    )
    print(
        f"  extrapolated to 1,000,000: {med * 1_000_000 / n:.1f} s wall; from worker CPU time, on "
        f"{workers} otherwise idle cores: {med_cpu / workers * 1_000_000 / n:.1f} s"
    )


def bench_blinded(pool, workers: int, sk: bytes, pk: bytes, batch: int, batches: int, repeats: int) -> None:
    t = time.perf_counter()
    inputs = [[b"phone:1%010d" % (b * batch + i) for i in range(batch)] for b in range(batches)]
    blinded_batches = []
    blinds_batches = []
    for xs in inputs:
        blinds, blinded = oprf.blind_batch(xs)
        blinds_batches.append(blinds)
        blinded_batches.append(blinded)
    print(
        f"  (client blinded {batch * batches:,} inputs in {time.perf_counter() - t:.1f} s, not timed below)"
    )

    # one core, one batch
    lat = []
    for _ in range(3):
        t = time.perf_counter()
        oprf.blind_evaluate(sk, blinded_batches[0])
        lat.append(time.perf_counter() - t)
    one = statistics.median(lat)
    print(f"  one core: one batch of {batch:,} + proof in {one * 1e3:.0f} ms = {batch / one:,.0f} elements/s")

    rates, cpu_rates = [], []
    results = []
    total = batch * batches
    for r in range(repeats):
        t = time.perf_counter()
        results = pool.map(_evaluate_batch, blinded_batches, chunksize=1)
        wall = time.perf_counter() - t
        cpu = sum(c for _, c in results)
        rates.append(total / wall)
        cpu_rates.append(total / cpu * workers)
        print(
            f"  run {r + 1}: {batches} batches x {batch:,} in {wall:.2f} s = {rates[-1]:,.0f} elements/s; "
            f"worker CPU {cpu / total * 1e6:.0f} µs/element"
        )
    med = statistics.median(rates)
    print(
        f"blinded evaluation, batches of {batch:,} with one proof each: median {med:,.0f} elements/s wall "
        f"(target >= 10,000 on 2 cores)"
    )
    print(
        f"  from worker CPU time, on {workers} otherwise idle cores: {statistics.median(cpu_rates):,.0f} elements/s"
    )

    # client side of one batch: verify the batch proof, unblind; check against direct tags
    (evaluated, proof), _ = results[0]
    t = time.perf_counter()
    outputs = oprf.finalize_batch(
        inputs[0], blinds_batches[0], evaluated, proof=proof, pk=pk, blinded=blinded_batches[0]
    )
    wall = time.perf_counter() - t
    print(
        f"  client verify + finalize of one batch: {wall * 1e3:.0f} ms = {batch / wall:,.0f} elements/s (one core)"
    )
    assert outputs == [oprf.evaluate(sk, x) for x in inputs[0]], (
        "blinded outputs differ from direct evaluation"
    )
    print("  check: finalized outputs equal the platform's direct evaluation")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ids", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--tag-repeats", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-tags", action="store_true")
    ap.add_argument("--skip-blinded", action="store_true")
    ap.add_argument("--platform-tags", action="store_true", help="time sharing.feed.compute_tags too")
    args = ap.parse_args()

    sk, pk = oprf.derive_key_pair(SEED, INFO)
    print(machine())
    print(f"suite {oprf.SUITE}, mode {oprf.MODE_VOPRF} (VOPRF); pool of {args.workers} processes")
    primitives(sk)
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    with ctx.Pool(args.workers, initializer=_init, initargs=(sk,)) as pool:
        if not args.skip_tags:
            print()
            bench_tags(pool, args.workers, args.ids, args.tag_repeats)
        if not args.skip_blinded:
            print()
            bench_blinded(pool, args.workers, sk, pk, args.batch, args.batches, args.repeats)
    if args.platform_tags:
        print()
        bench_platform_tags(sk, args.ids, args.workers)


def bench_platform_tags(sk: bytes, n: int, workers: int) -> None:
    key = oprf.OPRFKey("k1", sk, oprf.public_key(sk))
    items = [("phone", f"+861{i:010d}") for i in range(n)]
    t = time.perf_counter()
    count = sum(len(chunk) for chunk in feed.compute_tags([key], items, workers=workers))
    wall = time.perf_counter() - t
    assert count == n
    load = "load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()) if hasattr(os, "getloadavg") else ""
    print(
        f"platform path sharing.feed.compute_tags, {workers} spawned processes: {n:,} tags in {wall:.1f} s "
        f"= {n / wall:,.0f} tags/s (target <= 60 s for 1,000,000); {load}"
    )


if __name__ == "__main__":
    main()
