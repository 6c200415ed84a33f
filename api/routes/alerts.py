"""Alerts: the list operators watch, and what they do with one (acknowledge, resolve)."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Path, Query

from api.auth import ViewCaller
from api.deps import PoolDep, PublisherDep
from api.models.alerts import (
    ALERT_COLUMNS,
    LIVE_STATES,
    AlertPage,
    AlertPublic,
    Severity,
    State,
    alert_of,
)
from api.namespaces import NAMESPACE_PROBLEMS, NamespaceDep
from api.problems import Problem, problem_responses
from api.publisher import KafkaUnavailable, OutRecord, Publisher
from contract.catalog import DOMAINS
from ioc.settings import Settings
from streams.alerts.transitions import OPERATORS_SOURCE, alert_event
from streams.marks import action_headers
from streams.topics import ALERTS_TOPIC, raw_topic

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])


LIST_QUERY = f"""
SELECT {ALERT_COLUMNS} FROM alert
WHERE ($1::text IS NULL OR domain = $1)
  AND ($2::text IS NULL OR severity = $2)
  AND ($3::text IS NULL OR state = $3)
  AND ($4::text IS NULL OR entity_id = $4)
  AND ($5::text IS NULL OR entity_id IN (SELECT entity_id FROM area_entity WHERE area_id = $5))
ORDER BY opened_at DESC, alert_id
LIMIT $6 OFFSET $7
"""


@router.get("", responses=problem_responses(*NAMESPACE_PROBLEMS))
async def list_alerts(
    caller: ViewCaller,
    pool: PoolDep,
    domain: Annotated[str | None, Query(max_length=32)] = None,
    severity: Severity | None = None,
    state: State | None = None,
    entity: Annotated[str | None, Query(max_length=128)] = None,
    area: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> AlertPage:
    """Alerts, newest opened first, filtered by domain, severity, state, entity or area."""
    if domain is not None and domain not in DOMAINS:
        raise Problem(
            404,
            "unknown-domain",
            "Unknown domain",
            f"no domain {domain!r}; known: {', '.join(DOMAINS)}",
        )
    async with pool.acquire() as conn:
        if area is not None and not await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM area WHERE id = $1)", area
        ):
            raise Problem(404, "unknown-area", "Unknown area", f"no area {area!r}")
        rows = await conn.fetch(
            LIST_QUERY, domain, severity, state, entity, area, limit + 1, offset
        )
    items = [alert_of(r) for r in rows[:limit]]
    return AlertPage(items=items, next_offset=offset + limit if len(rows) > limit else None)


ACK = f"""
UPDATE alert SET state = 'acknowledged', acknowledged_by = $2, acknowledged_at = now()
WHERE alert_id = $1 AND state = 'open'
RETURNING {ALERT_COLUMNS}
"""

RESOLVE = f"""
UPDATE alert SET state = 'resolved', resolved_by = $2, resolved_at = now()
WHERE alert_id = $1 AND state IN {LIVE_STATES}
RETURNING {ALERT_COLUMNS}
"""


async def _act(
    pool: asyncpg.Pool, sql: str, alert_id: uuid.UUID, who: str, verb: str
) -> AlertPublic:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(sql, alert_id, who)
        if row is not None:
            return alert_of(row)
        current = await conn.fetchrow(
            "SELECT state, acknowledged_by, resolved_by FROM alert WHERE alert_id = $1", alert_id
        )
    if current is None:
        raise Problem(404, "unknown-alert", "Unknown alert", f"no alert {alert_id}")
    by = current["resolved_by"] if current["state"] == "resolved" else current["acknowledged_by"]
    raise Problem(
        409,
        "alert-state",
        "Alert state conflict",
        f"cannot {verb} an alert that is {current['state']}"
        + (f" (by {by})" if by else " (by the data)" if current["state"] == "resolved" else ""),
        state=current["state"],
    )


AlertId = Annotated[uuid.UUID, Path(description="The alert's id")]


@router.post("/{alert_id}/ack", responses=problem_responses(409, *NAMESPACE_PROBLEMS))
async def acknowledge_alert(
    caller: ViewCaller,
    view: NamespaceDep,
    publisher: PublisherDep,
    alert_id: AlertId,
) -> AlertPublic:
    """Acknowledge an open alert: records the key's name and the time."""
    alert = await _act(view.pool, ACK, alert_id, caller.name, "acknowledge")
    await _tell_live_feeds(publisher, view.settings, alert, verb="acknowledge", who=caller.name)
    return alert


@router.post("/{alert_id}/resolve", responses=problem_responses(409, *NAMESPACE_PROBLEMS))
async def resolve_alert(
    caller: ViewCaller,
    view: NamespaceDep,
    publisher: PublisherDep,
    alert_id: AlertId,
) -> AlertPublic:
    """Resolve an open or acknowledged alert by hand: records the key's name and the time.

    The rule engine keeps its own view: while the condition holds it opens no new alert
    for the same rule and entity.
    """
    alert = await _act(view.pool, RESOLVE, alert_id, caller.name, "resolve")
    await _tell_live_feeds(publisher, view.settings, alert, verb="resolve", who=caller.name)
    return alert


async def _tell_live_feeds(
    publisher: Publisher, settings: Settings, alert: AlertPublic, *, verb: str, who: str
) -> None:
    """Put the operator's action on ``ioc.alerts`` so every screen's live feed shows it,
    and a resolve on the entity's raw topic too, so the rules learn of it (an action
    record, ``streams.marks``): the next match or streak opens a new alert.

    The database already holds it; if Kafka does not take it, screens see it at their
    next snapshot, so the request still succeeds.
    """
    now = datetime.now(UTC)
    message = {
        **alert.model_dump(mode="json"),
        "state": verb,
        "updated_at": now.isoformat().replace("+00:00", "Z"),
        "by": who,
    }
    record = OutRecord(
        topic=settings.topic(ALERTS_TOPIC),
        key=alert.entity_id.encode(),
        value=alert_event(message, source=OPERATORS_SOURCE),
        timestamp_ms=int(now.timestamp() * 1000),
    )
    records = [record]
    if verb == "resolve":
        records.append(
            OutRecord(
                topic=raw_topic(settings, alert.domain),
                key=alert.entity_id.encode(),
                value=b"",
                timestamp_ms=record.timestamp_ms,
                headers=tuple(action_headers("resolve", str(alert.alert_id))),
            )
        )
    try:
        await publisher.send(records)
    except KafkaUnavailable as exc:
        log.warning("alert %s %s not pushed to live feeds: %s", alert.alert_id, verb, exc)
