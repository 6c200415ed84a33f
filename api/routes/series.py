"""History of one entity's metric in time buckets, read from the right table by itself."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import asyncpg
import orjson
from asyncpg.pool import PoolConnectionProxy
from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field

from api.auth import ViewCaller
from api.deps import DomainDep, PoolDep, SettingsDep
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
from contract.catalog import PAYLOAD_MODELS
from contract.envelope import read_payload
from contract.rejection import Rejection
from ioc.db.queries import (
    SERIES_WIDTHS,
    mixed_series_query,
    rollup_edge_query,
    rollup_for,
    series_query,
)

router = APIRouter(prefix="/v1", tags=["history"])

Bucket = Literal["auto", "raw", "1m", "5m", "15m", "30m", "1h", "3h", "6h", "12h", "1d", "7d"]


class SeriesPoint(BaseModel):
    t: datetime = Field(description="Bucket start (or event time for raw points)")
    count: int
    sum: float
    min: float
    max: float
    avg: float
    last: float


class Series(BaseModel):
    entity_id: str
    domain: str
    metric: str
    bucket: str = Field(description="The bucket width used ('raw': one point per event)")
    source: str = Field(description="Where the points come from: raw, minute, hour or day")
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    points: list[SeriesPoint]


def series_json(
    *,
    entity_id: str,
    domain: str,
    metric: str,
    bucket: str,
    source: str,
    start: datetime,
    end: datetime,
    rows: Iterable[Iterable[Any]],
) -> bytes:
    """A Series as JSON, encoded straight from rows of ``t, count, sum, min, max, last``.

    Same bytes as the model would give (the rows' types are already the model's); a model
    per point cost more than the query itself for a day of minutes (1,440 points).
    """
    points = [
        {
            "t": t,
            "count": count,
            "sum": total,
            "min": low,
            "max": high,
            "avg": total / count if count else 0.0,
            "last": last,
        }
        for t, count, total, low, high, last in rows
    ]
    body = {
        "entity_id": entity_id,
        "domain": domain,
        "metric": metric,
        "bucket": bucket,
        "source": source,
        "from": start,
        "to": end,
        "points": points,
    }
    return orjson.dumps(body, option=orjson.OPT_UTC_Z)


RAW_QUERY = """
SELECT event_time, event_type, payload FROM raw_event
WHERE entity_id = $1 AND event_time >= $2 AND event_time < $3
ORDER BY event_time
LIMIT $4
"""


async def _raw_points(
    conn: PoolConnectionProxy[asyncpg.Record],
    *,
    entity_id: str,
    metric: str,
    start: datetime,
    end: datetime,
    max_points: int,
) -> list[SeriesPoint]:
    """One point per kept event (incidents, admissions, alarms ...) carrying ``metric``."""
    rows = await conn.fetch(RAW_QUERY, entity_id, start, end, max_points + 1)
    if len(rows) > max_points:
        raise Problem(
            400,
            "too-many-points",
            "Too many points",
            f"more than {max_points} raw events in range: use a bucket or a shorter range",
            max_points=max_points,
        )
    points = []
    for row in rows:
        model = PAYLOAD_MODELS.get(row["event_type"])
        if model is None:
            continue
        try:
            payload = read_payload(model, orjson.loads(row["payload"]))
        except Rejection:
            continue
        value = payload.metrics().get(metric)
        if value is not None:
            v = float(value)
            points.append(
                SeriesPoint(t=row["event_time"], count=1, sum=v, min=v, max=v, avg=v, last=v)
            )
    return points


@router.get(
    "/{domain}/entities/{entity_id}/series",
    response_model=Series,
    responses=problem_responses(400, *NAMESPACE_PROBLEMS),
)
async def entity_series(
    caller: ViewCaller,
    pool: PoolDep,
    settings: SettingsDep,
    domain: DomainDep,
    entity_id: Annotated[str, Path(max_length=128, examples=["qn-ix-halong-001"])],
    metric: MetricParam,
    start: StartParam = None,
    end: EndParam = None,
    bucket: Annotated[
        Bucket,
        Query(
            description="Bucket width; `auto` picks one from the range, `raw` gives one "
            "point per kept event (incidents, admissions, detections, alarms)"
        ),
    ] = "auto",
) -> Response:
    """Aggregates of one metric of one entity per time bucket, oldest first.

    Minutes come from the minute table, whole hours and days from the hour and day
    rollups up to their last refresh and from minutes after it.
    """
    start, end = series_range(start, end)
    max_points = settings.api.max_series_points
    async with pool.acquire() as conn:
        known = await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM entity_state WHERE entity_id = $1 AND domain = $2)"
            " OR EXISTS (SELECT 1 FROM entity WHERE id = $1 AND domain = $2)",
            entity_id,
            domain,
        )
        if not known:
            raise Problem(
                404, "unknown-entity", "Unknown entity", f"no {domain} entity {entity_id!r}"
            )
        if bucket == "raw":
            points = await _raw_points(
                conn,
                entity_id=entity_id,
                metric=metric,
                start=start,
                end=end,
                max_points=max_points,
            )
            series = Series(
                entity_id=entity_id,
                domain=domain,
                metric=metric,
                bucket="raw",
                source="raw",
                start=start,
                end=end,
                points=points,
            )
            return Response(series.model_dump_json(by_alias=True), media_type=JSON)
        width_name = choose_width(start, end, bucket, max_points)
        width_s = SERIES_WIDTHS[width_name]
        first = align(start, width_s)
        rollup = rollup_for(width_s)
        edge = first
        source = "minute"
        if rollup != "1m":
            newest = await conn.fetchval(rollup_edge_query(rollup), entity_id, metric, first, end)
            if newest is not None and newest > first:
                # The newest rollup bucket may be open (the sink rolls up only final hours)
                # or have been refreshed before its last minutes came: it is read from
                # the minutes, with everything after it.
                edge = newest
                source = {"1h": "hour", "1d": "day"}[rollup] + "+minute"
        if width_s == SERIES_WIDTHS["1m"]:
            # Buckets are the stored minutes: read them as they are, without regrouping.
            rows = await conn.fetch(series_query("1m"), entity_id, metric, first, end)
        else:
            rows = await conn.fetch(
                mixed_series_query(rollup),
                entity_id,
                metric,
                first,
                end,
                timedelta(seconds=width_s),
                edge,
            )
    body = series_json(
        entity_id=entity_id,
        domain=domain,
        metric=metric,
        bucket=width_name,
        source=source,
        start=first,
        end=end,
        rows=rows,
    )
    return Response(body, media_type=JSON)
