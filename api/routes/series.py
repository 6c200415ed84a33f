"""History of one entity's metric in time buckets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from api.auth import ViewCaller
from api.deps import PoolDep
from api.problems import Problem
from streams.catalog import DOMAINS

router = APIRouter(prefix="/v1", tags=["history"])

MAX_POINTS = 10_000
BUCKETS = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
}


class SeriesPoint(BaseModel):
    t: datetime
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
    bucket: str
    points: list[SeriesPoint]


QUERY = """
SELECT date_bin($4::interval, bucket, TIMESTAMPTZ '2000-01-01') AS t,
       sum(count)::bigint AS count, sum(sum) AS sum, min(min) AS min, max(max) AS max,
       (array_agg(last ORDER BY bucket DESC))[1] AS last
FROM metric_minute
WHERE entity_id = $1 AND metric = $2 AND bucket >= $3 AND bucket < $5
GROUP BY 1 ORDER BY 1
"""


@router.get(
    "/{domain}/entities/{entity_id}/series",
    responses={
        404: {"description": "Unknown domain or entity"},
        400: {"description": "Range too long for the bucket"},
    },
)
async def entity_series(
    caller: ViewCaller,
    pool: PoolDep,
    domain: Annotated[str, Path(description="traffic, hospital, school or security")],
    entity_id: Annotated[str, Path(max_length=128)],
    metric: Annotated[str, Query(max_length=64, examples=["vehicles"])],
    start: Annotated[datetime | None, Query(alias="from")] = None,
    end: Annotated[datetime | None, Query(alias="to")] = None,
    bucket: Literal["1m", "5m", "15m", "1h", "1d"] = "1m",
) -> Series:
    """Aggregates of one metric of one entity per time bucket, oldest first."""
    if domain not in DOMAINS:
        raise Problem(
            404,
            "unknown-domain",
            "Unknown domain",
            f"no domain {domain!r}; known: {', '.join(DOMAINS)}",
        )
    end = end or datetime.now(UTC)
    start = start or end - timedelta(hours=24)
    for name, value in (("from", start), ("to", end)):
        if value.tzinfo is None:
            raise Problem(
                422,
                "invalid-request",
                "Invalid request",
                f"{name}: give a time zone, like 2024-09-07T08:00:00Z",
            )
    if start >= end:
        raise Problem(422, "invalid-request", "Invalid request", "from must be before to")
    points = (end - start) / BUCKETS[bucket]
    if points > MAX_POINTS:
        raise Problem(
            400,
            "too-many-points",
            "Too many points",
            f"{points:.0f} buckets of {bucket} requested; at most {MAX_POINTS}",
        )
    async with pool.acquire() as conn:
        known = await conn.fetchval(
            "SELECT 1 FROM entity_state WHERE entity_id = $1 AND domain = $2", entity_id, domain
        )
        if not known:
            raise Problem(
                404, "unknown-entity", "Unknown entity", f"no {domain} entity {entity_id!r}"
            )
        rows = await conn.fetch(QUERY, entity_id, metric, start, BUCKETS[bucket], end)
    return Series(
        entity_id=entity_id,
        domain=domain,
        metric=metric,
        bucket=bucket,
        points=[
            SeriesPoint(
                t=r["t"],
                count=r["count"],
                sum=r["sum"],
                min=r["min"],
                max=r["max"],
                avg=r["sum"] / r["count"] if r["count"] else 0.0,
                last=r["last"],
            )
            for r in rows
        ],
    )
