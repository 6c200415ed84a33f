"""History of one area's metric (the province, a zone or a commune) in time buckets, read
from the area rollups the sink keeps (migration 0012), and the operations centre's own
hourly counts of alerts and incidents per area (kept by the incident agents)."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

import asyncpg
import orjson
from asyncpg.pool import PoolConnectionProxy
from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field

from api.auth import ViewCaller
from api.deps import PoolDep, SettingsDep
from api.namespaces import NAMESPACE_PROBLEMS
from api.problems import Problem, problem_responses
from api.series_params import (
    JSON,
    EndParam,
    MetricParam,
    StartParam,
    align,
    choose_width,
    series_range,
)
from contract.catalog import DOMAINS, METRIC_READINGS
from ioc.db.queries import (
    ACTIVITY_METRICS,
    SERIES_WIDTHS,
    activity_series_query,
    area_edge_query,
    area_minutes_query,
    area_mixed_series_query,
    rollup_for,
)

router = APIRouter(prefix="/v1/areas", tags=["areas"])

#: The pseudo-domain of the operations centre's own series (alerts, incidents per hour).
IOC_DOMAIN = "ioc"
#: The domains of the event contract, and ``ioc``.
AreaDomain = StrEnum("AreaDomain", {name: name for name in (*DOMAINS, IOC_DOMAIN)})  # type: ignore[misc]
AreaBucket = Literal["auto", "1m", "5m", "15m", "30m", "1h", "3h", "6h", "12h", "1d", "7d"]
HOUR_S = 3600


class AreaPoint(BaseModel):
    t: datetime = Field(description="Bucket start")
    value: float = Field(description="The area's reading of the metric (see `reading`)")
    entities: int | None = Field(
        description="Entities with a reading in the bucket (for a point made of several "
        "stored buckets, in its busiest one); null for `ioc` series"
    )
    count: int = Field(description="Readings (for `ioc` series: alerts or incidents)")
    sum: float
    min: float | None
    max: float | None
    last_sum: float | None = Field(
        description="Sum of each entity's last value in the bucket (for a point made of "
        "several stored buckets, in the newest one)"
    )


class AreaSeries(BaseModel):
    area_id: str
    domain: str
    metric: str
    reading: Literal["sum", "mean", "last_sum", "count"] = Field(
        description="What `value` is: the sum of the readings (counts and quantities), "
        "their mean (rates and levels), the sum of each entity's last value (gauges), or "
        "for `ioc` series the number opened in the bucket"
    )
    bucket: str
    source: str = Field(
        description="Where the points come from: minute, hour+minute, day+minute (area "
        "rollups) or activity (the incident agents' hourly counts)"
    )
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    points: list[AreaPoint]


def _value(reading: str, count: int, total: float, last_sum: float) -> float:
    if reading == "mean":
        return total / count if count else 0.0
    if reading == "last_sum":
        return last_sum
    return total


def _body(head: dict[str, Any], points: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({**head, "points": points}, option=orjson.OPT_UTC_Z)


async def _places(
    conn: PoolConnectionProxy[asyncpg.Record], area_id: str, kind: str, metric: str
) -> list[str]:
    """The agents' rows that make an area's count: alerts are counted by each commune
    and by each zone (so the province adds its zones); incidents are opened at a commune
    or at a zone (so an area adds its own and those of every area inside it)."""
    if metric == "alerts":
        if kind != "province":
            return [area_id]
        rows = await conn.fetch("SELECT id FROM area WHERE parent_id = $1", area_id)
        return [r["id"] for r in rows]
    rows = await conn.fetch(
        "SELECT id FROM area WHERE id = $1 OR parent_id = $1"
        " OR parent_id IN (SELECT id FROM area WHERE parent_id = $1)",
        area_id,
    )
    return [r["id"] for r in rows]


@router.get(
    "/{area_id}/series",
    response_model=AreaSeries,
    responses=problem_responses(400, 404, *NAMESPACE_PROBLEMS),
)
async def area_series(
    caller: ViewCaller,
    pool: PoolDep,
    settings: SettingsDep,
    area_id: Annotated[str, Path(max_length=64, examples=["halong"])],
    domain: Annotated[
        AreaDomain,
        Query(description="A domain, or `ioc` for the alerts and incidents opened per hour"),
    ],
    metric: MetricParam,
    start: StartParam = None,
    end: EndParam = None,
    bucket: Annotated[
        AreaBucket,
        Query(description="Bucket width; `auto` picks one from the range (`ioc`: 1h or wider)"),
    ] = "auto",
) -> Response:
    """One metric of an area per time bucket, oldest first: its reading over the area's
    registered entities (sum for counts, mean for rates, summed last values for gauges).

    Area minutes are recomputed by the sink every IOC_SINK__AREA_REFRESH_S, so the newest
    minutes may lag the entity series by that much; whole hours and days come from the
    area rollups, the newest one and after from the area minutes.
    """
    start, end = series_range(start, end)
    domain_name = str(domain.value)
    if domain_name == IOC_DOMAIN:
        known: set[str] = set(ACTIVITY_METRICS)
        reading = "count"
    else:
        known = set(METRIC_READINGS[domain_name])
        reading = METRIC_READINGS[domain_name].get(metric, "sum")
    if metric not in known:
        raise Problem(
            404,
            "unknown-metric",
            "Unknown metric",
            f"{domain_name} has no metric {metric!r}; known: {', '.join(sorted(known))}",
        )
    max_points = settings.api.max_series_points
    width_name = choose_width(start, end, bucket, max_points)
    width_s = SERIES_WIDTHS[width_name]
    if domain_name == IOC_DOMAIN and width_s % HOUR_S:
        if bucket != "auto":
            raise Problem(
                400,
                "hourly-series",
                "Hourly series",
                f"alerts and incidents are counted per hour: use bucket=1h or wider, not {bucket}",
            )
        width_name = choose_width(start, end, "1h", max_points)
        width_s = SERIES_WIDTHS[width_name]
    first = align(start, width_s)
    head: dict[str, Any] = {
        "area_id": area_id,
        "domain": domain_name,
        "metric": metric,
        "reading": reading,
        "bucket": width_name,
        "from": first,
        "to": end,
    }
    async with pool.acquire() as conn:
        kind = await conn.fetchval("SELECT kind FROM area WHERE id = $1", area_id)
        if kind is None:
            raise Problem(404, "unknown-area", "Unknown area", f"no area {area_id!r}")
        if domain_name == IOC_DOMAIN:
            places = await _places(conn, area_id, kind, metric)
            rows = await conn.fetch(
                activity_series_query(metric), places, first, end, timedelta(seconds=width_s)
            )
            points = [
                {
                    "t": t,
                    "value": float(n),
                    "entities": None,
                    "count": n,
                    "sum": float(n),
                    "min": None,
                    "max": None,
                    "last_sum": None,
                }
                for t, n in rows
            ]
            return Response(_body({**head, "source": "activity"}, points), media_type=JSON)
        source = "minute"
        if width_s == SERIES_WIDTHS["1m"]:
            rows = await conn.fetch(area_minutes_query(), area_id, domain_name, metric, first, end)
        else:
            rollup = rollup_for(width_s)
            edge = first
            if rollup != "1m":
                newest = await conn.fetchval(
                    area_edge_query(rollup), area_id, domain_name, metric, first, end
                )
                if newest is not None and newest > first:
                    edge = newest
                    source = {"1h": "hour", "1d": "day"}[rollup] + "+minute"
            rows = await conn.fetch(
                area_mixed_series_query("1h" if rollup == "1m" else rollup),
                area_id,
                domain_name,
                metric,
                first,
                end,
                timedelta(seconds=width_s),
                edge,
            )
    points = [
        {
            "t": t,
            "value": _value(reading, count, total, last_sum),
            "entities": entities,
            "count": count,
            "sum": total,
            "min": low,
            "max": high,
            "last_sum": last_sum,
        }
        for t, entities, count, total, low, high, last_sum in rows
    ]
    return Response(_body({**head, "source": source}, points), media_type=JSON)
