"""The base of every event payload, and the number types of its fields.

Payloads are msgspec structs: the worker decodes each event's ``data`` straight from its
JSON bytes into one, checks and all, in about a microsecond (pydantic took about six).
The served JSON Schemas are generated from the same structs (``api.event_schemas``).
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

import msgspec

from contract.rejection import Rejection

#: An integer field (bounds go in a ``msgspec.Meta`` beside it): a JSON number without a
#: fraction, ``3`` or ``3.0`` as JSON Schema's ``integer`` allows, not ``3.5``, ``"3"`` or
#: ``true``. Read as a float, whose fraction :meth:`Payload.__post_init__` checks before
#: making it an int: msgspec's ``int`` refuses ``3.0``, and its lax mode would take ``"3"``.
Integer = Annotated[float, msgspec.Meta(extra_json_schema={"type": "integer"})]
#: A number field: any JSON number (not ``true``, not ``"3"``).
Number = float

#: How an area (a commune, a zone, the province) reads a metric over its entities:
#: ``sum`` for counts and per-interval quantities (vehicles, admissions), ``mean`` of every
#: reading for rates and levels (speed, occupancy %), ``last_sum`` (the sum of each
#: entity's last value) for gauges (patients waiting, pupils present).
Reading = Literal["sum", "mean", "last_sum"]


def _is_integer(annotation: Any) -> bool:
    """Whether a field's annotation is :data:`Integer` (with or without bounds)."""
    while typing.get_origin(annotation) is Annotated:
        for meta in annotation.__metadata__:
            if (
                isinstance(meta, msgspec.Meta)
                and (meta.extra_json_schema or {}).get("type") == "integer"
            ):
                return True
        annotation = typing.get_args(annotation)[0]
    return False


class Payload(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A CloudEvent's ``data``: one subclass per event type, strict about unknown fields."""

    #: The CloudEvents ``type`` this model validates, like ``city.traffic.flow.v1``.
    event_type: ClassVar[str]
    #: Discrete happenings (an incident, an admission, an alarm) are kept one by one in
    #: ``raw_event``; periodic readings live on only in the minute aggregates.
    keep_raw: ClassVar[bool] = False
    #: How an area reads each metric this event feeds (every key of :meth:`metrics`).
    readings: ClassVar[Mapping[str, Reading]] = {}
    #: The fields declared :data:`Integer`, found when the subclass is made.
    integers: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        hints = typing.get_type_hints(cls, include_extras=True)
        cls.integers = tuple(name for name, hint in hints.items() if _is_integer(hint))

    def __post_init__(self) -> None:
        for name in self.integers:
            value = getattr(self, name)
            if value.__class__ is not float:
                continue  # a default
            if not value.is_integer():
                raise Rejection(
                    "invalid_field",
                    f"data.{name}: give an integer, not {value!r}",
                    field=f"data.{name}",
                )
            msgspec.structs.force_setattr(self, name, int(value))
        self.check()

    def check(self) -> None:
        """Checks across fields; raise :class:`Rejection` naming the field at fault."""

    def metrics(self) -> dict[str, float]:
        """The numeric series this event feeds, by metric name (empty when none)."""
        return {}


def payload_fields(model: type[Payload]) -> dict[str, Any]:
    """A payload model's fields and their annotations, in declaration order."""
    return {f.name: f.type for f in msgspec.structs.fields(model)}


def exceeds(payload: Payload, part: str, whole: str) -> None:
    """Refuse ``payload`` when its field ``part`` is greater than its field ``whole``."""
    if getattr(payload, part) > getattr(payload, whole):
        raise Rejection("invalid_field", f"data.{part}: exceeds {whole}", field=f"data.{part}")
