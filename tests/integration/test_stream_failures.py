"""Exact aggregates through failures: the worker killed with -9, PostgreSQL down for 30 s,
a partition handed to another worker."""

from __future__ import annotations

import asyncio
import shutil
import time
from datetime import timedelta
from pathlib import Path

import orjson

from ioc.db.migrate import migrate
from ioc.infra import PostgresCluster
from streams.topics import DEADLETTER_TOPIC, raw_topic
from tests.utils.events import T0, Record, flow_value
from tests.utils.eventually import eventually
from tests.utils.kafka import produce, read_all
from tests.utils.namespaces import Namespace
from tests.utils.pipeline import produce_events, settle, simulated
from tests.utils.services import free_port, start_worker
from tests.utils.truth import database_rows, events_in_database, truth_of


async def test_kill_9_mid_run_then_restart_gives_exact_aggregates(namespace: Namespace) -> None:
    events = simulated(entities=2000, minutes=36, seed=5)[:200_000]
    assert len(events) == 200_000
    first = start_worker(namespace, name="worker-1")
    await produce_events(namespace, events)
    await settle(namespace, 60_000, within_s=120)
    first.kill9()
    killed_at = await events_in_database(namespace.settings)
    assert killed_at < 200_000, "the run ended before the kill; make it longer"

    second = start_worker(namespace, name="worker-2")
    try:
        await settle(namespace, 200_000, within_s=300)
        assert await database_rows(namespace.settings) == truth_of(e.value for e in events)
        # The restarted worker re-read what the first had not committed; none of it
        # counted twice (the equality above), and it says how much it skipped.
        assert second.total("ioc_events_consumed_total") > 0
        assert second.alive()
    finally:
        second.stop()


async def test_database_down_for_30_s_mid_run_loses_nothing(
    namespace: Namespace, tmp_path: Path
) -> None:
    # A PostgreSQL of this test's own, so stopping it disturbs no other test.
    port = free_port()
    state = tmp_path / "state"
    own = namespace.settings.model_copy(
        update={
            "state_dir": state,
            "database": namespace.settings.database.model_copy(update={"local_port": port}),
        }
    )
    cluster = PostgresCluster(own)
    cluster.up()
    try:
        await migrate(own)
        events = simulated(entities=1000, minutes=40, seed=9)
        worker = start_worker(
            namespace,
            env={"IOC_DATABASE__LOCAL_PORT": str(port), "IOC_STATE_DIR": str(state)},
        )
        try:
            await produce_events(namespace, events)
            await settle(namespace, 5_000, dsn=own.dsn, within_s=120)
            cluster.down()
            down_at = time.monotonic()
            # The sink notices at its next write; on a loaded machine the worker may take a
            # while to give it one. The database stays down 30 s, and at least until then.
            eventually(
                lambda: worker.total("ioc_sink_retries_total") > 0,
                within_s=90,
                what="the sink to notice the outage",
            )
            # Not a wait for something: the outage lasts its 30 s whatever the worker does.
            await asyncio.sleep(max(0.0, 30 - (time.monotonic() - down_at)))
            assert worker.alive(), worker.tail()
            cluster.up()
            await settle(namespace, len(events), within_s=240, dsn=own.dsn)
            assert await database_rows(own, own.dsn) == truth_of(e.value for e in events)
            assert worker.alive()
        finally:
            worker.stop()
    finally:
        cluster.down()
        shutil.rmtree(cluster.home, ignore_errors=True)


async def test_the_next_owner_of_a_partition_keeps_its_watermark(namespace: Namespace) -> None:
    """The watermark travels with the committed offset (commit metadata): an event late
    for the worker that stopped is late for the one that takes over, and one in time is
    applied."""
    ix = "t-ix-handover"

    def at(seconds: int, vehicles: int) -> Record:
        when = T0 + timedelta(seconds=seconds)
        return Record(ix.encode(), flow_value(ix, when, vehicles=vehicles), 0)

    topic = raw_topic(namespace.settings, "traffic")
    first = start_worker(namespace, name="worker-1")
    try:
        await produce(namespace.settings, topic, [at(10, 1), at(300, 2)])  # watermark 5:00
        await settle(namespace, 2)
    finally:
        first.stop()
    second = start_worker(namespace, name="worker-2")
    try:
        # Minute 2 is final at 2:00 + 1 min + 2 min = 5:00: late. Minute 3 is not.
        await produce(namespace.settings, topic, [at(130, 4), at(200, 8)])
        deadletters = namespace.settings.topic(DEADLETTER_TOPIC)
        [dead] = await read_all(namespace.settings, deadletters, expect=1)
        assert dict(dead.headers)["ioc_reason"] == b"late"
        assert orjson.loads(dead.value)["data"]["vehicles"] == 4
        await settle(namespace, 3)
        rows = await database_rows(namespace.settings)
        vehicles = {b: agg[1] for (_, metric, b), agg in rows.items() if metric == "vehicles"}
        t0 = int(T0.timestamp() * 1000)
        assert vehicles == {t0: 1, t0 + 3 * 60_000: 8, t0 + 5 * 60_000: 2}
    finally:
        second.stop()
