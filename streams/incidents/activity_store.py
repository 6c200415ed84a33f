"""The area activity sink: the incident tier's hourly counts of ``ioc.area-activity``
(``streams.incidents.activity``) stored in ``area_activity_hour`` (migration 0013).

Started with the incident sink, in the worker's sink process, as a consumer group of its
own (``ioc-<namespace>-activity-sink``). Records carry absolute counts with a version
that grows with every change of an hour's counts, so a row takes a record unless it holds
a later version already: a repeat or a record read again after a crash changes nothing,
and the newest counts win whatever the order the batches come in. Records that do not
read as counts are logged and skipped, never retried.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg
import orjson
from prometheus_client import Counter

from streams.incidents.activity import HOUR_MS
from streams.incidents.store import Malformed, TopicSink
from streams.topics import AREA_ACTIVITY_TOPIC

SKIPPED = Counter(
    "ioc_area_activity_sink_skipped",
    "Records of ioc.area-activity the area activity sink did not apply, by reason",
    ["reason"],
)

UPSERT_ACTIVITY = """
INSERT INTO area_activity_hour AS a (area_id, hour, alerts, incidents, version)
SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::integer[], $4::integer[], $5::bigint[])
ON CONFLICT (area_id, hour) DO UPDATE SET
    alerts = EXCLUDED.alerts, incidents = EXCLUDED.incidents, version = EXCLUDED.version,
    updated_at = now()
WHERE a.version <= EXCLUDED.version
RETURNING 1
"""


@dataclass(frozen=True, slots=True)
class StoredCount:
    """One record of ``ioc.area-activity``, read and checked."""

    area_id: str
    hour: datetime
    alerts: int
    incidents: int
    version: int


def _count(event: dict[str, object], field: str) -> int:
    value = event.get(field)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Malformed("invalid_field", f"{field}: not a count: {value!r}")
    return value


def read_count(value: bytes | None) -> StoredCount:
    """The counts a record of ``ioc.area-activity`` carries; :class:`Malformed` for
    anything else."""
    if not value:
        raise Malformed("empty", "the record has no value")
    try:
        event = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise Malformed("not_json", str(exc)) from None
    if not isinstance(event, dict):
        raise Malformed("not_object", f"a JSON {type(event).__name__}")
    area = event.get("area_id")
    # PostgreSQL's text refuses NUL: such a record would fail its batch forever.
    if not isinstance(area, str) or not area or "\x00" in area:
        raise Malformed("invalid_field", f"area_id: {area!r}")
    try:
        hour = datetime.fromisoformat(str(event.get("hour")))
    except ValueError:
        raise Malformed(
            "invalid_field", f"hour: not an RFC 3339 time: {event.get('hour')!r}"
        ) from None
    if hour.tzinfo is None or int(hour.timestamp() * 1000) % HOUR_MS:
        raise Malformed("invalid_field", f"hour: not the start of an hour: {event['hour']!r}")
    return StoredCount(
        area_id=area,
        hour=hour,
        alerts=_count(event, "alerts"),
        incidents=_count(event, "incidents"),
        version=_count(event, "version"),
    )


async def write_counts(pool: asyncpg.Pool, items: list[StoredCount]) -> int:
    """Upsert the counts in one statement, the latest version of each row in the batch;
    return how many rows took a record."""
    latest: dict[tuple[str, datetime], StoredCount] = {}
    for item in items:
        known = latest.get((item.area_id, item.hour))
        if known is None or known.version <= item.version:
            latest[(item.area_id, item.hour)] = item
    rows = list(latest.values())
    async with pool.acquire() as conn:
        written = await conn.fetch(
            UPSERT_ACTIVITY,
            [r.area_id for r in rows],
            [r.hour for r in rows],
            [r.alerts for r in rows],
            [r.incidents for r in rows],
            [r.version for r in rows],
        )
    return len(written)


class AreaActivitySink(TopicSink[StoredCount]):
    """Consumes the namespace's ``ioc.area-activity`` into ``area_activity_hour``."""

    topic = AREA_ACTIVITY_TOPIC
    group = "activity-sink"
    rows = "area_activity_hour"
    skipped_counter = SKIPPED

    def read(self, value: bytes | None) -> StoredCount:
        return read_count(value)

    def skip_reason(self) -> str:
        return "none"

    async def write(self, pool: asyncpg.Pool, items: list[StoredCount]) -> int:
        return await write_counts(pool, items)
