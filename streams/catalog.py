"""Every event type the platform accepts, mapped to its payload model."""

from __future__ import annotations

from collections.abc import Mapping

from streams.hospital.models import HospitalAdmission, HospitalStatus
from streams.payload import Payload, Reading
from streams.school.models import SchoolAttendance, SchoolSafety
from streams.security.models import SecurityAlarm, SecurityDetection
from streams.traffic.models import TrafficFlow, TrafficIncident

PAYLOAD_MODELS: Mapping[str, type[Payload]] = {
    model.event_type: model
    for model in (
        TrafficFlow,
        TrafficIncident,
        HospitalStatus,
        HospitalAdmission,
        SchoolAttendance,
        SchoolSafety,
        SecurityDetection,
        SecurityAlarm,
    )
}

#: Domains with a raw topic ``ioc.<domain>.events``.
DOMAINS: tuple[str, ...] = tuple(sorted({t.split(".")[1] for t in PAYLOAD_MODELS}))


def _readings() -> dict[str, dict[str, Reading]]:
    readings: dict[str, dict[str, Reading]] = {domain: {} for domain in DOMAINS}
    for event_type, model in PAYLOAD_MODELS.items():
        readings[event_type.split(".")[1]].update(model.readings)
    return readings


#: How an area reads each metric of each domain (see ``streams.payload.Reading``).
METRIC_READINGS: Mapping[str, Mapping[str, Reading]] = _readings()

__all__ = ["DOMAINS", "METRIC_READINGS", "PAYLOAD_MODELS", "Payload", "Reading"]
