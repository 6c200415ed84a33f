"""The plain PostgreSQL flavour: rollups refreshed idempotently from absolute minutes,
raw events kept once and expired, and series_query reading every bucket width."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from ioc.db.queries import series_query
from streams.sink import UPSERT_METRICS
from tests.utils.namespaces import Namespace

# Local midnight in Quang Ninh (UTC+07:00), where hour and day buckets are aligned.
DAY = datetime(2025, 3, 9, 17, 0, tzinfo=UTC)
WINDOW = (DAY - timedelta(days=2), DAY + timedelta(days=2))


@pytest.fixture
async def conn(namespace: Namespace) -> AsyncIterator[asyncpg.Connection]:
    settings = namespace.settings
    connection = await asyncpg.connect(
        settings.dsn, server_settings={"search_path": f"{settings.db_schema},public"}
    )
    yield connection
    await connection.close()


async def upsert(
    conn: asyncpg.Connection, minutes: dict[int, tuple[int, float, float, float, float]], v: int
) -> None:
    """The sink's statement for minutes of one series: offset -> (count, sum, min, max, last)."""
    n = len(minutes)
    buckets = [int((DAY + timedelta(minutes=m)).timestamp() * 1000) for m in minutes]
    values = list(zip(*minutes.values(), strict=True))
    await conn.execute(
        UPSERT_METRICS,
        ["cam-1"] * n,
        ["vehicles"] * n,
        buckets,
        ["traffic"] * n,
        *[list(c) for c in values],
        [v] * n,
    )


async def rollup(conn: asyncpg.Connection, table: str) -> list[tuple[object, ...]]:
    rows = await conn.fetch(f"SELECT bucket, count, sum, min, max, last FROM {table} ORDER BY 1")
    return [tuple(r) for r in rows]


async def test_a_refresh_recomputes_absolute_values_and_repeating_it_changes_nothing(
    conn: asyncpg.Connection,
) -> None:
    await upsert(conn, {0: (2, 10.0, 4.0, 6.0, 6.0), 59: (1, 3.0, 3.0, 3.0, 3.0)}, 1)
    await upsert(conn, {60: (4, 8.0, 1.0, 3.0, 1.0)}, 1)
    await conn.execute("CALL refresh_rollups($1, $2)", *WINDOW)
    hours = await rollup(conn, "metric_hour")
    assert hours == [
        (DAY, 3, 13.0, 3.0, 6.0, 3.0),
        (DAY + timedelta(hours=1), 4, 8.0, 1.0, 3.0, 1.0),
    ]
    assert await rollup(conn, "metric_day") == [(DAY, 7, 21.0, 1.0, 6.0, 1.0)]

    await conn.execute("CALL refresh_rollups($1, $2)", *WINDOW)
    assert await rollup(conn, "metric_hour") == hours

    # A newer version of a minute replaces it; the refresh follows, it does not add.
    await upsert(conn, {59: (2, 9.0, 3.0, 6.0, 6.0)}, 2)
    await conn.execute("CALL refresh_rollups($1, $2)", *WINDOW)
    assert (await rollup(conn, "metric_hour"))[0] == (DAY, 4, 19.0, 3.0, 6.0, 6.0)
    assert await rollup(conn, "metric_day") == [(DAY, 8, 27.0, 1.0, 6.0, 1.0)]


async def test_a_refresh_touches_only_whole_buckets_and_drops_those_without_minutes(
    conn: asyncpg.Connection,
) -> None:
    await upsert(conn, {0: (1, 1.0, 1.0, 1.0, 1.0), 90: (1, 2.0, 2.0, 2.0, 2.0)}, 1)
    await conn.execute("CALL refresh_rollups($1, $2)", *WINDOW)
    await conn.execute("DELETE FROM metric_minute WHERE bucket < $1", DAY + timedelta(hours=1))
    await upsert(conn, {90: (5, 10.0, 2.0, 2.0, 2.0)}, 2)
    # [00:30, 02:00) holds one whole hour, 01:00; the 00:00 hour keeps its stale row.
    await conn.execute(
        "CALL refresh_rollups($1, $2)", DAY + timedelta(minutes=30), DAY + timedelta(hours=2)
    )
    assert [r[1] for r in await rollup(conn, "metric_hour")] == [1, 5]
    await conn.execute("CALL refresh_rollups($1, $2)", *WINDOW)
    assert [r[1] for r in await rollup(conn, "metric_hour")] == [5]
    assert [r[1] for r in await rollup(conn, "metric_day")] == [5]


