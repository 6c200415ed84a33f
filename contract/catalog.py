"""The catalogue: the city's domains and every event type the platform accepts, mapped to
its payload model. The one place the list of domains is written."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, get_args

from contract.hospital import HospitalAdmission, HospitalStatus
from contract.payload import Payload, Reading
from contract.school import SchoolAttendance, SchoolSafety
from contract.security import SecurityAlarm, SecurityDetection
from contract.traffic import TrafficFlow, TrafficIncident

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

#: A domain of the city, in the order the integrator guide lists them. The simulator runs
#: its domains in this order each tick (``simulators.engine``), and the rule files' JSON
#: Schema lists them so: reordering it changes simulated bytes and a served schema.
Domain = Literal["traffic", "hospital", "school", "security"]
#: Domains with a raw topic ``ioc.<domain>.events``, in name order.
DOMAINS: tuple[str, ...] = tuple(sorted(get_args(Domain)))


def _check_domains() -> None:
    """Every event type names a domain of :data:`Domain`, and every domain has one."""
    named = {event_type.split(".")[1] for event_type in PAYLOAD_MODELS}
    if named != set(DOMAINS):
        raise RuntimeError(
            f"event types name the domains {sorted(named)}, the catalogue {list(DOMAINS)}"
        )


_check_domains()


def _readings() -> dict[str, dict[str, Reading]]:
    readings: dict[str, dict[str, Reading]] = {domain: {} for domain in DOMAINS}
    for event_type, model in PAYLOAD_MODELS.items():
        readings[event_type.split(".")[1]].update(model.readings)
    return readings


#: How an area reads each metric of each domain (see ``contract.payload.Reading``).
METRIC_READINGS: Mapping[str, Mapping[str, Reading]] = _readings()

__all__ = ["DOMAINS", "METRIC_READINGS", "PAYLOAD_MODELS", "Domain", "Payload", "Reading"]
