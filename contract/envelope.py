"""The event contract: CloudEvents 1.0 envelopes around one payload model per event type.

Structured mode (the whole CloudEvent as a JSON value) is the default; binary mode
(attributes in ``ce_*`` Kafka headers, the payload as the value) is accepted too.
Decoding never raises anything but :class:`Rejection`, whose ``reason`` is the
machine-readable code that goes with the message to the dead-letter topic.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)
from pydantic_core import PydanticCustomError

from contract.catalog import PAYLOAD_MODELS, Payload

#: Every reason a message can be rejected for, and what it means.
REASONS: Mapping[str, str] = {
    "not_json": "the value is not valid UTF-8 JSON",
    "not_object": "the JSON value is not an object",
    "missing_field": "a required attribute or payload field is absent",
    "invalid_field": "an attribute or payload field has the wrong type or range",
    "unknown_type": "the event type is not in the catalogue",
    "wrong_topic": "the event type belongs to another domain's topic",
    "key_mismatch": "the Kafka key differs from the event's subject",
    "wrong_partition": "the record is not on the partition its key maps to (murmur2)",
    "wrong_domain": "the entity belongs to another domain (its registry entry or first event)",
    "late": "the event's minute was already final when it arrived",
}

TYPE_PATTERN = r"^city\.[a-z]+\.[a-z_]+\.v[0-9]+$"
ENTITY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
#: Levels of objects and arrays an event may nest, the event object being the first. Far
#: more than any payload needs, and far under what orjson re-encodes (it refuses more
#: than 254 levels; the API re-encodes each event it publishes).
MAX_DEPTH = 32
#: The event ``time``: an RFC 3339 date-time with a zone (JSON Schema's ``date-time``).
#: pydantic alone would also take epoch seconds, as a number or as digits.
RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
#: Kafka timestamps count milliseconds from here, and cannot be negative.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Rejection(Exception):
    """Why a message was not accepted: a code from :data:`REASONS`, and details."""

    def __init__(self, reason: str, detail: str, *, field: str | None = None) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}")
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.field = field

    def as_dict(self) -> dict[str, str]:
        """The reason as a JSON-ready mapping."""
        out = {"reason": self.reason, "detail": self.detail}
        if self.field:
            out["field"] = self.field
        return out


class CloudEvent(BaseModel):
    """The CloudEvents 1.0 attributes this project requires."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"]
    id: str = Field(min_length=1, max_length=256)
    source: str = Field(min_length=1, max_length=512)
    type: str = Field(pattern=TYPE_PATTERN, max_length=128)
    time: AwareDatetime
    subject: str = Field(pattern=ENTITY_PATTERN)
    datacontenttype: str | None = None
    data: dict[str, Any]

    @field_validator("time", mode="before")
    @classmethod
    def _time_is_rfc3339(cls, value: Any) -> Any:
        if not isinstance(value, str) or not RFC3339.fullmatch(value):
            raise PydanticCustomError(
                "rfc3339",
                "give an RFC 3339 string with a time zone, like 2024-09-07T08:00:00+07:00",
            )
        return value

    @field_validator("time")
    @classmethod
    def _time_after_epoch(cls, value: datetime) -> datetime:
        if value < EPOCH:
            raise PydanticCustomError("time_range", "before 1970-01-01T00:00:00Z")
        return value


@dataclass(frozen=True, slots=True)
class Event:
    """A decoded, validated event: its envelope, typed payload and event time."""

    envelope: CloudEvent
    payload: Payload

    @property
    def domain(self) -> str:
        return self.envelope.type.split(".")[1]

    @property
    def entity_id(self) -> str:
        return self.envelope.subject

    @property
    def time_ms(self) -> int:
        """Event time in milliseconds since the epoch."""
        return int(self.envelope.time.timestamp() * 1000)


def _rejection_from(error: ValidationError, *, prefix: str = "") -> Rejection:
    first = error.errors(include_url=False)[0]
    field = prefix + ".".join(str(part) for part in first["loc"])
    reason = "missing_field" if first["type"] == "missing" else "invalid_field"
    return Rejection(reason, f"{field}: {first['msg']}", field=field or None)


def _deeper_than(value: dict[str, Any] | list[Any], levels: int) -> bool:
    """Whether ``value`` nests more than ``levels`` levels of objects and arrays (itself
    the first). Walks containers only, level by level, without recursion."""
    level: list[dict[str, Any] | list[Any]] = [value]
    for _ in range(levels):
        level = [
            child
            for parent in level
            for child in (parent.values() if isinstance(parent, dict) else parent)
            if isinstance(child, dict | list)
        ]
        if not level:
            return False
    return True


