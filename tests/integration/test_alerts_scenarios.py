"""The shipped scenarios raise the alerts their events imply.

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
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest

from ioc.db.registry import load_registry
from simulators.city import build_city
from simulators.engine import SimConfig
from simulators.run import run_simulation
from simulators.scenario import Scenario, load_scenario
from tests.conftest import Namespace
from tests.integration.conftest import start_worker

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


def start_of(scenario: Scenario) -> datetime:
    assert scenario.suggested_start is not None
    return datetime.fromisoformat(str(scenario.suggested_start))


@pytest.fixture(scope="module")
async def alerts(module_namespace: Namespace) -> AsyncIterator[list[dict[str, Any]]]:
    """Every alert the worker stored for the four scenarios, with its entity's places."""
    settings = module_namespace.settings
    city = build_city(ENTITIES, seed=0)
    await load_registry(settings, city)
    expected_total = sum(e.count for expected in EXPECTED.values() for e in expected)
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
            SELECT a.rule_id, a.entity_id, a.opened_at, e.commune_id, e.zone_id
            FROM alert a JOIN entity e ON e.id = a.entity_id
        """

        # The sink writes in batches: wait until the stored alerts cover what is
        # expected and their number has stopped growing.
        rows: list[asyncpg.Record] = []
        steady = 0
        deadline = time.monotonic() + 240
        while steady < 5 and time.monotonic() < deadline:
            await asyncio.sleep(1)
            now = await conn.fetch(query)
            grown = len(now) != len(rows)
            steady = 0 if grown or len(now) < expected_total else steady + 1
            rows = now
        yield [dict(r) for r in rows]
    finally:
        await conn.close()
        worker.stop()


@pytest.mark.parametrize("name", SCENARIOS)
def test_each_scenario_raises_the_alerts_its_events_imply(
    alerts: list[dict[str, Any]], name: str
) -> None:
    scenario = load_scenario(name)
    start = start_of(scenario)
    for expected in EXPECTED[name]:
        at = start + timedelta(hours=expected.at_h)
        found = [
            a
            for a in alerts
            if a["rule_id"] == expected.rule
            and at <= a["opened_at"] <= at + expected.within
            and expected.area in (a["zone_id"], a["commune_id"], "quang-ninh")
        ]
        assert len(found) >= expected.count, (expected, len(found))
