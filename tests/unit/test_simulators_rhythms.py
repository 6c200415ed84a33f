"""Believable rhythms: rush hours, school days and hours, slow hospitals, nights at the docks."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import orjson

from city.seeds import load_base
from simulators.clock import VIETNAM
from simulators.engine import SimConfig, Simulation
from simulators.rhythms import SchoolCalendar


def _flow_by_entity(start_local: datetime, minutes: int) -> dict[bytes, int]:
    config = SimConfig(
        start=start_local.astimezone(UTC),
        domains=("traffic",),
        entities=2000,
        seed=11,
        duration_s=minutes * 60,
    )
    simulation = Simulation(config)
    intersections = {e.id.encode() for e in simulation.city.entities if e.kind == "intersection"}
    totals: dict[bytes, int] = defaultdict(int)
    for event in simulation.events():
        body = orjson.loads(event.value)
        if event.key in intersections and body["type"] == "city.traffic.flow.v1":
            totals[event.key] += body["data"]["vehicles"]
    return totals


def test_traffic_at_0800_is_more_than_three_times_that_at_0300_at_the_same_intersections() -> None:
    wednesday = datetime(2025, 3, 12, tzinfo=VIETNAM)
    morning = _flow_by_entity(wednesday.replace(hour=8), 10)
    night = _flow_by_entity(wednesday.replace(hour=3), 10)
    assert set(morning) == set(night)
    assert len(morning) > 500
    assert sum(morning.values()) > 3 * sum(night.values())
    busier = sum(1 for k in morning if morning[k] > night[k])
    assert busier > 0.95 * len(morning)


def test_attendance_is_counted_only_on_school_days_during_sessions() -> None:
    # Monday 2 and Tuesday 3 September 2024 are the National Day holidays.
    monday = datetime(2024, 9, 2, tzinfo=VIETNAM)
    config = SimConfig(
        start=monday.astimezone(UTC), domains=("school",), entities=300, duration_s=7 * 86400
    )
    calendar = SchoolCalendar(load_base().model.school_calendar.model_dump())
    days: Counter[int] = Counter()
    for event in Simulation(config).events():
        body = orjson.loads(event.value)
        if body["type"] != "city.school.attendance.v1":
            continue
        local = datetime.fromtimestamp(event.time_ms / 1000, VIETNAM)
        assert calendar.is_school_day(local.date())
        assert calendar.session_elapsed(local.hour * 60 + local.minute) is not None, local
        assert 0 < body["data"]["present"] <= body["data"]["enrolled"]
        days[local.weekday()] += 1
    assert set(days) == {2, 3, 4}  # Wednesday to Friday; not the holidays, not the weekend
    assert min(days.values()) > 1000


def test_attendance_is_high_by_nine_oclock_on_an_ordinary_day() -> None:
    start = datetime(2025, 3, 12, 8, 30, tzinfo=VIETNAM)
    config = SimConfig(start=start.astimezone(UTC), domains=("school",), duration_s=1800)
    shares = [
        d["present"] / d["enrolled"]
        for e in Simulation(config).events()
        if (d := orjson.loads(e.value)["data"]).get("enrolled")
    ]
    assert len(shares) > 300
    assert 0.85 < sum(shares) / len(shares) < 0.99


def test_hospital_occupancy_drifts_slowly_and_stays_within_capacity() -> None:
    start = datetime(2025, 3, 10, tzinfo=VIETNAM)
    config = SimConfig(start=start.astimezone(UTC), domains=("hospital",), duration_s=6 * 3600)
    last: dict[bytes, int] = {}
    snapshots = 0
    for event in Simulation(config).events():
        body = orjson.loads(event.value)
        if body["type"] != "city.hospital.status.v1":
            continue
        data = body["data"]
        assert 0 <= data["beds_occupied"] <= data["beds_total"]
        assert 0 <= data["icu_occupied"] <= data["icu_total"]
        assert data["ambulances_available"] >= 0
        if event.key in last:
            assert abs(data["beds_occupied"] - last[event.key]) <= max(3, 0.03 * data["beds_total"])
        last[event.key] = data["beds_occupied"]
        snapshots += 1
    assert snapshots > 100 * 6 * 50


def test_guarded_sites_see_more_intrusion_and_loitering_at_night() -> None:
    start = datetime(2025, 3, 12, tzinfo=VIETNAM)
    simulation = Simulation(
        SimConfig(start=start.astimezone(UTC), domains=("security",), duration_s=86400, seed=3)
    )
    guarded = {
        e.id.encode()
        for e in simulation.city.entities
        if e.attrs.get("site") in ("port", "border", "industrial")
    }
    kinds: dict[bool, Counter[str]] = {True: Counter(), False: Counter()}
    for event in simulation.events():
        body = orjson.loads(event.value)
        if event.key in guarded and body["type"] == "city.security.detection.v1":
            hour = datetime.fromtimestamp(event.time_ms / 1000, VIETNAM).hour
            kinds[hour >= 22 or hour < 5][body["data"]["kind"]] += 1

    def suspicious(counter: Counter[str]) -> float:
        return (counter["intrusion"] + counter["loitering"]) / max(1, sum(counter.values()))

    assert sum(kinds[True].values()) > 200
    assert suspicious(kinds[True]) > suspicious(kinds[False]) + 0.2
    # Night rates per hour are higher than daytime rates at guarded sites.
    assert sum(kinds[True].values()) / 7 > sum(kinds[False].values()) / 17


def test_rate_scales_the_reporting_interval() -> None:
    start = datetime(2025, 3, 12, 8, tzinfo=VIETNAM).astimezone(UTC)

    def count(rate: float) -> int:
        config = SimConfig(
            start=start, domains=("traffic",), entities=500, rate=rate, duration_s=600
        )
        return sum(len(b) for b in Simulation(config).batches())

    assert 1.8 < count(2.0) / count(1.0) < 2.2


def test_weekend_mornings_are_quieter_than_weekday_mornings() -> None:
    wednesday = datetime(2025, 3, 12, 8, tzinfo=VIETNAM)
    weekday = sum(_flow_by_entity(wednesday, 5).values())
    sunday = sum(_flow_by_entity(wednesday + timedelta(days=4), 5).values())
    assert sunday < 0.8 * weekday
