"""The truth a set of produced events implies, computed without the stream layer,
and the same figures as the database holds them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import asyncpg
import orjson

from contract.catalog import PAYLOAD_MODELS
from contract.envelope import read_payload
from ioc.settings import Settings

Key = tuple[str, str, int]  # entity, metric, bucket start (ms)
Agg = tuple[int, float, float, float]  # count, sum, min, max


def truth_of(values: Iterable[bytes]) -> dict[Key, Agg]:
    """Per-minute count, sum, min and max of every metric of the given (valid) events,
    in the order given (the order a partition holds them, for one entity)."""
    out: dict[Key, list[float]] = {}
    for value in values:
        event = orjson.loads(value)
        time_ms = int(datetime.fromisoformat(event["time"]).timestamp() * 1000)
        bucket = time_ms - time_ms % 60_000
        metrics = read_payload(PAYLOAD_MODELS[event["type"]], event["data"]).metrics()
        for metric, x in metrics.items():
            agg = out.get((event["subject"], metric, bucket))
            if agg is None:
                out[(event["subject"], metric, bucket)] = [1, x, x, x]
            else:
                agg[0] += 1
                agg[1] += x
                agg[2] = min(agg[2], x)
                agg[3] = max(agg[3], x)
    return {k: (int(v[0]), v[1], v[2], v[3]) for k, v in out.items()}


async def database_rows(settings: Settings, dsn: str | None = None) -> dict[Key, Agg]:
    """The same figures as ``metric_minute`` of the namespace holds them."""
    conn = await asyncpg.connect(dsn or settings.dsn)
    try:
        rows = await conn.fetch(
            f"SELECT entity_id, metric, (extract(epoch FROM bucket) * 1000)::bigint AS b, "
            f'count, sum, min, max FROM "{settings.db_schema}".metric_minute'
        )
    finally:
        await conn.close()
    return {
        (r["entity_id"], r["metric"], r["b"]): (r["count"], r["sum"], r["min"], r["max"])
        for r in rows
    }


async def events_in_database(settings: Settings, dsn: str | None = None) -> int:
    """How many events the minute rows account for (every event feeds >= 1 metric; we count
    the first metric of each type, through the per-type metric every payload emits)."""
    conn = await asyncpg.connect(dsn or settings.dsn)
    try:
        total = await conn.fetchval(
            f'SELECT coalesce(sum(count), 0) FROM "{settings.db_schema}".metric_minute '
            "WHERE metric = ANY($1::text[])",
            sorted(COUNTING_METRICS),
        )
    finally:
        await conn.close()
    return int(total)


#: One metric that every event of its type feeds exactly once.
COUNTING_METRICS = frozenset(
    {
        "vehicles",
        "incidents",
        "bed_occupancy_pct",
        "admissions",
        "attendance_pct",
        "safety_reports",
        "detections",
        "alarms",
    }
)
