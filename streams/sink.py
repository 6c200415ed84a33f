"""The database sink: ``ioc.state`` records (with the alert transitions they carry)
upserted into PostgreSQL in batches.

The sink is a consumer group of its own on the compacted state topic. Each batch is
written in one transaction and only then are its offsets committed, so a crash repeats
at most one batch. Rows carry absolute values and the source offset as ``version``;
an upsert never replaces a newer version, so repeating a batch changes nothing.

Backpressure: while the database refuses a batch, the sink pauses its partitions, keeps
polling (so the group does not evict it) and retries with exponential backoff. The
state topic is the buffer; the aggregator goes on, and nothing is lost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import CommitFailedError
from mode import Service

from ioc.db.pool import create_pool
from ioc.settings import LIVE_NAMESPACE, Settings
from streams.counters import SINK_EXPIRED, SINK_LAG, SINK_RETRIES, SINK_ROWS
from streams.entity_record import BUCKET_MS, EntityRecord, decode_record
from streams.kafka import client_options
from streams.topics import STATE_TOPIC

log = logging.getLogger(__name__)

MetricKey = tuple[str, str, int]  # entity, metric, bucket start ms

UPSERT_METRICS = """
INSERT INTO metric_minute AS m
    (entity_id, metric, bucket, domain, count, sum, min, max, last, version)
SELECT e, k, to_timestamp(b / 1000.0), d, c, s, mn, mx, l, v
FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::bigint[],
            $6::float8[], $7::float8[], $8::float8[], $9::float8[], $10::bigint[])
     AS r(e, k, b, d, c, s, mn, mx, l, v)
ON CONFLICT (entity_id, metric, bucket) DO UPDATE SET
    count = EXCLUDED.count, sum = EXCLUDED.sum, min = EXCLUDED.min, max = EXCLUDED.max,
    last = EXCLUDED.last, version = EXCLUDED.version, updated_at = now()
WHERE m.version <= EXCLUDED.version
"""

#: The minutes written, for the area minutes' next refresh (migration 0012).
MARK_AREA_PENDING = """
INSERT INTO area_pending (bucket)
SELECT to_timestamp(b / 1000.0) FROM unnest($1::bigint[]) AS b
ON CONFLICT DO NOTHING
"""
#: Pending minutes refreshed per call (a day of minutes: one call's transaction stays short).
AREA_REFRESH_MINUTES = 1440

UPSERT_STATE = """
INSERT INTO entity_state AS s (entity_id, domain, event_type, event_time, state, version)
SELECT e, d, k, to_timestamp(t / 1000.0), st::jsonb, v
FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::bigint[])
     AS r(e, d, k, t, st, v)
ON CONFLICT (entity_id) DO UPDATE SET
    domain = EXCLUDED.domain, event_type = EXCLUDED.event_type,
    event_time = EXCLUDED.event_time, state = EXCLUDED.state, version = EXCLUDED.version,
    updated_at = now()
WHERE s.version <= EXCLUDED.version
"""


UPSERT_ALERTS = """
INSERT INTO alert AS a (alert_id, rule_id, entity_id, domain, severity, state, opened_at, since,
                       updated_at, resolved_at, "values", title_en, title_vi, provisional)
SELECT id::uuid, r, e, d, sv, st, o::timestamptz, s::timestamptz, u::timestamptz,
       rs::timestamptz, v::jsonb, te, tv, pv
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[],
            $13::text[], $14::bool[])
     AS x(id, r, e, d, sv, st, o, s, u, rs, v, te, tv, pv)
ORDER BY u::timestamptz
ON CONFLICT (alert_id) DO UPDATE SET
    state = CASE WHEN EXCLUDED.state IN ('resolved', 'retracted') THEN EXCLUDED.state
                 WHEN a.state = 'acknowledged' THEN 'acknowledged'
                 ELSE 'open' END,
    provisional = a.provisional AND EXCLUDED.provisional,
    updated_at = EXCLUDED.updated_at, resolved_at = EXCLUDED.resolved_at,
    "values" = CASE WHEN EXCLUDED.state = 'retracted' THEN a."values" ELSE EXCLUDED."values" END,
    written_at = now()
