"""The incident tier (``ioc incidents``, Faust) on a fixed input of alert transitions:
a kill -9 mid-run and a rebalance between two workers mid-run give the incidents of an
undisturbed run, and those are the incidents the correlation rules make of the input
computed directly (``streams.incidents.correlate``, no Kafka, no Faust).

The input is a storm of alerts over a 200-entity city: 600 alerts of the rules the
shipped correlation rules name, opened over four hours at random places and resolved
5-90 minutes later (a tenth never), then one last unrelated alert in every commune that
has a road sensor, so that most places' own clocks reach the end; the others close
their incidents by the ticks of the worker that holds them, whose clock is the latest
event time it has seen.
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from simulators.city import build_city
from streams.alerts import load_rules
from streams.alerts.transitions import AlertTransition, alert_id, transition
from streams.incidents.correlate import Place, fact_of
from streams.incidents.events import OPERATORS_SOURCE, incident_event
from streams.incidents.rules import load_correlation_rules
from streams.topics import ALERTS_TOPIC, INCIDENTS_TOPIC
from tests.conftest import Namespace, NamespaceFactory
from tests.utils.events import Record
from tests.utils.incident_tier import WHAT, final_incidents, incident_events, start_incidents
from tests.utils.kafka import produce, records_in

pytestmark = pytest.mark.timeout(420)

START = datetime(2024, 9, 7, 5, 0, tzinfo=UTC)
STORM_RULES = (
    "traffic-flooding",
    "school-flooding",
    "traffic-closure",
    "traffic-landslide",
    "security-alarm-power-loss",
    "hospital-triage-1",
    "traffic-crash-serious",
    "traffic-crash",
    "security-crowd-crush-risk",
    "traffic-sensor-silent",
)


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def storm(seed: int = 7, alerts: int = 600) -> list[AlertTransition]:
    """The fixed input: each alert's open and (mostly) resolve, in event-time order."""
    rng = random.Random(seed)
    city = build_city(200, seed=0)
    rules = {r.id: r for r in load_rules()}
    out: list[AlertTransition] = []

    def add(rule_id: str, entity: Any, opened: datetime, resolved: datetime | None) -> None:
        rule = rules[rule_id]
        made = alert_id(rule_id=rule_id, entity_id=entity.id, opened_minute_ms=_ms(opened))
        place = {"commune_id": entity.commune, "zone_id": entity.zone}
        common = {
            "alert_id": made,
            "entity_id": entity.id,
            "opened_ms": _ms(opened),
            "since_ms": _ms(opened),
            "values": {},
        }
        out.append(
            transition(rule, state="open", at_ms=_ms(opened), **common).model_copy(update=place)
        )
        if resolved is not None:
            out.append(
                transition(rule, state="resolve", at_ms=_ms(resolved), **common).model_copy(
                    update=place
                )
            )

    for _ in range(alerts):
        rule_id = rng.choice(STORM_RULES)
        entity = rng.choice(city.in_domain(rules[rule_id].domain))
        opened = START + timedelta(minutes=rng.randrange(0, 240))
        lasts = timedelta(minutes=rng.randrange(5, 90))
        add(rule_id, entity, opened, None if rng.random() < 0.1 else opened + lasts)
    end = START + timedelta(hours=8)
    for commune in city.communes:
        here = [e for e in city.in_domain("traffic") if e.commune == commune.id]
        if here:
            add("traffic-roadworks", here[0], end, end + timedelta(minutes=1))
    return sorted(out, key=lambda t: (t.updated_at, t.alert_id))


