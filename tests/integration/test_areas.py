"""The city registry and the area rollups: zone, commune and province rows equal sums
computed here from the entity rows, on PostgreSQL and on real TimescaleDB (continuous
aggregates under the hour and day views); loads are idempotent; 100,000 entities load."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import pytest

from city.model import City, Entity, build_city
from ioc.db.queries import area_series_query
from ioc.db.registry import (
    UPSERT_AREAS,
    UPSERT_ENTITIES,
    area_columns,
    entity_columns,
    load_registry,
)
from tests.utils.namespaces import Namespace
from tests.utils.services import ROOT

# Local midnight in Quang Ninh (UTC+07:00): hour and day buckets are aligned to it.
DAY = datetime(2025, 3, 9, 17, 0, tzinfo=UTC)
START = DAY - timedelta(minutes=75)  # minutes on both sides of an hour and a day boundary
WINDOW = (DAY - timedelta(days=2), DAY + timedelta(days=2))
METRICS = {"traffic": ("vehicles", "avg_speed_kmh"), "hospital": ("er_waiting",)}
Row = tuple[Any, ...]
Key = tuple[str, str, str, datetime]  # area, domain, metric, bucket


@pytest.fixture
async def conn(namespace: Namespace) -> AsyncIterator[asyncpg.Connection]:
    settings = namespace.settings
    connection = await asyncpg.connect(
        settings.dsn, server_settings={"search_path": f"{settings.db_schema},public"}
    )
    yield connection
    await connection.close()


def pick_entities(city: City, rng: random.Random) -> list[Entity]:
    """A few traffic and hospital entities, two sharing a commune, over several zones."""
    by_commune: dict[str, list[Entity]] = defaultdict(list)
    for e in city.entities:
        if e.domain in METRICS:
            by_commune[e.commune].append(e)
    shared = next(es for es in by_commune.values() if len({e.domain for e in es}) == 2)
    others = rng.sample([e for e in city.entities if e.domain in METRICS], 10)
    return list({e.id: e for e in [*shared, *others]}.values())


def minute_rows(entities: list[Entity], rng: random.Random) -> list[Row]:
    """metric_minute rows as the sink writes them; values are multiples of 1/4, so sums
    are exact in any order. Some minutes are missing: not every entity reports each one."""
    rows = []
    for e in entities:
        for metric in METRICS[e.domain]:
            for m in range(150):
                if rng.random() < 0.3:
                    continue
                values = [rng.randrange(0, 400) / 4 for _ in range(rng.randint(1, 4))]
                rows.append(
                    (
                        e.id,
                        metric,
                        START + timedelta(minutes=m),
                        e.domain,
                        len(values),
                        sum(values),
                        min(values),
                        max(values),
                        values[-1],
                        1,
                    )
                )
    return rows


async def insert_minutes(conn: asyncpg.Connection, rows: list[Row]) -> None:
    await conn.executemany(
        "INSERT INTO metric_minute (entity_id, metric, bucket, domain, count, sum, min, max,"
        " last, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        rows,
    )


def hour_of(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def day_of(t: datetime) -> datetime:
    return DAY + timedelta(days=(t - DAY) // timedelta(days=1))


def expected(
    city: City, rows: list[Row], bucket_of: Callable[[datetime], datetime]
) -> dict[Key, Row]:
    """Area rollups computed here: each entity's series rolled up to the bucket width,
    then summed over the entity's commune, zone and the province."""
    series: dict[tuple[str, str, str, datetime], list[Row]] = defaultdict(list)
    for row in rows:
        entity, metric, t, domain = row[:4]
        series[(entity, domain, metric, bucket_of(t))].append(row)
    out: dict[Key, list[float]] = {}
    for (entity, domain, metric, bucket), minutes in series.items():
        e = city.by_id[entity]
        count = sum(r[4] for r in minutes)
        total = sum(r[5] for r in minutes)
        low, high = min(r[6] for r in minutes), max(r[7] for r in minutes)
        last = max(minutes, key=lambda r: r[2])[8]
        for area in (e.commune, e.zone, city.province.id):
            acc = out.setdefault((area, domain, metric, bucket), [0, 0, 0.0, low, high, 0.0])
            acc[0] += 1
            acc[1] += count
            acc[2] += total
            acc[3], acc[4] = min(acc[3], low), max(acc[4], high)
            acc[5] += last
    return {k: tuple(v) for k, v in out.items()}


