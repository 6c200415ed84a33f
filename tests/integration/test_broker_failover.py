"""When Kafka itself fails: a three-broker cluster (replication 3, min.insync.replicas 2)
of the test's own, each broker killed with -9 in turn while events flow, and the API's
publish path during a broker kill.

The bounded version for CI: a few minutes of simulated city paced so the kills fall
mid-stream. The whole of it, with the throughput dip and the time to recover, is
``benchmarks/bench_broker_failover.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest

from ioc.settings import Settings
from simulators.clock import SimClock
from simulators.engine import SimConfig, Simulation
from simulators.producer import produce
from streams.sender import ProduceStats, make_producer
from streams.topics import ALERTS_TOPIC, DEADLETTER_TOPIC, raw_topic
from tests.utils.apikeys import auth
from tests.utils.cluster import Cluster, kafka_cluster
from tests.utils.events import T0
from tests.utils.eventually import Steady, eventually
from tests.utils.kafka import read_all, records_in
from tests.utils.namespaces import Namespace, drop_namespace, new_namespace
from tests.utils.pipeline import START, settle
from tests.utils.services import start_api, start_worker
from tests.utils.truth import database_rows, events_in_database, truth_of

pytestmark = pytest.mark.timeout(600)

#: A fixed input: 300 entities for 7 simulated minutes, about 12,000 events.
CITY = SimConfig(start=START, entities=300, seed=19, duration_s=7 * 60)
#: Paced at 4x: 105 s of sending, so the three kills (each with its restart and the
#: replicas' catching up, 15-30 s on a 2-core machine) fall mid-stream.
SPEED = 4.0


@pytest.fixture(scope="module")
def cluster(infra: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with kafka_cluster(infra, tmp_path_factory.mktemp("cluster")) as running:
        yield running


@pytest.fixture
async def on_cluster(cluster: Cluster) -> AsyncIterator[list[Namespace]]:
    """Namespaces made on the cluster by ``add``; dropped after the test."""
    made: list[Namespace] = []
    yield made
    for namespace in made:
        await drop_namespace(namespace.settings)


async def add(made: list[Namespace], cluster: Cluster, logs: pytest.TempPathFactory) -> Namespace:
    namespace = await new_namespace(cluster.settings, logs)
    namespace.env.update(cluster.env)
    made.append(namespace)
    return namespace


async def feed(namespace: Namespace, clock: SimClock) -> ProduceStats:
    """The fixed input through the simulator's own producer path, released by ``clock``
    (its speed may change while it runs)."""
    settings = namespace.settings
    topics = {domain: raw_topic(settings, domain) for domain in CITY.domains}
    producer = make_producer(settings)
    await producer.start()
    try:
        return await produce(producer, topics, Simulation(CITY).batches(), clock=clock)
    finally:
        await producer.stop()


async def alert_transitions(
    settings: Settings,
) -> tuple[set[tuple[bytes, bytes]], dict[bytes, Any]]:
    """Every distinct transition on the namespace's alerts topic, and each alert's last."""
    topic = settings.topic(ALERTS_TOPIC)
    records = await read_all(settings, topic, expect=await records_in(settings, topic))
    records.sort(key=lambda r: (r.partition, r.offset))
    distinct = {(r.key, r.value) for r in records}
    last = {r.key: orjson.loads(r.value) for r in records}
    return distinct, last


async def test_each_broker_killed_in_turn_mid_stream_loses_and_repeats_nothing(
    cluster: Cluster, on_cluster: list[Namespace], tmp_path_factory: pytest.TempPathFactory
) -> None:
    events = list(Simulation(CITY).events())
    truth = truth_of(e.value for e in events)

    # The same input, undisturbed, for the alert transitions to compare with.
    calm = await add(on_cluster, cluster, tmp_path_factory)
    worker = start_worker(calm, name="calm")
    try:
        sent = await feed(calm, SimClock(CITY.start, speed=None))
        assert (sent.total, sent.total_errors) == (len(events), 0)
        await settle(calm, len(events), within_s=120)
    finally:
        worker.stop()
    expected_alerts = await alert_transitions(calm.settings)

    hit = await add(on_cluster, cluster, tmp_path_factory)
    worker = start_worker(hit, name="worker")
    try:
        clock = SimClock(CITY.start, speed=SPEED)
        feeding = asyncio.create_task(feed(hit, clock))
        outages = []
        for node in cluster.broker.nodes:
            await asyncio.sleep(4)
            assert not feeding.done(), "the input ended before every broker was killed"
            node.kill()
            down_at = time.monotonic()
            await asyncio.sleep(3)
            await asyncio.to_thread(node.start)
            outages.append(time.monotonic() - down_at)
            # Back in every in-sync replica set (the consumer offsets' too) before the next
            # kill: two brokers down at once is the case where writes must stop.
            await eventually(
                lambda: cluster.in_sync(),
                within_s=90,
                what=f"node {node.node_id}'s replicas to be in sync again",
            )
        # Every broker is back: the rest of the input goes unpaced (the kills fell
        # mid-stream, which is what the pacing was for).
        clock.speed = None
        sent = await feeding
        assert max(outages) < hit.settings.streams.allowed_lateness_s, outages
        assert (sent.total, sent.total_errors) == (len(events), 0)
        await settle(hit, len(events), within_s=180)
        assert await database_rows(hit.settings) == truth
        assert worker.alive(), worker.tail()
    finally:
        worker.stop()
    assert await records_in(hit.settings, hit.settings.topic(DEADLETTER_TOPIC)) == 0
    distinct, last = await alert_transitions(hit.settings)
    assert expected_alerts[0], "the input raises no alert; choose another seed"
    assert (distinct, last) == expected_alerts


def flow(ident: int) -> dict[str, Any]:
    """One traffic reading of an entity of its own, so its count in the database is the
    number of times it was counted."""
    return {
        "specversion": "1.0",
        "id": f"failover-{ident}",
        "source": "/tests/failover",
        "type": "city.traffic.flow.v1",
        "time": (T0 + timedelta(seconds=ident % 50)).isoformat(),
        "subject": f"t-ix-failover-{ident}",
        "data": {"vehicles": 1, "avg_speed_kmh": 40.0, "occupancy_pct": 20.0, "interval_s": 60},
    }


async def test_publishing_during_a_broker_kill_answers_202_or_503_and_202_counts_once(
    cluster: Cluster, on_cluster: list[Namespace], tmp_path_factory: pytest.TempPathFactory
) -> None:
    namespace = await add(on_cluster, cluster, tmp_path_factory)
    worker = start_worker(namespace)
    api, base = start_api(
        namespace,
        env={
            "IOC_API__RATE_PER_S": "10000",
            "IOC_API__RATE_BURST": "10000",
            "IOC_API__PUBLISH_TIMEOUT_S": "3",
        },
    )
    statuses: dict[int, int] = {}
    retry_after: set[str] = set()
    victim = cluster.broker.node(2)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:

            async def post(ident: int) -> None:
                answer = await client.post(
                    "/v1/events", json=flow(ident), headers=auth("publish:traffic")
                )
                assert answer.status_code in (202, 503), answer.text
                statuses[ident] = answer.status_code
                if answer.status_code == 503:
                    retry_after.add(answer.headers["Retry-After"])

            ident = 0
            began = time.monotonic()
            killed = restarted = False
            while time.monotonic() - began < 25 or not restarted:
                await asyncio.gather(*(post(ident + n) for n in range(10)))
                ident += 10
                if not killed and time.monotonic() - began > 3:
                    victim.kill()
                    killed = True
                elif killed and not restarted and time.monotonic() - began > 15:
                    await asyncio.to_thread(victim.start)
                    restarted = True
        accepted = sorted(i for i, status in statuses.items() if status == 202)
        assert accepted, "no event accepted"
        assert all(value.isdigit() for value in retry_after)
        # Every accepted event counted exactly once; a refused one at most once (Kafka may
        # still have taken it: its retry would be counted once, by its id).
        # Until the count stands still: 503'd events Kafka took late may still come in.
        await eventually(
            lambda: events_in_database(namespace.settings),
            until=Steady(3.0, holds=lambda count: count >= len(accepted)),
            within_s=120,
            what=f"the database to hold at least the {len(accepted)} accepted events",
        )
        counts = {
            entity: agg[0]
            for (entity, metric, _), agg in (await database_rows(namespace.settings)).items()
            if metric == "vehicles"
        }
        assert all(counts.get(f"t-ix-failover-{i}") == 1 for i in accepted), {
            i: counts.get(f"t-ix-failover-{i}")
            for i in accepted
            if counts.get(f"t-ix-failover-{i}") != 1
        }
        assert max(counts.values()) == 1
        print(
            f"{len(accepted)} of {len(statuses)} accepted, "
            f"{len(statuses) - len(accepted)} answered 503 (Retry-After {retry_after})"
        )
    finally:
        api.stop()
        worker.stop()
