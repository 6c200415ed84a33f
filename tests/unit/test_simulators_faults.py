"""Optional sensor faults: stuck values, gaps, duplicates, and events late by seconds."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import orjson
import pytest

from simulators.clock import SimClock
from simulators.engine import SimConfig, Simulation
from simulators.faults import Faults

START = datetime(2025, 3, 12, 1, 0, tzinfo=UTC)  # 08:00 in Quang Ninh


def _events(faults: Faults, *, duration_s: int = 600) -> list[tuple[bytes, int, dict[str, object]]]:
    config = SimConfig(
        start=START, domains=("traffic",), entities=300, duration_s=duration_s, faults=faults
    )
    return [(e.key, e.time_ms, orjson.loads(e.value)) for e in Simulation(config).events()]


def test_without_faults_readings_vary_and_arrive_in_order() -> None:
    events = _events(Faults())
    times = [t for _, t, _ in events]
    assert times == sorted(times)
    per_sensor: dict[bytes, set[bytes]] = {}
    for key, _, body in events:
        per_sensor.setdefault(key, set()).add(orjson.dumps(body["data"]))
    assert sum(len(v) > 1 for v in per_sensor.values()) > 0.9 * len(per_sensor)


def test_stuck_sensors_repeat_their_reading() -> None:
    events = _events(Faults(stuck=1.0), duration_s=300)
    readings: dict[bytes, set[bytes]] = {}
    for key, _, body in events:
        if body["type"] == "city.traffic.flow.v1":
            readings.setdefault(key, set()).add(orjson.dumps(body["data"]))
    assert readings
    assert all(len(values) == 1 for values in readings.values())


def test_gaps_silence_a_share_of_sensors() -> None:
    assert _events(Faults(gaps=1.0), duration_s=120) == []
    full, gappy = len(_events(Faults())), len(_events(Faults(gaps=0.3)))
    assert 0.5 * full < gappy < 0.9 * full


def test_duplicates_repeat_events_with_the_same_id() -> None:
    ids = Counter(body["id"] for _, _, body in _events(Faults(duplicates=0.05)))
    twice = sum(1 for n in ids.values() if n == 2)
    assert 0.03 * len(ids) < twice < 0.07 * len(ids)


def test_reordered_events_arrive_late_by_a_few_seconds_with_their_event_time() -> None:
    events = _events(Faults(reorder=0.05, reorder_max_s=5))
    late = 0
    newest = 0
    for _, time_ms, body in events:
        event_time = datetime.fromisoformat(str(body["time"])).timestamp() * 1000
        assert event_time == time_ms
        if time_ms < newest:
            late += 1
            assert newest - time_ms <= 5000
        newest = max(newest, time_ms)
    assert late > 0.02 * len(events)


def test_fault_specs_parse_and_bad_ones_are_named() -> None:
    assert Faults.parse("stuck=0.01, gaps=0.02,reorder_max_s=3") == Faults(
        stuck=0.01, gaps=0.02, reorder_max_s=3
    )
    with pytest.raises(ValueError, match="unknown fault 'melt'"):
        Faults.parse("melt=1")
    with pytest.raises(ValueError, match="between 0 and 1"):
        Faults.parse("gaps=2")


def test_the_clock_paces_accelerated_time_and_refuses_bad_speeds() -> None:
    clock = SimClock(START, speed=60)
    assert 0.9 < clock.due_in(clock.start_ms + 60_000) <= 1.0
    assert clock.due_in(clock.start_ms - 1000) == 0
    assert SimClock(START, speed=None).due_in(clock.start_ms + 10**9) == 0
    with pytest.raises(ValueError, match="speed must be positive"):
        SimClock(START, speed=-1)
