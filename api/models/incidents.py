"""An incident as the API shows it: its columns, model, detail (members, timeline, SOP
checklist) and the problem for an unknown one."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import asyncpg
import orjson
from asyncpg.pool import PoolConnectionProxy
from fastapi import Path
from pydantic import BaseModel, Field

from api.models.alerts import ALERT_COLUMNS, AlertPublic, alert_of
from api.problems import Problem
from streams.incidents.sops import Sop, SopError, load_sops

State = Literal["open", "acknowledged", "closed", "resolved", "retracted", "merged"]


INCIDENT_COLUMNS = (
    "incident_id, rule_id, sop, area_id, level, severity, state, opened_at, updated_at, "
    "closed_at, title_en, title_vi, acknowledged_by, acknowledged_at, assignee, assigned_by, "
    "assigned_at, resolved_by, resolved_at, merged_into, "
    "(SELECT count(*) FROM incident_alert m WHERE m.incident_id = i.incident_id) AS alert_count"
)


class IncidentPublic(BaseModel):
    incident_id: uuid.UUID
    rule_id: str = Field(description="The correlation rule that opened it")
    sop: str = Field(description="The standard operating procedure to follow")
    area_id: str
    level: str = Field(description="commune or zone")
    severity: str
    state: State
    opened_at: datetime = Field(description="Event time of the alert that met the rule")
    updated_at: datetime = Field(description="Event time of the latest correlation transition")
    closed_at: datetime | None = Field(description="Event time the place became quiet")
    title_en: str
    title_vi: str
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    assignee: str | None
    assigned_by: str | None
    assigned_at: datetime | None
    resolved_by: str | None
    resolved_at: datetime | None
    merged_into: uuid.UUID | None = Field(description="The incident it was merged into")
    alert_count: int = Field(description="Member alerts")


class IncidentPage(BaseModel):
    items: list[IncidentPublic]
    next_offset: int | None


class TimelineEntry(BaseModel):
    event_id: uuid.UUID = Field(description="The CloudEvent's id on ioc.incidents")
    at: datetime = Field(description="Event time of a transition; wall clock of an action")
    kind: str = Field(
        description="open, update, close, retract (correlation); acknowledge, assign, "
        "annotate, step, resolve, merge (operators)"
    )
    by: str | None = Field(description="The operator's key; null for correlation")
    detail: dict[str, Any]


class ChecklistStep(BaseModel):
    id: str
    en: str
    vi: str
    checked_by: str | None
    checked_at: datetime | None


class Checklist(BaseModel):
    sop: str
    title_en: str
    title_vi: str
    steps: list[ChecklistStep]


class IncidentDetail(IncidentPublic):
    alert_ids: list[uuid.UUID] = Field(description="Every member alert, in joining order")
    alerts: list[AlertPublic] = Field(description="The member alerts the database holds")
    timeline: list[TimelineEntry] = Field(description="Oldest first")
    checklist: Checklist | None = Field(description="The SOP's steps; null for an unknown SOP")


def incident_of(row: asyncpg.Record) -> IncidentPublic:
    return IncidentPublic(**dict(row))


def read_sops() -> dict[str, Sop]:
    try:
        return load_sops()
    except SopError as exc:
        raise Problem(
            503, "sops-unreadable", "SOP files unreadable", str(exc), headers={"Retry-After": "60"}
        ) from None


async def incident_detail(
    conn: PoolConnectionProxy[asyncpg.Record], incident_id: uuid.UUID
) -> IncidentDetail:
    row = await conn.fetchrow(
        f"SELECT {INCIDENT_COLUMNS} FROM incident i WHERE incident_id = $1", incident_id
    )
    if row is None:
        raise unknown_incident(incident_id)
    members = await conn.fetch(
        "SELECT alert_id FROM incident_alert WHERE incident_id = $1 ORDER BY joined_at, alert_id",
        incident_id,
    )
    alerts = await conn.fetch(
        f"SELECT {ALERT_COLUMNS} FROM alert WHERE alert_id IN "
        "(SELECT alert_id FROM incident_alert WHERE incident_id = $1) ORDER BY opened_at, alert_id",
        incident_id,
    )
    log_rows = await conn.fetch(
        'SELECT event_id, at, kind, "by", detail FROM incident_log WHERE incident_id = $1 '
        "ORDER BY at, event_id",
        incident_id,
    )
    checked = {
        r["step_id"]: r
        for r in await conn.fetch(
            "SELECT step_id, checked_by, checked_at FROM incident_step WHERE incident_id = $1",
            incident_id,
        )
    }
    sop = read_sops().get(row["sop"])
    checklist = None
    if sop is not None:
        steps = [
            ChecklistStep(
                id=s.id,
                en=s.en,
                vi=s.vi,
                checked_by=checked[s.id]["checked_by"] if s.id in checked else None,
                checked_at=checked[s.id]["checked_at"] if s.id in checked else None,
            )
            for s in sop.steps
        ]
        checklist = Checklist(sop=sop.id, title_en=sop.title_en, title_vi=sop.title_vi, steps=steps)
    return IncidentDetail(
        **dict(row),
        alert_ids=[r["alert_id"] for r in members],
        alerts=[alert_of(r) for r in alerts],
        timeline=[
            TimelineEntry(**{**dict(r), "detail": orjson.loads(r["detail"])}) for r in log_rows
        ],
        checklist=checklist,
    )


def unknown_incident(incident_id: uuid.UUID) -> Problem:
    return Problem(404, "unknown-incident", "Unknown incident", f"no incident {incident_id}")


IncidentId = Annotated[uuid.UUID, Path(description="The incident's id")]
