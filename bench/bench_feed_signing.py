"""Feed file signing and verification under each crypto profile (issue #18: signing a snapshot ≤ 1 s).

    .venv/bin/python -m bench.bench_feed_signing [--entries 100000 1000000] [--profiles international gm]

For each size and profile, a synthetic snapshot of ``--entries`` records of about 530 bytes each (the
shape of bench_node's records: two tags, measures, a unit's name and USCC now and then) is written with
``protocol.write_feed_file_to`` (format /2) and timed:

* write: serialise, hash the body as it streams out, gzip, sign and append the signature line, all of it;
* sign: the signature itself, one ``key.sign`` over ``protocol.feed_body_message`` (best of 5);
* node verify: ``sync.read_feed`` on the file's bytes (gunzip, one digest pass over the body, one
  signature verification, the JSON parse of every record), with the digest and the verification timed
  apart as well;
* for comparison, format /1's signature: one ``key.sign`` over the whole body (what the snapshot cost
  before /2: GmSSL's SM2 reads the body in and hashes it inside the signature, Ed25519 hashes it twice).

The machine (cores, load average) is printed first: the figures are of one core, and a loaded machine
slows all of them.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import os
import platform
import random
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.bench_node import make_record
from fanchaoxin.core import crypto
from fanchaoxin.node.sync import read_feed
from fanchaoxin.sharing import protocol as P

POOL = 1024  # distinct records, cycled with a fresh entry id each (building a million dicts is not timed)


def record_pool(rng: random.Random) -> list[dict[str, Any]]:
    return [make_record(i, rng) for i in range(POOL)]


def lines(n: int, pool: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for i in range(n):
        r = pool[i % POOL]
        yield {"record": {**r, "entry_id": f"{i:08d}{r['entry_id'][8:]}"}}


def best_of(repeats: int, fn: Any) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def bench(n: int, prof: crypto.Profile, pool: list[dict[str, Any]], directory: Path) -> None:
    key = P.SigningKey.generate("s1", prof)
    path = directory / f"snapshot-{prof.name}-{n}.jsonl.gz"
    header = {"seq": n, "count": n}
    gc.collect()
    was = gc.isenabled()
    gc.disable()  # as feed.build_snapshot does
    t = time.perf_counter()
    digest, size = P.write_feed_file_to(path, P.SNAPSHOT_FORMAT, header, lines(n, pool), key)
    write_s = time.perf_counter() - t
    if was:
        gc.enable()

    data = path.read_bytes()
    raw = gzip.decompress(data)
    body = raw[: raw.rfind(b"\n", 0, len(raw) - 1) + 1]
    body_digest = prof.digest(body)
    message = P.feed_body_message(P.SNAPSHOT_FORMAT, body_digest)
    sign_s = best_of(5, lambda: key.sign(message))
    digest_s = best_of(3, lambda: prof.digest(body))
    signature = key.sign(message)
    verify_s = best_of(5, lambda: prof.verify(key.public, message, signature))
    v1_sign_s = best_of(1, lambda: key.sign(body))  # format /1: the signature over the whole body
    del raw
    assert digest == prof.hexdigest(data)

    gc.collect()
    t = time.perf_counter()
    feed = read_feed(data, key.public, P.SNAPSHOT_FORMAT, prof)
    read_s = time.perf_counter() - t
    assert len(feed.records) == n
    del feed
    gc.collect()
    path.unlink()
    print(
        f"{prof.name:>13} {n:>9,}  body {len(body) / 1e6:6.1f} MB ({len(body) / n:.0f} B/entry), "
        f"gz {size / 1e6:5.1f} MB\n"
        f"{'':>13} write (serialise + hash + gzip + sign) {write_s:6.2f} s   "
        f"of which body digest ≈ {digest_s:.2f} s\n"
        f"{'':>13} signature itself {sign_s * 1e3:6.2f} ms   (format /1, over the body: {v1_sign_s:.2f} s)\n"
        f"{'':>13} node verify: read_feed {read_s:6.2f} s   (digest {digest_s:.2f} s + "
        f"verify {verify_s * 1e3:.2f} ms; the rest is gunzip and the JSON parse)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--profiles", nargs="+", default=list(crypto.CRYPTO_PROFILES))
    args = ap.parse_args()
    load = os.getloadavg()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, Python {platform.python_version()}"
    )
    pool = record_pool(random.Random(18))
    with tempfile.TemporaryDirectory(prefix="fcx-bench-feed-") as tmp:
        for n in args.entries:
            for name in args.profiles:
                bench(n, crypto.profile(name), pool, Path(tmp))
    load = os.getloadavg()
    print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
