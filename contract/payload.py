"""The base of every event payload model, and the number types of its fields."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict
from pydantic_core import PydanticCustomError


def json_number(value: Any) -> Any:
    """``value`` when it is a JSON number; booleans and text are refused.

    pydantic's lax mode would read ``true`` as 1 and ``"12"`` as 12, which the published
    JSON Schemas (``integer``, ``number``) do not allow. Strict mode would go further than
    the schemas: it refuses ``3.0`` for an integer, which JSON Schema counts as one.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError(
            "json_number", "give a JSON number, not {kind}", {"kind": type(value).__name__}
        )
    return value


#: An integer field: a JSON number without a fraction (``3`` or ``3.0``, not ``3.5``).
Integer = Annotated[int, BeforeValidator(json_number)]
#: A number field: any JSON number.
Number = Annotated[float, BeforeValidator(json_number)]

#: How an area (a commune, a zone, the province) reads a metric over its entities:
#: ``sum`` for counts and per-interval quantities (vehicles, admissions), ``mean`` of every
#: reading for rates and levels (speed, occupancy %), ``last_sum`` (the sum of each
#: entity's last value) for gauges (patients waiting, pupils present).
Reading = Literal["sum", "mean", "last_sum"]


class Payload(BaseModel):
    """A CloudEvent's ``data``: one subclass per event type, strict about unknown fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The CloudEvents ``type`` this model validates, like ``city.traffic.flow.v1``.
    event_type: ClassVar[str]
    #: Discrete happenings (an incident, an admission, an alarm) are kept one by one in
    #: ``raw_event``; periodic readings live on only in the minute aggregates.
    keep_raw: ClassVar[bool] = False
    #: How an area reads each metric this event feeds (every key of :meth:`metrics`).
    readings: ClassVar[Mapping[str, Reading]] = {}

    def metrics(self) -> dict[str, float]:
        """The numeric series this event feeds, by metric name (empty when none)."""
        return {}
