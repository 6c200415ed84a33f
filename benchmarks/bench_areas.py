"""Area series latency at city scale: the views computed when read (before) against the
area rollups the sink keeps (after, migration 0012), in the same run.

    .venv/bin/python -m benchmarks.bench_areas [--entities 20000] [--days 30]
        [--requests 100] [--namespace NAME] [--keep]

In a namespace of its own, the registry is loaded from the city model at ``--entities``
(``ioc.db.registry``; about 45 % of entities are traffic), then filled straight with SQL
for one metric, ``vehicles``, of every traffic entity: a day of minutes in
``metric_minute`` (a row per entity and minute) and ``--days`` days of hours in
``metric_hour``. The area rollups are then computed once, as the sink would have kept
them (timed: the whole day of minutes, the hours, and one minute, which is what the sink
recomputes every ``IOC_SINK__AREA_REFRESH_S`` while the city reports).

Measured per case (the province and Ha Long zone; 24 h at 1 minute, 30 days at 1 hour):

- **views**: ``ioc.db.queries.area_series_query`` over ``area_metric_minute`` /
  ``area_metric_hour``, what an area series cost before (asyncpg, one connection); few
  repetitions, each takes seconds at scale;
- **route**: ``GET /v1/areas/{id}/series`` over HTTP to an ``ioc api`` process (httpx, one
  keep-alive connection, one request at a time);
- **tables**: the route's rollup query alone with asyncpg.

Prints p50/p95 per case as Markdown rows. ``--namespace`` with ``--keep`` reuses a filled
schema (the fill is the slow part).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx

from benchmarks.bench_live import drop_topics
from benchmarks.provenance import commit_id
from city.model import build_city
from ioc.db.migrate import migrate
from ioc.db.queries import area_minutes_query, area_mixed_series_query, area_series_query
from ioc.db.registry import load_registry
from ioc.settings import Settings
from streams.admin import ensure_topics
from tests.utils.apikeys import auth, keys_env
from tests.utils.eventually import eventually
from tests.utils.services import Process, free_port

ROOT = Path(__file__).resolve().parents[1]
#: The day of minutes: local midnight in Quang Ninh (the buckets' origin).
DAY = datetime(2026, 9, 30, tzinfo=UTC) - timedelta(hours=7)
METRIC = "vehicles"
AREAS = ("quang-ninh", "halong")
#: Longest the views of one case are timed (they take seconds a request at scale).
VIEW_BUDGET_S = 120.0

VALUE = "((hashtext(e.id) & 31) + extract(epoch FROM b)::bigint / {step} % 40)::float8"


async def fill(conn: asyncpg.Connection, *, days: int) -> float:
    """A day of minutes and ``days`` days of hours of every traffic entity; seconds."""
    started = time.perf_counter()
    for table, key in (("metric_minute", "entity_id, metric, bucket"), ("metric_hour", None)):
        await conn.execute(f"ALTER TABLE {table} SET UNLOGGED")
        if key:
            await conn.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey")
    await conn.execute("DROP INDEX IF EXISTS metric_minute_bucket_brin")
    for hour in range(24):  # one statement per hour: progress shows
        start = DAY + timedelta(hours=hour)
        await conn.execute(
            f"""
            INSERT INTO metric_minute
                (entity_id, metric, bucket, domain, count, sum, min, max, last, version)
            SELECT e.id, $2, b, 'traffic', 6, v * 6, v - 3, v + 3, v, 1
            FROM generate_series($1::timestamptz, $1::timestamptz + interval '59 minutes',
                                 interval '1 minute') AS b,
                 entity AS e,
                 LATERAL (SELECT {VALUE.format(step=60)} AS v) AS value
            WHERE e.domain = 'traffic'
            ORDER BY b, e.id
            """,
            start,
            METRIC,
        )
        print(f"  minutes: hour {hour + 1}/24 ({time.perf_counter() - started:.0f} s)", flush=True)
    await conn.execute("ALTER TABLE metric_minute ADD PRIMARY KEY (entity_id, metric, bucket)")
    await conn.execute(
        "CREATE INDEX metric_minute_bucket_brin ON metric_minute USING brin (bucket)"
    )
    first = DAY - timedelta(days=days - 1)
    await conn.execute("ALTER TABLE metric_hour DROP CONSTRAINT metric_hour_pkey")
    for day in range(days):
        start = first + timedelta(days=day)
        await conn.execute(
            f"""
            INSERT INTO metric_hour (entity_id, metric, bucket, domain, count, sum, min, max,
                                     last)
            SELECT e.id, $2, b, 'traffic', 360, v * 360, v - 3, v + 3, v
            FROM generate_series($1::timestamptz, $1::timestamptz + interval '23 hours',
                                 interval '1 hour') AS b,
                 entity AS e,
                 LATERAL (SELECT {VALUE.format(step=3600)} AS v) AS value
            WHERE e.domain = 'traffic'
            ORDER BY b, e.id
            """,
            start,
            METRIC,
        )
    await conn.execute(
        "ALTER TABLE metric_hour ADD PRIMARY KEY (entity_id, metric, bucket, domain)"
    )
    print(f"  hours: {days} days ({time.perf_counter() - started:.0f} s)", flush=True)
    await conn.execute("VACUUM ANALYZE metric_minute")
    await conn.execute("VACUUM ANALYZE metric_hour")
    return time.perf_counter() - started


async def refresh(conn: asyncpg.Connection, *, days: int) -> dict[str, float]:
    """The area rollups computed once over everything filled, then one minute again (the
    sink's steady work); seconds of each."""
    timings = {}
    started = time.perf_counter()
    await conn.execute(
        "SELECT refresh_area_rollup('area_minute', 'metric_minute', $1, $2)",
        DAY,
        DAY + timedelta(days=1),
    )
    timings["area minutes, the whole day"] = time.perf_counter() - started
    started = time.perf_counter()
    await conn.execute(
        "SELECT refresh_area_rollup('area_hour', 'metric_hour', $1, $2)",
        DAY - timedelta(days=days - 1),
        DAY + timedelta(days=1),
    )
    timings[f"area hours, {days} days"] = time.perf_counter() - started
    await conn.execute("ANALYZE area_minute")
    await conn.execute("ANALYZE area_hour")
    minute = []
    for m in range(5):
        at = DAY + timedelta(hours=12, minutes=m)
        await conn.execute("INSERT INTO area_pending (bucket) VALUES ($1)", at)
        started = time.perf_counter()
        await conn.fetchval("SELECT refresh_area_minutes(10)")
        minute.append(time.perf_counter() - started)
    timings["one minute (the sink's steady refresh), median of 5"] = statistics.median(minute)
    return timings


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p95 in milliseconds."""
    if len(samples) < 2:
        return samples[0] * 1000, samples[0] * 1000
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[94] * 1000


async def timed(
    call: Callable[[], Awaitable[int]], *, requests: int, expect: int, budget_s: float
) -> list[float]:
    """Seconds of up to ``requests`` calls (at least 3, then stop past ``budget_s``)."""
    samples: list[float] = []
    spent = 0.0
    while len(samples) < requests and (len(samples) < 3 or spent < budget_s):
        started = time.perf_counter()
        points = await call()
        elapsed = time.perf_counter() - started
        if points != expect:
            raise RuntimeError(f"{points} points, expected {expect}")
        samples.append(elapsed)
        spent += elapsed
    return samples


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entities", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--requests", type=int, default=100)
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
        setup: dict[str, float] = {}
        if await conn.fetchval("SELECT count(*) FROM metric_minute") == 0:
            print(f"filling {name}: {args.entities:,} entities, {args.days} days", flush=True)
            await load_registry(settings, build_city(args.entities))
            setup["fill"] = await fill(conn, days=args.days)
            setup |= await refresh(conn, days=args.days)
        traffic = await conn.fetchval("SELECT count(*) FROM entity WHERE domain = 'traffic'")
        minutes = await conn.fetchval("SELECT count(*) FROM metric_minute")
        hours = await conn.fetchval("SELECT count(*) FROM metric_hour")
        in_zone = await conn.fetchval(
            "SELECT count(*) FROM entity WHERE domain = 'traffic' AND zone_id = 'halong'"
        )
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
        http = httpx.AsyncClient(base_url=url, headers=auth("view"), timeout=300)
        cases = (
            ("24 h at 1 minute", "1m", DAY, DAY + timedelta(days=1), 1440),
            (
                f"{args.days} days at 1 hour",
                "1h",
                DAY - timedelta(days=args.days - 1),
                DAY + timedelta(days=1),
                args.days * 24,
            ),
        )
        rows = []
        for area in AREAS:
            for label, bucket, start, end, expect in cases:
                edge = end - timedelta(hours=1)

                async def route(
                    area: str = area,
                    bucket: str = bucket,
                    start: datetime = start,
                    end: datetime = end,
                ) -> int:
                    response = await http.get(
                        f"/v1/areas/{area}/series",
                        params={
                            "domain": "traffic",
                            "metric": METRIC,
                            "bucket": bucket,
                            "from": start.isoformat(),
                            "to": end.isoformat(),
                        },
                    )
                    response.raise_for_status()
                    return len(response.json()["points"])

                async def tables(
                    area: str = area,
                    bucket: str = bucket,
                    start: datetime = start,
                    end: datetime = end,
                    edge: datetime = edge,
                ) -> int:
                    if bucket == "1m":
                        found = await conn.fetch(
                            area_minutes_query(), area, "traffic", METRIC, start, end
                        )
                    else:
                        found = await conn.fetch(
                            area_mixed_series_query("1h"),
                            area,
                            "traffic",
                            METRIC,
                            start,
                            end,
                            timedelta(hours=1),
                            edge,
                        )
                    return len(found)

                async def views(
                    area: str = area,
                    bucket: str = bucket,
                    start: datetime = start,
                    end: datetime = end,
                ) -> int:
                    found = await conn.fetch(area_series_query(bucket), area, METRIC, start, end)
                    return len(found)

                await route()  # warm-up: the API's pool and prepared statements
                await tables()
                # The hour case holds a day of minutes too: its newest hour is read from them.
                n = args.requests
                after_route = await timed(route, requests=n, expect=expect, budget_s=300)
                after_sql = await timed(tables, requests=n, expect=expect, budget_s=300)
                before = await timed(views, requests=n, expect=expect, budget_s=VIEW_BUDGET_S)
                for what, samples in (
                    ("views (before), SQL", before),
                    ("route (after), HTTP", after_route),
                    ("area tables (after), SQL", after_sql),
                ):
                    p50, p95 = percentiles(samples)
                    rows.append(
                        f"| {area} | {label} | {what} | {len(samples)} | {p50:,.1f} | {p95:,.1f} |"
                    )
                print(rows[-3], rows[-2], rows[-1], sep="\n", flush=True)
        await http.aclose()
        machine = f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}"
        print(
            f"\ncommit {commit_id()}; {machine}; {args.entities:,} entities ({traffic:,} traffic,"
            f" {in_zone:,} in Ha Long); metric_minute {minutes:,} rows, metric_hour {hours:,}\n"
        )
        for what, seconds in setup.items():
            print(f"- {what}: {seconds:,.2f} s")
        print("\n| area | range | read | requests | p50 (ms) | p95 (ms) |")
        print("|---|---|---|---:|---:|---:|")
        print("\n".join(rows))
    finally:
        if api is not None:
            api.stop()
        if not args.keep:
            await conn.execute(f'DROP SCHEMA "{settings.db_schema}" CASCADE')
            await drop_topics(settings)
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
