"""The shipped scenarios raise the alerts their events imply, and the incident tier
makes the incidents those alerts imply.

The four scenarios of ``seeds/scenarios/`` are simulated into one sandbox, one after the
other in event-time order (typhoon Yagi 2024, the expressway pile-up, the Ha Long
carnival and national exam day, 2025), each from its start to a few minutes past its
last injection, on a 200-entity city at a fifth of the usual event rate: the injected
happenings are the same at any rate, and the whole run stays under a million events.
The worker's alerts are then checked against each scenario: the rule, the place (the
zone or commune of the entity, from the registry) and the event-time window.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest

from city.model import build_city
from ioc.db.registry import load_registry
from simulators.engine import SimConfig
from simulators.run import run_simulation
from simulators.scenario import Scenario, load_scenario
from streams.topics import INCIDENTS_TOPIC
from tests.utils.eventually import Steady, eventually
from tests.utils.incident_tier import final_incidents, incident_events, start_incidents
from tests.utils.kafka import records_in
from tests.utils.namespaces import Namespace
from tests.utils.services import start_worker

pytestmark = pytest.mark.timeout(600)

ENTITIES = 200
RATE = 0.2
SCENARIOS = ("typhoon-yagi", "expressway-pileup", "halong-carnival", "national-exam-day")
#: Simulated past a scenario's last injection, so its alerts are in and some minutes final.
TAIL = timedelta(minutes=5)


@dataclass(frozen=True)
class Expected:
    """Alerts of ``rule`` the scenario must raise: at least ``count``, opened within
    ``within`` of ``at_h`` hours into the scenario, on entities of ``area``."""

    rule: str
    at_h: float
    area: str
    count: int = 1
    within: timedelta = timedelta(minutes=1)


EXPECTED: dict[str, list[Expected]] = {
    "typhoon-yagi": [
        Expected("school-closure", 0, "quang-ninh", count=20),
        Expected("traffic-closure", 10, "halong", count=3),
        Expected("traffic-flooding", 12, "halong", count=5),
        Expected("traffic-landslide", 13, "quang-ninh", count=2),
        Expected("security-alarm-power-loss", 14, "quang-ninh", count=10),
        Expected("school-flooding", 14.75, "quang-ninh", count=4),
        Expected("hospital-triage-1", 15, "quang-ninh", count=3),
    ],
    "expressway-pileup": [
        Expected("traffic-crash-serious", 0.25, "quangyen"),
        Expected("traffic-crash", 0.27, "quangyen", count=2),
        Expected("traffic-closure", 0.5, "quangyen", count=2),
        Expected("hospital-triage-1", 0.6, "quang-ninh", count=2),
    ],
    "halong-carnival": [
        Expected("traffic-closure", 5.5, "bai-chay", count=3),
        Expected("security-crowd-crush-risk", 7, "halong", count=2),
        Expected("security-alarm-panic", 9, "halong"),
    ],
    "national-exam-day": [
        Expected("school-injury", 1.5, "halong", count=2),
        Expected("security-crowd", 2, "quang-ninh", count=5),
    ],
}


def missing(alerts: list[dict[str, Any]], name: str) -> list[tuple[Expected, int]]:
    """The expectations of scenario ``name`` the alerts do not meet, each with how many
    matching alerts there are."""
    start = start_of(load_scenario(name))
    short = []
    for expected in EXPECTED[name]:
        at = start + timedelta(hours=expected.at_h)
        found = [
            a
            for a in alerts
            if a["rule_id"] == expected.rule
            and at <= a["opened_at"] <= at + expected.within
            and expected.area in (a["zone_id"], a["commune_id"], "quang-ninh")
        ]
        if len(found) < expected.count:
            short.append((expected, len(found)))
    return short


def start_of(scenario: Scenario) -> datetime:
    assert scenario.suggested_start is not None
    return datetime.fromisoformat(str(scenario.suggested_start))


@pytest.fixture(scope="module")
async def alerts(module_namespace: Namespace) -> AsyncIterator[list[dict[str, Any]]]:
    """Every alert the worker stored for the four scenarios, with its entity's places."""
    settings = module_namespace.settings
    city = build_city(ENTITIES, seed=0)
    await load_registry(settings, city)
    for name in SCENARIOS:
        scenario = load_scenario(name)
        last_h = max(i.at_h for i in scenario.injections)
        config = SimConfig(
            start=start_of(scenario),
            entities=ENTITIES,
            rate=RATE,
            scenario=scenario,
            duration_s=last_h * 3600 + TAIL.total_seconds(),
        )
        await run_simulation(settings, config, speed=None)
    worker = start_worker(module_namespace)
    conn = await asyncpg.connect(settings.dsn)
    try:
        await conn.execute(f'SET search_path TO "{settings.db_schema}"')
        query = """
            SELECT a.alert_id::text, a.rule_id, a.entity_id, a.opened_at, e.commune_id,
                   e.zone_id
            FROM alert a JOIN entity e ON e.id = a.entity_id
        """

        # The sink writes in batches and the worker goes through the scenarios one
        # backlog after another: wait until the stored alerts hold every expected one and
        # their number has stopped growing (a count alone could be reached by the first
        # scenarios' extra alerts while a later one's were still on their way).
        rows: list[asyncpg.Record] = await eventually(
            lambda: conn.fetch(query),
            until=Steady(
                5,
                of=len,
                holds=lambda rows: not any(missing([dict(r) for r in rows], n) for n in EXPECTED),
            ),
            within_s=240,
            interval_s=1,
            what="every expected alert stored, their number still for 5 s",
        )
        yield [dict(r) for r in rows]
    finally:
        await conn.close()
        worker.stop()


