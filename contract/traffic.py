"""Traffic event payloads: flow counts and incidents from intersections and road segments."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, ClassVar, Literal

from msgspec import Meta

from contract.payload import Integer, Number, Payload, Reading


class TrafficFlow(Payload, frozen=True):
    """Vehicles counted at an intersection or on a road segment over one interval."""

    event_type: ClassVar[str] = "city.traffic.flow.v1"
    readings: ClassVar[Mapping[str, Reading]] = {
        "vehicles": "sum",
        "avg_speed_kmh": "mean",
        "occupancy_pct": "mean",
    }

    vehicles: Annotated[Integer, Meta(ge=0, le=100_000)]
    avg_speed_kmh: Annotated[Number, Meta(ge=0, le=300)]
    occupancy_pct: Annotated[Number, Meta(ge=0, le=100)]
    interval_s: Annotated[Integer, Meta(gt=0, le=3600)]

    def metrics(self) -> dict[str, float]:
        return {
            "vehicles": self.vehicles,
            "avg_speed_kmh": self.avg_speed_kmh,
            "occupancy_pct": self.occupancy_pct,
        }


class TrafficIncident(Payload, frozen=True):
    """A crash, breakdown, flooding or closure reported on a road."""

    event_type: ClassVar[str] = "city.traffic.incident.v1"
    keep_raw: ClassVar[bool] = True
    readings: ClassVar[Mapping[str, Reading]] = {"incidents": "sum", "lanes_blocked": "sum"}

    kind: Literal["crash", "breakdown", "flooding", "landslide", "closure", "roadworks"]
    severity: Annotated[Integer, Meta(ge=1, le=5)]
    lanes_blocked: Annotated[Integer, Meta(ge=0, le=12)]

    def metrics(self) -> dict[str, float]:
        return {"incidents": 1, "lanes_blocked": self.lanes_blocked}