WHERE a.state NOT IN ('resolved', 'retracted') AND a.updated_at <= EXCLUDED.updated_at
"""

INSERT_RAW = """
INSERT INTO raw_event (entity_id, event_time, source, event_id, domain, event_type, payload)
SELECT e, to_timestamp(t / 1000.0), s, i, d, k, p::jsonb
FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::text[]) AS r(e, t, s, i, d, k, p)
ON CONFLICT DO NOTHING
"""


def raw_rows(records: Iterable[EntityRecord]) -> list[tuple[Any, ...]]:
    """Rows for ``raw_event`` from the kept events the records carry."""
    return [
        (
            record.entity_id,
            raw.time,
            raw.source,
            raw.id,
            record.domain,
            raw.type,
            orjson.dumps(raw.data).decode(),
        )
        for record in records
        for raw in record.raw
    ]


DB_STATE = {
    "provisional": "open",
    "open": "open",
    "update": "open",
    "resolve": "resolved",
    "retract": "retracted",
}
#: Which of two transitions of one alert with the same time is the later: a provisional
#: alert is confirmed by an open at its own time, and a resolve or retract ends it.
STEP = {"provisional": 0, "open": 1, "update": 1, "resolve": 2, "retract": 2}

HOUR_MS = 3_600_000


def rollup_window(
    dirty: tuple[int, int], *, newest: int, lateness_ms: int, idle: bool
) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
    """Which written minutes to roll up now, and which to leave for later.

    ``dirty`` is the first and last minute written since the last refresh, ``newest`` the
    latest minute ever written. An hour is refreshed once it can no longer change: when
    ``newest`` is an allowed lateness past its end, its minutes are final (the aggregator
    refuses events for them). Refreshing the open hour at every write re-read all of its
    minutes each time: late in an hour, minutes x 60 rows per series every refresh. The
    open hour is left to readers, which take the newest rollup bucket from the minutes
    (``ioc.db.queries.mixed_series_query``). When nothing has been written for a
    refresh interval (the end of a replay), everything written is refreshed.
    Returns ``(refresh, left)``: minute ranges, either None.
    """
    low, high = dirty
    if idle:
        return dirty, None
    closed_end = newest - lateness_ms
    closed_end -= closed_end % HOUR_MS  # hours starting before it are final
    if low >= closed_end:
        return None, dirty
    if high < closed_end:
        return dirty, None
    return (low, closed_end - BUCKET_MS), (closed_end, high)


def merge_alerts(transitions: Iterable[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The newest transition per alert of a batch, as rows for ``UPSERT_ALERTS``."""
    newest: dict[str, dict[str, Any]] = {}
    for t in transitions:
        seen = newest.get(t["alert_id"])
        if seen is None or (t["updated_at"], STEP[t["state"]]) >= (
            seen["updated_at"],
            STEP[seen["state"]],
        ):
            newest[t["alert_id"]] = t
    return [
        (
            t["alert_id"],
            t["rule_id"],
            t["entity_id"],
            t["domain"],
            t["severity"],
            DB_STATE[t["state"]],
            t["opened_at"],
            t["since"],
            t["updated_at"],
            t["resolved_at"],
            orjson.dumps(t["values"]).decode(),
            t["title_en"],
            t["title_vi"],
            t["state"] in ("provisional", "retract"),
        )
        for t in newest.values()
    ]


def merge_records(
    records: Iterable[EntityRecord],
) -> tuple[dict[MetricKey, tuple[Any, ...]], dict[str, tuple[Any, ...]]]:
    """Fold a batch of entity records into the newest row per metric-minute and per entity.

    Each record's changed buckets carry absolute aggregates; a later record of the
    same entity supersedes an earlier one, so a batch writes each row once.
    """
    metrics: dict[MetricKey, tuple[Any, ...]] = {}
    states: dict[str, tuple[Any, ...]] = {}
    for record in records:
        entity, domain, version = record.entity_id, record.domain, record.offset
        for bucket_key in record.changed:
            bucket = int(bucket_key)
            for metric, agg in record.buckets.get(bucket_key, {}).items():
                metrics[(entity, metric, bucket)] = (
                    entity,
                    metric,
                    bucket,
                    domain,
                    int(agg.count),
                    agg.sum,
                    agg.min,
                    agg.max,
                    agg.last,
                    version,
                )
        if record.time_ms is not None:
            states[entity] = (
                entity,
                domain,
                record.event_type,
                record.time_ms,
                orjson.dumps(record.state).decode(),
                version,
            )
    return metrics, states


