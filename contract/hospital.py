"""Hospital event payloads: bed, ICU, emergency-room and ambulance status; admissions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, ClassVar, Literal

from pydantic import BeforeValidator, Field, model_validator

from contract.payload import Integer, Payload, Reading, json_number


class HospitalStatus(Payload):
    """Capacity snapshot of one hospital."""

    event_type: ClassVar[str] = "city.hospital.status.v1"
    readings: ClassVar[Mapping[str, Reading]] = {
        "bed_occupancy_pct": "mean",
        "icu_occupancy_pct": "mean",
        "er_waiting": "last_sum",
        "ambulances_available": "last_sum",
    }

    beds_total: Integer = Field(ge=0, le=10_000)
    beds_occupied: Integer = Field(ge=0, le=10_000)
    icu_total: Integer = Field(ge=0, le=1_000)
    icu_occupied: Integer = Field(ge=0, le=1_000)
    er_waiting: Integer = Field(ge=0, le=10_000)
    ambulances_available: Integer = Field(ge=0, le=500)

    @model_validator(mode="after")
    def _occupied_within_total(self) -> HospitalStatus:
        if self.beds_occupied > self.beds_total:
            raise ValueError("beds_occupied exceeds beds_total")
        if self.icu_occupied > self.icu_total:
            raise ValueError("icu_occupied exceeds icu_total")
        return self

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


class HospitalAdmission(Payload):
    """One patient admitted, with the triage level given at the door (1 most urgent)."""

    event_type: ClassVar[str] = "city.hospital.admission.v1"
    keep_raw: ClassVar[bool] = True
    readings: ClassVar[Mapping[str, Reading]] = {"admissions": "sum", "admissions_urgent": "sum"}

    triage: Annotated[Literal[1, 2, 3, 4, 5], BeforeValidator(json_number)]

    def metrics(self) -> dict[str, float]:
        return {"admissions": 1, "admissions_urgent": 1 if self.triage <= 2 else 0}
