"""Every metric an event feeds says how an area reads it, and the catalogue gathers them
per domain: the area series and the live area tiles depend on it."""

from __future__ import annotations

from typing import Any, get_args

import pytest

from contract.catalog import METRIC_READINGS, PAYLOAD_MODELS
from contract.envelope import read_payload
from contract.payload import Reading
from contract.security import DetectionKind

#: One valid payload per event type (each kind of detection gets its own metric).
SAMPLES: dict[str, list[dict[str, Any]]] = {
    "city.traffic.flow.v1": [
        {"vehicles": 12, "avg_speed_kmh": 31.5, "occupancy_pct": 20.0, "interval_s": 60}
    ],
    "city.traffic.incident.v1": [{"kind": "crash", "severity": 3, "lanes_blocked": 1}],
    "city.hospital.status.v1": [
        {
            "beds_total": 100,
            "beds_occupied": 70,
            "icu_total": 10,
            "icu_occupied": 4,
            "er_waiting": 6,
            "ambulances_available": 3,
        }
    ],
    "city.hospital.admission.v1": [{"triage": 2}],
    "city.school.attendance.v1": [{"enrolled": 500, "present": 480}],
    "city.school.safety.v1": [{"kind": "injury"}],
    "city.security.detection.v1": [
        {"kind": kind, "confidence": 0.9, "count": 2} for kind in get_args(DetectionKind)
    ],
    "city.security.alarm.v1": [{"kind": "fire", "zone": "lobby"}],
}


def test_every_event_type_has_samples() -> None:
    assert set(SAMPLES) == set(PAYLOAD_MODELS)


@pytest.mark.parametrize("event_type", sorted(PAYLOAD_MODELS))
def test_every_metric_fed_has_a_reading(event_type: str) -> None:
    model = PAYLOAD_MODELS[event_type]
    domain = event_type.split(".")[1]
    fed: set[str] = set()
    for data in SAMPLES[event_type]:
        fed |= set(read_payload(model, data).metrics())
    assert fed, f"{event_type}: the samples feed no metric"
    assert fed == set(model.readings), f"{event_type}: readings must name exactly its metrics"
    for metric in fed:
        assert METRIC_READINGS[domain][metric] in get_args(Reading)


def test_readings_follow_what_the_metric_is() -> None:
    assert METRIC_READINGS["traffic"]["vehicles"] == "sum"
    assert METRIC_READINGS["traffic"]["avg_speed_kmh"] == "mean"
    assert METRIC_READINGS["hospital"]["er_waiting"] == "last_sum"
    assert METRIC_READINGS["school"]["present"] == "last_sum"
    assert METRIC_READINGS["security"]["alarms"] == "sum"
