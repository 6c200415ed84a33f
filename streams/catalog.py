"""Every event type the platform accepts, mapped to its payload model."""

from __future__ import annotations

from collections.abc import Mapping

from streams.payload import Payload
from streams.traffic.models import TrafficFlow, TrafficIncident

PAYLOAD_MODELS: Mapping[str, type[Payload]] = {
    model.event_type: model for model in (TrafficFlow, TrafficIncident)
}

#: Domains with a raw topic ``ioc.<domain>.events``.
DOMAINS: tuple[str, ...] = tuple(sorted({t.split(".")[1] for t in PAYLOAD_MODELS}))

__all__ = ["DOMAINS", "PAYLOAD_MODELS", "Payload"]
