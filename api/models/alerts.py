"""An alert as the API shows it: its columns, model and states."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import asyncpg
import orjson
from pydantic import BaseModel, Field

State = Literal["open", "acknowledged", "resolved", "retracted"]


#: The states of an alert operators still have to deal with.
LIVE_STATES = "('open', 'acknowledged')"


Severity = Literal["info", "warning", "critical"]


ALERT_COLUMNS = (
    "alert_id, rule_id, entity_id, domain, severity, state, opened_at, since, updated_at, "
    'resolved_at, "values", title_en, title_vi, acknowledged_by, acknowledged_at, resolved_by, '
    "provisional"
)


class AlertPublic(BaseModel):
    alert_id: uuid.UUID
    rule_id: str
    entity_id: str
    domain: str
    severity: str
    state: State
    opened_at: datetime = Field(description="Event time the rule's condition was met")
    since: datetime
    updated_at: datetime
    resolved_at: datetime | None = Field(
        description="Event time the data cleared it, or when an operator resolved it"
    )
    values: dict[str, Any]
    title_en: str
    title_vi: str
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    resolved_by: str | None = Field(description="The key that resolved it by hand, if one did")
    provisional: bool = Field(
        description="Foreseen by a window rule from minutes not final yet: the final minutes "
        "confirm it (it stays, provisional false) or retract it (state retracted)"
    )


class AlertPage(BaseModel):
    items: list[AlertPublic]
    next_offset: int | None


def alert_of(row: asyncpg.Record) -> AlertPublic:
    """An ``AlertPublic`` from a row of ``ALERT_COLUMNS``."""
    fields = dict(row)
    fields["values"] = orjson.loads(fields["values"])
    return AlertPublic(**fields)
