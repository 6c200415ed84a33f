"""The snapshot a client gets on connect: entity states, open alerts, the incidents on
screens (``api.live.incidents``) and the area tiles (the hub's, as last sent), filtered.

The database is as fresh as the sink; the hub has seen the topics up to the client's
position. The snapshot is the database with the hub's newer knowledge laid over it, so it
reflects everything up to that position and the updates that follow continue it exactly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence, Set
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from api.live.filters import LiveFilter
from api.live.hub import Subscription
from api.live.messages import iso_ms, sse_event

ENTITIES = """
SELECT entity_id, domain, event_type, event_time, state::text AS state
FROM entity_state
WHERE ($1::text[] IS NULL OR domain = ANY($1))
  AND ($2::text[] IS NULL OR entity_id = ANY($2))
  AND ($3::text[] IS NULL
       OR entity_id IN (SELECT entity_id FROM area_entity WHERE area_id = ANY($3)))
ORDER BY entity_id
"""

OPEN_ALERTS = """
SELECT alert_id::text, rule_id, entity_id, domain, severity, state, opened_at, since,
       updated_at, resolved_at, "values"::text AS "values", title_en, title_vi,
       acknowledged_by, acknowledged_at, provisional
FROM alert
WHERE state IN ('open', 'acknowledged')
  AND ($1::text[] IS NULL OR domain = ANY($1))
  AND ($2::text[] IS NULL OR entity_id = ANY($2))
  AND ($3::text[] IS NULL
       OR entity_id IN (SELECT entity_id FROM area_entity WHERE area_id = ANY($3)))
ORDER BY opened_at, alert_id
"""


def _iso(value: datetime | None) -> str | None:
    return iso_ms(round(value.timestamp() * 1000)) if value is not None else None


def _ms(iso: str | None) -> int:
    return round(datetime.fromisoformat(iso).timestamp() * 1000) if iso else -1


async def read_database(
    conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy, live_filter: LiveFilter
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Entity views and open alerts as the database holds them, filtered.

    Turning 20,000 rows into views takes about 200 ms of CPU: done in a thread, so the
    event loop goes on sending every other client's updates meanwhile (the GIL passes
    back and forth every few milliseconds) instead of holding them all that long.
    """
    args = [
        sorted(v) if v is not None else None
        for v in (live_filter.domains, live_filter.entities, live_filter.areas)
    ]
    alert_rows = await conn.fetch(OPEN_ALERTS, *args)
    entity_rows = await conn.fetch(ENTITIES, *args) if "entity" in live_filter.kinds else []
    return await asyncio.to_thread(_views, entity_rows, alert_rows)


