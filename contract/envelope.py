"""The event contract: CloudEvents 1.0 envelopes around one payload model per event type.

Structured mode (the whole CloudEvent as a JSON value) is the default; binary mode
(attributes in ``ce_*`` Kafka headers, the payload as the value) is accepted too.
Decoding never raises anything but :class:`Rejection`, whose ``reason`` is the
machine-readable code that goes with the message to the dead-letter topic.

msgspec reads the envelope straight from the record's bytes (``data`` kept as its JSON
text) and then ``data`` into its type's payload struct: about 4 us an event, where the
first contract (orjson, then pydantic models) took about 10. What msgspec does not check
the way JSON Schema and that contract did is checked here around it: UTF-8 and nesting in
attributes it passes over, names matched whole, RFC 3339 times, integers written ``3.0``
(``contract.payload``). ``tests/unit/test_contract_v1.py`` holds it to the first
contract's answers and schemas.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
import orjson
from msgspec import Meta

from contract.catalog import PAYLOAD_MODELS, Payload
from contract.rejection import Rejection

TYPE_PATTERN = r"^city\.[a-z]+\.[a-z_]+\.v[0-9]+$"
TYPE = re.compile(TYPE_PATTERN)
ENTITY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
ENTITY = re.compile(ENTITY_PATTERN)
#: Levels of objects and arrays an event may nest, the event object being the first. Far
#: more than any payload needs, and far under what orjson re-encodes (it refuses more
#: than 254 levels; the API re-encodes each event it publishes).
MAX_DEPTH = 32
#: The event ``time``: an RFC 3339 date-time with a zone (JSON Schema's ``date-time``),
#: not the space instead of the ``T``, nor epoch seconds.
RFC3339_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
RFC3339 = re.compile(RFC3339_PATTERN)
TIME_HINT = "give an RFC 3339 string with a time zone, like 2024-09-07T08:00:00+07:00"
#: Kafka timestamps count milliseconds from here, and cannot be negative.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class CloudEvent(msgspec.Struct, frozen=True, kw_only=True):
    """The CloudEvents 1.0 attributes this project requires. Other attributes (extensions)
    are allowed and passed over; ``data`` is kept as its JSON text until its type's
    payload model reads it."""

    specversion: Literal["1.0"]
    id: Annotated[str, Meta(min_length=1, max_length=256)]
    source: Annotated[str, Meta(min_length=1, max_length=512)]
    #: Its pattern is checked only for a type outside the catalogue (:func:`decode`):
    #: every catalogue type has it.
    type: Annotated[str, Meta(extra_json_schema={"pattern": TYPE_PATTERN, "maxLength": 128})]
    time: Annotated[
        str, Meta(extra_json_schema={"format": "date-time", "pattern": RFC3339_PATTERN})
    ]
    #: Checked by :func:`decode` with ``fullmatch``: msgspec searches, and a ``$`` there
    #: would let a name end in a line feed.
    subject: Annotated[str, Meta(extra_json_schema={"pattern": ENTITY_PATTERN})]
    datacontenttype: str | None = None
    data: msgspec.Raw


@dataclass(frozen=True, slots=True)
class Event:
    """A decoded, validated event: its envelope, typed payload, ``data`` as a JSON object
    and event time."""

    envelope: CloudEvent
    payload: Payload
    #: The payload as sent, a JSON object (what the entity state keeps).
    data: dict[str, Any]
    time: datetime
    #: Event time in milliseconds since the epoch.
    time_ms: int
    #: The entity it is about: the envelope's ``subject``.
    entity_id: str

    @property
    def domain(self) -> str:
        return self.envelope.type.split(".")[1]


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


def _from_headers(value: bytes, headers: Sequence[tuple[str, bytes]]) -> bytes | None:
    """A structured CloudEvent rebuilt from binary-mode ``ce_*`` headers, if present."""
    attributes: dict[str, Any] = {
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
    if any("\x00" in v for v in attributes.values() if isinstance(v, str)):
        raise Rejection("invalid_field", "a string holds U+0000 (NUL), which cannot be stored")
    return orjson.dumps(event_object(attributes))


_envelopes = msgspec.json.Decoder(CloudEvent)
_objects = msgspec.json.Decoder(dict[str, Any])
_payloads = {
    event_type: msgspec.json.Decoder(model) for event_type, model in PAYLOAD_MODELS.items()
}
#: "Expected `int`, got `str` - at `$.data.vehicles`": the message, and the path after $.
_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_NAMED = re.compile(r"^Object (?P<what>missing required|contains unknown) field `(?P<name>[^`]*)`")


def _rejection_from(error: msgspec.ValidationError, *, prefix: str = "") -> Rejection:
    """The reason and field of msgspec's first error (in document order)."""
    match = _AT.match(str(error))
    assert match is not None  # the pattern matches any text
    message, path = match["message"], match["path"] or ""
    parts = [p for p in re.split(r"[.\[\]]+", path) if p]
    named = _NAMED.match(message)
    if named:
        parts.append(named["name"])
    field = prefix + ".".join(parts) if parts else prefix.rstrip(".")
    if not field and message.startswith("Expected `object`"):
        return Rejection("not_object", message)
    reason = "missing_field" if named and named["what"] == "missing required" else "invalid_field"
    if field == "time" and reason == "invalid_field":
        message = f"{message}; {TIME_HINT}"
    return Rejection(reason, f"{field}: {message}" if field else message, field=field or None)


