"""The incident tier (``ioc incidents``, Faust) on a fixed input of alert transitions:
a kill -9 mid-run and a rebalance between two workers mid-run give the incidents of an
undisturbed run, and those are the incidents the correlation rules make of the input
computed directly (``streams.incidents.correlate``, no Kafka, no Faust). The same holds
for the places' alerts and incidents per hour as the area activity sink stores them
(``area_activity_hour``), which also equal the counts made straight from the input.

The input is a storm of alerts over a 200-entity city: 600 alerts of the rules the
shipped correlation rules name, opened over four hours at random places and resolved
5-90 minutes later (a tenth never), then one last unrelated alert in every commune that
has a road sensor, so that most places' own clocks reach the end; the others close
their incidents by the ticks of the worker that holds them, whose clock is the latest
event time it has seen. Forecasts ride along: some alerts are announced (``provisional``)
a minute before they open, and some forecasts are retracted and never open.
"""

from __future__ import annotations

import asyncio
import random
import time
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from city.model import build_city
from streams.alerts import load_rules
from streams.alerts.transitions import AlertState, AlertTransition, alert_id, transition
from streams.incidents.activity import HourCount, PlaceActivity
from streams.incidents.correlate import MINUTE_MS, Place, fact_of
from streams.incidents.events import OPERATORS_SOURCE, incident_event
from streams.incidents.rules import load_correlation_rules
from streams.incidents.store import IncidentSink
from streams.topics import ALERTS_TOPIC, AREA_ACTIVITY_TOPIC, INCIDENTS_TOPIC
from tests.utils.events import Record
from tests.utils.eventually import Steady, eventually
from tests.utils.incident_tier import (
    WHAT,
    ActivityRows,
    activity_sink,
    counted_activity,
    final_incidents,
    incident_events,
    published_activity,
    start_incidents,
    stored_activity,
)
from tests.utils.kafka import produce, records_in
from tests.utils.namespaces import Namespace, NamespaceFactory

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


def forecasts(transitions: list[AlertTransition], seed: int = 7) -> list[AlertTransition]:
    """Forecasts for the input: a ``provisional`` a minute before some alerts open, and
    alerts of the input's rules and entities that are only ever forecast, then
    retracted."""
    rng = random.Random(seed)
    rules = {r.id: r for r in load_rules()}
    opens = [t for t in transitions if t.state == "open"]
    known = {t.alert_id for t in transitions}
    out = [
        t.model_copy(
            update={"state": "provisional", "updated_at": t.opened_at - timedelta(minutes=1)}
        )
        for t in rng.sample(opens, 40)
    ]
    for t in rng.sample(opens, 20):
        opened = _ms(t.opened_at + timedelta(minutes=7))
        made = alert_id(rule_id=t.rule_id, entity_id=t.entity_id, opened_minute_ms=opened)
        if made in known:
            continue
        steps: list[tuple[AlertState, int]] = [
            ("provisional", opened - MINUTE_MS),
            ("retract", opened),
        ]
        out += [
            transition(
                rules[t.rule_id],
                alert_id=made,
                entity_id=t.entity_id,
                state=state,
                opened_ms=opened,
                since_ms=opened,
                at_ms=at,
                values={},
            ).model_copy(update={"commune_id": t.commune_id, "zone_id": t.zone_id})
            for state, at in steps
        ]
    return out


