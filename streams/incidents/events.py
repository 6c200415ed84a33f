"""Incident transitions as published on ``ioc.incidents``.

The incident tier (``streams.incidents.app``) correlates alert transitions by place and
event time into incidents and publishes each step of an incident's life as a CloudEvent
1.0: ``open`` (a correlation rule was met), ``update`` (alerts joined, or the severity
rose: ``escalated``), ``close`` (its alerts resolved and the place stayed quiet) and
``retract`` (alerts that arrived late made a different incident of the same place: the
late one supersedes it). Ids and times are event-time facts, so a replay, a repeat after
a crash or a replay at another speed publish the same events. Operators' actions on an
incident (acknowledge, assign, annotate, check a step, resolve, merge) are published by
the API with the source :data:`OPERATORS_SOURCE`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict

from streams.alerts.rules import Severity

#: Namespace of incident ids: uuid5 of ``<rule>/<area>/<first alert id>``.
INCIDENT_NAMESPACE = uuid.UUID("a4d3c1e2-5b6f-4e7a-8c9d-0e1f2a3b4c5d")

IncidentState = Literal["open", "update", "close", "retract"]
Level = Literal["commune", "zone"]

INCIDENT_EVENT_TYPES: Mapping[str, str] = {
    "open": "city.incident.opened.v1",
    "update": "city.incident.updated.v1",
    "close": "city.incident.closed.v1",
    "retract": "city.incident.retracted.v1",
    "acknowledge": "city.incident.acknowledged.v1",
    "assign": "city.incident.assigned.v1",
    "annotate": "city.incident.annotated.v1",
    "step": "city.incident.step-checked.v1",
    "resolve": "city.incident.resolved.v1",
    "merge": "city.incident.merged.v1",
}
CORRELATION_SOURCE = "/ioc/incidents"
OPERATORS_SOURCE = "/ioc/operators"


def incident_id(*, rule_id: str, area_id: str, first_alert_id: str) -> str:
    """Deterministic id of the incident ``rule_id`` opened in ``area_id`` whose earliest
    alert (by opening time, then id) is ``first_alert_id``."""
    return str(uuid.uuid5(INCIDENT_NAMESPACE, f"{rule_id}/{area_id}/{first_alert_id}"))


class IncidentTransition(BaseModel):
    """One step of an incident's life as the correlation rules see it."""

    model_config = ConfigDict(frozen=True)

    incident_id: str
    rule_id: str
    #: The standard operating procedure to follow (``seeds/sops/<sop>.json``).
    sop: str
    state: IncidentState
    area_id: str
    level: Level
    severity: Severity
    #: Event time of the alert that met the rule.
    opened_at: str
    #: Event time of this transition (the close time for a ``close``).
    updated_at: str
    closed_at: str | None = None
    #: Ids of the member alerts, sorted.
    alerts: list[str]
    #: True on the ``update`` whose severity rose.
    escalated: bool = False
    title_en: str
    title_vi: str

    def to_json(self) -> bytes:
        """The message value for ``ioc.incidents``: a CloudEvent (:func:`incident_event`)."""
        return incident_event(self.model_dump(), source=CORRELATION_SOURCE)


def incident_event(data: Mapping[str, Any], *, source: str) -> bytes:
    """An incident transition (or an operator's action on one) as a CloudEvent 1.0 in
    structured JSON mode: its type says what happened, ``subject`` is the incident's
    area, ``time`` the transition's ``updated_at``, ``data`` the transition. The id is a
    function of the incident, the state, the time and the members, so a repeat carries
    the same id."""
    state, updated = str(data["state"]), str(data["updated_at"])
    event_type = INCIDENT_EVENT_TYPES[state]
    members = ",".join(data.get("alerts") or ())
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": str(
                uuid.uuid5(INCIDENT_NAMESPACE, f"{data['incident_id']}/{state}/{updated}/{members}")
            ),
            "source": source,
            "type": event_type,
            "subject": data["area_id"],
            "time": updated,
            "datacontenttype": "application/json",
            "data": data,
        }
    )
