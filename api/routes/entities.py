"""The entities of a domain with their live state, and one entity in detail."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import asyncpg
import orjson
from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from api.auth import ViewCaller
from api.deps import DomainDep, PoolDep
from api.models.alerts import ALERT_COLUMNS, AlertPublic, alert_of
from api.namespaces import NAMESPACE_PROBLEMS
from api.problems import Problem, problem_responses

router = APIRouter(prefix="/v1", tags=["entities"])


class LiveState(BaseModel):
    """The entity's newest event as the stream worker last wrote it."""

    event_type: str | None
    event_time: datetime
    data: dict[str, Any]
    updated_at: datetime


class EntityPublic(BaseModel):
    id: str
    domain: str
    registered: bool = Field(description="In the city registry (else only seen in events)")
    kind: str | None = None
    name: str | None = None
    name_vi: str | None = None
    commune_id: str | None = None
    zone_id: str | None = None
    lat: float | None = None
    lon: float | None = None
    state: LiveState | None = None


class EntityPage(BaseModel):
    items: list[EntityPublic]
    next_after: str | None = Field(description="Pass as `after` for the next page")


class MinuteValue(BaseModel):
    count: int
    sum: float
    min: float
    max: float
    avg: float
    last: float


class EntityDetail(EntityPublic):
    attrs: dict[str, Any] = Field(default_factory=dict)
    minute: datetime | None = Field(description="Minute of the newest event")
    metrics: dict[str, MinuteValue] = Field(description="That minute's aggregates")
    open_alerts: list[AlertPublic]


ENTITY_SELECT = """
SELECT coalesce(e.id, s.entity_id) AS id, coalesce(e.domain, s.domain) AS domain,
       e.id IS NOT NULL AS registered, e.kind, e.name, e.name_vi, e.commune_id, e.zone_id,
       e.lat, e.lon, e.attrs, s.event_type, s.event_time, s.state, s.updated_at
FROM entity AS e FULL JOIN entity_state AS s ON s.entity_id = e.id
"""

LIST_QUERY = (
    ENTITY_SELECT
    + """
WHERE coalesce(e.domain, s.domain) = $1
  AND coalesce(e.id, s.entity_id) > $2
  AND ($3::text IS NULL OR e.id IN (SELECT entity_id FROM area_entity WHERE area_id = $3))
ORDER BY 1
LIMIT $4
"""
)

ONE_QUERY = ENTITY_SELECT + "WHERE coalesce(e.id, s.entity_id) = $1"


def entity_of(row: asyncpg.Record) -> dict[str, Any]:
    """The fields of ``EntityPublic`` from a row of ``ENTITY_SELECT``."""
    state = None
    if row["event_time"] is not None:
        state = LiveState(
            event_type=row["event_type"],
            event_time=row["event_time"],
            data=orjson.loads(row["state"]),
            updated_at=row["updated_at"],
        )
    return {
        "id": row["id"],
        "domain": row["domain"],
        "registered": row["registered"],
        "kind": row["kind"],
        "name": row["name"],
        "name_vi": row["name_vi"],
        "commune_id": row["commune_id"],
        "zone_id": row["zone_id"],
        "lat": row["lat"],
        "lon": row["lon"],
        "state": state,
    }


@router.get("/{domain}/entities", responses=problem_responses(*NAMESPACE_PROBLEMS))
async def list_entities(
    caller: ViewCaller,
    pool: PoolDep,
    domain: DomainDep,
    area: Annotated[
        str | None,
        Query(max_length=64, description="Only entities in this area (commune, zone, province)"),
    ] = None,
    after: Annotated[
        str, Query(max_length=128, description="Entity id the page starts after")
    ] = "",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EntityPage:
    """The domain's entities (registered or seen in events) with their live state, by id."""
    async with pool.acquire() as conn:
        if area is not None and not await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM area WHERE id = $1)", area
        ):
            raise Problem(404, "unknown-area", "Unknown area", f"no area {area!r}")
        rows = await conn.fetch(LIST_QUERY, domain, after, area, limit + 1)
    items = [EntityPublic(**entity_of(r)) for r in rows[:limit]]
    return EntityPage(items=items, next_after=items[-1].id if len(rows) > limit else None)


@router.get("/{domain}/entities/{entity_id}", responses=problem_responses(*NAMESPACE_PROBLEMS))
async def get_entity(
    caller: ViewCaller,
    pool: PoolDep,
    domain: DomainDep,
    entity_id: Annotated[str, Path(max_length=128, examples=["qn-ix-halong-001"])],
) -> EntityDetail:
    """One entity: registry facts, live state, the newest minute's aggregates, open alerts."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(ONE_QUERY, entity_id)
        if row is None or row["domain"] != domain:
            raise Problem(
                404, "unknown-entity", "Unknown entity", f"no {domain} entity {entity_id!r}"
            )
        minute = None
        metrics: dict[str, MinuteValue] = {}
        if row["event_time"] is not None:
            minute = row["event_time"].replace(second=0, microsecond=0)
            for m in await conn.fetch(
                "SELECT metric, count, sum, min, max, last FROM metric_minute"
                " WHERE entity_id = $1 AND bucket = $2",
                entity_id,
                minute,
            ):
                metrics[m["metric"]] = MinuteValue(
                    count=m["count"],
                    sum=m["sum"],
                    min=m["min"],
                    max=m["max"],
                    avg=m["sum"] / m["count"] if m["count"] else 0.0,
                    last=m["last"],
                )
        alerts = await conn.fetch(
            f"SELECT {ALERT_COLUMNS} FROM alert"
            " WHERE entity_id = $1 AND state IN ('open', 'acknowledged')"
            " ORDER BY opened_at DESC LIMIT 50",
            entity_id,
        )
    return EntityDetail(
        **entity_of(row),
        attrs=orjson.loads(row["attrs"]) if row["attrs"] is not None else {},
        minute=minute,
        metrics=metrics,
        open_alerts=[alert_of(a) for a in alerts],
    )