async def write_batch(
    pool: asyncpg.Pool,
    records: list[EntityRecord],
    transitions: list[dict[str, Any]] | None = None,
) -> tuple[int, int, int]:
    """Upsert one batch in one transaction; return (metric, state, alert) rows."""
    metrics, states = merge_records(records)
    alerts = merge_alerts(transitions or [])
    raws = raw_rows(records)
    metric_columns = list(zip(*metrics.values(), strict=True)) if metrics else [()] * 10
    state_columns = list(zip(*states.values(), strict=True)) if states else [()] * 6
    async with pool.acquire() as conn, conn.transaction():
        if metrics:
            await conn.execute(UPSERT_METRICS, *[list(c) for c in metric_columns])
        if states:
            await conn.execute(UPSERT_STATE, *[list(c) for c in state_columns])
        if alerts:
            await conn.execute(UPSERT_ALERTS, *[list(c) for c in zip(*alerts, strict=True)])
        if raws:
            await conn.execute(INSERT_RAW, *[list(c) for c in zip(*raws, strict=True)])
        if metrics:
            minutes = sorted({key[2] for key in metrics})
            await conn.execute(MARK_AREA_PENDING, minutes)
    return len(metrics), len(states), len(alerts)


class StateSink(Service):
    """Consumes ``ioc.state`` and upserts it into the namespace's schema."""

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.pool: asyncpg.Pool | None = None
        self.consumer: AIOKafkaConsumer | None = None
        self.last_write: datetime | None = None
        #: Earliest and latest minute written since the rollups were last refreshed.
        self.dirty: tuple[int, int] | None = None
        #: The latest minute ever written, and when the sink last wrote one.
        self.newest = 0
        self.written_at = time.monotonic()

    async def on_start(self) -> None:
        self.pool = await create_pool(self.settings)
        self.consumer = AIOKafkaConsumer(
            self.settings.topic(STATE_TOPIC),
            group_id=f"ioc-{self.settings.namespace}-sink",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
            **client_options(self.settings),
        )
        await self.consumer.start()

    async def on_stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()
        if self.pool is not None:
            await self.pool.close()

    @Service.task
    async def _run(self) -> None:
        assert self.consumer is not None
        sink = self.settings.sink
        while not self.should_stop:
            batch = await self.consumer.getmany(
                timeout_ms=sink.batch_max_wait_ms, max_records=sink.batch_max_records
            )
            if not batch:
                continue
            records = [
                decode_record(m.value)
                for messages in batch.values()
                for m in messages
                if m.value is not None
            ]
            # Alert transitions ride in the records that produced them (see streams.state).
            transitions = [t for record in records for t in record.transitions]
            SINK_LAG.set(len(records) + len(transitions))
            await self._write_with_retry(records, transitions)
            try:
                await self.consumer.commit()
            except CommitFailedError:
                # The group rebalanced while we wrote; the new owner repeats the batch,
                # which the version guard makes harmless.
                log.warning("sink commit failed after a rebalance; the batch will repeat")
            SINK_LAG.set(0)

    def _mark_dirty(self, records: list[EntityRecord]) -> None:
        self._mark_minutes([int(b) for record in records for b in record.changed])

    def _mark_minutes(self, buckets: list[int]) -> None:
        if not buckets:
            return
        low, high = min(buckets), max(buckets)
        self.newest = max(self.newest, high)
        self.written_at = time.monotonic()
        if self.dirty is not None:
            low, high = min(low, self.dirty[0]), max(high, self.dirty[1])
        self.dirty = (low, high)

    @Service.task
    async def _expire(self) -> None:
        """Delete raw events and minutes past their retention on plain PostgreSQL."""
        expire = self.settings.sink.expire
        if expire is None:
            expire = self.settings.namespace == LIVE_NAMESPACE
        if not expire:
            return
        while not self.should_stop:
            await self.sleep(self.settings.sink.expire_interval_s)
            if self.pool is None:
                continue
            try:
                async with self.pool.acquire() as conn:
                    # Only the plain-PostgreSQL flavour has the function.
                    if await conn.fetchval(
                        "SELECT to_regprocedure('delete_expired(timestamptz)') IS NOT NULL"
                    ):
                        for row in await conn.fetch("SELECT * FROM delete_expired()"):
                            SINK_EXPIRED.labels(row["table_name"]).inc(row["deleted"])
            except Exception as exc:
                log.warning("expiry failed (%s: %s); will retry", type(exc).__name__, exc)

    @Service.task
    async def _refresh_rollups(self) -> None:
        """Refresh the hours that became final among the minutes written since the last
        refresh, and the days holding them (``refresh_rollups_around``, migration 0008);
        see :func:`rollup_window`.

        The minutes are event time, not the wall clock, so a replayed 2024 scenario is
        rolled up like live data.
        """
        interval = self.settings.sink.rollup_interval_s
        lateness_ms = self.settings.streams.allowed_lateness_s * 1000
        while not self.should_stop:
            await self.sleep(interval)
            if self.dirty is None or self.pool is None:
                continue
            now, self.dirty = rollup_window(
                self.dirty,
                newest=self.newest,
                lateness_ms=lateness_ms,
                idle=time.monotonic() - self.written_at >= interval,
            )
            if now is None:
                continue
            first = datetime.fromtimestamp(now[0] / 1000, tz=UTC)
            last = datetime.fromtimestamp(now[1] / 1000, tz=UTC)
            try:
                async with self.pool.acquire() as conn:
                    await conn.execute("CALL refresh_rollups_around($1, $2)", first, last)
                    await conn.execute("CALL refresh_area_rollups_around($1, $2)", first, last)
            except Exception as exc:
                log.warning("rollup refresh failed (%s: %s); will retry", type(exc).__name__, exc)
                self._mark_minutes([now[0], now[1]])

    @Service.task
    async def _refresh_area_minutes(self) -> None:
        """Recompute the area minutes of the minutes written since (``area_pending``,
        migration 0012), every ``area_refresh_s``, until none is pending."""
        while not self.should_stop:
            await self.sleep(self.settings.sink.area_refresh_s)
            if self.pool is None:
                continue
            try:
                async with self.pool.acquire() as conn:
                    while await conn.fetchval(
                        "SELECT refresh_area_minutes($1)", AREA_REFRESH_MINUTES
                    ):
                        pass
            except Exception as exc:
                # The pending minutes stay pending (the refresh is one transaction).
                log.warning("area refresh failed (%s: %s); will retry", type(exc).__name__, exc)

    async def _write_with_retry(
        self, records: list[EntityRecord], transitions: list[dict[str, Any]]
    ) -> None:
        assert self.consumer is not None
        assert self.pool is not None
        delay = self.settings.sink.retry_initial_s
        paused = False
        while True:
            try:
                metric_rows, state_rows, alert_rows = await write_batch(
                    self.pool, records, transitions
                )
            except Exception as exc:
                # Any failure of the write is retried, never raised: a crashed sink would
                # stop the worker, and the batch it holds must still be written. A server
                # going away mid-call surfaces as various asyncpg errors (InternalClientError
                # among them, seen when PostgreSQL stopped during a release), so the pool's
                # connections are dropped and made anew.
                SINK_RETRIES.inc()
                log.warning(
                    "database write failed (%s: %s); retrying in %.1f s",
                    type(exc).__name__,
                    exc,
                    delay,
                )
                self.pool.terminate()
                self.pool = await create_pool(self.settings)
                if not paused:
                    self.consumer.pause(*self.consumer.assignment())
                    paused = True
                # Polling a paused consumer fetches nothing but keeps it in the group.
                await self.consumer.getmany(timeout_ms=int(delay * 1000))
                delay = min(delay * 2, self.settings.sink.retry_max_s)
                continue
            if paused:
                self.consumer.resume(*self.consumer.assignment())
            SINK_ROWS.labels("metric_minute").inc(metric_rows)
            SINK_ROWS.labels("entity_state").inc(state_rows)
            SINK_ROWS.labels("alert").inc(alert_rows)
            self._mark_dirty(records)
            self.last_write = datetime.now(UTC)
            return
