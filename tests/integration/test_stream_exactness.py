"""Exact aggregates whatever the pace: paced vs full speed, lateness, accounting."""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from datetime import timedelta

import orjson

from simulators.engine import SimConfig, Simulation
from simulators.events import SimEvent
from simulators.faults import Faults
from streams.topics import DEADLETTER_TOPIC, raw_topic
from tests.utils.events import T0, Record, flow_value
from tests.utils.eventually import eventually
from tests.utils.kafka import produce, read_all
from tests.utils.namespaces import Namespace, NamespaceFactory
from tests.utils.pipeline import START, produce_events, settle, simulated
from tests.utils.services import Process, start_worker
from tests.utils.truth import database_rows, truth_of


async def test_paced_and_full_speed_feeds_give_identical_minute_rows(
    namespace_factory: NamespaceFactory,
) -> None:
    events = simulated(entities=200, minutes=20)
    assert len(events) > 10_000
    paced, burst = await namespace_factory(), await namespace_factory()
    workers = [start_worker(paced, name="paced"), start_worker(burst, name="burst")]
    try:
        await produce_events(burst, events)
        # Paced: the 20 minutes of event time at 60x, one simulated second at a time.
        first_ms = events[0].time_ms
        began = time.monotonic()
        chunk: list[SimEvent] = []
        for event in events:
            if chunk and event.time_ms != chunk[-1].time_ms:
                await produce_events(paced, chunk)
                chunk = []
                due = began + (event.time_ms - first_ms) / 1000 / 60
                await asyncio.sleep(max(0.0, due - time.monotonic()))
            chunk.append(event)
        await produce_events(paced, chunk)
        await settle(burst, len(events))
        await settle(paced, len(events))
        paced_rows = await database_rows(paced.settings)
        burst_rows = await database_rows(burst.settings)
        assert paced_rows == burst_rows
        assert paced_rows == truth_of(e.value for e in events)
        assert all(w.alive() for w in workers)
    finally:
        for w in workers:
            w.stop()


async def test_late_events_are_dead_lettered_and_in_time_ones_land_in_their_minute(
    namespace: Namespace, worker: Process
) -> None:
    ix = "t-ix-late"

    def at(seconds: int, vehicles: int) -> Record:
        when = T0 + timedelta(seconds=seconds)
        return Record(ix.encode(), flow_value(ix, when, vehicles=vehicles), 0)

    records = [
        at(10, 1),  # minute 0
        at(300, 2),  # minute 5: watermark 5:00
        at(200, 4),  # minute 3, final at 3:00 + 1 min + 2 min = 6:00 > 5:00: in time
        at(130, 8),  # minute 2, final at 5:00 = watermark: late
        at(30, 16),  # minute 0: late
        at(359, 32),  # minute 5
    ]
    await produce(namespace.settings, raw_topic(namespace.settings, "traffic"), records)
    dead = await read_all(namespace.settings, namespace.settings.topic(DEADLETTER_TOPIC), expect=2)
    assert sorted(orjson.loads(m.value)["data"]["vehicles"] for m in dead) == [8, 16]
    assert {dict(m.headers)["ioc_reason"] for m in dead} == {b"late"}
    await settle(namespace, 4)
    rows = await database_rows(namespace.settings)
    vehicles = {b: agg[1] for (_, metric, b), agg in rows.items() if metric == "vehicles"}
    t0 = int(T0.timestamp() * 1000)
    assert vehicles == {t0: 1, t0 + 3 * 60_000: 4, t0 + 5 * 60_000: 34}
    assert worker.total("ioc_events_deadlettered_total") == 2


def malformed(rng: random.Random, good: SimEvent, n: int) -> tuple[str, bytes, bytes]:
    """A broken record of one of several kinds, keyed like ``good``; (domain, key, value)."""
    event = orjson.loads(good.value)
    kind = n % 5
    if kind == 0:
        return good.domain, good.key, b"\x00garbage" + good.value[: rng.randrange(5, 40)]
    if kind == 1:
        del event["subject"]
    elif kind == 2:
        first = next(iter(event["data"]))
        event["data"][first] = "not a number"
    elif kind == 3:
        event["type"] = f"city.{good.domain}.unknown.v1"
    else:
        return good.domain, b"someone-else", good.value
    return good.domain, good.key, orjson.dumps(event)


async def test_every_record_of_100k_with_1pct_malformed_is_accounted_for(
    namespace: Namespace, worker: Process
) -> None:
    rng = random.Random(11)
    pool = simulated(entities=2000, minutes=20)
    good = pool[:99_000]
    bad_at = set(rng.sample(range(len(good)), 1_000))
    records: dict[str, list[Record]] = defaultdict(list)
    for n, event in enumerate(good):
        records[event.domain].append(Record(event.key, event.value, event.time_ms))
        if n in bad_at:
            domain, key, value = malformed(rng, event, n)
            records[domain].append(Record(key, value, event.time_ms))
    produced = sum(len(r) for r in records.values())
    assert produced == 100_000
    for domain, batch in records.items():
        await produce(namespace.settings, raw_topic(namespace.settings, domain), batch)

    eventually(
        lambda: worker.total("ioc_events_consumed_total") >= produced,
        within_s=180,
        interval_s=1,
        what="the worker to consume everything",
    )
    processed = worker.total("ioc_events_processed_total")
    dead = worker.total("ioc_events_deadlettered_total")
    assert processed + dead == produced
    assert (processed, dead) == (99_000, 1_000)
    await settle(namespace, 99_000)
    assert await database_rows(namespace.settings) == truth_of(e.value for e in good)
    letters = await read_all(
        namespace.settings, namespace.settings.topic(DEADLETTER_TOPIC), expect=1000
    )
    assert len(letters) == 1000
    reasons = {dict(m.headers)["ioc_reason"].decode() for m in letters}
    assert reasons == {"not_json", "missing_field", "invalid_field", "unknown_type", "key_mismatch"}


async def test_an_event_delivered_twice_is_counted_once(
    namespace: Namespace, worker: Process
) -> None:
    config = SimConfig(
        start=START, entities=500, seed=5, duration_s=600, faults=Faults(duplicates=0.05)
    )
    events = list(Simulation(config).events())
    unique = {orjson.loads(e.value)["id"]: e for e in events}
    repeats = len(events) - len(unique)
    assert repeats > 500  # the simulator resent about one event in twenty
    await produce_events(namespace, events)
    eventually(
        lambda: worker.total("ioc_events_consumed_total") >= len(events),
        within_s=120,
        interval_s=1,
        what="the worker to consume everything",
    )
    assert worker.total("ioc_events_processed_total") == len(unique)
    assert worker.total("ioc_events_duplicate_total") == repeats
    await settle(namespace, len(unique))
    assert await database_rows(namespace.settings) == truth_of(e.value for e in unique.values())
