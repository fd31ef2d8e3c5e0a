"""Token buckets for the public forms (no key): per client address and per reported target.

In-process: each API process keeps its own buckets, so with N processes behind a load balancer a
client gets at most N times the budget — enough to stop floods of a public form, not an accounting
tool. Buckets that have refilled are forgotten, so memory stays bounded by the active clients.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from fanchaoxin.core.errors import TooManyRequests
from fanchaoxin.core.settings import Settings


class TokenBuckets:
    def __init__(
        self, capacity: int, window_seconds: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if capacity < 1 or window_seconds <= 0:
            raise ValueError("a bucket needs a capacity of at least 1 and a positive window")
        self.capacity = float(capacity)
        self.rate = capacity / window_seconds  # tokens per second
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Take one token: 0 when allowed, else the seconds until one is available."""
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                wait = 0.0
            else:
                self._buckets[key] = (tokens, now)
                wait = (1 - tokens) / self.rate
            if len(self._buckets) > 100_000:
                self._forget_full(now)
            return wait

    def _forget_full(self, now: float) -> None:
        for key, (tokens, last) in list(self._buckets.items()):
            if tokens + (now - last) * self.rate >= self.capacity:
                del self._buckets[key]


class PublicLimits:
    """The buckets of one process for the public filing routes."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.by_address = TokenBuckets(
            settings.public_rate_per_address, settings.public_rate_address_window_seconds, clock=clock
        )
        self.by_target = TokenBuckets(
            settings.public_rate_per_target, settings.public_rate_target_window_seconds, clock=clock
        )

    def check(self, address: str, targets: list[str]) -> None:
        """429 with Retry-After when the address, or any target, has used up its budget."""
        waits = [self.by_address.take(f"addr:{address}")]
        if waits[0] == 0:
            waits.extend(self.by_target.take(f"target:{t}") for t in sorted(set(targets)))
        wait = max(waits)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise TooManyRequests(
                f"Too many submissions; try again in {seconds} seconds",
                headers={"Retry-After": str(seconds)},
                retry_after=seconds,
            )