@pytest.mark.parametrize("name", SCENARIOS)
def test_each_scenario_raises_the_alerts_its_events_imply(
    alerts: list[dict[str, Any]], name: str
) -> None:
    assert missing(alerts, name) == []


@pytest.fixture(scope="module")
async def incidents(
    module_namespace: Namespace, alerts: list[dict[str, Any]]
) -> AsyncIterator[list[dict[str, Any]]]:
    """Every incident ``ioc incidents`` made of the four scenarios' alerts (its last
    correlation transition each, retracted ones aside)."""
    settings = module_namespace.settings
    process = await asyncio.to_thread(start_incidents, module_namespace)
    try:
        # Wait until ioc.incidents stops growing (Faust commits every few seconds).
        topic = settings.topic(INCIDENTS_TOPIC)
        await eventually(
            lambda: records_in(settings, topic),
            until=Steady(8, holds=lambda count: count > 0),
            within_s=120,
            interval_s=1,
            what="ioc.incidents to stop growing for 8 s",
        )
        yield list(final_incidents(await incident_events(settings)).values())
    finally:
        process.stop()


def _within(alert: dict[str, Any], scenario: str, from_h: float, to_h: float) -> bool:
    start = start_of(load_scenario(scenario))
    return bool(
        start + timedelta(hours=from_h) <= alert["opened_at"] <= start + timedelta(hours=to_h)
    )


def test_typhoon_gives_a_flooding_incident_in_each_flooded_commune_of_ha_long_and_cam_pha(
    alerts: list[dict[str, Any]], incidents: list[dict[str, Any]]
) -> None:
    flooded = [
        a
        for a in alerts
        if a["rule_id"] in ("traffic-flooding", "school-flooding")
        and _within(a, "typhoon-yagi", 12, 15)
    ]
    communes = {a["commune_id"] for a in flooded}
    assert {a["zone_id"] for a in flooded} == {"halong", "campha"}
    flooding = [i for i in incidents if i["rule_id"] == "flooding"]
    # Each flooded commune has its incident; every flooding alert is in its commune's.
    assert {i["area_id"] for i in flooding} == communes
    for alert in flooded:
        mine = [i for i in flooding if i["area_id"] == alert["commune_id"]]
        assert any(alert["alert_id"] in i["alerts"] for i in mine), alert
    assert len(flooding) >= len(communes) >= 8
    # And a storm incident over each of the two zones, with flooding, closures or
    # landslides and power losses attached.
    storms = {i["area_id"]: i for i in incidents if i["rule_id"] == "storm"}
    assert set(storms) >= {"halong", "campha"}
    by_id = {a["alert_id"]: a for a in alerts}
    for zone in ("halong", "campha"):
        rules = {by_id[a]["rule_id"] for a in storms[zone]["alerts"] if a in by_id}
        assert "security-alarm-power-loss" in rules, (zone, rules)
        assert rules & {"traffic-flooding", "school-flooding"}, (zone, rules)
        assert all(by_id[a]["zone_id"] == zone for a in storms[zone]["alerts"] if a in by_id)


def test_the_pile_up_gives_a_crash_incident_near_quang_yen(
    alerts: list[dict[str, Any]], incidents: list[dict[str, Any]]
) -> None:
    serious = [
        a
        for a in alerts
        if a["rule_id"] == "traffic-crash-serious" and _within(a, "expressway-pileup", 0, 1)
    ]
    assert len(serious) == 1
    crashes = [i for i in incidents if i["rule_id"] == "crash-casualties"]
    assert len(crashes) == 1
    crash = crashes[0]
    assert crash["area_id"] == "quangyen"
    assert crash["severity"] == "critical"
    assert serious[0]["alert_id"] in crash["alerts"]
    by_id = {a["alert_id"]: a for a in alerts}
    joined = {by_id[a]["rule_id"] for a in crash["alerts"]}
    # The crashes and closures that followed joined it.
    assert {"traffic-crash", "traffic-closure"} <= joined, joined


def test_the_carnival_gives_a_crowd_crush_incident_at_bai_chay(
    alerts: list[dict[str, Any]], incidents: list[dict[str, Any]]
) -> None:
    risks = [
        a
        for a in alerts
        if a["rule_id"] == "security-crowd-crush-risk" and _within(a, "halong-carnival", 6, 8)
    ]
    assert len(risks) == 2
    assert {a["commune_id"] for a in risks} == {"bai-chay"}
    crush = [i for i in incidents if i["rule_id"] == "crowd-crush" and i["area_id"] == "bai-chay"]
    assert any({a["alert_id"] for a in risks} <= set(i["alerts"]) for i in crush), crush
    assert all(i["sop"] == "crowd-crush" for i in crush)
