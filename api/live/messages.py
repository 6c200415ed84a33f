"""What the live feeds send: hub messages, their ids, and how each transport frames them.

Every message the hub fans out gets the next number of the hub's sequence; its id is
``<epoch>-<seq>``, where the epoch names the hub (the API process) that numbered it. Within
one epoch ids only grow, so "everything after id X" is well defined for a resuming client;
an id of another epoch (another API process, or one since restarted) cannot be resumed.

A message is encoded once, when the hub publishes it, and the same bytes go to every client.

Kinds (the ``type`` of the JSON object, the SSE ``event:``), each carrying its payload under
the same name: ``entity`` (an entity view, :func:`entity_view`), ``alert`` (a transition
as on ``ioc.alerts``: the rules' or an operator's) and ``incident`` (the ``data`` of a
CloudEvent on ``ioc.incidents``: a correlation transition, state ``open``, ``update``,
``close`` or ``retract``, or an operator's action on an incident, state ``acknowledge``,
``assign``, ``annotate``, ``step``, ``resolve`` or ``merge``, with ``by``) and ``area`` (an
area's tile, ``api.live.areas``: what its entities report now, open alerts and incidents,
sent when it changed, at most once per ``IOC_LIVE__AREA_INTERVAL_S``). Besides those the
feeds send ``snapshot``, ``resumed``, ``ping`` and (SSE) ``closing``, which are not
numbered by the hub.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec
import orjson

from streams.entity_record import EntityRecord, LiveView

Kind = Literal["entity", "alert", "incident", "area"]


@dataclass(frozen=True, slots=True)
class EventId:
    """A position in one hub's sequence."""

    epoch: str
    seq: int

    def __str__(self) -> str:
        return f"{self.epoch}-{self.seq}"

    @classmethod
    def parse(cls, text: str) -> EventId:
        """``<epoch>-<seq>`` as sent; ValueError otherwise."""
        epoch, sep, seq = text.strip().rpartition("-")
        if not sep or not epoch or not seq.isdigit() or len(text) > 64:
            raise ValueError(f"not an event id: {text[:64]!r} (expected <epoch>-<number>)")
        return cls(epoch, int(seq))


@dataclass(frozen=True, slots=True)
class Message:
    """One update as fanned out: what filters look at, and its encoded forms."""

    seq: int
    kind: Kind
    #: The entity's domain and id; empty for incidents and areas, which span entities.
    domain: str
    entity_id: str
    #: Alert or incident severity; None for entity updates (and for an operator's action
    #: on an incident whose severity the hub has not seen).
    severity: str | None
    #: The JSON object sent (WebSocket text frame, SSE ``data:``).
    body: bytes
    #: The whole SSE event (``id:``, ``event:``, ``data:``).
    sse: bytes
    #: What the snapshot is built from: the entity view, the alert or incident transition.
    payload: dict[str, Any]
    #: The incident's area (a commune or a zone) or the tile's area; None for entity
    #: updates and alerts.
    area_id: str | None = None


def encode(*, event_id: EventId, kind: Kind, payload: dict[str, Any]) -> tuple[bytes, bytes]:
    """The JSON body and the SSE event of one message."""
    text = str(event_id)
    body = orjson.dumps({"id": text, "type": kind, kind: payload})
    return body, sse_event(body, event=kind, event_id=text)


def sse_event(body: bytes, *, event: str, event_id: str | None = None) -> bytes:
    """One Server-Sent Event; ``body`` is one line of JSON (orjson never emits newlines)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\n".encode() + b"data: " + body + b"\n\n"


def iso_ms(time_ms: int | None) -> str | None:
    """Milliseconds since the epoch as RFC 3339 in UTC."""
    if time_ms is None:
        return None
    return datetime.fromtimestamp(time_ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def epoch_ms(iso: str) -> int:
    """An RFC 3339 time as milliseconds since the epoch."""
    return round(datetime.fromisoformat(iso).timestamp() * 1000)


def entity_view(record: dict[str, Any] | EntityRecord | LiveView) -> dict[str, Any]:
    """The compact view of an ``ioc.state`` record (``streams.entity_record``) that clients
    get: no buckets, offsets or engine internals, only what an operator sees. ``record``
    is the typed record or its JSON as decoded."""
    if isinstance(record, dict):
        record = msgspec.convert(record, LiveView)
    return {
        "entity_id": record.entity_id,
        "domain": record.domain,
        "event_type": record.event_type,
        "event_time": iso_ms(record.time_ms),
        "state": record.state or {},
        "alerts": [
            {"rule_id": rule_id, "alert_id": alert_id} for rule_id, alert_id in record.open_alerts()
        ],
    }
