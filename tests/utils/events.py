"""Builders of raw records for tests."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from contract.envelope import encode

T0 = datetime(2024, 9, 7, 8, 0, tzinfo=UTC)


def flow_value(
    entity: str, at: datetime, *, vehicles: int = 10, event_id: str | None = None, **data: Any
) -> bytes:
    """One structured-mode traffic flow CloudEvent."""
    payload = {"vehicles": vehicles, "avg_speed_kmh": 42.5, "occupancy_pct": 30.0, "interval_s": 60}
    payload.update(data)
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": event_id or f"{entity}-{at.timestamp()}",
            "source": "/tests",
            "type": "city.traffic.flow.v1",
            "time": at,
            "subject": entity,
            "data": payload,
        }
    )


@dataclass(frozen=True)
class Record:
    key: bytes
    value: bytes
    time_ms: int


@dataclass
class FlowBatch:
    """Records to produce and the truth they imply: vehicles per (entity, minute)."""

    records: list[Record]
    vehicles: dict[tuple[str, datetime], int]
    entities: list[str]


def random_flow(
    *, events: int, entities: int, minutes: int, seed: int = 1, start: datetime = T0
) -> FlowBatch:
    """``events`` flow events over ``entities`` intersections and ``minutes`` of event time,
    sorted by event time, with the per-minute vehicle sums they add up to."""
    rng = random.Random(seed)
    names = [f"t-ix-{i:03d}" for i in range(entities)]
    drafts = []
    for n in range(events):
        at = start + timedelta(milliseconds=rng.randrange(minutes * 60_000))
        drafts.append((at, rng.choice(names), rng.randrange(0, 120), n))
    drafts.sort()
    truth: dict[tuple[str, datetime], int] = defaultdict(int)
    records = []
    for at, entity, vehicles, n in drafts:
        truth[(entity, at.replace(second=0, microsecond=0))] += vehicles
        records.append(
            Record(
                entity.encode(),
                flow_value(entity, at, vehicles=vehicles, event_id=f"ev-{seed}-{n}"),
                int(at.timestamp() * 1000),
            )
        )
    return FlowBatch(records, dict(truth), names)


def alarm_value(camera: str, at: datetime, kind: str = "fire", zone: str = "lobby") -> bytes:
    """One security alarm CloudEvent."""
    return encode(
        event_type="city.security.alarm.v1",
        subject=camera,
        time=at,
        data={"kind": kind, "zone": zone},
        event_id=f"{camera}-{at.timestamp()}-{kind}-{zone}",
        source="/tests/alarms",
    )


def detection_value(
    camera: str, at: datetime, *, kind: str, confidence: float, count: int = 1
) -> bytes:
    """One camera detection CloudEvent."""
    return encode(
        event_type="city.security.detection.v1",
        subject=camera,
        time=at,
        data={"kind": kind, "confidence": confidence, "count": count},
        event_id=f"{camera}-{at.timestamp()}-{kind}",
        source="/tests/cameras",
    )


#: A hospital's status report, ordinary figures.
HOSPITAL_STATUS = {
    "beds_total": 100,
    "beds_occupied": 50,
    "icu_total": 10,
    "icu_occupied": 5,
    "er_waiting": 3,
    "ambulances_available": 2,
}


def status_value(hospital: str, at: datetime) -> bytes:
    """One hospital status CloudEvent (:data:`HOSPITAL_STATUS`)."""
    return encode(
        event_type="city.hospital.status.v1",
        subject=hospital,
        time=at,
        data=HOSPITAL_STATUS,
        event_id=f"{hospital}-{at.timestamp()}-status",
        source="/tests/hospitals",
    )


def smoke_value(camera: str, at: datetime, confidence: float) -> bytes:
    """One camera's smoke detection."""
    return detection_value(camera, at, kind="smoke", confidence=confidence)