def expected(transitions: list[AlertTransition]) -> dict[str, dict[str, Any]]:
    """What the correlation rules make of the input, computed directly."""
    rules = load_correlation_rules()
    places: dict[str, Place] = {}
    last: dict[str, dict[str, Any]] = {}
    for t in transitions:
        data = t.model_dump(mode="json")
        fact = fact_of(data)
        assert fact is not None
        for level in ("commune", "zone"):
            area = data[f"{level}_id"]
            place = places.setdefault(area, Place(area, level))
            place.take(fact, at_ms=_ms(t.updated_at))
            for made in place.step([r for r in rules if r.level == level]):
                last[made.incident_id] = made.model_dump()
    # Then the workers' ticks: every place with an open incident hears the clock.
    end = max(_ms(t.updated_at) for t in transitions)
    for place in places.values():
        for made in place.step([r for r in rules if r.level == place.level], clock_ms=end):
            last[made.incident_id] = made.model_dump()
    return {
        i: {**{k: d[k] for k in WHAT}, "closed": d["state"] == "close"}
        for i, d in last.items()
        if d["state"] != "retract"
    }


def _records(transitions: list[AlertTransition]) -> list[Record]:
    return [
        Record(key=t.entity_id.encode(), value=t.to_json(), time_ms=_ms(t.updated_at))
        for t in transitions
    ]


async def _settled(namespace: Namespace, *, quiet_s: float = 8, within_s: float = 150) -> int:
    """Wait until the namespace's ioc.incidents has stopped growing for ``quiet_s``."""
    topic = namespace.settings.topic(INCIDENTS_TOPIC)
    deadline = time.monotonic() + within_s
    count, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now = await records_in(namespace.settings, topic)
        if now != count:
            count, since = now, time.monotonic()
        elif count > 0 and time.monotonic() - since >= quiet_s:
            return count
        await asyncio.sleep(1)
    raise AssertionError(f"{namespace.settings.namespace}: ioc.incidents never settled")


async def _final(
    namespace: Namespace, want: dict[str, tuple[Any, ...]], *, within_s: float = 90
) -> dict[str, dict[str, Any]]:
    """The namespace's incidents once they equal ``want`` or ioc.incidents has stopped
    growing with the time left (a restarted worker first waits for the killed one's
    session to expire, then recovers its tables)."""
    deadline = time.monotonic() + within_s
    while True:
        count = await _settled(namespace, within_s=max(deadline - time.monotonic(), 10))
        got = final_incidents(await incident_events(namespace.settings))
        if _comparable(got) == want or time.monotonic() > deadline:
            return got
        while (
            await records_in(namespace.settings, namespace.settings.topic(INCIDENTS_TOPIC)) == count
        ):
            if time.monotonic() > deadline:
                return got
            await asyncio.sleep(1)


