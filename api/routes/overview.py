"""The city at a glance: one tile per domain."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.auth import ViewCaller
from api.deps import PoolDep
from api.namespaces import NAMESPACE_PROBLEMS
from api.problems import problem_responses
from contract.catalog import DOMAINS

router = APIRouter(prefix="/v1", tags=["overview"])


class MetricSummary(BaseModel):
    """One metric over the domain's entities in one minute (see docs/architecture.md,
    "Areas", for which figure suits which metric)."""

    entities: int = Field(description="Entities with a reading in the minute")
    count: int
    sum: float
    avg: float
    min: float
    max: float
    last_sum: float = Field(description="Sum of each entity's last value (gauges)")


class DomainTile(BaseModel):
    domain: str
    entities: int = Field(description="Registered entities")
    reporting: int = Field(description="Entities with a live state")
    last_event_time: datetime | None
    alerts_open: dict[str, int] = Field(description="Unresolved alerts by severity")
    minute: datetime | None = Field(description="Minute of the newest event (may still fill)")
    metrics: dict[str, MetricSummary]


class Overview(BaseModel):
    tiles: list[DomainTile]


MINUTE_QUERY = """
SELECT metric, count(*)::bigint AS entities, sum(count)::bigint AS count, sum(sum) AS sum,
       min(min) AS min, max(max) AS max, sum(last) AS last_sum
FROM metric_minute WHERE domain = $1 AND bucket = $2
GROUP BY metric ORDER BY metric
"""


@router.get("/overview", responses=problem_responses(*NAMESPACE_PROBLEMS))
async def overview(caller: ViewCaller, pool: PoolDep) -> Overview:
    """Per domain: entities, how many report, open alerts and the newest minute's figures."""
    async with pool.acquire() as conn:
        registered: dict[str, int] = {
            r["domain"]: r["n"]
            for r in await conn.fetch("SELECT domain, count(*) AS n FROM entity GROUP BY domain")
        }
        live = {
            r["domain"]: r
            for r in await conn.fetch(
                "SELECT domain, count(*) AS n, max(event_time) AS newest"
                " FROM entity_state GROUP BY domain"
            )
        }
        alerts: dict[str, dict[str, int]] = {}
        for r in await conn.fetch(
            "SELECT domain, severity, count(*) AS n FROM alert"
            " WHERE state IN ('open', 'acknowledged') GROUP BY domain, severity"
        ):
            alerts.setdefault(r["domain"], {})[r["severity"]] = r["n"]
        tiles = []
        for domain in DOMAINS:
            row = live.get(domain)
            newest = row["newest"] if row else None
            minute = newest.replace(second=0, microsecond=0) if newest else None
            metrics = {}
            if minute is not None:
                for m in await conn.fetch(MINUTE_QUERY, domain, minute):
                    metrics[m["metric"]] = MetricSummary(
                        entities=m["entities"],
                        count=m["count"],
                        sum=m["sum"],
                        avg=m["sum"] / m["count"] if m["count"] else 0.0,
                        min=m["min"],
                        max=m["max"],
                        last_sum=m["last_sum"],
                    )
            tiles.append(
                DomainTile(
                    domain=domain,
                    entities=registered.get(domain, 0),
                    reporting=row["n"] if row else 0,
                    last_event_time=newest,
                    alerts_open=alerts.get(domain, {}),
                    minute=minute,
                    metrics=metrics,
                )
            )
    return Overview(tiles=tiles)