async def stored(conn: asyncpg.Connection, view: str) -> dict[Key, Row]:
    rows = await conn.fetch(
        f"SELECT area_id, domain, metric, bucket, entities, count, sum, min, max, last_sum"
        f" FROM {view}"
    )
    return {tuple(r[:4]): tuple(r[4:]) for r in rows}


async def test_area_rollups_equal_the_sums_of_their_entities(
    namespace: Namespace, conn: asyncpg.Connection
) -> None:
    city = build_city(300)
    rng = random.Random(6)
    chosen = pick_entities(city, rng)
    rows = minute_rows(chosen, rng)
    # A series of an entity the registry does not know is left out of every area.
    rows_unregistered = [("qn-ix-nowhere-001", "vehicles", START, "traffic", 1, 5, 5, 5, 5, 1)]
    await insert_minutes(conn, rows + rows_unregistered)
    await load_registry(namespace.settings, city)

    minutes = await stored(conn, "area_metric_minute")
    assert minutes == expected(city, rows, lambda t: t)
    areas = {k[0] for k in minutes}
    zones = {city.by_id[e.id].zone for e in chosen}
    communes = {city.by_id[e.id].commune for e in chosen}
    assert areas == {city.province.id} | zones | communes
    assert len(zones) > 1

    await conn.execute("CALL refresh_rollups($1, $2)", *WINDOW)
    hours = await stored(conn, "area_metric_hour")
    assert hours == expected(city, rows, hour_of)
    days = await stored(conn, "area_metric_day")
    assert days == expected(city, rows, day_of)
    assert len({k[3] for k in days}) == 2  # the minutes straddle local midnight

    # The materialised rows (migration 0012) are the same sums, once refreshed the way the
    # sink does: pending minutes, then the hours and days around them.
    await conn.execute(MARK_PENDING, [r[2] for r in rows])
    assert await conn.fetchval("SELECT refresh_area_minutes(100)") == 100
    assert await conn.fetchval("SELECT refresh_area_minutes(1000)") == 50
    assert await conn.fetchval("SELECT refresh_area_minutes(1000)") == 0
    await conn.execute(
        "CALL refresh_area_rollups_around($1, $2)", START, START + timedelta(minutes=149)
    )
    assert await stored(conn, "area_minute") == minutes
    assert await stored(conn, "area_hour") == hours
    assert await stored(conn, "area_day") == days
    # area_series_query reads the same rows, one area's metric in a range, oldest first.
    zone = chosen[0].zone
    for bucket, rollup in (("1m", minutes), ("1h", hours), ("1d", days)):
        want = sorted((k[3], *v) for k, v in rollup.items() if k[0] == zone and k[2] == "vehicles")
        got = await conn.fetch(area_series_query(bucket), zone, "vehicles", *WINDOW)
        assert [tuple(r) for r in got] == want
        assert want

    # A refresh is absolute: rows whose entity rows went are deleted, repeats change nothing.
    gone = rows[0]
    await conn.execute(
        "DELETE FROM metric_minute WHERE entity_id = $1 AND metric = $2 AND bucket = $3", *gone[:3]
    )
    await conn.execute(MARK_PENDING, [gone[2]])
    await conn.execute(MARK_PENDING, [gone[2]])
    assert await conn.fetchval("SELECT refresh_area_minutes(1000)") == 1
    assert await stored(conn, "area_minute") == await stored(conn, "area_metric_minute")
    assert await stored(conn, "area_minute") == expected(city, rows[1:], lambda t: t)


