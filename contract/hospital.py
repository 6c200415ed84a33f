"""Hospital event payloads: bed, ICU, emergency-room and ambulance status; admissions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, ClassVar

from msgspec import Meta

from contract.payload import Integer, Payload, Reading, exceeds


class HospitalStatus(Payload, frozen=True):
    """Capacity snapshot of one hospital."""

    event_type: ClassVar[str] = "city.hospital.status.v1"
    readings: ClassVar[Mapping[str, Reading]] = {
        "bed_occupancy_pct": "mean",
        "icu_occupancy_pct": "mean",
        "er_waiting": "last_sum",
        "ambulances_available": "last_sum",
    }

    beds_total: Annotated[Integer, Meta(ge=0, le=10_000)]
    beds_occupied: Annotated[Integer, Meta(ge=0, le=10_000)]
    icu_total: Annotated[Integer, Meta(ge=0, le=1_000)]
    icu_occupied: Annotated[Integer, Meta(ge=0, le=1_000)]
    er_waiting: Annotated[Integer, Meta(ge=0, le=10_000)]
    ambulances_available: Annotated[Integer, Meta(ge=0, le=500)]

    def check(self) -> None:
        exceeds(self, "beds_occupied", "beds_total")
        exceeds(self, "icu_occupied", "icu_total")

    def metrics(self) -> dict[str, float]:
        return {
            "bed_occupancy_pct": 100 * self.beds_occupied / self.beds_total
            if self.beds_total
            else 0.0,
            "icu_occupancy_pct": 100 * self.icu_occupied / self.icu_total
            if self.icu_total
            else 0.0,
            "er_waiting": self.er_waiting,
            "ambulances_available": self.ambulances_available,
        }


class HospitalAdmission(Payload, frozen=True):
    """One patient admitted, with the triage level given at the door (1 most urgent)."""

    event_type: ClassVar[str] = "city.hospital.admission.v1"
    keep_raw: ClassVar[bool] = True
    readings: ClassVar[Mapping[str, Reading]] = {"admissions": "sum", "admissions_urgent": "sum"}

    #: 1 to 5 (an integer: JSON Schema's enum of 1 to 5 took 3.0 as well).
    triage: Annotated[Integer, Meta(ge=1, le=5)]

    def metrics(self) -> dict[str, float]:
        return {"admissions": 1, "admissions_urgent": 1 if self.triage <= 2 else 0}
