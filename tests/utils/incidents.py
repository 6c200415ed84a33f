"""Builders of incident transitions (``streams.incidents.events``) and their records."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from ioc.db.pool import create_pool
from ioc.settings import Settings
from streams.incidents.events import IncidentTransition, incident_id
from streams.incidents.store import read_transition, write_transitions
from tests.utils.events import T0, Record

RULE = "multi-hazard"
SOP = "flooding"


def iso(at: datetime) -> str:
    """RFC 3339 in UTC with a Z, as the incident tier writes times."""
    return at.isoformat().replace("+00:00", "Z")


def alert_ids(count: int, *, seed: str = "a") -> list[str]:
    """``count`` alert ids, stable for a seed."""
    return [str(uuid.uuid5(uuid.NAMESPACE_URL, f"{seed}/{i}")) for i in range(count)]


def transition(
    *,
    area: str,
    alerts: list[str],
    state: str = "open",
    minute: int = 0,
    opened_minute: int = 0,
    severity: str = "warning",
    rule_id: str = RULE,
    sop: str = SOP,
    first_alert: str | None = None,
    **fields: Any,
) -> IncidentTransition:
    """A transition of the incident ``rule_id`` opened in ``area`` (its id from the first
    alert), ``minute`` minutes after T0; a close is closed at that minute."""
    at = iso(T0 + timedelta(minutes=minute))
    return IncidentTransition.model_validate(
        {
            "incident_id": incident_id(
                rule_id=rule_id, area_id=area, first_alert_id=first_alert or alerts[0]
            ),
            "rule_id": rule_id,
            "sop": sop,
            "state": state,
            "area_id": area,
            "level": "commune",
            "severity": severity,
            "opened_at": iso(T0 + timedelta(minutes=opened_minute)),
            "updated_at": at,
            "closed_at": at if state == "close" else None,
            "alerts": sorted(alerts),
            "title_en": f"Incident in {area}",
            "title_vi": f"Sự cố tại {area}",
            **fields,
        }
    )


def incident_record(t: IncidentTransition) -> Record:
    """The record the incident tier produces for ``t``: keyed by area, timestamped at the
    transition's time."""
    at = datetime.fromisoformat(t.updated_at)
    return Record(t.area_id.encode(), t.to_json(), int(at.timestamp() * 1000))


async def store_alerts(settings: Settings, ids: list[str], *, entity: str) -> None:
    """Alert rows as the state sink writes them (open traffic congestion alerts of
    ``entity``), so an incident's member alerts can be read."""
    conn = await asyncpg.connect(
        settings.dsn, server_settings={"search_path": f"{settings.db_schema},public"}
    )
    try:
        await conn.executemany(
            "INSERT INTO alert (alert_id, rule_id, entity_id, domain, severity, state, "
            'opened_at, since, updated_at, "values", title_en, title_vi) '
            "VALUES ($1, 'traffic-congestion', $2, 'traffic', 'warning', 'open', $3, $3, $3, "
            "'{}', 'Congestion', 'Ùn tắc')",
            [(uuid.UUID(a), entity, T0 + timedelta(minutes=i)) for i, a in enumerate(ids)],
        )
    finally:
        await conn.close()


async def store_transitions(settings: Settings, transitions: list[IncidentTransition]) -> None:
    """Write transitions straight to the namespace's tables with the incident sink's own
    code, for a namespace no worker serves."""
    pool = await create_pool(settings, max_size=1)
    try:
        items = [read_transition(t.to_json()) for t in transitions]
        await write_transitions(pool, [i for i in items if i is not None])
    finally:
        await pool.close()
