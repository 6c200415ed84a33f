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

    Memory is one small entry per caller name; callers are keys, so their number is
    bounded by the configured keys (and JWT subjects). With several API replicas each has
    its own buckets, so the limit applies per replica.
    """

    def __init__(
        self,
        *,
        rate_per_s: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate_per_s, self.burst, self._clock = rate_per_s, burst, clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, caller: str) -> float:
        """Spend one token of ``caller``: 0.0 when allowed, else seconds until one is back."""
        now = self._clock()
        bucket = self._buckets.get(caller)
        if bucket is None:
            bucket = self._buckets[caller] = _Bucket(float(self.burst), now)
        else:
            bucket.tokens = min(
                float(self.burst), bucket.tokens + (now - bucket.at) * self.rate_per_s
            )
            bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate_per_s
