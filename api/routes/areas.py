"""One area of the city model (province, zone or commune-level unit) in summary."""

from __future__ import annotations

from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from api.auth import ViewCaller
from api.deps import PoolDep
from api.namespaces import NAMESPACE_PROBLEMS
from api.problems import Problem, problem_responses

router = APIRouter(prefix="/v1/areas", tags=["areas"])


class AreaRef(BaseModel):
    id: str
    kind: str
    name: str
    name_vi: str


class DomainCount(BaseModel):
    entities: int = Field(description="Registered entities in the area")
    reporting: int = Field(description="Of those, entities with a live state")
    alerts_open: int


class AreaSummary(BaseModel):
    id: str
    kind: str = Field(description="province, zone or commune")
    level: str = Field(description="For communes: ward, commune or special_zone")
    name: str
    name_vi: str
    parent: AreaRef | None
    lat: float
    lon: float
    boundary: list[list[float]] = Field(description="Simple polygon, [[lat, lon], ...]")
    children: list[AreaRef]
    domains: dict[str, DomainCount]


class AreaShape(BaseModel):
    """An area as a map draws it."""

    id: str
    kind: str = Field(description="province, zone or commune")
    level: str = Field(description="For communes: ward, commune or special_zone")
    parent_id: str | None
    name: str
    name_vi: str
    lat: float
    lon: float
    boundary: list[list[float]] = Field(description="Simple polygon, [[lat, lon], ...]")
    alerts_open: int = Field(description="Unresolved alerts of the entities placed in the area")


class AreaList(BaseModel):
    items: list[AreaShape]


SHAPES = """
SELECT a.id, a.kind, a.level, a.parent_id, a.name, a.name_vi, a.lat, a.lon,
       a.boundary::text AS boundary, coalesce(n.alerts, 0) AS alerts_open
FROM area AS a
LEFT JOIN (
    SELECT ae.area_id, count(*) AS alerts
    FROM alert AS al JOIN area_entity AS ae ON ae.entity_id = al.entity_id
    WHERE al.state IN ('open', 'acknowledged')
    GROUP BY ae.area_id
) AS n ON n.area_id = a.id
WHERE $1::text IS NULL OR a.kind = $1
ORDER BY CASE a.kind WHEN 'province' THEN 0 WHEN 'zone' THEN 1 ELSE 2 END, a.id
"""

COUNTS = """
SELECT e.domain, count(*) AS entities, count(s.entity_id) AS reporting
FROM area_entity AS ae
JOIN entity AS e ON e.id = ae.entity_id
LEFT JOIN entity_state AS s ON s.entity_id = e.id
WHERE ae.area_id = $1
GROUP BY e.domain
"""

ALERTS = """
SELECT a.domain, count(*) AS n
FROM alert AS a JOIN area_entity AS ae ON ae.entity_id = a.entity_id
WHERE ae.area_id = $1 AND a.state IN ('open', 'acknowledged')
GROUP BY a.domain
"""


@router.get("", responses=problem_responses(*NAMESPACE_PROBLEMS))
async def list_areas(
    caller: ViewCaller,
    pool: PoolDep,
    kind: Annotated[Literal["province", "zone", "commune"] | None, Query()] = None,
) -> AreaList:
    """Every area of the city model with its boundary and open alerts, for maps."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(SHAPES, kind)
    return AreaList(
        items=[AreaShape(**{**dict(r), "boundary": orjson.loads(r["boundary"])}) for r in rows]
    )


@router.get("/{area_id}", responses=problem_responses(*NAMESPACE_PROBLEMS))
async def get_area(
    caller: ViewCaller,
    pool: PoolDep,
    area_id: Annotated[str, Path(max_length=64, examples=["qn"])],
) -> AreaSummary:
    """An area with its parent, children, entities per domain and open alerts."""
    async with pool.acquire() as conn:
        area = await conn.fetchrow(
            "SELECT id, kind, level, parent_id, name, name_vi, lat, lon, boundary"
            " FROM area WHERE id = $1",
            area_id,
        )
        if area is None:
            raise Problem(404, "unknown-area", "Unknown area", f"no area {area_id!r}")
        parent = await conn.fetchrow(
            "SELECT id, kind, name, name_vi FROM area WHERE id = $1", area["parent_id"]
        )
        children = await conn.fetch(
            "SELECT id, kind, name, name_vi FROM area WHERE parent_id = $1 ORDER BY id", area_id
        )
        counts = await conn.fetch(COUNTS, area_id)
        alerts: dict[str, int] = {r["domain"]: r["n"] for r in await conn.fetch(ALERTS, area_id)}
    domains = {
        r["domain"]: DomainCount(
            entities=r["entities"], reporting=r["reporting"], alerts_open=alerts.get(r["domain"], 0)
        )
        for r in counts
    }
    return AreaSummary(
        id=area["id"],
        kind=area["kind"],
        level=area["level"],
        name=area["name"],
        name_vi=area["name_vi"],
        parent=AreaRef(**dict(parent)) if parent else None,
        lat=area["lat"],
        lon=area["lon"],
        boundary=orjson.loads(area["boundary"]),
        children=[AreaRef(**dict(c)) for c in children],
        domains=domains,
    )
