"""Hour rollups follow the minutes the sink writes, in event time (a 2024 replay too)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

import asyncpg

from streams.topics import raw_topic
from tests.utils.events import random_flow
from tests.utils.eventually import eventually
from tests.utils.kafka import produce
from tests.utils.namespaces import Namespace
from tests.utils.services import start_worker


async def test_hour_rollups_equal_the_produced_sums(namespace: Namespace) -> None:
    batch = random_flow(events=3_000, entities=20, minutes=150, seed=21)
    truth: dict[tuple[str, datetime], int] = defaultdict(int)
    for (entity, minute), vehicles in batch.vehicles.items():
        truth[(entity, minute.replace(minute=0))] += vehicles
    worker = start_worker(namespace, env={"IOC_SINK__ROLLUP_INTERVAL_S": "1"})
    try:
        settings = namespace.settings
        await produce(settings, raw_topic(settings, "traffic"), batch.records)
        conn = await asyncpg.connect(settings.dsn)
        try:
            sql = (
                f'SELECT entity_id, bucket, sum FROM "{settings.db_schema}".metric_hour '
                "WHERE metric = 'vehicles'"
            )

            async def hours() -> dict[tuple[str, datetime], int]:
                rows = await conn.fetch(sql)
                return {(r["entity_id"], r["bucket"]): int(r["sum"]) for r in rows}

            got = await eventually(
                hours,
                until=lambda got: got == dict(truth),
                within_s=90,
                interval_s=1,
                what="the hour rows to add up to the produced vehicles",
            )
        finally:
            await conn.close()
        assert got == dict(truth)
        assert len({hour for _, hour in truth}) >= 3
    finally:
        worker.stop()