def expected(
    transitions: list[AlertTransition], forecast: list[AlertTransition]
) -> tuple[dict[str, dict[str, Any]], ActivityRows]:
    """What the correlation rules make of the input, and the places' hourly counts,
    computed directly (as the agents do, without Kafka or Faust)."""
    rules = load_correlation_rules()
    places: dict[str, Place] = {}
    hours: dict[bytes, Any] = {}
    last: dict[str, dict[str, Any]] = {}
    counts: list[HourCount] = []

    def settle(counting: PlaceActivity) -> None:
        made, writes = counting.settle()
        counts.extend(made)
        for key, value in writes.items():
            if value is None:
                del hours[key]
            else:
                hours[key] = value

    for t in sorted([*transitions, *forecast], key=lambda t: (t.updated_at, t.alert_id)):
        data = t.model_dump(mode="json")
        fact = fact_of(data)
        assert fact is not None or t in forecast
        for level in ("commune", "zone"):
            area = data[f"{level}_id"]
            counting = PlaceActivity(area, level, hours.get)
            counting.take_alert(data)
            if fact is not None:
                place = places.setdefault(area, Place(area, level))
                place.take(fact, at_ms=_ms(t.updated_at))
                out = place.step([r for r in rules if r.level == level])
                for made in out:
                    last[made.incident_id] = made.model_dump()
                counting.take_step(place.emitted, out)
            settle(counting)
    # Then the workers' ticks: every place with an open incident hears the clock.
    end = max(_ms(t.updated_at) for t in transitions)
    for place in places.values():
        counting = PlaceActivity(place.area_id, place.level, hours.get)
        out = place.step([r for r in rules if r.level == place.level], clock_ms=end)
        for made in out:
            last[made.incident_id] = made.model_dump()
        counting.take_step(place.emitted, out)
        settle(counting)
    incidents = {
        i: {**{k: d[k] for k in WHAT}, "closed": d["state"] == "close"}
        for i, d in last.items()
        if d["state"] != "retract"
    }
    return incidents, published_activity(counts)


def _records(transitions: list[AlertTransition]) -> list[Record]:
    return [
        Record(key=t.entity_id.encode(), value=t.to_json(), time_ms=_ms(t.updated_at))
        for t in transitions
    ]


async def _settled(namespace: Namespace, *, quiet_s: float = 8, within_s: float = 150) -> int:
    """Wait until the namespace's ioc.incidents has stopped growing for ``quiet_s``."""
    topic = namespace.settings.topic(INCIDENTS_TOPIC)
    count: int = await eventually(
        lambda: records_in(namespace.settings, topic),
        until=Steady(quiet_s, holds=lambda count: count > 0),
        within_s=within_s,
        interval_s=1,
        what=f"{namespace.settings.namespace}: ioc.incidents to stop growing for {quiet_s} s",
    )
    return count


async def _final(
    namespace: Namespace, want: dict[str, tuple[Any, ...]], *, within_s: float = 90
) -> dict[str, dict[str, Any]]:
    """The namespace's incidents once they equal ``want`` or ioc.incidents has stopped
    growing with the time left (a restarted worker first waits for the killed one's
    session to expire, then recovers its tables): the caller compares them."""
    topic = namespace.settings.topic(INCIDENTS_TOPIC)
    deadline = time.monotonic() + within_s
    steady = Steady(8, holds=lambda count: count > 0)

    async def settled_incidents() -> dict[str, dict[str, Any]] | None:
        if not steady(await records_in(namespace.settings, topic)):
            return None
        return final_incidents(await incident_events(namespace.settings))

    got: dict[str, dict[str, Any]] = await eventually(
        settled_incidents,
        until=lambda got: (
            got is not None and (_comparable(got) == want or time.monotonic() > deadline)
        ),
        within_s=within_s + 150,
        interval_s=1,
        what=f"{namespace.settings.namespace}: ioc.incidents to settle",
    )
    return got


