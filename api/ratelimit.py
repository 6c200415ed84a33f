"""Requests per caller: a token bucket per key, kept in the API process's memory."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """Each caller may make ``burst`` requests at once, refilled at ``rate_per_s``.

    Memory is one small entry per caller, at most ``max_callers`` of them: past that, the
    buckets that have refilled (their callers idle) are forgotten first, then the oldest.
    Callers are keys, client addresses or key prefixes. With several API replicas each has
    its own buckets, so the limit applies per replica.
    """

    def __init__(
        self,
        *,
        rate_per_s: float,
        burst: int,
        max_callers: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate_per_s, self.burst, self._clock = rate_per_s, burst, clock
        self.max_callers = max_callers
        self._buckets: dict[str, _Bucket] = {}

    def _refilled(self, caller: str, now: float) -> _Bucket:
        bucket = self._buckets.get(caller)
        if bucket is None:
            if len(self._buckets) >= self.max_callers:
                self._forget(now)
            bucket = self._buckets[caller] = _Bucket(float(self.burst), now)
        else:
            bucket.tokens = min(
                float(self.burst), bucket.tokens + (now - bucket.at) * self.rate_per_s
            )
            bucket.at = now
        return bucket

    def _forget(self, now: float) -> None:
        full_after = self.burst / self.rate_per_s
        idle = [c for c, b in self._buckets.items() if now - b.at >= full_after]
        for caller in idle:
            del self._buckets[caller]
        # Down to nine tenths, so that a flood of new callers scans the buckets once per
        # tenth of their number rather than once each.
        while len(self._buckets) >= self.max_callers * 9 // 10:
            del self._buckets[next(iter(self._buckets))]

    def take(self, caller: str) -> float:
        """Spend one token of ``caller``: 0.0 when allowed, else seconds until one is back."""
        bucket = self._refilled(caller, self._clock())
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return self._wait(bucket)

    def wait(self, caller: str) -> float:
        """Seconds until ``caller`` has a token (0.0: it has one now); spends nothing."""
        if caller not in self._buckets:
            return 0.0
        bucket = self._refilled(caller, self._clock())
        return 0.0 if bucket.tokens >= 1.0 else self._wait(bucket)

    def _wait(self, bucket: _Bucket) -> float:
        return (1.0 - bucket.tokens) / self.rate_per_s