def _views(
    entity_rows: Sequence[asyncpg.Record], alert_rows: Sequence[asyncpg.Record]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    alerts = [
        {
            **dict(row),
            "opened_at": _iso(row["opened_at"]),
            "since": _iso(row["since"]),
            "updated_at": _iso(row["updated_at"]),
            "resolved_at": _iso(row["resolved_at"]),
            "acknowledged_at": _iso(row["acknowledged_at"]),
            "values": orjson.loads(row["values"]),
        }
        for row in alert_rows
    ]
    entities = [
        {
            "entity_id": row["entity_id"],
            "domain": row["domain"],
            "event_type": row["event_type"],
            "event_time": _iso(row["event_time"]),
            "state": orjson.loads(row["state"]),
            "alerts": [],
        }
        for row in entity_rows
    ]
    return entities, alerts


async def resolved_among(
    conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy, alert_ids: list[str]
) -> set[str]:
    """Which of these alerts the database holds as resolved (by the rules or an operator)."""
    if not alert_ids:
        return set()
    rows = await conn.fetch(
        "SELECT alert_id::text FROM alert"
        " WHERE state IN ('resolved', 'retracted') AND alert_id = ANY($1::uuid[])",
        sorted(set(alert_ids)),
    )
    return {row["alert_id"] for row in rows}


def merge(
    subscription: Subscription,
    entities: list[dict[str, Any]],
    alerts: list[dict[str, Any]],
    *,
    closed: Set[str] = frozenset(),
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Lay the hub's overlay over the database rows and apply the filter to the result.

    An overlay transition of an alert the database already holds as resolved (in
    ``closed``: an operator resolved it, or the resolve was written before this snapshot)
    does not bring it back.
    """
    f = subscription.filter
    by_alert = {a["alert_id"]: a for a in alerts}
    for t in subscription.overlay_alerts:
        row = by_alert.get(t["alert_id"])
        if t["alert_id"] in closed:
            continue
        if t["state"] in ("resolve", "retract"):
            by_alert.pop(t["alert_id"], None)
        elif t["state"] == "acknowledge":  # an operator's, pushed by the API
            by_alert[t["alert_id"]] = {
                **(row or {k: v for k, v in t.items() if k not in ("state", "by")}),
                "state": "acknowledged",
                "acknowledged_by": t.get("by"),
                "acknowledged_at": t["updated_at"],
            }
        elif row is None:
            by_alert[t["alert_id"]] = {
                **{k: v for k, v in t.items() if k != "state"},
                "state": "open",
                "acknowledged_by": None,
                "acknowledged_at": None,
                "provisional": t["state"] == "provisional",
            }
        elif _ms(t["updated_at"]) >= _ms(row["updated_at"]):
            row.update(updated_at=t["updated_at"], values=t["values"])
            if t["state"] != "provisional":
                row["provisional"] = False  # confirmed
    open_alerts = [
        a
        for a in by_alert.values()
        if f.accepts(
            kind="alert", domain=a["domain"], entity_id=a["entity_id"], severity=a["severity"]
        )
    ]
    by_entity = {e["entity_id"]: e for e in entities}
    for alert in sorted(by_alert.values(), key=lambda a: (a["entity_id"], a["rule_id"])):
        entity = by_entity.get(alert["entity_id"])
        if entity is not None:
            entity["alerts"].append({"rule_id": alert["rule_id"], "alert_id": alert["alert_id"]})
    for view in subscription.overlay_entities:
        row = by_entity.get(view["entity_id"])
        if row is None or _ms(view["event_time"]) >= _ms(row["event_time"]):
            by_entity[view["entity_id"]] = view
    entity_views = [
        e
        for _, e in sorted(by_entity.items())
        if f.accepts(kind="entity", domain=e["domain"], entity_id=e["entity_id"], severity=None)
    ]
    return entity_views, open_alerts


def snapshot_bodies(
    subscription: Subscription,
    entities: list[dict[str, Any]],
    alerts: list[dict[str, Any]],
    *,
    chunk: int,
    incidents: list[dict[str, Any]] | None = None,
    areas: list[dict[str, Any]] | None = None,
) -> Iterator[tuple[bytes, str | None]]:
    """JSON bodies of the snapshot messages: alerts, incidents and area tiles in the first,
    entities ``chunk`` at a time; only the last carries the id (a client cut off
    mid-snapshot has not got it)."""
    reason = subscription.snapshot_reason
    parts = max(1, -(-len(entities) // chunk))
    for part in range(parts):
        last = part == parts - 1
        body: dict[str, Any] = {
            "type": "snapshot",
            "reason": reason,
            "alerts": alerts if part == 0 else [],
            "incidents": (incidents or []) if part == 0 else [],
            "areas": (areas or []) if part == 0 else [],
            "entities": entities[part * chunk : (part + 1) * chunk],
            "more": not last,
        }
        event_id = str(subscription.position) if last else None
        if event_id is not None:
            body = {"id": event_id, **body}
        yield orjson.dumps(body), event_id


def snapshot_events(
    bodies: Iterator[tuple[bytes, str | None]],
) -> Iterator[bytes]:
    """The snapshot as Server-Sent Events."""
    for body, event_id in bodies:
        yield sse_event(body, event="snapshot", event_id=event_id)
