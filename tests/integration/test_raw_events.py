"""Discrete events (incidents, admissions, alarms, ...) are kept one by one; readings are not."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import orjson

from streams.topics import raw_topic
from tests.utils.events import T0, Record, flow_value
from tests.utils.eventually import eventually
from tests.utils.kafka import produce
from tests.utils.namespaces import Namespace
from tests.utils.services import Process, start_worker


def incident(entity: str, n: int) -> Record:
    at = T0 + timedelta(seconds=30 * n + 5)
    value = orjson.dumps(
        {
            "specversion": "1.0",
            "id": f"inc-{n}",
            "source": "/tests/police",
            "type": "city.traffic.incident.v1",
            "time": at,
            "subject": entity,
            "data": {"kind": "crash", "severity": 1 + n % 5, "lanes_blocked": n % 3},
        }
    )
    return Record(entity.encode(), value, 0)


async def test_incidents_are_stored_raw_and_flow_readings_are_not(
    namespace: Namespace, worker: Process
) -> None:
    entity = "t-seg-ql18"
    flows = [
        Record(entity.encode(), flow_value(entity, T0 + timedelta(seconds=10 * i)), 0)
        for i in range(20)
    ]
    incidents = [incident(entity, n) for n in range(5)]
    mixed = [r for pair in zip(flows[::4], incidents, strict=True) for r in pair] + flows
    settings = namespace.settings
    await produce(settings, raw_topic(settings, "traffic"), mixed)

    conn = await asyncpg.connect(settings.dsn)
    try:
        rows: list[asyncpg.Record] = await eventually(
            lambda: conn.fetch(
                f'SELECT event_id, source, event_type, payload FROM "{settings.db_schema}"'
                ".raw_event ORDER BY event_time"
            ),
            until=lambda rows: len(rows) >= 5,
            within_s=60,
            what="five raw events stored",
        )
    finally:
        await conn.close()
    assert [r["event_id"] for r in rows] == [f"inc-{n}" for n in range(5)]
    assert {r["event_type"] for r in rows} == {"city.traffic.incident.v1"}
    assert orjson.loads(rows[3]["payload"]) == {"kind": "crash", "severity": 4, "lanes_blocked": 0}


async def test_rows_past_retention_are_deleted_by_the_sink(namespace: Namespace) -> None:
    """Plain PostgreSQL has no retention policies: the sink runs delete_expired()."""
    conn = await asyncpg.connect(namespace.settings.dsn)
    schema = namespace.settings.db_schema
    try:
        await conn.execute(f'SET search_path TO "{schema}"')
        for age_days, event_id in ((45, "old"), (2, "recent")):
            await conn.execute(
                "INSERT INTO raw_event (entity_id, event_time, source, event_id, domain, "
                "event_type, payload) VALUES ('cam-1', now() - make_interval(days => $1), "
                "'/tests', $2, 'security', 'city.security.alarm.v1', '{}')",
                age_days,
                event_id,
            )
        for age_days in (500, 10):
            await conn.execute(
                "INSERT INTO metric_minute (entity_id, metric, bucket, domain, count, sum, "
                "min, max, last, version) VALUES ('cam-1', 'alarms', "
                "date_trunc('minute', now() - make_interval(days => $1)), 'security', "
                "1, 1, 1, 1, 1, 0)",
                age_days,
            )
        worker = start_worker(
            namespace, env={"IOC_SINK__EXPIRE": "true", "IOC_SINK__EXPIRE_INTERVAL_S": "0.5"}
        )
        try:
            await eventually(
                lambda: conn.fetchval("SELECT count(*) FROM raw_event"),
                until=lambda count: count <= 1,
                within_s=30,
                what="expired raw events to be deleted (raw events left)",
            )
            assert await conn.fetchval("SELECT event_id FROM raw_event") == "recent"
            ages = await conn.fetch(
                "SELECT extract(day FROM now() - bucket)::int AS age FROM metric_minute"
            )
            assert [r["age"] for r in ages] == [10]
            assert worker.total("ioc_sink_expired_rows_total") == 2
        finally:
            worker.stop()
    finally:
        await conn.close()
