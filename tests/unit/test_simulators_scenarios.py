"""Scenarios shape rates and inject events; malformed files are refused with a reason."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from simulators.clock import VIETNAM
from simulators.engine import ConfigError, SimConfig, Simulation
from simulators.scenario import ScenarioError, load_scenario, scenario_names

YAGI_START = datetime(2024, 9, 7, tzinfo=VIETNAM).astimezone(UTC)
AFFECTED = {"halong", "quangyen", "uongbi", "campha", "vandon", "coto", "dongtrieu"}


def _typhoon_counts(with_scenario: bool) -> tuple[int, int]:
    """Vehicles counted in the affected zones and admissions, 10:00 to 18:00 local."""
    config = SimConfig(
        start=YAGI_START,
        domains=("traffic", "hospital"),
        entities=300,
        rate=0.25,
        seed=5,
        duration_s=18 * 3600,
        scenario=load_scenario("typhoon-yagi") if with_scenario else None,
    )
    simulation = Simulation(config)
    zone = {e.id.encode(): e.zone for e in simulation.city.entities}
    window = (YAGI_START.timestamp() + 10 * 3600) * 1000
    vehicles = admissions = 0
    for event in simulation.events():
        if event.time_ms < window:
            continue
        body = orjson.loads(event.value)
        if body["type"] == "city.traffic.flow.v1" and zone[event.key] in AFFECTED:
            vehicles += body["data"]["vehicles"]
        elif body["type"] == "city.hospital.admission.v1":
            admissions += 1
    return vehicles, admissions


def test_typhoon_halves_traffic_in_the_affected_zones_and_raises_admissions() -> None:
    normal_vehicles, normal_admissions = _typhoon_counts(False)
    storm_vehicles, storm_admissions = _typhoon_counts(True)
    assert normal_vehicles > 10_000
    assert storm_vehicles < 0.5 * normal_vehicles
    assert storm_admissions > 1.5 * normal_admissions


def test_typhoon_closes_schools_and_injects_incidents_at_their_times() -> None:
    friday = datetime(2024, 9, 6, tzinfo=VIETNAM).astimezone(UTC)
    scenario = load_scenario("typhoon-yagi")
    config = SimConfig(
        start=friday, domains=("school", "traffic"), entities=500, rate=0.1, duration_s=11 * 3600
    )
    normal = Counter(orjson.loads(e.value)["type"] for e in Simulation(config).events())
    stormy = Simulation(SimConfig(**{**config.__dict__, "scenario": scenario}))
    closures, flooded_at = 0, []
    types: Counter[str] = Counter()
    for event in stormy.events():
        body = orjson.loads(event.value)
        types[body["type"]] += 1
        if body["data"].get("kind") == "closure" and body["type"] == "city.school.safety.v1":
            closures += 1
            assert event.time_ms == friday.timestamp() * 1000
        if body["data"].get("kind") == "closure" and body["type"] == "city.traffic.incident.v1":
            flooded_at.append((event.time_ms / 1000 - friday.timestamp()) / 3600)
    assert normal["city.school.attendance.v1"] > 200
    assert types["city.school.attendance.v1"] == 0
    assert closures == len(stormy.city.in_domain("school"))
    assert flooded_at == [10.0, 10.0, 10.0]  # Bai Chay bridge and both its ends


def test_carnival_brings_crowds_to_bai_chay() -> None:
    scenario = load_scenario("halong-carnival")
    assert scenario.suggested_start is not None
    base = SimConfig(
        start=scenario.suggested_start, domains=("security",), entities=2000, duration_s=12 * 3600
    )

    def bai_chay_crowds(config: SimConfig) -> int:
        simulation = Simulation(config)
        communes = {e.id.encode(): e.commune for e in simulation.city.entities}
        return sum(
            1
            for e in simulation.events()
            if communes[e.key] == "bai-chay" and orjson.loads(e.value)["data"]["kind"] == "crowd"
        )

    assert bai_chay_crowds(
        SimConfig(**{**base.__dict__, "scenario": scenario})
    ) > 2 * bai_chay_crowds(base)


def test_every_shipped_scenario_loads_and_runs() -> None:
    assert set(scenario_names()) >= {
        "typhoon-yagi",
        "halong-carnival",
        "national-exam-day",
        "expressway-pileup",
    }
    for name in scenario_names():
        scenario = load_scenario(name)
        assert scenario.suggested_start is not None
        config = SimConfig(
            start=scenario.suggested_start, entities=200, duration_s=600, scenario=scenario
        )
        assert sum(len(b) for b in Simulation(config).batches()) > 0


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b'{"name": "x"', "not valid JSON"),
        (b'{"name": "x", "about": "", "version": 1}', "duration_h: Field required"),
        (
            b'{"name": "x", "about": "", "version": 1, "duration_h": 1, "effects": '
            b'[{"signal": "traffic.flo", "factor": 2, "from_h": 0, "to_h": 1}]}',
            "effects.0.signal",
        ),
        (
            b'{"name": "x", "about": "", "version": 1, "duration_h": 1, "effects": '
            b'[{"signal": "traffic.flow", "areas": ["hanoi"], "factor": 2,'
            b' "from_h": 0, "to_h": 1}]}',
            "unknown areas ['hanoi']",
        ),
        (
            b'{"name": "x", "about": "", "version": 1, "duration_h": 1, "injections": [{"at_h": 0,'
            b' "event": "traffic.incident", "select": {}, "data": {"kind": "meteor"}}]}',
            "injections.0",
        ),
    ],
)
def test_malformed_scenarios_are_refused_naming_file_and_problem(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(ScenarioError) as error:
        load_scenario(path)
    assert str(path) in str(error.value)
    assert problem in str(error.value)


def test_unknown_scenario_names_list_the_known_ones() -> None:
    with pytest.raises(ScenarioError, match="typhoon-yagi"):
        load_scenario("tsunami")


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"domains": ("traffic", "weather")}, "unknown domain 'weather'"),
        ({"rate": -1.0}, "rate must be positive"),
        ({"entities": 100_001}, "entities must be between 1 and 100000"),
        ({"duration_s": -5.0}, "duration must not be negative"),
    ],
)
def test_bad_configuration_is_refused_with_the_problem_named(
    changes: dict[str, object], problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem):
        SimConfig(start=YAGI_START, **changes)  # type: ignore[arg-type]
