"""The base of every event payload model."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict


class Payload(BaseModel):
    """A CloudEvent's ``data``: one subclass per event type, strict about unknown fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The CloudEvents ``type`` this model validates, like ``city.traffic.flow.v1``.
    event_type: ClassVar[str]
    #: Discrete happenings (an incident, an admission, an alarm) are kept one by one in
    #: ``raw_event``; periodic readings live on only in the minute aggregates.
    keep_raw: ClassVar[bool] = False

    def metrics(self) -> dict[str, float]:
        """The numeric series this event feeds, by metric name (empty when none)."""
        return {}