async def test_the_sinks_refresh_reads_only_the_hours_it_wrote_and_days_from_hours(
    conn: asyncpg.Connection,
) -> None:
    await upsert(conn, {0: (1, 1.0, 1.0, 1.0, 1.0), 300: (2, 4.0, 2.0, 2.0, 2.0)}, 1)
    await conn.execute("CALL refresh_rollups($1, $2)", *WINDOW)
    # The sink wrote a newer 05:10; someone changed 00:00 behind its back.
    await upsert(conn, {310: (3, 9.0, 3.0, 3.0, 3.0)}, 2)
    await upsert(conn, {0: (9, 9.0, 1.0, 1.0, 1.0)}, 2)
    at_0510 = DAY + timedelta(minutes=310)
    await conn.execute("CALL refresh_rollups_around($1, $2)", at_0510, at_0510)
    # 05:00 read again from its minutes; 00:00 not read (still its old row); the day is
    # the sum of its hours as they stand.
    assert [r[1] for r in await rollup(conn, "metric_hour")] == [1, 5]
    assert await rollup(conn, "metric_day") == [(DAY, 6, 14.0, 1.0, 3.0, 3.0)]
    # A refresh of every hour and day gives the same rows as refreshing everything.
    await conn.execute("CALL refresh_rollups_around($1, $2)", DAY, at_0510)
    around = (await rollup(conn, "metric_hour"), await rollup(conn, "metric_day"))
    await conn.execute("CALL refresh_rollups($1, $2)", *WINDOW)
    assert (await rollup(conn, "metric_hour"), await rollup(conn, "metric_day")) == around
    assert [r[1] for r in around[0]] == [9, 5]


async def test_a_refresh_needs_both_ends_of_its_window(conn: asyncpg.Connection) -> None:
    with pytest.raises(asyncpg.RaiseError, match="both ends"):
        await conn.execute("CALL refresh_rollups(NULL, now())")


async def test_series_query_reads_minutes_hours_and_days(conn: asyncpg.Connection) -> None:
    await upsert(conn, {0: (2, 10.0, 4.0, 6.0, 6.0), 61: (1, 3.0, 3.0, 3.0, 3.0)}, 1)
    await conn.execute("CALL refresh_rollups($1, $2)", *WINDOW)
    args = ("cam-1", "vehicles", *WINDOW)
    minutes = await conn.fetch(series_query("1m"), *args)
    hours = await conn.fetch(series_query("1h"), *args)
    days = await conn.fetch(series_query("1d"), *args)
    assert [r["t"] for r in minutes] == [DAY, DAY + timedelta(minutes=61)]
    assert [(r["t"], r["count"]) for r in hours] == [(DAY, 2), (DAY + timedelta(hours=1), 1)]
    assert [tuple(r) for r in days] == [(DAY, 3, 13.0, 3.0, 6.0, 3.0)]
    assert list(days[0].keys()) == list(minutes[0].keys())


async def test_raw_events_are_kept_once_and_expire_after_30_days(
    conn: asyncpg.Connection,
) -> None:
    insert = (
        "INSERT INTO raw_event (entity_id, event_time, source, event_id, domain, event_type,"
        " payload) VALUES ('cam-1', $1, 'sim', $2, 'traffic', 'city.traffic.flow.v1', '{}')"
        " ON CONFLICT DO NOTHING"
    )
    for age, event_id in ((31, "old"), (29, "kept"), (29, "kept")):
        await conn.execute(insert, DAY - timedelta(days=age), event_id)
    await upsert(conn, {0: (1, 1.0, 1.0, 1.0, 1.0)}, 1)
    await conn.execute(
        "INSERT INTO area_minute VALUES ('quang-ninh', 'traffic', 'vehicles', $1, 1, 1, 1, 1,"
        " 1, 1)",
        DAY,
    )
    deleted = {
        table: rows for table, rows in await conn.fetch("SELECT * FROM delete_expired($1)", DAY)
    }
    assert deleted == {"raw_event": 1, "metric_minute": 0, "area_minute": 0}
    assert await conn.fetchval("SELECT array_agg(event_id) FROM raw_event") == ["kept"]
    late = DAY + timedelta(days=401)
    assert dict(await conn.fetch("SELECT * FROM delete_expired($1)", late)) == {  # type: ignore[arg-type]
        "raw_event": 1,
        "metric_minute": 1,
        "area_minute": 1,
    }
    brin = await conn.fetchval(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema()"
        " AND indexname = 'raw_event_time_brin'"
    )
    assert "USING brin (event_time)" in brin
