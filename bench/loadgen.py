"""Closed-loop keep-alive HTTP load from another process, shared by bench_decide and bench_node.

Kept apart from bench_decide so that the node benchmark loads no platform code to drive its server.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import re
import statistics
import subprocess
import time
from typing import Any

import httpx

try:
    import uvloop
except ImportError:  # the stock event loop then, at some cost in client CPU
    uvloop = None


def stalls(per_second: dict[int, int], started: float, seconds: float) -> tuple[int, int]:
    """Whole seconds of the run in which no response at all arrived, and the longest such stretch.

    A request that never completes is in no latency percentile (wrk does not count it as a timeout
    either), so a server that stops answering shows here rather than in p99.
    """
    longest = run = empty = 0
    for sec in range(int(started) + 1, int(started + seconds)):
        if per_second.get(sec):
            run = 0
        else:
            empty += 1
            run += 1
            longest = max(longest, run)
    return empty, longest


def _pyload_worker(port: int, raw_requests: list[bytes], connections: int, seconds: float, out: Any) -> None:
    """A closed-loop keep-alive HTTP/1.1 client on asyncio streams (when wrk is not installed)."""

    async def one(n: int, lat: list[float], done_at: list[float], counts: list[int]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = n * 7919
        try:
            while True:
                req = raw_requests[i % len(raw_requests)]
                i += 1
                t = time.perf_counter()
                writer.write(req)
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
                body = await reader.readexactly(length)
                lat.append(time.perf_counter() - t)
                done_at.append(time.time())
                if not head.startswith(b"HTTP/1.1 200"):
                    counts[1] += 1
                elif not re.search(rb'"verdict":\s*"allow"', body):
                    counts[0] += 1
        finally:
            writer.close()

    async def main() -> tuple[list[float], list[float], list[int], float]:
        lat: list[float] = []
        done_at: list[float] = []
        counts = [0, 0]
        t0 = time.perf_counter()
        tasks = [asyncio.ensure_future(one(n, lat, done_at, counts)) for n in range(connections)]
        await asyncio.wait(tasks, timeout=seconds)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return lat, done_at, counts, time.perf_counter() - t0

    if uvloop is not None:
        uvloop.install()
    out.send(asyncio.run(main()))


def python_run(port: int, key: str, bodies: list[str], connections: int, seconds: float) -> dict[str, Any]:
    raw = [
        (
            f"POST /v1/decisions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"X-API-Key: {key}\r\nContent-Length: {len(b.encode())}\r\n\r\n{b}"
        ).encode()
        for b in bodies
    ]
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    started = time.time()
    p = ctx.Process(target=_pyload_worker, args=(port, raw, connections, seconds, child))
    p.start()
    lat, done_at, counts, elapsed = parent.recv()
    p.join()
    q = statistics.quantiles(lat, n=100) if len(lat) > 1 else [0.0] * 99
    per_second: dict[int, int] = {}
    for t in done_at:
        per_second[int(t)] = per_second.get(int(t), 0) + 1
    return {
        "requests": len(lat), "seconds": elapsed, "p50": q[49] * 1000, "p95": q[94] * 1000,
        "p99": q[98] * 1000, "max": max(lat, default=0) * 1000, "non_allow": counts[0], "bad": counts[1],
        "stalls": stalls(per_second, started, seconds),
    }  # fmt: skip


def wait_until_serving(url: str, server: subprocess.Popen[Any], timeout: float) -> None:
    """Poll `url` until it answers 200; stop the benchmark if the server exits or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            raise SystemExit(f"the server at {url} did not start")
        time.sleep(0.2)
