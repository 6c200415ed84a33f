"""A paced run sends each simulated second in parts spread over it, not as one burst."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from simulators.engine import SimConfig, Simulation
from simulators.events import Batch
from simulators.producer import slices_per_second, spread

START = datetime(2025, 3, 12, 1, 0, tzinfo=UTC)


def test_each_second_is_cut_into_parts_due_evenly_over_it() -> None:
    batches = list(Simulation(SimConfig(start=START, entities=2000, duration_s=5)).batches())
    parts = list(spread(batches, 10))

    # Nothing lost, nothing repeated, and each domain's records keep their order.
    for domain in {b.domain for b in batches}:
        sent = [k for b in parts if b.domain == domain for k in b.keys]
        assert sent == [k for b in batches if b.domain == domain for k in b.keys]
        assert [t for b in parts if b.domain == domain for t in b.times] == [
            t for b in batches if b.domain == domain for t in b.times
        ]
    # Parts are due in order, each within its second, 100 ms apart.
    dues = [b.due_ms for b in parts]
    assert dues == sorted(dues)
    start_ms = int(START.timestamp() * 1000)
    assert {d - start_ms for d in dues} == {s * 1000 + p * 100 for s in range(5) for p in range(10)}
    # Event times stay as generated: a record is never due before its own event time.
    assert all(t <= b.due_ms < t + 1000 for b in parts for t in b.times)
    # No part holds much more than a tenth of its second.
    per_second: dict[int, int] = {}
    for b in batches:
        per_second[b.due_ms] = per_second.get(b.due_ms, 0) + len(b)
    for b in parts:
        second = b.due_ms - (b.due_ms - start_ms) % 1000
        assert len(b) <= per_second[second] // 10 + 1


def test_a_second_of_one_record_is_one_part() -> None:
    batch = Batch("traffic", 5000, [b"ix-1"], [b"{}"], [5000])
    assert [(b.due_ms, b.keys) for b in spread([batch], 10)] == [(5000, [b"ix-1"])]


@pytest.mark.parametrize(
    ("speed", "slices"), [(None, 1), (1.0, 10), (2.0, 5), (5.0, 2), (10.0, 1), (60.0, 1)]
)
def test_parts_are_a_tenth_of_a_second_of_wall_time_apart_at_most_ten(
    speed: float | None, slices: int
) -> None:
    assert slices_per_second(speed) == slices
