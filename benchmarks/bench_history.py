"""History route latency: one entity's day at 1-minute buckets over a month of minutes.

    .venv/bin/python -m benchmarks.bench_history [--entities 2000] [--days 30]
        [--requests 1000] [--namespace NAME] [--keep]

In a namespace of its own, ``metric_minute`` is filled straight with SQL: one metric
(``vehicles``) per entity, a row per entity and minute for ``--days`` days, written in time
order (every entity's minute, then the next minute) as the sink writes them, so one
entity's day lies on as many heap pages as it has minutes. The primary key is built after
the fill (faster than maintaining it row by row; the same index in the end) and the table is
made UNLOGGED for the fill (reads do not depend on it; it halves the disk written). Then,
in the same run, against the same random (entity, day) pairs:

- **route**: ``GET /v1/traffic/entities/{id}/series?metric=vehicles&from&to&bucket=1m``
  over HTTP to an ``ioc api`` process (httpx, one keep-alive connection, one request at a
  time), 24 h per request;
- **SQL**: the route's query alone (``ioc.db.queries.series_query("1m")``) with asyncpg
  on one connection: the floor under the route; and the query that regroups minutes into
  wider buckets (``mixed_series_query``), which the route used for 1-minute buckets too
  before it read them as stored.

Prints p50/p95/p99 per measurement as Markdown rows. ``--namespace`` reuses a schema
filled by an earlier run with ``--keep`` (the fill is the slow part); without ``--keep``
the schema and topics are dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx

from benchmarks.bench_live import drop_topics
from benchmarks.provenance import commit_id
from ioc.db.migrate import migrate
from ioc.db.queries import mixed_series_query, series_query
from ioc.settings import Settings
from streams.admin import ensure_topics
from tests.utils.apikeys import auth, keys_env
from tests.utils.eventually import eventually
from tests.utils.services import Process, free_port

ROOT = Path(__file__).resolve().parents[1]
#: The first day of data: local midnight in Quang Ninh (the buckets' origin).
FIRST_DAY = datetime(2026, 9, 1, tzinfo=UTC) - timedelta(hours=7)
METRIC = "vehicles"


def entity_name(n: int) -> str:
    return f"hb-ix-{n:05d}"


async def fill(conn: asyncpg.Connection, *, entities: int, days: int) -> float:
    """Fill metric_minute and entity_state; seconds it took."""
    started = time.perf_counter()
    await conn.execute("ALTER TABLE metric_minute SET UNLOGGED")
    await conn.execute("ALTER TABLE metric_minute DROP CONSTRAINT metric_minute_pkey")
    await conn.execute("DROP INDEX IF EXISTS metric_minute_bucket_brin")
    # One day per statement: progress shows, and no single statement runs for minutes.
    for day in range(days):
        start = FIRST_DAY + timedelta(days=day)
        await conn.execute(
            """
            INSERT INTO metric_minute
                (entity_id, metric, bucket, domain, count, sum, min, max, last, version)
            SELECT 'hb-ix-' || lpad(e::text, 5, '0'), 'vehicles', b, 'traffic', 6,
                   v * 6, v - 3, v + 3, v, 1
            FROM generate_series($1::timestamptz, $1::timestamptz + interval '1 day'
                                 - interval '1 minute', interval '1 minute') AS b,
                 generate_series(0, $2 - 1) AS e,
                 LATERAL (SELECT ((e * 7 + extract(epoch FROM b)::bigint / 60) % 40)::float8
                          AS v) AS value
            ORDER BY b, e
            """,
            start,
            entities,
        )
        print(f"  filled day {day + 1}/{days} ({time.perf_counter() - started:.0f} s)", flush=True)
    await conn.execute("ALTER TABLE metric_minute ADD PRIMARY KEY (entity_id, metric, bucket)")
    await conn.execute(
        "CREATE INDEX metric_minute_bucket_brin ON metric_minute USING brin (bucket)"
    )
    await conn.execute(
        """
        INSERT INTO entity_state (entity_id, domain, event_type, event_time, state, version)
        SELECT 'hb-ix-' || lpad(e::text, 5, '0'), 'traffic', 'city.traffic.flow.v1', now(),
               '{}'::jsonb, 1
        FROM generate_series(0, $1 - 1) AS e
        """,
        entities,
    )
    await conn.execute("VACUUM ANALYZE metric_minute")
    await conn.execute("ANALYZE entity_state")
    return time.perf_counter() - started


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    """p50, p95, p99 in milliseconds."""
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[94] * 1000, cuts[98] * 1000


async def time_route(base: str, picks: list[tuple[str, datetime]]) -> list[float]:
    timings = []
    async with httpx.AsyncClient(base_url=base, headers=auth("view"), timeout=30) as http:
        for entity, day in picks:
            params = {
                "metric": METRIC,
                "from": day.isoformat(),
                "to": (day + timedelta(days=1)).isoformat(),
                "bucket": "1m",
            }
            started = time.perf_counter()
            response = await http.get(f"/v1/traffic/entities/{entity}/series", params=params)
            elapsed = time.perf_counter() - started
            response.raise_for_status()
            points = len(response.json()["points"])
            if points != 1440:
                raise RuntimeError(f"{entity} {day}: {points} points, expected 1440")
            timings.append(elapsed)
    return timings


async def time_sql(
    conn: asyncpg.Connection, picks: list[tuple[str, datetime]], *, regrouped: bool = False
) -> list[float]:
    """The minutes of each pick as the route reads them; ``regrouped``: through the query
    that regroups minutes into wider buckets (what the route used for 1m before)."""
    timings = []
    for entity, day in picks:
        end = day + timedelta(days=1)
        args: tuple[object, ...] = (entity, METRIC, day, end)
        if regrouped:
            args += (timedelta(minutes=1), day)
        started = time.perf_counter()
        rows = await conn.fetch(
            mixed_series_query("1m") if regrouped else series_query("1m"), *args
        )
        timings.append(time.perf_counter() - started)
        if len(rows) != 1440:
            raise RuntimeError(f"{entity} {day}: {len(rows)} rows, expected 1440")
    return timings


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entities", type=int, default=2000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--namespace", help="reuse this namespace's filled schema")
    parser.add_argument("--keep", action="store_true", help="keep the schema for --namespace")
    args = parser.parse_args()
    base = Settings(state_dir=ROOT / ".ioc")
    name = args.namespace or f"bench_{uuid.uuid4().hex[:8]}"
    settings = base.model_copy(update={"namespace": name})
    await migrate(settings)
    await ensure_topics(settings)
    conn = await asyncpg.connect(settings.dsn)
    await conn.execute(f'SET search_path TO "{settings.db_schema}"')
    logs = Path(tempfile.mkdtemp())
    api: Process | None = None
    try:
        rows = await conn.fetchval("SELECT count(*) FROM metric_minute")
        if rows == 0:
            print(f"filling {name}: {args.entities} entities x {args.days} days", flush=True)
            filled_s = await fill(conn, entities=args.entities, days=args.days)
            rows = await conn.fetchval("SELECT count(*) FROM metric_minute")
            print(f"filled {rows:,} rows in {filled_s:.0f} s", flush=True)
        size = await conn.fetchval("SELECT pg_total_relation_size('metric_minute')")
        entities = await conn.fetchval("SELECT count(*) FROM entity_state")
        days = rows // (entities * 1440)
        port = free_port()
        api = Process(
            ["api", "--port", str(port)],
            env={
                "IOC_NAMESPACE": name,
                "IOC_STATE_DIR": str(base.state_dir),
                "IOC_API__RATE_PER_S": "100000",
                "IOC_API__RATE_BURST": "100000",
                **keys_env(),
            },
            log=logs / "api.log",
        ).start()
        url = f"http://127.0.0.1:{port}"
        eventually(lambda: httpx.get(f"{url}/healthz").status_code == 200, within_s=60, what="API")
        rng = random.Random(11)
        picks = [
            (entity_name(rng.randrange(entities)), FIRST_DAY + timedelta(days=rng.randrange(days)))
            for _ in range(args.requests)
        ]
        # Warm-up: the API's imports and pool, asyncpg's prepared statement; not timed.
        await time_route(url, picks[:20])
        await time_sql(conn, picks[:20])
        # Interleaved halves, so a change in the machine's load hits both alike.
        half = len(picks) // 2
        route = await time_route(url, picks[:half])
        sql = await time_sql(conn, picks)
        regrouped = await time_sql(conn, picks, regrouped=True)
        route += await time_route(url, picks[half:])
        machine = f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}"
        print(
            f"\ncommit {commit_id()}; {machine}; metric_minute {rows:,} rows "
            f"({entities:,} entities x {days} days, one metric), {size / 1e9:.1f} GB\n"
        )
        print("| what | requests | p50 (ms) | p95 (ms) | p99 (ms) |")
        print("|---|---:|---:|---:|---:|")
        measured = (
            ("route over HTTP", route),
            ("its SQL alone (asyncpg)", sql),
            ("regrouping SQL alone (asyncpg)", regrouped),
        )
        for what, samples in measured:
            p50, p95, p99 = percentiles(samples)
            print(f"| {what} | {len(samples):,} | {p50:.1f} | {p95:.1f} | {p99:.1f} |")
    finally:
        if api is not None:
            api.stop()
        if not args.keep:
            await conn.execute(f'DROP SCHEMA "{settings.db_schema}" CASCADE')
            await drop_topics(settings)
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
