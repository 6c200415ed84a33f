"""Traffic flow events: vehicles per interval at intersections, with a daily rhythm.

Everything is a pure function of (seed, entities, start time): the same arguments give
the same bytes, whatever the machine or the speed they are produced at.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import orjson

from streams.envelope import encode
from streams.traffic.models import TrafficFlow

SEED_FILE = Path(__file__).resolve().parents[1] / "seeds" / "quang_ninh" / "intersections.json"
SOURCE = "/simulators/traffic"
VIETNAM = timedelta(hours=7)


@dataclass(frozen=True, slots=True)
class Intersection:
    """One counted intersection."""

    id: str
    name: str
    zone: str
    base_vehicles_per_min: float


@dataclass(frozen=True, slots=True)
class SimEvent:
    """One record to produce: key, Kafka timestamp (= event time) and value."""

    key: bytes
    time_ms: int
    value: bytes


def intersections(count: int, *, seed: int = 0) -> list[Intersection]:
    """``count`` intersections: the hand-written base first, then generated ones."""
    base = orjson.loads(SEED_FILE.read_bytes())["intersections"]
    out = [
        Intersection(b["id"], b["name"], b["zone"], float(b["base_vehicles_per_min"]))
        for b in base[:count]
    ]
    rng = random.Random(seed)
    i = 0
    while len(out) < count:
        parent = base[i % len(base)]
        i += 1
        zone_slug = parent["id"].split("-")[2]
        out.append(
            Intersection(
                f"qn-ix-{zone_slug}-{100 + i:04d}",
                f"{parent['zone']} junction {i}",
                parent["zone"],
                round(parent["base_vehicles_per_min"] * rng.uniform(0.3, 1.2), 1),
            )
        )
    return out


def daily_factor(local: datetime) -> float:
    """Traffic relative to the daily mean: peaks at 07:30 and 17:30, lowest near 03:00."""
    hour = local.hour + local.minute / 60
    morning = math.exp(-((hour - 7.5) ** 2) / 1.5)
    evening = math.exp(-((hour - 17.5) ** 2) / 2.0)
    day = 0.55 * math.exp(-((hour - 12.5) ** 2) / 18)
    return 0.08 + 1.6 * morning + 1.4 * evening + day


def flow_events(
    entities: list[Intersection],
    *,
    start: datetime,
    duration_s: float | None,
    interval_s: int = 10,
    seed: int = 0,
) -> Iterator[SimEvent]:
    """Flow events of every intersection each ``interval_s``, in event-time order.

    ``duration_s=None`` goes on for ever (the caller paces and stops it).
    """
    rng = random.Random(seed)
    steps = itertools.count() if duration_s is None else range(int(duration_s // interval_s))
    for step in steps:
        at = start + timedelta(seconds=step * interval_s)
        factor = daily_factor(at + VIETNAM)
        time_ms = int(at.timestamp() * 1000)
        for n, ix in enumerate(entities):
            mean = ix.base_vehicles_per_min * factor * interval_s / 60
            vehicles = max(0, round(rng.gauss(mean, math.sqrt(mean + 1))))
            occupancy = min(
                99.0,
                round(100 * vehicles / (ix.base_vehicles_per_min * 3 * interval_s / 60 + 1), 1),
            )
            speed = round(max(3.0, 60 - 0.5 * occupancy + rng.gauss(0, 3)), 1)
            data = TrafficFlow(
                vehicles=vehicles,
                avg_speed_kmh=speed,
                occupancy_pct=occupancy,
                interval_s=interval_s,
            )
            yield SimEvent(
                key=ix.id.encode(),
                time_ms=time_ms,
                value=encode(
                    event_type=TrafficFlow.event_type,
                    subject=ix.id,
                    time=at,
                    data=data.model_dump(),
                    event_id=f"tf-{seed}-{step}-{n}",
                    source=SOURCE,
                ),
            )
