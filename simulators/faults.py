"""Optional sensor faults: stuck values, gaps, duplicates and events out of order by seconds.

Faults are applied after generation, per domain, from their own random stream, so a run
with faults is as repeatable as one without, and the generators' hot paths stay clean.
Stuck values and gaps come in episodes (30 and 10 simulated minutes) chosen per sensor by
a hash, so the same sensors fail at the same times in every run.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, fields

import orjson

from simulators.events import Batch

#: Periodic readings, the ones that can get stuck.
READINGS = frozenset(
    {"city.traffic.flow.v1", "city.hospital.status.v1", "city.school.attendance.v1"}
)
STUCK_EPISODE_S = 30 * 60
GAP_EPISODE_S = 10 * 60


@dataclass(frozen=True)
class Faults:
    """Shares (0 to 1) of sensors stuck or silent at a time, and of events duplicated or late."""

    stuck: float = 0.0
    gaps: float = 0.0
    duplicates: float = 0.0
    reorder: float = 0.0
    reorder_max_s: int = 5

    def __post_init__(self) -> None:
        for name in ("stuck", "gaps", "duplicates", "reorder"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"fault share {name}={value} must be between 0 and 1")
        if not 1 <= self.reorder_max_s <= 120:
            raise ValueError(f"reorder_max_s={self.reorder_max_s} must be between 1 and 120")

    @property
    def active(self) -> bool:
        """Whether any fault is switched on."""
        return any((self.stuck, self.gaps, self.duplicates, self.reorder))

    def silent_at(self, key: bytes, t_s: int) -> bool:
        """Whether the sensor ``key`` sends nothing at simulated second ``t_s`` (a gap)."""
        return bool(self.gaps) and _hashed_share(key, b"gap", t_s // GAP_EPISODE_S) < self.gaps

    def stuck_at(self, key: bytes, t_s: int) -> bool:
        """Whether the sensor ``key`` repeats its episode's first reading at ``t_s``."""
        return (
            bool(self.stuck) and _hashed_share(key, b"stuck", t_s // STUCK_EPISODE_S) < self.stuck
        )

    @classmethod
    def parse(cls, spec: str) -> Faults:
        """Faults from ``stuck=0.01,gaps=0.02,duplicates=0.01,reorder=0.02,reorder_max_s=5``."""
        names = {f.name: f.type for f in fields(cls)}
        values: dict[str, float | int] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            name, _, raw = part.partition("=")
            if name not in names:
                raise ValueError(f"unknown fault {name!r}; known: {', '.join(names)}")
            try:
                values[name] = int(raw) if name == "reorder_max_s" else float(raw)
            except ValueError:
                raise ValueError(f"fault {name} needs a number, got {raw!r}") from None
        return cls(**values)  # type: ignore[arg-type]


def _hashed_share(key: bytes, salt: bytes, episode: int) -> float:
    return zlib.crc32(b"%s/%s/%d" % (key, salt, episode)) / 2**32


class FaultStage:
    """Applies faults to one domain's batches, in tick order."""

    def __init__(self, faults: Faults, *, domain: str, seed: int) -> None:
        self.faults = faults
        self.rng = random.Random(f"faults/{domain}/{seed}")
        self.held: list[tuple[int, bytes, bytes, int]] = []
        self.stuck_data: dict[bytes, tuple[int, object]] = {}

    def apply(self, batch: Batch, t_s: int) -> Batch:
        """The batch as a faulty network and faulty sensors would deliver it."""
        f, rng = self.faults, self.rng
        out = Batch(batch.domain, batch.due_ms)
        for key, value, time_ms in zip(batch.keys, batch.values, batch.times, strict=True):
            if f.silent_at(key, t_s):
                continue
            if f.stuck_at(key, t_s):
                value = self._stuck(key, value, t_s // STUCK_EPISODE_S)
            if f.reorder and rng.random() < f.reorder:
                self.held.append((t_s + 1 + rng.randrange(f.reorder_max_s), key, value, time_ms))
                continue
            out.add(key, value, time_ms)
            if f.duplicates and rng.random() < f.duplicates:
                out.add(key, value, time_ms)
        if self.held:
            due = [h for h in self.held if h[0] <= t_s]
            self.held = [h for h in self.held if h[0] > t_s]
            for _, key, value, time_ms in due:
                out.add(key, value, time_ms)
        return out

    def _stuck(self, key: bytes, value: bytes, episode: int) -> bytes:
        event = orjson.loads(value)
        if event.get("type") not in READINGS:
            return value
        first = self.stuck_data.get(key)
        if first is None or first[0] != episode:
            self.stuck_data[key] = (episode, event["data"])
            return value
        event["data"] = first[1]
        return orjson.dumps(event)