def _comparable(incidents: dict[str, dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    return {i: tuple(str(d[k]) for k in (*WHAT, "closed")) for i, d in incidents.items()}


async def test_kill9_and_a_rebalance_give_the_incidents_of_an_undisturbed_run(
    namespace_factory: NamespaceFactory,
) -> None:
    transitions = storm()
    forecast = forecasts(transitions)
    truth, derived_activity = expected(transitions, forecast)
    # The hourly counts derived as the agents do equal those counted straight from the
    # input (retracted forecasts never count; forecast alerts once, when they open).
    activity = counted_activity([*transitions, *forecast], truth)
    assert derived_activity == {row: n for row, n in activity.items() if any(n)}
    # Each incident counts once, at its place; each alert in its commune and its zone.
    assert sum(n[1] for n in activity.values()) == len(truth)
    assert sum(n[0] for n in activity.values()) == 2 * len({t.alert_id for t in transitions})
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
    records = _records(sorted([*transitions, *forecast], key=lambda t: (t.updated_at, t.alert_id)))
    half = len(records) // 2
    calm, killed, shared = [await namespace_factory() for _ in range(3)]
    sinks = AsyncExitStack()
    stores = [
        await sinks.enter_async_context(activity_sink(ns.settings)) for ns in (calm, killed, shared)
    ]

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
        await eventually(
            lambda: records_in(killed.settings, topic),
            until=lambda count: count >= 20,
            within_s=60,
            what="the worker to be killed to publish 20 incident records first",
        )
        first.kill9()
        two = await asyncio.to_thread(start_incidents, shared, name="two")
        processes.append(two)
        for ns in (calm, killed, shared):
            await produce(ns.settings, ns.settings.topic(ALERTS_TOPIC), records[half:])
        again = await asyncio.to_thread(start_incidents, killed, name="killed-again")
        processes.append(again)
        one.stop()
        want = _comparable(truth)
        # The three settle side by side: each waits for its topic to be quiet for 8 s.
        labels = ("undisturbed", "killed", "rebalanced")
        finals = await asyncio.gather(*(_final(ns, want) for ns in (calm, killed, shared)))
        runs = dict(zip(labels, finals, strict=True))
        stored = {
            label: await stored_activity(ns.settings, store)
            for label, ns, store in zip(labels, (calm, killed, shared), stores, strict=True)
        }
    finally:
        for process in processes:
            process.stop()
        await sinks.aclose()
    for label, got in runs.items():
        have = _comparable(got)
        wrong = {
            i: (have.get(i), want.get(i))
            for i in set(have) | set(want)
            if have.get(i) != want.get(i)
        }
        assert not wrong, (label, len(wrong), sorted(wrong.items())[:3])
    for label, rows in stored.items():
        differ = {
            row: (rows.get(row), derived_activity.get(row))
            for row in set(rows) | set(derived_activity)
            if rows.get(row) != derived_activity.get(row)
        }
        assert not differ, (label, len(differ), sorted(differ.items())[:3])


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

    async def mine() -> dict[str, dict[str, Any]]:
        found = final_incidents(await incident_events(namespace.settings))
        return {i: d for i, d in found.items() if d["area_id"] == commune}

    found: dict[str, dict[str, Any]] = await eventually(
        mine,
        until=lambda mine: (
            len(mine) >= count and (not closed or any(d["closed"] for d in mine.values()))
        ),
        within_s=60,
        interval_s=1,
        what=f"{commune}: {count} incidents" + (", one of them closed" if closed else ""),
    )
    return found


async def test_the_incident_sink_stores_the_newest_counts_of_each_hour(
    namespace: Namespace,
) -> None:
    """The incident sink, as the worker's sink process runs it, starts the area activity
    sink: a row takes the record of the highest version, whatever the order the records
    come in, a repeat changes nothing, and a record that is not counts is skipped."""
    settings = namespace.settings
    hour = _ms(START)

    def count(area: str, version: int, alerts: int, incidents: int = 0) -> Record:
        made = HourCount(
            area_id=area,
            level="commune",
            hour_ms=hour,
            alerts=alerts,
            incidents=incidents,
            version=version,
        )
        return Record(key=area.encode(), value=made.to_json(), time_ms=hour)

    sink = IncidentSink(settings)
    await sink.start()
    try:
        running = sink.activity
        topic = settings.topic(AREA_ACTIVITY_TOPIC)
        # One batch: the newest version wins within it.
        await produce(settings, topic, [count("bai-chay", 2, 3, 1), count("bai-chay", 1, 2)])
        first = await stored_activity(settings, running)
        # Later batches: an older version and a malformed record change nothing, the
        # same version again is a repeat, a newer one replaces the row.
        await produce(settings, topic, [count("bai-chay", 1, 9)])
        await produce(settings, topic, [Record(key=b"x", value=b"{}", time_ms=hour)])
        await produce(settings, topic, [count("hong-gai", 1, 1), count("bai-chay", 2, 3, 1)])
        second = await stored_activity(settings, running, skipped={"repeat", "invalid_field"})
        await produce(settings, topic, [count("bai-chay", 3, 4, 1)])
        third = await stored_activity(settings, running, skipped={"repeat", "invalid_field"})
    finally:
        await sink.stop()
    assert first == {("bai-chay", hour): (3, 1)}
    assert second == {("bai-chay", hour): (3, 1), ("hong-gai", hour): (1, 0)}
    assert third == {("bai-chay", hour): (4, 1), ("hong-gai", hour): (1, 0)}
    assert running.skipped["invalid_field"] == 1
