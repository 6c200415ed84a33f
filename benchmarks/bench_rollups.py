"""What one rollup refresh costs: an hour of minutes for a city's series.

    .venv/bin/python -m benchmarks.bench_rollups [--series 57000]

In a fresh namespace (plain PostgreSQL or TimescaleDB, whichever the database has), fills
``metric_minute`` with one hour of minutes for ``--series`` series (entity x metric; the
live benchmark's 20,000 entities have about 57,000), then times
``refresh_rollups_around`` as the sink calls it: for the last minute of the hour only,
for the whole hour, and once more with nothing changed. A refresh reads every minute of
the hours it covers however few changed, which is why the sink rolls up an hour once,
when it is final (``streams.sink.rollup_window``), rather than at every interval.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from benchmarks.provenance import commit_id
from ioc.db.migrate import migrate
from ioc.settings import Settings

HOUR = datetime(2026, 11, 26, 8, tzinfo=UTC)

FILL = """
INSERT INTO metric_minute (entity_id, metric, bucket, domain, count, sum, min, max, last,
                           version)
SELECT 'e-' || (i / 3), 'm' || (i % 3), $1::timestamptz + make_interval(mins => m),
       'traffic', 4, 10 + m, 1, 5, 3, 1
FROM generate_series(0, $2 - 1) AS i, generate_series(0, 59) AS m
"""


async def timed(conn: asyncpg.Connection, first: datetime, last: datetime) -> float:
    started = time.perf_counter()
    await conn.execute("CALL refresh_rollups_around($1, $2)", first, last)
    return time.perf_counter() - started


async def run(series: int) -> None:
    settings = Settings().model_copy(update={"namespace": f"bench_r{uuid.uuid4().hex[:6]}"})
    await migrate(settings)
    conn = await asyncpg.connect(settings.dsn)
    try:
        await conn.execute(f'SET search_path TO "{settings.db_schema}", public')
        started = time.perf_counter()
        await conn.execute(FILL, HOUR, series)
        await conn.execute("ANALYZE metric_minute")
        filled = time.perf_counter() - started
        last_minute = HOUR + timedelta(minutes=59)
        one = await timed(conn, last_minute, last_minute)
        whole = await timed(conn, HOUR, last_minute)
        again = await timed(conn, HOUR, last_minute)
        hours = await conn.fetchval("SELECT count(*) FROM metric_hour")
        print(
            f"commit {commit_id()}; {platform.machine()}, {os.cpu_count()} cores, "
            f"load {os.getloadavg()[0]:.1f}; {series:,} series, {series * 60:,} minute rows "
            f"(filled in {filled:.1f} s); {hours:,} hour rows after the refreshes"
        )
        print("| refresh_rollups_around over | seconds |\n|---|---:|")
        print(f"| the last minute of the hour | {one:.2f} |")
        print(f"| the whole hour | {whole:.2f} |")
        print(f"| the whole hour again, nothing changed | {again:.2f} |")
    finally:
        await conn.execute(f'DROP SCHEMA "{settings.db_schema}" CASCADE')
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--series", type=int, default=57_000)
    asyncio.run(run(parser.parse_args().series))


if __name__ == "__main__":
    main()
