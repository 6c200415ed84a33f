"""GET /v1/areas/{id}/series: every bucket width of every tier equals the sums over the
area's entities computed here from the entity rows; the sink keeps the area rows up to
date from events that came through Kafka; unknown areas, metrics and ranges are problems.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from city.model import City, Entity, build_city
from contract.catalog import METRIC_READINGS
from ioc.db.registry import load_registry
from streams.topics import raw_topic
from tests.utils.apikeys import auth
from tests.utils.events import T0, Record, flow_value
from tests.utils.eventually import eventually
from tests.utils.kafka import produce
from tests.utils.namespaces import Namespace
from tests.utils.services import start_api, start_worker

ORIGIN = datetime(2000, 1, 1, tzinfo=UTC) - timedelta(hours=7)
#: 23:00 local on 8 March 2025: the rows cross an hour and a local midnight.
START = datetime(2025, 3, 9, 16, 0, tzinfo=UTC)
MINUTES = 150
METRICS = {"traffic": ("vehicles", "avg_speed_kmh"), "hospital": ("er_waiting",)}
Row = tuple[Any, ...]  # entity, metric, bucket, domain, count, sum, min, max, last, version


@dataclass
class World:
    base: str
    city: City
    rows: list[Row]
    chosen: list[Entity]

    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(self.base + path, params=params, headers=auth("view"), timeout=30)

    def series(self, area: str, metric: str, bucket: str, **span: datetime) -> dict[str, Any]:
        domain = next(d for d, ms in METRICS.items() if metric in ms)
        params = {k: v.isoformat() for k, v in span.items()}
        response = self.get(
            f"/v1/areas/{area}/series",
            domain=domain,
            metric=metric,
            bucket=bucket,
            **{"from": params["start"], "to": params["end"]},
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def minute_rows(entities: list[Entity], rng: random.Random) -> list[Row]:
    """metric_minute rows as the sink writes them; values are multiples of 1/4 (exact sums
    in any order); not every entity reports every minute."""
    rows = []
    for e in entities:
        for metric in METRICS[e.domain]:
            for m in range(MINUTES):
                if rng.random() < 0.3:
                    continue
                values = [rng.randrange(0, 400) / 4 for _ in range(rng.randint(1, 4))]
                at = START + timedelta(minutes=m)
                count, total, low, high = len(values), sum(values), min(values), max(values)
                rows.append((e.id, metric, at, e.domain, count, total, low, high, values[-1], 1))
    return rows


@pytest.fixture(scope="module")
async def world(module_namespace: Namespace) -> AsyncIterator[World]:
    settings = module_namespace.settings
    city = build_city(300)
    await load_registry(settings, city)
    rng = random.Random(17)
    halong = [e for e in city.entities if e.zone == "halong" and e.domain in METRICS]
    others = [e for e in city.entities if e.zone != "halong" and e.domain in METRICS]
    chosen = halong[:12] + rng.sample(others, 8)
    rows = minute_rows(chosen, rng)
    conn = await asyncpg.connect(
        settings.dsn, server_settings={"search_path": f"{settings.db_schema},public"}
    )
    try:
        await conn.executemany(
            "INSERT INTO metric_minute (entity_id, metric, bucket, domain, count, sum, min,"
            " max, last, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            rows,
        )
        # What the sink does after writing these minutes, and once their hours are final.
        await conn.execute(
            "INSERT INTO area_pending (bucket) SELECT DISTINCT unnest($1::timestamptz[])",
            [r[2] for r in rows],
        )
        while await conn.fetchval("SELECT refresh_area_minutes(60)"):
            pass
        last = START + timedelta(minutes=MINUTES - 1)
        await conn.execute("CALL refresh_rollups_around($1, $2)", START, last)
        await conn.execute("CALL refresh_area_rollups_around($1, $2)", START, last)
    finally:
        await conn.close()
    process, base = start_api(
        module_namespace, env={"IOC_API__RATE_PER_S": "1000", "IOC_API__RATE_BURST": "1000"}
    )
    try:
        yield World(base=base, city=city, rows=rows, chosen=chosen)
    finally:
        process.stop()


def floor(t: datetime, width: timedelta) -> datetime:
    return ORIGIN + (t - ORIGIN) // width * width


def expected_points(
    world: World,
    area: str,
    metric: str,
    width: timedelta,
    *,
    stored: timedelta,
    edge: datetime | None = None,
) -> list[dict[str, Any]]:
    """The series computed here: each entity's rows rolled up to ``stored`` (the stored
    bucket a point is read from: a minute, an hour or a day; minutes from ``edge`` on),
    summed over the area's entities, then stored buckets combined into ``width`` points
    (count and sum add, min and max, the newest stored bucket's last_sum, the busiest
    one's entities)."""
    city = world.city

    def in_area(entity: str) -> bool:
        e = city.by_id[entity]
        return area in (e.commune, e.zone, city.province.id)

    per_entity: dict[tuple[str, datetime], list[Row]] = defaultdict(list)
    for row in world.rows:
        if row[1] == metric and in_area(row[0]):
            rollup = stored if edge is None or row[2] < edge else MINUTE
            per_entity[(row[0], floor(row[2], rollup))].append(row)
    cells: dict[datetime, list[float]] = {}
    for (_, bucket), rows in per_entity.items():
        cell = cells.setdefault(bucket, [0, 0, 0.0, float("inf"), float("-inf"), 0.0])
        cell[0] += 1
        cell[1] += sum(r[4] for r in rows)
        cell[2] += sum(r[5] for r in rows)
        cell[3] = min(cell[3], *(r[6] for r in rows))
        cell[4] = max(cell[4], *(r[7] for r in rows))
        cell[5] += max(rows, key=lambda r: r[2])[8]
    points: dict[datetime, dict[str, Any]] = {}
    for bucket in sorted(cells):
        entities, count, total, low, high, last_sum = cells[bucket]
        t = floor(bucket, width)
        p = points.setdefault(t, {"entities": 0, "count": 0, "sum": 0.0, "min": low, "max": high})
        p["entities"] = max(p["entities"], entities)
        p["count"] += count
        p["sum"] += total
        p["min"], p["max"] = min(p["min"], low), max(p["max"], high)
        p["last_sum"] = last_sum
    reading = METRIC_READINGS[next(d for d, m in METRICS.items() if metric in m)][metric]
    out = []
    for t, p in sorted(points.items()):
        value = {"sum": p["sum"], "mean": p["sum"] / p["count"], "last_sum": p["last_sum"]}
        out.append({"t": t, "value": value[reading], **p})
    return out


def got_points(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [{**p, "t": datetime.fromisoformat(p["t"]), "count": p["count"]} for p in body["points"]]


MINUTE, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
SPAN = {"start": START - timedelta(hours=2), "end": START + timedelta(hours=4)}


@pytest.mark.parametrize("metric", ["vehicles", "avg_speed_kmh", "er_waiting"])
def test_minutes_equal_the_sums_of_the_areas_entities(world: World, metric: str) -> None:
    city = world.city
    some_commune = next(e.commune for e in world.chosen if metric in METRICS[e.domain])
    for area in (city.province.id, "halong", some_commune):
        body = world.series(area, metric, "1m", **SPAN)
        assert (body["bucket"], body["source"]) == ("1m", "minute")
        want = expected_points(world, area, metric, MINUTE, stored=MINUTE)
        assert want, (area, metric)
        assert got_points(body) == want, (area, metric)
        assert body["reading"] == METRIC_READINGS[body["domain"]][metric]


@pytest.mark.parametrize("bucket", ["5m", "30m", "1h", "3h", "1d"])
def test_wider_buckets_combine_the_stored_tiers(world: World, bucket: str) -> None:
    """Hours and days before the newest stored one come from the area rollups (their
    entities and last_sum are of the whole hour or day); the newest and after from the
    area minutes; a point spanning both combines them."""
    width = {"5m": 5 * MINUTE, "30m": 30 * MINUTE, "1h": HOUR, "3h": 3 * HOUR, "1d": DAY}[bucket]
    span = SPAN if bucket != "1d" else {"start": START - DAY, "end": START + DAY}
    for area in (world.city.province.id, "halong"):
        for metric in ("vehicles", "er_waiting"):
            body = world.series(area, metric, bucket, **span)
            got = got_points(body)
            if width < HOUR:
                assert body["source"] == "minute"
                assert got == expected_points(world, area, metric, width, stored=MINUTE)
                continue
            stored = DAY if width >= DAY else HOUR
            # The newest stored hour or day is read from its minutes (it may be open).
            edge = max(floor(r[2], stored) for r in world.rows)
            want = expected_points(world, area, metric, width, stored=stored, edge=edge)
            assert len(want) >= 2, (area, metric, bucket)
            assert got == want, (area, metric, bucket)
            assert body["source"] == ("day" if stored == DAY else "hour") + "+minute"


def test_every_entity_counts_once_in_the_province(world: World) -> None:
    """The province's counts are the sums of its zones', and of all the entity rows."""
    span = {"start": START, "end": START + timedelta(minutes=MINUTES)}
    province = world.series(world.city.province.id, "vehicles", "1d", **span)
    total = sum(r[4] for r in world.rows if r[1] == "vehicles")
    assert sum(p["count"] for p in province["points"]) == total
    zones = {world.city.by_id[e.id].zone for e in world.chosen}
    by_zone = sum(
        p["count"] for zone in zones for p in world.series(zone, "vehicles", "1d", **span)["points"]
    )
    assert by_zone == total


def problem(response: httpx.Response) -> tuple[int, str]:
    assert response.headers["content-type"] == "application/problem+json", response.text
    return response.status_code, response.json()["type"].rsplit("/", 1)[1]


def test_problems_for_unknown_areas_metrics_and_ranges(world: World) -> None:
    span = {"from": START.isoformat(), "to": (START + HOUR).isoformat()}

    def ask(area: str = "halong", **params: Any) -> httpx.Response:
        query = {"domain": "traffic", "metric": "vehicles", **span, **params}
        return world.get(f"/v1/areas/{area}/series", **query)

    assert ask().status_code == 200
    assert problem(ask("nowhere")) == (404, "unknown-area")
    assert problem(ask(metric="er_waiting")) == (404, "unknown-metric")
    assert problem(ask(domain="weather")) == (422, "invalid-request")
    assert problem(ask(bucket="raw")) == (422, "invalid-request")
    long = {"from": (START - 30 * DAY).isoformat(), "to": START.isoformat()}
    assert problem(ask(bucket="1m", **long)) == (400, "too-many-points")
    assert problem(ask(**{"from": span["to"], "to": span["from"]})) == (422, "invalid-request")
    assert problem(ask(**{"from": "yesterday"})) == (422, "invalid-request")
    assert problem(ask(domain="ioc", metric="alerts", bucket="5m")) == (400, "hourly-series")
    assert problem(ask(domain="ioc", metric="vehicles")) == (404, "unknown-metric")


async def test_the_sink_keeps_the_area_minutes_of_events_through_kafka(
    namespace: Namespace,
) -> None:
    """Events of entities in two communes of one zone, through Kafka, the worker and the
    sink: the area series of each commune, the zone and the province equal the vehicles
    sent, once the sink's area refresh (every second here) has run."""
    settings = namespace.settings
    city = build_city(300)
    await load_registry(settings, city)
    traffic = [e for e in city.in_domain("traffic") if e.zone == "halong"]
    communes = sorted({e.commune for e in traffic})[:2]
    chosen = [e for e in traffic if e.commune in communes][:6]
    assert len({e.commune for e in chosen}) == 2
    sent: dict[tuple[str, datetime], int] = defaultdict(int)
    records = []
    for minute in range(5):
        for n, e in enumerate(chosen):
            at = T0 + timedelta(minutes=minute, seconds=n)
            vehicles = 3 * minute + n
            records.append(
                Record(
                    e.id.encode(),
                    flow_value(e.id, at, vehicles=vehicles),
                    int(at.timestamp() * 1000),
                )
            )
            for area in (e.commune, e.zone, city.province.id):
                sent[(area, T0 + timedelta(minutes=minute))] += vehicles
    worker = start_worker(namespace, env={"IOC_SINK__AREA_REFRESH_S": "1"})
    process, base = start_api(namespace)
    try:
        await produce(settings, raw_topic(settings, "traffic"), records)
        span = {"from": T0.isoformat(), "to": (T0 + timedelta(minutes=5)).isoformat()}

        def series(area: str) -> dict[datetime, float]:
            response = httpx.get(
                f"{base}/v1/areas/{area}/series",
                params={"domain": "traffic", "metric": "vehicles", "bucket": "1m", **span},
                headers=auth("view"),
                timeout=20,
            )
            assert response.status_code == 200, response.text
            return {datetime.fromisoformat(p["t"]): p["value"] for p in response.json()["points"]}

        areas = [*communes, "halong", city.province.id]

        def want(area: str) -> dict[datetime, float]:
            return {t: float(v) for (a, t), v in sent.items() if a == area}

        eventually(
            lambda: all(series(a) == want(a) for a in areas),
            within_s=60,
            what="the area minutes to hold every event sent",
        )
        for area in areas:
            assert series(area) == want(area), area
        assert sum(want(communes[0]).values()) + sum(want(communes[1]).values()) == sum(
            want("halong").values()
        )
    finally:
        process.stop()
        worker.stop()


async def test_ioc_series_count_alerts_and_incidents_per_area(
    namespace: Namespace,
) -> None:
    """The incident agents' rows: a commune's and a zone's alerts are their own rows, the
    province's the sum of its zones'; an area's incidents add those of the areas inside
    it. Hours group into wider buckets; hours with none are left out."""
    settings = namespace.settings
    city = build_city(300)
    await load_registry(settings, city)
    halong = [c.id for c in city.communes if c.parent == "halong"][:2]
    campha = next(c.id for c in city.communes if c.parent == "campha")
    h0 = START
    rows = [  # area, hour, alerts, incidents
        (halong[0], h0, 4, 1),
        (halong[1], h0, 2, 0),
        ("halong", h0, 6, 1),
        (halong[0], h0 + HOUR, 3, 0),
        ("halong", h0 + HOUR, 3, 0),
        (campha, h0 + 2 * HOUR, 5, 2),
        ("campha", h0 + 2 * HOUR, 5, 1),
    ]
    conn = await asyncpg.connect(
        settings.dsn, server_settings={"search_path": f"{settings.db_schema},public"}
    )
    try:
        await conn.executemany(
            "INSERT INTO area_activity_hour (area_id, hour, alerts, incidents)"
            " VALUES ($1, $2, $3, $4)",
            rows,
        )
    finally:
        await conn.close()
    process, base = start_api(namespace)
    try:

        def counts(area: str, metric: str, bucket: str) -> list[tuple[datetime, float]]:
            response = httpx.get(
                f"{base}/v1/areas/{area}/series",
                params={
                    "domain": "ioc",
                    "metric": metric,
                    "bucket": bucket,
                    "from": h0.isoformat(),
                    "to": (h0 + 6 * HOUR).isoformat(),
                },
                headers=auth("view"),
                timeout=20,
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert (body["reading"], body["source"]) == ("count", "activity")
            assert all(p["count"] == p["value"] for p in body["points"])
            return [(datetime.fromisoformat(p["t"]), p["value"]) for p in body["points"]]

        province = city.province.id
        assert counts(halong[0], "alerts", "1h") == [(h0, 4), (h0 + HOUR, 3)]
        assert counts("halong", "alerts", "1h") == [(h0, 6), (h0 + HOUR, 3)]
        assert counts(province, "alerts", "1h") == [(h0, 6), (h0 + HOUR, 3), (h0 + 2 * HOUR, 5)]
        assert counts(halong[0], "incidents", "1h") == [(h0, 1)]
        # Ha Long's own zone-level incident and its commune's.
        assert counts("halong", "incidents", "1h") == [(h0, 2)]
        assert counts(province, "incidents", "1h") == [(h0, 2), (h0 + 2 * HOUR, 3)]
        # 3-hour buckets from local midnight (17:00 UTC): 14:00-17:00 holds 16:00, then
        # 17:00-20:00.
        assert counts(province, "alerts", "3h") == [(h0 - 2 * HOUR, 6), (h0 + HOUR, 8)]
        # auto over six hours would give 15 minutes: the counts come per hour.
        assert counts(province, "alerts", "auto") == counts(province, "alerts", "1h")
    finally:
        process.stop()