def _comparable(incidents: dict[str, dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    return {i: tuple(str(d[k]) for k in (*WHAT, "closed")) for i, d in incidents.items()}


async def test_kill9_and_a_rebalance_give_the_incidents_of_an_undisturbed_run(
    namespace_factory: NamespaceFactory,
) -> None:
    transitions = storm()
    truth = expected(transitions)
    # The storm makes incidents of most rules (the input is random, the rules are not).
    assert len(truth) >= 20
    assert {d["rule_id"] for d in truth.values()} >= {
        "flooding",
        "landslide",
        "storm",
        "crash-casualties",
        "crowd-crush",
        "mass-admissions",
    }
    records = _records(transitions)
    half = len(records) // 2
    calm, killed, shared = [await namespace_factory() for _ in range(3)]

    # Undisturbed: one worker, the whole input.
    steady = await asyncio.to_thread(start_incidents, calm, name="calm")
    # Killed: kill -9 once it has published incidents of the first half, then restarted.
    first = await asyncio.to_thread(start_incidents, killed, name="killed")
    # Rebalanced: a second worker joins the group once the first is busy, then the first
    # leaves, so partitions move twice while processing goes on.
    one = await asyncio.to_thread(start_incidents, shared, name="one")
    processes = [steady, first, one]
    try:
        for ns in (calm, killed, shared):
            await produce(ns.settings, ns.settings.topic(ALERTS_TOPIC), records[:half])
        topic = killed.settings.topic(INCIDENTS_TOPIC)
        for _ in range(300):
            if await records_in(killed.settings, topic) >= 20:
                break
            await asyncio.sleep(0.2)
        first.kill9()
        two = await asyncio.to_thread(start_incidents, shared, name="two")
        processes.append(two)
        for ns in (calm, killed, shared):
            await produce(ns.settings, ns.settings.topic(ALERTS_TOPIC), records[half:])
        again = await asyncio.to_thread(start_incidents, killed, name="killed-again")
        processes.append(again)
        one.stop()
        want = _comparable(truth)
        runs = {
            label: await _final(ns, want)
            for label, ns in (("undisturbed", calm), ("killed", killed), ("rebalanced", shared))
        }
    finally:
        for process in processes:
            process.stop()
    for label, got in runs.items():
        have = _comparable(got)
        wrong = {
            i: (have.get(i), want.get(i))
            for i in set(have) | set(want)
            if have.get(i) != want.get(i)
        }
        assert not wrong, (label, len(wrong), sorted(wrong.items())[:3])


async def test_an_incident_an_operator_resolved_takes_no_new_alerts(namespace: Namespace) -> None:
    """After an operator resolves an incident (the API publishes it on ioc.incidents), a
    new alert of the rule in that place opens a new incident instead of joining it."""
    city = build_city(200, seed=0)
    rules = {r.id: r for r in load_rules()}
    road = next(e for e in city.in_domain("traffic") if e.kind == "intersection")
    place = {"commune_id": road.commune, "zone_id": road.zone}

    def flooded(at: datetime) -> Record:
        made = transition(
            rules["traffic-flooding"],
            alert_id=alert_id(
                rule_id="traffic-flooding", entity_id=road.id, opened_minute_ms=_ms(at)
            ),
            entity_id=road.id,
            state="open",
            opened_ms=_ms(at),
            since_ms=_ms(at),
            at_ms=_ms(at),
            values={},
        ).model_copy(update=place)
        return Record(key=road.id.encode(), value=made.to_json(), time_ms=_ms(at))

    settings = namespace.settings
    process = await asyncio.to_thread(start_incidents, namespace)
    try:
        await produce(settings, settings.topic(ALERTS_TOPIC), [flooded(START)])
        first = await _commune_incidents(namespace, road.commune, count=1)
        (resolved,) = first
        by_hand = incident_event(
            {
                "incident_id": resolved,
                "area_id": road.commune,
                "state": "resolve",
                "updated_at": datetime.now(UTC).isoformat(),
                "by": "duty-officer",
            },
            source=OPERATORS_SOURCE,
        )
        await produce(
            settings,
            settings.topic(INCIDENTS_TOPIC),
            [Record(key=road.commune.encode(), value=by_hand, time_ms=_ms(START))],
        )
        # The tier closes it for correlation (its close shows it took the resolution)
        # before the next alert comes.
        closed = await _commune_incidents(namespace, road.commune, count=1, closed=True)
        assert closed[resolved]["closed"] is True
        await produce(
            settings, settings.topic(ALERTS_TOPIC), [flooded(START + timedelta(minutes=10))]
        )
        both = await _commune_incidents(namespace, road.commune, count=2)
    finally:
        process.stop()
    assert resolved in both
    assert both[resolved]["closed"] is True
    assert len(both[resolved]["alerts"]) == 1
    (new,) = [d for i, d in both.items() if i != resolved]
    assert new["closed"] is False
    assert len(new["alerts"]) == 1


async def _commune_incidents(
    namespace: Namespace, commune: str, *, count: int, closed: bool = False
) -> dict[str, dict[str, Any]]:
    """The commune's incidents once there are ``count`` of them (and, with ``closed``,
    one of them has closed)."""
    for _ in range(60):
        found = final_incidents(await incident_events(namespace.settings))
        mine = {i: d for i, d in found.items() if d["area_id"] == commune}
        if len(mine) >= count and (not closed or any(d["closed"] for d in mine.values())):
            return mine
        await asyncio.sleep(1)
    raise AssertionError(f"{commune}: not {count} incidents: {mine}")
