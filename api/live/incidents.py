"""The incidents of a snapshot: those on operators' screens (``open`` or ``acknowledged``)
as the database holds them, with the correlation transitions the hub has seen laid over.

A row is an item of ``GET /v1/incidents``. The sink writes the correlation's transitions
a batch after the hub sees them, so the hub's newer ones count, as the sink would apply
them (``streams.incidents.store``): a newer transition moves the fields and the state,
an acknowledged incident stays acknowledged, a resolved, merged or retracted one never
comes back, a close takes it off the screens. Operators' actions need no overlay: the API
writes them to the database before it publishes them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from api.live.filters import LiveFilter
from api.live.hub import Subscription
from api.live.messages import epoch_ms, iso_ms

#: The states of an incident that operators still have on their screens.
ON_SCREEN = ("open", "acknowledged")
#: States no correlation transition changes any more (the sink's rule).
FINAL = ("resolved", "merged", "retracted")
#: The incident's state for each correlation transition; which of two transitions with
#: the same time is the later (``streams.incidents.store``).
DB_STATE = {"open": "open", "update": "open", "close": "closed", "retract": "retracted"}
STEP = {"open": 0, "update": 1, "close": 2, "retract": 2}

INCIDENTS = """
SELECT incident_id::text, rule_id, sop, area_id, level, severity, state, opened_at,
       updated_at, closed_at, title_en, title_vi, acknowledged_by, acknowledged_at,
       assignee, assigned_by, assigned_at, resolved_by, resolved_at, merged_into::text,
       (SELECT count(*) FROM incident_alert m WHERE m.incident_id = i.incident_id)::int
           AS alert_count
FROM incident i
WHERE (state IN ('open', 'acknowledged') OR incident_id = ANY($1::uuid[]))
  AND ($2::text[] IS NULL OR area_id = ANY($2))
ORDER BY opened_at DESC, incident_id
"""
TIMES = ("opened_at", "updated_at", "closed_at", "acknowledged_at", "assigned_at", "resolved_at")


def wants_incidents(live_filter: LiveFilter) -> bool:
    """Whether any incident can pass the filter (see ``api.live.filters``)."""
    return (
        "incident" in live_filter.kinds
        and live_filter.domains is None
        and live_filter.entities is None
    )


def _iso(value: datetime | None) -> str | None:
    return iso_ms(round(value.timestamp() * 1000)) if value is not None else None


async def read_incidents(
    conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy,
    live_filter: LiveFilter,
    overlay_ids: list[str],
) -> list[dict[str, Any]]:
    """Incidents on screens, and those the overlay names, as the database holds them.

    A namespace whose schema predates the incident tables has none."""
    if not wants_incidents(live_filter):
        return []
    inside = live_filter.area_ids if live_filter.area_ids is not None else live_filter.areas
    try:
        rows = await conn.fetch(
            INCIDENTS, sorted(set(overlay_ids)), sorted(inside) if inside is not None else None
        )
    except asyncpg.UndefinedTableError:
        return []
    return [{**dict(row), **{k: _iso(row[k]) for k in TIMES}} for row in rows]


def _from_transition(t: dict[str, Any]) -> dict[str, Any]:
    """The row the sink would write for the first transition of an incident."""
    return {
        "incident_id": t["incident_id"],
        "rule_id": t["rule_id"],
        "sop": t["sop"],
        "area_id": t["area_id"],
        "level": t["level"],
        "severity": t["severity"],
        "state": DB_STATE[t["state"]],
        "opened_at": t["opened_at"],
        "updated_at": t["updated_at"],
        "closed_at": t.get("closed_at"),
        "title_en": t["title_en"],
        "title_vi": t["title_vi"],
        "acknowledged_by": None,
        "acknowledged_at": None,
        "assignee": None,
        "assigned_by": None,
        "assigned_at": None,
        "resolved_by": None,
        "resolved_at": None,
        "merged_into": None,
        "alert_count": len(t.get("alerts") or ()),
    }


def _newer(t: dict[str, Any], row: dict[str, Any]) -> bool:
    t_ms, row_ms = epoch_ms(t["updated_at"]), epoch_ms(row["updated_at"])
    if t_ms != row_ms:
        return t_ms > row_ms
    return STEP[t["state"]] >= (2 if row["state"] == "closed" else 1)


def merge_incidents(subscription: Subscription, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The incidents on screens at the subscription's position, newest opened first."""
    f = subscription.filter
    by_id = {row["incident_id"]: row for row in rows}
    for t in subscription.overlay_incidents:
        row = by_id.get(t["incident_id"])
        if row is None:
            by_id[t["incident_id"]] = _from_transition(t)
        elif row["state"] not in FINAL and _newer(t, row):
            state = DB_STATE[t["state"]]
            if state == "open" and row["acknowledged_by"] is not None:
                state = "acknowledged"
            row.update(
                severity=t["severity"],
                updated_at=t["updated_at"],
                closed_at=t.get("closed_at"),
                title_en=t["title_en"],
                title_vi=t["title_vi"],
                state=state,
                alert_count=max(row["alert_count"], len(t.get("alerts") or ())),
            )
    shown = [
        row
        for row in by_id.values()
        if row["state"] in ON_SCREEN
        and f.accepts(
            kind="incident",
            domain="",
            entity_id="",
            severity=row["severity"],
            area_id=row["area_id"],
        )
    ]
    return sorted(shown, key=lambda r: (-epoch_ms(r["opened_at"]), r["incident_id"]))
