"""Builders of derived-topic records (``ioc.state`` entity records, ``ioc.alerts``
transitions) as the worker writes them, and of operators' actions on ``ioc.incidents``,
for tests of the live feeds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from streams.alerts import alert_id as make_alert_id
from streams.entity_record import Aggregate, encode_record, new_record
from streams.incidents.events import OPERATORS_SOURCE, IncidentTransition, incident_event
from tests.utils.events import Record

T0_MS = 1_725_696_000_000  # 2024-09-07T08:00:00Z


def state_record(
    entity: str,
    *,
    domain: str = "traffic",
    time_ms: int = T0_MS,
    state: dict[str, Any] | None = None,
    open_rules: tuple[str, ...] = (),
) -> dict[str, Any]:
    """An entity record like the worker's, with open alerts for ``open_rules``."""
    record = new_record(entity_id=entity, domain=domain, partition=0)
    record.offset, record.time_ms = 1, time_ms
    record.event_type = f"city.{domain}.flow.v1"
    record.state = state if state is not None else {"vehicles": 10}
    record.buckets = {str(time_ms): {"vehicles": Aggregate(1, 10, 10, 10, 10, time_ms)}}
    record.rules = {
        "quiet-rule": {"f": time_ms},
        **{
            rule: {"f": time_ms, "a": {"id": alert_id(rule, entity), "o": 0, "s": 0, "l": 0}}
            for rule in open_rules
        },
    }
    # As the live feed's consumer gets it: the JSON the worker writes, decoded.
    wire: dict[str, Any] = orjson.loads(encode_record(record))
    return wire


def alert_id(rule: str, entity: str) -> str:
    return make_alert_id(rule_id=rule, entity_id=entity, opened_minute_ms=T0_MS)


def transition(
    entity: str,
    *,
    state: str = "open",
    rule: str = "traffic-congestion",
    domain: str = "traffic",
    severity: str = "warning",
    minute: int = 3,
) -> dict[str, Any]:
    """An ``ioc.alerts`` message as JSON (``AlertTransition.model_dump(mode="json")``)."""
    at = f"2024-09-07T08:{minute:02d}:00Z"
    return {
        "alert_id": alert_id(rule, entity),
        "rule_id": rule,
        "entity_id": entity,
        "domain": domain,
        "severity": severity,
        "state": state,
        "opened_at": "2024-09-07T08:03:00Z",
        "since": "2024-09-07T08:00:00Z",
        "updated_at": at,
        "resolved_at": at if state == "resolve" else None,
        "values": {"avg(avg_speed_kmh)": 9.0},
        "title_en": "Congestion",
        "title_vi": "Ùn tắc",
    }


def incident_action(
    t: IncidentTransition, state: str, *, by: str = "duty-1", minute: int = 30, **fields: Any
) -> Record:
    """An operator's action on the incident of ``t`` as the API publishes it on
    ``ioc.incidents`` (``api.routes.incident_actions``): keyed by area, from
    ``/ioc/operators``, ``minute`` minutes after T0."""
    at = datetime.fromtimestamp(T0_MS / 1000 + minute * 60, tz=UTC)
    data = {
        "incident_id": t.incident_id,
        "area_id": t.area_id,
        "state": state,
        "updated_at": at.isoformat().replace("+00:00", "Z"),
        "by": by,
        **fields,
    }
    value = incident_event(data, source=OPERATORS_SOURCE)
    return Record(t.area_id.encode(), value, int(at.timestamp() * 1000))


def flow_state(vehicles: int, speed: float, occupancy: float = 20.0) -> dict[str, Any]:
    """The data of a valid ``city.traffic.flow.v1`` event (an entity's state)."""
    return {
        "vehicles": vehicles,
        "avg_speed_kmh": speed,
        "occupancy_pct": occupancy,
        "interval_s": 60,
    }


def hospital_state(*, waiting: int, occupied: int = 50, total: int = 100) -> dict[str, Any]:
    """The data of a valid ``city.hospital.status.v1`` event."""
    return {
        "beds_total": total,
        "beds_occupied": occupied,
        "icu_total": 10,
        "icu_occupied": 5,
        "er_waiting": waiting,
        "ambulances_available": 2,
    }


def area_state_record(
    entity: str, *, domain: str, event_type: str, state: dict[str, Any], time_ms: int
) -> dict[str, Any]:
    """An entity record whose latest event is of ``event_type`` (``city.<domain>.<...>``)."""
    return {**state_record(entity, domain=domain, time_ms=time_ms, state=state), "k": event_type}