def event_object(raw: Any) -> dict[str, Any]:
    """``raw`` (a decoded JSON value) when it can be an event: a JSON object nested at
    most :data:`MAX_DEPTH` levels; :class:`Rejection` otherwise."""
    if not isinstance(raw, dict):
        raise Rejection("not_object", f"got a JSON {type(raw).__name__}")
    for name, value in raw.items():
        if isinstance(value, dict | list) and _deeper_than(value, MAX_DEPTH - 1):
            raise Rejection(
                "invalid_field",
                f"{name}: nested deeper than {MAX_DEPTH} levels of objects and arrays",
                field=str(name),
            )
    return raw


def _from_headers(value: bytes, headers: Sequence[tuple[str, bytes]]) -> dict[str, Any] | None:
    """Rebuild a structured CloudEvent from binary-mode ``ce_*`` headers, if present."""
    attributes = {
        name[3:]: raw.decode("utf-8", "replace")
        for name, raw in headers
        if name.startswith("ce_") and raw is not None
    }
    if "specversion" not in attributes:
        return None
    try:
        attributes["data"] = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise Rejection("not_json", f"binary-mode payload: {exc}") from None
    return attributes


def decode(
    value: bytes | None,
    *,
    headers: Sequence[tuple[str, bytes]] = (),
    key: bytes | None = None,
    domain: str | None = None,
) -> Event:
    """Decode and validate one Kafka record; raise :class:`Rejection` with a reason."""
    if value is None:
        raise Rejection("not_json", "the record has no value")
    raw = _from_headers(value, headers) if headers else None
    if raw is None:
        try:
            raw = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise Rejection("not_json", str(exc)) from None
    raw = event_object(raw)
    # PostgreSQL's text and jsonb cannot hold U+0000: accepted, such an event would be
    # refused by the database on every retry and stop the sink behind it. In JSON text a
    # NUL can only be written as the escape \u0000; in binary mode it can come in headers.
    if b"\\u0000" in value or any(isinstance(v, str) and "\x00" in v for v in raw.values()):
        raise Rejection("invalid_field", "a string holds U+0000 (NUL), which cannot be stored")
    try:
        envelope = CloudEvent.model_validate(raw)
    except ValidationError as exc:
        raise _rejection_from(exc) from None
    model = PAYLOAD_MODELS.get(envelope.type)
    if model is None:
        raise Rejection("unknown_type", f"no event type {envelope.type!r}", field="type")
    if domain is not None and envelope.type.split(".")[1] != domain:
        raise Rejection(
            "wrong_topic", f"{envelope.type} does not belong on the {domain} topic", field="type"
        )
    if key == b"":
        raise Rejection(
            "key_mismatch", "the record has no key; key it by the subject", field="subject"
        )
    if key is not None and key != envelope.subject.encode():
        raise Rejection(
            "key_mismatch",
            f"key {key.decode('utf-8', 'replace')!r} differs from subject {envelope.subject!r}",
            field="subject",
        )
    try:
        payload = model.model_validate(envelope.data)
    except ValidationError as exc:
        raise _rejection_from(exc, prefix="data.") from None
    return Event(envelope=envelope, payload=payload)


def check_clock(event: Event, *, now_ms: int, max_ahead_ms: int) -> None:
    """Refuse an event stamped further ahead of the clock than ``max_ahead_ms``.

    An event from the future would move its partition's watermark ahead of every honest
    sensor, and their events would be late until the real time caught up.
    """
    ahead_ms = event.time_ms - now_ms
    if ahead_ms > max_ahead_ms:
        raise Rejection(
            "invalid_field",
            f"time: {ahead_ms / 1000:.0f} s ahead of the clock; "
            f"at most {max_ahead_ms / 1000:.0f} s",
            field="time",
        )


def encode(
    *,
    event_type: str,
    subject: str,
    time: datetime,
    data: Mapping[str, Any],
    event_id: str,
    source: str,
) -> bytes:
    """Encode one structured-mode CloudEvent with orjson."""
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": event_id,
            "source": source,
            "type": event_type,
            "time": time,
            "subject": subject,
            "datacontenttype": "application/json",
            "data": data,
        }
    )
