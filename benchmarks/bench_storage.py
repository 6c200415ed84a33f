"""Database bytes per event and per row after a simulated day: the storage half of
docs/sizing.md.

    .venv/bin/python -m benchmarks.bench_storage [--entities 200] [--hours 24]

In a namespace of its own: ``ioc simulate`` produces ``--hours`` of the city's events for
``--entities`` entities (all four domains, the default rhythms) as fast as it can, one
``ioc worker`` writes them, and once the tables stop growing (and the hour/day rollups
have run), ``VACUUM ANALYZE`` and ``pg_total_relation_size`` (heap, indexes and TOAST)
give each table's size. Prints rows, bytes, bytes per row and per event, and the same
scaled to a day of the default city (2,000 entities) and of larger ones, for
benchmarks/RESULTS.md. The namespace's schema is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

from benchmarks.provenance import commit_id
from ioc.db.migrate import migrate
from ioc.infra import KafkaBroker, PostgresCluster
from ioc.settings import Settings
from streams.admin import ensure_topics

ROOT = Path(__file__).resolve().parents[1]
TABLES = ("raw_event", "metric_minute", "metric_hour", "metric_day", "entity_state", "alert")
START = "2024-09-07T00:00:00+07:00"


def ioc(*args: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "ioc.cli", *args],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )


async def counts(conn: asyncpg.Connection) -> tuple[int, ...]:
    return tuple([await conn.fetchval(f"SELECT count(*) FROM {t}") for t in TABLES])


async def sizes(conn: asyncpg.Connection, schema: str) -> dict[str, tuple[int, int]]:
    """(rows, bytes) per table, after VACUUM ANALYZE so dead versions are not counted."""
    out = {}
    for table in TABLES:
        await conn.execute(f'VACUUM ANALYZE "{schema}".{table}')
        rows = await conn.fetchval(f"SELECT count(*) FROM {table}")
        size = await conn.fetchval(
            "SELECT pg_total_relation_size($1::regclass)", f'"{schema}".{table}'
        )
        out[table] = (int(rows), int(size))
    return out


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entities", type=int, default=200)
    parser.add_argument("--hours", type=float, default=24.0)
    args = parser.parse_args()
    base = Settings(state_dir=ROOT / ".ioc")
    KafkaBroker(base).up()
    PostgresCluster(base).up()
    settings = base.model_copy(update={"namespace": f"bench_{uuid.uuid4().hex[:8]}"})
    await migrate(settings)
    await ensure_topics(settings)
    env = {
        "IOC_NAMESPACE": settings.namespace,
        "IOC_STATE_DIR": str(base.state_dir),
        "IOC_STREAMS__WEB_PORT": "16166",
        # Rollups every 5 s instead of every minute, so hour and day rows exist at the end.
        "IOC_SINK__ROLLUP_INTERVAL_S": "5",
    }
    logs = Path(tempfile.mkdtemp())
    started = time.perf_counter()
    sim = ioc(
        "simulate",
        "--entities", str(args.entities),
        "--duration", str(args.hours * 3600),
        "--speed", "0",
        "--start", START,
        env=env,
        log=logs / "simulate.log",
    )  # fmt: skip
    worker = ioc("worker", "--loglevel", "warning", env=env, log=logs / "worker.log")
    conn = await asyncpg.connect(
        settings.dsn, server_settings={"search_path": f"{settings.db_schema},public"}
    )
    try:
        if await asyncio.to_thread(sim.wait) != 0:
            raise RuntimeError(f"simulate failed; see {logs}/simulate.log")
        text = (logs / "simulate.log").read_text()
        found = re.search(r"produced (\d+) events", text)
        if found is None:
            raise RuntimeError(f"simulate printed no count; see {logs}/simulate.log")
        produced = int(found[1])
        # Done when nothing has changed for 15 s (three rollup rounds) after the events.
        last: tuple[int, ...] = (-1,)
        still_since = time.perf_counter()
        while time.perf_counter() - still_since < 15:
            if worker.poll() is not None:
                raise RuntimeError(f"the worker stopped; see {logs}/worker.log")
            now = await counts(conn)
            if now != last:
                last, still_since = now, time.perf_counter()
            await asyncio.sleep(1)
        elapsed = time.perf_counter() - started
        measured = await sizes(conn, settings.db_schema)
    finally:
        worker.terminate()
        await asyncio.to_thread(worker.wait)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{settings.db_schema}" CASCADE')
        await conn.close()
    report(args.entities, args.hours, produced, measured, elapsed)


def report(
    entities: int, hours: float, produced: int, measured: dict[str, tuple[int, int]], elapsed: float
) -> None:
    commit = commit_id()
    print(
        f"commit {commit}; {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; {entities} entities, {hours:g} simulated hours, "
        f"{produced:,} events, {elapsed:.0f} s"
    )
    print("| table | rows | MB | bytes/row | bytes/event |")
    print("|---|---:|---:|---:|---:|")
    total = 0
    for table, (rows, size) in measured.items():
        total += size
        per_row = size / rows if rows else 0
        print(
            f"| {table} | {rows:,} | {size / 1e6:.1f} | {per_row:,.0f} | {size / produced:,.1f} |"
        )
    print(f"| all | | {total / 1e6:.1f} | | {total / produced:,.1f} |")
    per_entity_day = total / entities / (hours / 24)
    events_per_entity_day = produced / entities / (hours / 24)
    print(
        f"\nper entity and day: {events_per_entity_day:,.0f} events, {per_entity_day / 1e6:.2f} MB"
    )
    for city in (2_000, 20_000, 100_000):
        print(
            f"{city:,} entities: {city * events_per_entity_day:,.0f} events/day "
            f"({city * events_per_entity_day / 86400:,.0f}/s), "
            f"{city * per_entity_day / 1e9:.1f} GB/day before compression and retention"
        )


if __name__ == "__main__":
    asyncio.run(main())
