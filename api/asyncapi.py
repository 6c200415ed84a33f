"""The AsyncAPI 3 document of the namespace's topics: what integrators publish and what
they may subscribe to, with keys, headers, partitioner and message schemas made from the
contract the worker applies (``contract.catalog``, ``streams.alerts.transitions``,
``streams.incidents.events``). The worker's changelog (``ioc.state``) is listed as
internal, with no operation. The API's live feed is a channel of its own server (``ws``),
with its ``area`` message (``api.live.schema``).

Served at ``GET /v1/asyncapi``; ``tests/integration/test_asyncapi.py`` checks it with the
AsyncAPI project's own parser (npm ``@asyncapi/parser``).
"""

from __future__ import annotations

from typing import Any

from api.event_schemas import (
    ALERT_STATES,
    INCIDENT_STATES,
    alert_event_schema,
    event_schema,
    incident_event_schema,
)
from api.live.schema import AreaMessage
from contract.catalog import DOMAINS, PAYLOAD_MODELS
from contract.rejection import REASONS
from ioc.settings import Settings
from streams.partitions import CLIENT_SETTING
from streams.topics import ALERTS_TOPIC, DEADLETTER_TOPIC, INCIDENTS_TOPIC, STATE_TOPIC, raw_topic

KAFKA_BINDING = "0.5.0"
ENTITY_KEY = {
    "type": "string",
    "description": "The entity id (the CloudEvent's subject), UTF-8",
}
AREA_KEY = {
    "type": "string",
    "description": "The incident's area id (the CloudEvent's subject), UTF-8",
}


def _inline(schema: Any, defs: dict[str, Any]) -> Any:
    """``schema`` with every ``#/$defs/...`` reference replaced by its definition: embedded
    in the document, a local reference would point into the AsyncAPI document instead."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in schema.items() if k not in ("$defs", "$schema")}
    if isinstance(schema, list):
        return [_inline(item, defs) for item in schema]
    return schema


def _payload(schema: dict[str, Any]) -> dict[str, Any]:
    body = _inline(schema, schema.get("$defs", {}))
    body.pop("$id", None)
    return {"schemaFormat": "application/schema+json;version=draft-07", "schema": body}


def _message_id(event_type: str) -> str:
    return event_type.replace(".", "_")


def _channel(
    address: str, title: str, messages: list[str], partitions: int, description: str = ""
) -> dict[str, Any]:
    """A channel of one topic carrying the named messages of ``components``."""
    channel: dict[str, Any] = {
        "address": address,
        "title": title,
        "servers": [{"$ref": "#/servers/kafka"}],
        "messages": {m: {"$ref": f"#/components/messages/{m}"} for m in messages},
        "bindings": {
            "kafka": {"topic": address, "partitions": partitions, "bindingVersion": KAFKA_BINDING}
        },
    }
    if description:
        channel["description"] = description
    return channel


def _live_feed(
    messages: dict[str, Any], channels: dict[str, Any], operations: dict[str, Any]
) -> None:
    """The live feed's ``area`` message (its other kinds: README, "Live feeds")."""
    messages["liveArea"] = {
        "name": "area",
        "title": "Live area tile",
        "summary": " ".join((AreaMessage.__doc__ or "").split()),
        "contentType": "application/json",
        "payload": _payload(AreaMessage.model_json_schema()),
    }
    channels["liveFeed"] = {
        "address": "/v1/live",
        "title": "Live feed",
        "servers": [{"$ref": "#/servers/api"}],
        "description": (
            "The API's live feed (query parameters kind, domain, area, entity, severity; "
            "since to resume): a snapshot, then messages numbered by the API process, of "
            "kinds entity, alert, incident and area. This document describes the area "
            "message; SSE (/v1/live/sse) sends the same JSON as data of an event named by "
            "its type."
        ),
        "messages": {"liveArea": {"$ref": "#/components/messages/liveArea"}},
    }
    operations["receiveLiveAreas"] = {
        "action": "receive",
        "title": "Follow the area tiles",
        "channel": {"$ref": "#/channels/liveFeed"},
    }


