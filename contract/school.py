"""School event payloads: attendance and safety reports."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from contract.payload import Integer, Payload, Reading


class SchoolAttendance(Payload):
    """Pupils present out of those enrolled, as counted at one school."""

    event_type: ClassVar[str] = "city.school.attendance.v1"
    readings: ClassVar[Mapping[str, Reading]] = {"attendance_pct": "mean", "present": "last_sum"}

    enrolled: Integer = Field(ge=0, le=20_000)
    present: Integer = Field(ge=0, le=20_000)

    @model_validator(mode="after")
    def _present_within_enrolled(self) -> SchoolAttendance:
        if self.present > self.enrolled:
            raise ValueError("present exceeds enrolled")
        return self

    def metrics(self) -> dict[str, float]:
        rate = 100 * self.present / self.enrolled if self.enrolled else 0.0
        return {"attendance_pct": rate, "present": self.present}


class SchoolSafety(Payload):
    """A safety report at a school."""

    event_type: ClassVar[str] = "city.school.safety.v1"
    keep_raw: ClassVar[bool] = True
    readings: ClassVar[Mapping[str, Reading]] = {"safety_reports": "sum"}

    kind: Literal["fire_drill", "fire", "intruder", "injury", "flooding", "closure", "evacuation"]

    def metrics(self) -> dict[str, float]:
        return {"safety_reports": 1}
