"""What generators emit: batches of records per domain and tick, and the per-tick context."""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from simulators.scenario import ScenarioRuntime


@dataclass(frozen=True, slots=True)
class SimEvent:
    """One record to produce: domain, key (entity id), Kafka timestamp (= event time), value."""

    domain: str
    key: bytes
    time_ms: int
    value: bytes


@dataclass(slots=True)
class Batch:
    """The records of one domain due at one simulated second, in the order to produce them;
    or, with ``mark``, a clock mark at ``due_ms`` for every partition of the domain's topic
    (``streams.marks``: the simulated clock reached that time)."""

    domain: str
    due_ms: int
    keys: list[bytes] = field(default_factory=list)
    values: list[bytes] = field(default_factory=list)
    times: list[int] = field(default_factory=list)
    mark: bool = False

    def __len__(self) -> int:
        return len(self.values)

    def add(self, key: bytes, value: bytes, time_ms: int) -> None:
        """Append one record."""
        self.keys.append(key)
        self.values.append(value)
        self.times.append(time_ms)


@dataclass(slots=True)
class Tick:
    """One simulated second: its time in the forms generators need, and the scenario."""

    t_s: int
    at: datetime
    time_ms: int
    time_json: bytes
    suffix: str
    minute_of_week: int
    minute_of_day: int
    day: date
    scenario: ScenarioRuntime | None

    def factors(self, signal: str) -> list[float] | None:
        """The scenario's multipliers of ``signal`` per commune now, or None."""
        return None if self.scenario is None else self.scenario.factors(signal, self.t_s)


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson-distributed count with mean ``lam`` (normal approximation above 30)."""
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, int(rng.gauss(lam, math.sqrt(lam)) + 0.5))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


class Picker:
    """Picks indices with probability proportional to fixed weights."""

    def __init__(self, weights: Sequence[float]) -> None:
        self.cum: list[float] = []
        total = 0.0
        for w in weights:
            total += w
            self.cum.append(total)
        self.total = total

    def pick(self, rng: random.Random) -> int:
        """One index."""
        return min(bisect.bisect_right(self.cum, rng.random() * self.total), len(self.cum) - 1)


def phase_buckets(count: int, interval: int, rng: random.Random) -> list[list[int]]:
    """Spread ``count`` periodic sensors over the seconds of their interval."""
    buckets: list[list[int]] = [[] for _ in range(interval)]
    for i in range(count):
        buckets[rng.randrange(interval)].append(i)
    return buckets


def noise_table(rng: random.Random, size: int = 4096) -> list[float]:
    """Standard normal draws to index with ``getrandbits(12)``: cheaper than gauss per event."""
    return [rng.gauss(0.0, 1.0) for _ in range(size)]
