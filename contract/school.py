"""School event payloads: attendance and safety reports."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, ClassVar, Literal

from msgspec import Meta

from contract.payload import Integer, Payload, Reading, exceeds


class SchoolAttendance(Payload, frozen=True):
    """Pupils present out of those enrolled, as counted at one school."""

    event_type: ClassVar[str] = "city.school.attendance.v1"
    readings: ClassVar[Mapping[str, Reading]] = {"attendance_pct": "mean", "present": "last_sum"}

    enrolled: Annotated[Integer, Meta(ge=0, le=20_000)]
    present: Annotated[Integer, Meta(ge=0, le=20_000)]

    def check(self) -> None:
        exceeds(self, "present", "enrolled")

    def metrics(self) -> dict[str, float]:
        rate = 100 * self.present / self.enrolled if self.enrolled else 0.0
        return {"attendance_pct": rate, "present": self.present}


class SchoolSafety(Payload, frozen=True):
    """A safety report at a school."""

    event_type: ClassVar[str] = "city.school.safety.v1"
    keep_raw: ClassVar[bool] = True
    readings: ClassVar[Mapping[str, Reading]] = {"safety_reports": "sum"}

    kind: Literal["fire_drill", "fire", "intruder", "injury", "flooding", "closure", "evacuation"]

    def metrics(self) -> dict[str, float]:
        return {"safety_reports": 1}
