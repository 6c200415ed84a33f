"""JSON Schemas of the CloudEvents on the project's topics: the inbound events' from the
event contract, the alert and incident events' the API and the tiers publish. Served by
/v1/schemas, used by POST /v1/events and the AsyncAPI document."""

from __future__ import annotations

from typing import Any

import msgspec

from contract.catalog import PAYLOAD_MODELS
from contract.envelope import CloudEvent
from streams.alerts.transitions import (
    ALERT_EVENT_TYPES,
    OPERATORS_SOURCE,
    RULES_SOURCE,
    AlertTransition,
)
from streams.incidents.events import (
    CORRELATION_SOURCE,
    INCIDENT_EVENT_TYPES,
    IncidentTransition,
)

#: The state (``data.state``) each outbound alert event type carries.
ALERT_STATES = {event_type: state for state, event_type in ALERT_EVENT_TYPES.items()}


#: What each operator's action adds to its event's data.
ACTION_FIELDS: dict[str, dict[str, Any]] = {
    "acknowledge": {},
    "assign": {"assignee": {"type": "string", "description": "Who the incident is given to"}},
    "annotate": {"text": {"type": "string", "description": "The note"}},
    "step": {"step_id": {"type": "string", "description": "The SOP step checked"}},
    "resolve": {},
    "merge": {
        "into": {"type": "string", "format": "uuid", "description": "The incident merged into"},
        "alerts": {
            "type": "array",
            "items": {"type": "string"},
            "description": "This incident's alerts, now the other's too",
        },
    },
}


def alert_event_schema(event_type: str) -> dict[str, Any]:
    """JSON Schema of an outbound alert CloudEvent (``streams.alerts.transitions``)."""
    state = ALERT_STATES[event_type]
    data = AlertTransition.model_json_schema()
    data["properties"]["state"] = {"const": state, "title": "State", "type": "string"}
    if state in ("acknowledge", "resolve"):
        data["properties"]["by"] = {
            "type": "string",
            "description": "The operator's key, when an operator did it (source /ioc/operators)",
        }
    sources = [OPERATORS_SOURCE] if state == "acknowledge" else [RULES_SOURCE, OPERATORS_SOURCE]
    return _outbound_schema(event_type, sources=sources, subject="The entity id", data=data)


#: The state (``data.state``) each outbound incident event type carries: a correlation
#: transition's or an operator's action (``api.routes.incident_actions``).
INCIDENT_STATES = {event_type: state for state, event_type in INCIDENT_EVENT_TYPES.items()}


CORRELATION_STATES = ("open", "update", "close", "retract")


def incident_event_schema(event_type: str) -> dict[str, Any]:
    """JSON Schema of an outbound incident CloudEvent (``streams.incidents.events``)."""
    state = INCIDENT_STATES[event_type]
    if state in CORRELATION_STATES:
        data = IncidentTransition.model_json_schema()
        data["properties"]["state"] = {"const": state, "title": "State", "type": "string"}
        sources = [CORRELATION_SOURCE]
    else:
        fields = ACTION_FIELDS[state]
        data = {
            "title": f"Operator's {state}",
            "type": "object",
            "required": ["incident_id", "area_id", "state", "updated_at", "by", *fields],
            "properties": {
                "incident_id": {"type": "string", "format": "uuid"},
                "area_id": {"type": "string"},
                "state": {"const": state, "type": "string"},
                "updated_at": {"type": "string", "format": "date-time"},
                "by": {"type": "string", "description": "The operator's key"},
                **fields,
            },
        }
        sources = [OPERATORS_SOURCE]
    return _outbound_schema(
        event_type, sources=sources, subject="The incident's area id", data=data
    )


def _outbound_schema(
    event_type: str, *, sources: list[str], subject: str, data: dict[str, Any]
) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"/v1/schemas/{event_type}",
        "title": f"{event_type} CloudEvent",
        "type": "object",
        "required": ["specversion", "id", "source", "type", "subject", "time", "data"],
        "properties": {
            "specversion": {"const": "1.0"},
            "id": {"type": "string", "description": "The same for a repeat or a replay"},
            "source": {"enum": sources},
            "type": {"const": event_type},
            "subject": {"type": "string", "description": subject},
            "time": {"type": "string", "format": "date-time"},
            "datacontenttype": {"const": "application/json"},
            "dataschema": {"type": "string"},
            "data": data,
        },
    }


def _struct_schema(struct: type[msgspec.Struct]) -> dict[str, Any]:
    """The JSON Schema msgspec makes of ``struct``, inline (the contract's structs refer to
    no other)."""
    document = msgspec.json.schema(struct)
    defs = document["$defs"]
    schema: dict[str, Any] = defs.pop(document["$ref"].rsplit("/", 1)[1])
    if defs:
        raise ValueError(f"{struct.__name__} refers to other structs: {sorted(defs)}")
    # An Integer field's own Meta says "integer", but bounds beside it make msgspec say
    # "number" again.
    for name in getattr(struct, "integers", ()):
        schema["properties"][name]["type"] = "integer"
    return schema


def event_schema(event_type: str) -> dict[str, Any]:
    """JSON Schema of a whole CloudEvent of ``event_type``: the envelope with ``type``
    fixed and ``data`` the payload model's schema."""
    model = PAYLOAD_MODELS[event_type]
    schema = _struct_schema(CloudEvent)
    payload = _struct_schema(model)
    schema["properties"]["type"] = {"const": event_type, "title": "Type", "type": "string"}
    schema["properties"]["data"] = payload
    schema["title"] = f"{model.__name__} CloudEvent"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"/v1/schemas/{event_type}"
    return schema