def asyncapi_document(settings: Settings) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of ``settings``' namespace."""
    partitions = settings.kafka.partitions
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for event_type in sorted(PAYLOAD_MODELS):
        messages[_message_id(event_type)] = {
            "name": event_type,
            "title": PAYLOAD_MODELS[event_type].__doc__ or event_type,
            "contentType": "application/cloudevents+json",
            "payload": _payload(event_schema(event_type)),
            "bindings": {"kafka": {"key": ENTITY_KEY, "bindingVersion": KAFKA_BINDING}},
        }
    for domain in DOMAINS:
        name = f"{domain}Events"
        types = [t for t in sorted(PAYLOAD_MODELS) if t.split(".")[1] == domain]
        channels[name] = _channel(
            raw_topic(settings, domain),
            f"Raw {domain} events",
            [_message_id(t) for t in types],
            partitions,
            f"CloudEvents of the {domain} domain, keyed by entity id, Kafka timestamp = event "
            f"time. Partitioner: Kafka's default, murmur2 of the key; {CLIENT_SETTING}. A "
            "record on another partition is dead-lettered (wrong_partition).",
        )
        operations[f"publish{domain.capitalize()}"] = {
            "action": "send",
            "title": f"Publish {domain} events",
            "channel": {"$ref": f"#/channels/{name}"},
            "messages": [{"$ref": f"#/channels/{name}/messages/{_message_id(t)}"} for t in types],
        }
    for event_type in sorted(ALERT_STATES):
        messages[_message_id(event_type)] = {
            "name": event_type,
            "title": f"Alert: {ALERT_STATES[event_type]}",
            "contentType": "application/cloudevents+json",
            "payload": _payload(alert_event_schema(event_type)),
            "bindings": {"kafka": {"key": ENTITY_KEY, "bindingVersion": KAFKA_BINDING}},
        }
    channels["alerts"] = _channel(
        settings.topic(ALERTS_TOPIC),
        "Alert transitions",
        [_message_id(t) for t in sorted(ALERT_STATES)],
        partitions,
        "CloudEvents of the rules (source /ioc/rules) and of operators (/ioc/operators), "
        "keyed by entity id. Delivery is at-least-once: drop repeats by (source, id).",
    )
    operations["receiveAlerts"] = {
        "action": "receive",
        "title": "Subscribe to alerts",
        "channel": {"$ref": "#/channels/alerts"},
    }
    for event_type in sorted(INCIDENT_STATES):
        messages[_message_id(event_type)] = {
            "name": event_type,
            "title": f"Incident: {INCIDENT_STATES[event_type]}",
            "contentType": "application/cloudevents+json",
            "payload": _payload(incident_event_schema(event_type)),
            "bindings": {"kafka": {"key": AREA_KEY, "bindingVersion": KAFKA_BINDING}},
        }
    channels["incidents"] = _channel(
        settings.topic(INCIDENTS_TOPIC),
        "Incident transitions",
        [_message_id(t) for t in sorted(INCIDENT_STATES)],
        partitions,
        "CloudEvents of the incident tier's correlation (source /ioc/incidents) and of "
        "operators' actions on incidents (/ioc/operators), keyed by area id. Delivery is "
        "at-least-once: drop repeats by (source, id).",
    )
    operations["receiveIncidents"] = {
        "action": "receive",
        "title": "Subscribe to incidents",
        "channel": {"$ref": "#/channels/incidents"},
    }
    messages["deadLetter"] = {
        "name": "dead letter",
        "title": "A refused raw record",
        "description": "The original key, value and headers, and why it was refused.",
        "headers": {
            "type": "object",
            "required": ["ioc_reason", "ioc_detail", "ioc_source"],
            "properties": {
                "ioc_reason": {"type": "string", "enum": sorted(REASONS)},
                "ioc_detail": {"type": "string", "maxLength": 1000},
                "ioc_source": {
                    "type": "string",
                    "description": 'JSON: {"topic", "partition", "offset"} of the refused record',
                },
            },
        },
        "payload": {"description": "The refused record's value, byte for byte"},
        "bindings": {"kafka": {"key": ENTITY_KEY, "bindingVersion": KAFKA_BINDING}},
    }
    channels["deadLetters"] = _channel(
        settings.topic(DEADLETTER_TOPIC), "Dead letters", ["deadLetter"], partitions
    )
    operations["receiveDeadLetters"] = {
        "action": "receive",
        "title": "Subscribe to dead letters",
        "channel": {"$ref": "#/channels/deadLetters"},
    }
    messages["entityRecord"] = {
        "name": "entity record",
        "title": "The latest state of one entity",
        "description": (
            "Internal: the worker's changelog (compacted, keyed by entity id), read by the "
            "database sink and the API's live views. Its fields are the worker's and change "
            "between versions: it is not a subscriber contract, so no operation offers it. "
            "Subscribers use ioc.alerts, the API's live feeds (/v1/live) or its reads."
        ),
        "payload": {"type": "object"},
        "bindings": {"kafka": {"key": ENTITY_KEY, "bindingVersion": KAFKA_BINDING}},
    }
    channels["entityState"] = _channel(
        settings.topic(STATE_TOPIC),
        "Entity state (internal changelog)",
        ["entityRecord"],
        partitions,
    )
    _live_feed(messages, channels, operations)
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Smart-city IOC topics",
            "version": "1.0.0",
            "description": (
                f"Kafka topics of the namespace {settings.namespace!r}: raw events in; "
                "alerts, incidents and dead letters out; the worker's internal changelog; "
                "and the area tiles of the API's live feeds."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "kafka": {
                "host": settings.bootstrap_servers.split(",")[0],
                "protocol": "kafka",
                "description": "The namespace's Kafka",
            },
            "api": {
                "host": f"{settings.api.host}:{settings.api.port}",
                "protocol": "ws",
                "description": (
                    "The API's live feeds: WebSocket /v1/live and Server-Sent Events "
                    "/v1/live/sse, with the same messages"
                ),
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }
