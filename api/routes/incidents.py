"""Incidents: alerts the incident tier correlated by place (``streams.incidents``), with
their timeline and SOP checklist. The sink stores the tier's transitions
(``streams.incidents.store``); operators' actions are in ``api.routes.incident_actions``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.auth import ViewCaller
from api.deps import PoolDep
from api.models.alerts import Severity
from api.models.incidents import (
    INCIDENT_COLUMNS,
    IncidentDetail,
    IncidentId,
    IncidentPage,
    State,
    incident_detail,
    incident_of,
    read_sops,
)
from api.namespaces import NAMESPACE_PROBLEMS
from api.problems import Problem, problem_responses
from streams.incidents.sops import ID_PATTERN

router = APIRouter(prefix="/v1/incidents", tags=["incidents"])


LIST_QUERY = f"""
SELECT {INCIDENT_COLUMNS} FROM incident i
WHERE ($1::text IS NULL OR state = $1)
  AND ($2::text IS NULL OR severity = $2)
  AND ($3::text IS NULL OR sop = $3)
  AND ($4::text IS NULL OR area_id = $4
       OR area_id IN (SELECT id FROM area WHERE parent_id = $4)
       OR area_id IN (SELECT c.id FROM area c JOIN area z ON z.id = c.parent_id
                      WHERE z.parent_id = $4))
ORDER BY opened_at DESC, incident_id
LIMIT $5 OFFSET $6
"""


@router.get("", responses=problem_responses(503, *NAMESPACE_PROBLEMS))
async def list_incidents(
    caller: ViewCaller,
    pool: PoolDep,
    state: State | None = None,
    area: Annotated[
        str | None, Query(max_length=64, description="The area or any area inside it")
    ] = None,
    severity: Severity | None = None,
    sop: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> IncidentPage:
    """Incidents, newest opened first, filtered by state, area, severity or SOP."""
    if sop is not None and sop not in read_sops():
        raise Problem(404, "unknown-sop", "Unknown SOP", f"no SOP {sop!r}")
    async with pool.acquire() as conn:
        if area is not None and not await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM area WHERE id = $1)", area
        ):
            raise Problem(404, "unknown-area", "Unknown area", f"no area {area!r}")
        rows = await conn.fetch(LIST_QUERY, state, severity, sop, area, limit + 1, offset)
    items = [incident_of(r) for r in rows[:limit]]
    return IncidentPage(items=items, next_offset=offset + limit if len(rows) > limit else None)


DETAIL_PROBLEMS = problem_responses(503, *NAMESPACE_PROBLEMS)


@router.get("/{incident_id}", responses=DETAIL_PROBLEMS)
async def get_incident(
    caller: ViewCaller, pool: PoolDep, incident_id: IncidentId
) -> IncidentDetail:
    """One incident with its member alerts, its timeline and its SOP checklist."""
    async with pool.acquire() as conn:
        return await incident_detail(conn, incident_id)