def _payload_rejection(error: msgspec.ValidationError, envelope: CloudEvent) -> Rejection:
    """Why ``data`` was refused. msgspec stops at an unknown field when it meets it; a
    field missing or wrong is the more useful answer (and the one the first contract
    gave), so the known fields are tried alone first."""
    rejection = _rejection_from(error, prefix="data.")
    if not str(error).startswith("Object contains unknown field"):
        return rejection
    model = PAYLOAD_MODELS[envelope.type]
    known = {
        k: v for k, v in _objects.decode(envelope.data).items() if k in model.__struct_fields__
    }
    try:
        msgspec.convert(known, model)
    except msgspec.ValidationError as other:
        return _rejection_from(other, prefix="data.")
    return rejection


def read_payload(model: type[Payload], data: Any) -> Payload:
    """``data`` (a decoded JSON object) read as ``model``; :class:`Rejection` otherwise."""
    try:
        return msgspec.convert(data, model)
    except msgspec.ValidationError as exc:
        raise _rejection_from(exc, prefix="data.") from None


def _event_time(text: str) -> datetime:
    if not RFC3339.fullmatch(text):
        raise Rejection("invalid_field", f"time: {TIME_HINT}", field="time")
    try:
        # Python reads "Z" but neither "t" nor "z"; the pattern allowed nothing else.
        time = datetime.fromisoformat(text.upper())
    except ValueError as exc:
        raise Rejection("invalid_field", f"time: {exc}", field="time") from None
    if time < EPOCH:
        raise Rejection("invalid_field", "time: before 1970-01-01T00:00:00Z", field="time")
    return time


def _checked_bytes(value: bytes) -> None:
    """What the decoders pass over: text that is not UTF-8 in an attribute they skip, and
    nesting (msgspec recurses; orjson's parse and :func:`event_object` measure it)."""
    if not value.isascii():
        try:
            value.decode()
        except UnicodeDecodeError as exc:
            raise Rejection("not_json", f"not UTF-8: {exc}") from None
    if value.count(b"[") + value.count(b"{") > MAX_DEPTH:
        try:
            event_object(orjson.loads(value))
        except orjson.JSONDecodeError as exc:
            raise Rejection("not_json", str(exc)) from None
    # PostgreSQL's text and jsonb cannot hold U+0000: accepted, such an event would be
    # refused by the database on every retry and stop the sink behind it. In JSON text a
    # NUL can only be written as the escape \u0000.
    if b"\\u0000" in value:
        raise Rejection("invalid_field", "a string holds U+0000 (NUL), which cannot be stored")


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
    structured = _from_headers(value, headers) if headers else None
    if structured is not None:
        value = structured
    _checked_bytes(value)
    try:
        envelope = _envelopes.decode(value)
    except msgspec.ValidationError as exc:
        raise _rejection_from(exc) from None
    except msgspec.DecodeError as exc:
        raise Rejection("not_json", str(exc)) from None
    time = _event_time(envelope.time)
    if not ENTITY.fullmatch(envelope.subject):
        raise Rejection(
            "invalid_field",
            f"subject: {envelope.subject!r} is not an entity id ({ENTITY_PATTERN})",
            field="subject",
        )
    payloads = _payloads.get(envelope.type)
    if payloads is None:
        if len(envelope.type) > 128 or not TYPE.fullmatch(envelope.type):
            raise Rejection("invalid_field", f"type: not of the form {TYPE_PATTERN}", field="type")
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
        payload = payloads.decode(envelope.data)
    except msgspec.ValidationError as exc:
        raise _payload_rejection(exc, envelope) from None
    data = _objects.decode(envelope.data)
    return Event(envelope, payload, data, time, int(time.timestamp() * 1000), envelope.subject)


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