INSERT_MINUTES = """
INSERT INTO metric_minute (entity_id, metric, bucket, domain, count, sum, min, max, last, version)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::bigint[],
                     $6::float8[], $7::float8[], $8::float8[], $9::float8[], $10::bigint[])
"""
MARK_PENDING = (
    "INSERT INTO area_pending (bucket) SELECT DISTINCT unnest($1::timestamptz[])"
    " ON CONFLICT DO NOTHING"
)
AREA_COLUMNS = "area_id, domain, metric, bucket, entities, count, sum, min, max, last_sum"


def iso(value: object) -> str:
    """Timestamps as the Node harness writes them (JavaScript's Date.toISOString())."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    raise TypeError(f"cannot serialise {type(value).__name__}")


def run_on_timescaledb(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """Steps through tests/timescaledb/harness.mjs (TimescaleDB 2.23 in PGlite), after it
    applied the TimescaleDB flavour of every migration."""
    node = shutil.which("node")
    assert node, "Node.js 20+ is needed to check the areas on TimescaleDB"
    harness = ROOT / "tests" / "timescaledb"
    if not (harness / "node_modules" / "@unni-craftsman" / "pglite").exists():
        npm = shutil.which("npm")
        assert npm, "npm is needed to install the TimescaleDB harness"
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=harness, check=True, timeout=300)
    payload = json.dumps({"schema": "areas", "steps": steps}, default=iso)
    done = subprocess.run(
        [node, "harness.mjs"], cwd=harness, input=payload.encode(), capture_output=True, timeout=180
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_area_rollups_on_timescaledb_equal_the_sums_of_their_entities() -> None:
    city = build_city(300)
    rng = random.Random(7)
    rows = minute_rows(pick_entities(city, rng), rng)
    steps: list[dict[str, Any]] = [
        {"sql": UPSERT_AREAS, "params": area_columns(city), "name": "areas"},
        {"sql": UPSERT_ENTITIES, "params": entity_columns(city), "name": "entities"},
        {"sql": UPSERT_ENTITIES, "params": entity_columns(city), "name": "entities_again"},
        {"sql": INSERT_MINUTES, "params": [list(c) for c in zip(*rows, strict=True)]},
        {"sql": "CALL refresh_rollups($1, $2)", "params": list(WINDOW)},
        {"sql": MARK_PENDING, "params": [[r[2] for r in rows]]},
        {"sql": "SELECT refresh_area_minutes(1000) AS n", "name": "pending"},
        {
            "sql": "CALL refresh_area_rollups_around($1, $2)",
            "params": [START, START + timedelta(minutes=149)],
        },
    ]
    views = {"1m": "area_metric_minute", "1h": "area_metric_hour", "1d": "area_metric_day"}
    tables = {"1m": "area_minute", "1h": "area_hour", "1d": "area_day"}
    steps += [{"sql": f"SELECT {AREA_COLUMNS} FROM {v}", "name": b} for b, v in views.items()]
    steps += [
        {"sql": f"SELECT {AREA_COLUMNS} FROM {v}", "name": f"{b} table"} for b, v in tables.items()
    ]
    done = run_on_timescaledb(steps)

    assert done["server"]["timescaledb"].startswith("2.23")
    assert "0006_areas.sql" in done["applied"]
    results = done["results"]
    assert results["areas"] == [{"count": 68}]
    assert results["entities"] == [{"count": 300}]
    assert results["entities_again"] == [{"count": 0}]
    assert results["pending"] == [{"n": 150}]
    for bucket, bucket_of in (("1m", lambda t: t), ("1h", hour_of), ("1d", day_of)):
        want = expected(city, rows, bucket_of)
        for name in (bucket, f"{bucket} table"):
            got = {
                (r["area_id"], r["domain"], r["metric"], datetime.fromisoformat(r["bucket"])): (
                    r["entities"],
                    r["count"],
                    r["sum"],
                    r["min"],
                    r["max"],
                    r["last_sum"],
                )
                for r in results[name]
            }
            assert got == want, name
        assert want


async def registry_rows(conn: asyncpg.Connection) -> list[Row]:
    """Every registry row with its row version (xmin) and write time."""
    rows = await conn.fetch("SELECT xmin::text, * FROM area ORDER BY id")
    rows += await conn.fetch("SELECT xmin::text, * FROM entity ORDER BY id")
    return [tuple(r) for r in rows]


async def test_the_registry_holds_the_model_and_loading_twice_changes_nothing(
    namespace: Namespace, conn: asyncpg.Connection
) -> None:
    city = build_city(300)
    first = await load_registry(namespace.settings, city)
    assert (first.areas, first.areas_changed) == (68, 68)
    assert (first.entities, first.entities_changed) == (300, 300)
    kinds = {
        r["kind"]: r["count"]
        for r in await conn.fetch("SELECT kind, count(*) FROM area GROUP BY kind")
    }
    assert kinds == {"province": 1, "zone": 13, "commune": 54}
    orphans = await conn.fetchval(
        "SELECT count(*) FROM area c JOIN area z ON z.id = c.parent_id"
        " WHERE c.kind = 'commune' AND z.kind <> 'zone'"
    )
    assert orphans == 0
    commune = city.communes[0]
    boundary = await conn.fetchval("SELECT boundary::text FROM area WHERE id = $1", commune.id)
    assert orjson.loads(boundary) == [list(p) for p in commune.polygon]
    landmark = city.entities[0]
    row = await conn.fetchrow("SELECT * FROM entity WHERE id = $1", landmark.id)
    assert row is not None
    assert (row["commune_id"], row["zone_id"], row["domain"]) == (
        landmark.commune,
        landmark.zone,
        landmark.domain,
    )
    assert orjson.loads(row["attrs"]) == dict(landmark.attrs)

    before = await registry_rows(conn)
    again = await load_registry(namespace.settings, city)
    assert (again.areas_changed, again.entities_changed) == (0, 0)
    assert await registry_rows(conn) == before

    # A changed entity is the only row written by the next load.
    moved = dataclasses.replace(city.entities[5], commune=city.communes[-1].id)
    moved = dataclasses.replace(moved, zone=city.communes[-1].parent or "")
    entities = (*city.entities[:5], moved, *city.entities[6:])
    third = await load_registry(namespace.settings, dataclasses.replace(city, entities=entities))
    assert (third.areas_changed, third.entities_changed) == (0, 1)
    after = await registry_rows(conn)
    assert {r[1] for r in after if r not in before} == {moved.id}
    members = await conn.fetch(
        "SELECT area_id FROM area_entity WHERE entity_id = $1 ORDER BY 1", moved.id
    )
    assert [r[0] for r in members] == sorted([moved.commune, moved.zone, city.province.id])


async def test_a_hundred_thousand_entities_load(
    namespace: Namespace, conn: asyncpg.Connection
) -> None:
    city = build_city(100_000)
    started = time.perf_counter()
    first = await load_registry(namespace.settings, city)
    loaded_s = time.perf_counter() - started
    started = time.perf_counter()
    again = await load_registry(namespace.settings, city)
    reloaded_s = time.perf_counter() - started
    print(f"\nregistry of 100,000 entities: first load {loaded_s:.2f} s, again {reloaded_s:.2f} s")
    assert first.entities_changed == 100_000
    assert again.entities_changed == 0
    assert await conn.fetchval("SELECT count(*) FROM entity") == 100_000
    members = await conn.fetchval("SELECT count(*) FROM area_entity")
    assert members == 300_000  # each entity in its commune, its zone and the province


def test_ioc_seed_loads_the_namespace_registry_and_refuses_a_bad_scale(
    namespace: Namespace,
) -> None:
    def seed(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ioc.cli", "seed", *args],
            cwd=ROOT,
            env={**os.environ, **namespace.env, "COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=120,
        )

    result = seed("--entities", "250", "--seed", "3")
    assert result.returncode == 0, result.stderr
    assert "68 areas (68 written), 250 entities (250 written)" in result.stderr
    result = seed("--entities", "250", "--seed", "3")
    assert "68 areas (0 written), 250 entities (0 written)" in result.stderr
    result = seed("--entities", "0")
    assert result.returncode == 2
    assert "entities must be between 1 and 100000" in result.stderr
