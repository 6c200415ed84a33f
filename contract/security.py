"""Security event payloads: camera detections and alarms."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, ClassVar, Literal, get_args

from msgspec import Meta

from contract.payload import Integer, Number, Payload, Reading

DetectionKind = Literal["intrusion", "crowd", "fire", "smoke", "loitering", "wrong_way"]


class SecurityDetection(Payload, frozen=True):
    """Something a camera's analytics detected."""

    event_type: ClassVar[str] = "city.security.detection.v1"
    keep_raw: ClassVar[bool] = True
    readings: ClassVar[Mapping[str, Reading]] = {
        "detections": "sum",
        "detected_count": "sum",
        "confidence": "mean",
        **{f"{kind}_confidence": "mean" for kind in get_args(DetectionKind)},
    }

    kind: DetectionKind
    confidence: Annotated[Number, Meta(ge=0, le=1)]
    count: Annotated[Integer, Meta(ge=0, le=100_000)] = 1

    def metrics(self) -> dict[str, float]:
        # The per-kind confidence lets rules match a kind ("intrusion_confidence >= 0.8").
        return {
            "detections": 1,
            "detected_count": self.count,
            "confidence": self.confidence,
            f"{self.kind}_confidence": self.confidence,
        }


class SecurityAlarm(Payload, frozen=True):
    """An alarm raised by a sensor or an operator in one zone of a site."""

    event_type: ClassVar[str] = "city.security.alarm.v1"
    keep_raw: ClassVar[bool] = True
    readings: ClassVar[Mapping[str, Reading]] = {"alarms": "sum"}

    kind: Literal["intrusion", "fire", "panic", "tamper", "power_loss"]
    zone: Annotated[str, Meta(min_length=1, max_length=64)]

    def metrics(self) -> dict[str, float]:
        return {"alarms": 1}
