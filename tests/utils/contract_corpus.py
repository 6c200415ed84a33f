"""A fixed corpus of event values for the event contract: one valid event of each type,
and each of them with one thing wrong at a time (an attribute or payload field missing,
of another type, out of range, unknown; times in every shape; raw bytes that are not an
event at all).

``tests/data/contract-v1-outcomes.json`` holds what the first contract (pydantic models,
until December 2026) answered for each value; ``tests/data/contract-v1-schemas/`` the
JSON Schemas it served. The contract's tests hold every later contract to both.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

#: One valid event of each type.
VALID: dict[str, dict[str, Any]] = {
    "city.traffic.flow.v1": {
        "vehicles": 12,
        "avg_speed_kmh": 42.5,
        "occupancy_pct": 30.0,
        "interval_s": 60,
    },
    "city.traffic.incident.v1": {"kind": "crash", "severity": 3, "lanes_blocked": 1},
    "city.hospital.status.v1": {
        "beds_total": 400,
        "beds_occupied": 320,
        "icu_total": 20,
        "icu_occupied": 12,
        "er_waiting": 7,
        "ambulances_available": 4,
    },
    "city.hospital.admission.v1": {"triage": 2},
    "city.school.attendance.v1": {"enrolled": 900, "present": 850},
    "city.school.safety.v1": {"kind": "fire_drill"},
    "city.security.detection.v1": {"kind": "intrusion", "confidence": 0.9, "count": 2},
    "city.security.alarm.v1": {"kind": "panic", "zone": "lobby"},
}

#: Values every attribute and payload field is tried with.
ANY_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    2,
    5,
    6,
    3.0,
    1.5,
    -0.0,
    1e300,
    2**64 - 1,
    100_000,
    100_001,
    "",
    "x",
    "12",
    "1.0",
    "crash",
    "intrusion",
    "a" * 300,
    [],
    [1],
    {},
    {"a": 1},
]

#: Event times: RFC 3339 and near misses.
TIMES: list[Any] = [
    "2024-09-07T08:00:05+07:00",
    "2024-09-07T08:00:05Z",
    "2024-09-07t08:00:05z",
    "2024-09-07T08:00:05.123Z",
    "2024-09-07T08:00:05.123456789-03:30",
    "2024-09-07 08:00:05Z",
    "2024-09-07T08:00:05",
    "2024-09-07T08:00Z",
    "2024-09-07",
    "2024-09-07T24:00:00Z",
    "2024-09-07T08:00:60Z",
    "2024-02-30T08:00:00Z",
    "2024-09-07T08:00:05+25:00",
    "1969-12-31T23:59:59Z",
    "1970-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "20240907T080005Z",
    1725696005,
    "1725696005",
]

SUBJECTS: list[Any] = ["ix-1", "a" * 128, "a" * 129, "-x", "with space", "é", "a:b.c_d-e"]
TYPES: list[Any] = [
    "city.traffic.teleport.v1",
    "city.traffic.flow.v2",
    "not-a-type",
    "City.traffic.flow.v1",
    "city.weather.rain.v1",
]

#: Whole values that are not an event.
RAW: dict[str, bytes] = {
    "empty": b"",
    "not utf-8": b"\xff\xfe not utf-8",
    "truncated": b'{"specversion": "1.0"',
    "array": b"[1, 2]",
    "string": b'"event"',
    "number": b"12",
    "null": b"null",
    "nan": b'{"specversion": NaN}',
    "bom": b"\xef\xbb\xbf{}",
}


def envelope(event_type: str, payload: Any, /, **changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": "e-1",
        "source": "/sensors/ix-1",
        "type": event_type,
        "time": "2024-09-07T08:00:05+07:00",
        "subject": "ix-1",
        "datacontenttype": "application/json",
        "data": payload,
    }
    for name, value in changes.items():
        if value is _MISSING:
            event.pop(name, None)
        else:
            event[name] = value
    return event


_MISSING = object()


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def corpus() -> Iterator[tuple[str, bytes]]:
    """(name, value) for every value of the corpus, in a fixed order."""
    for name, value in RAW.items():
        yield f"raw/{name}", value
    for event_type, data in VALID.items():
        yield f"{event_type}/valid", _dumps(envelope(event_type, data))
        yield f"{event_type}/minimal", _dumps(envelope(event_type, data, datacontenttype=_MISSING))
        for attribute in ("specversion", "id", "source", "type", "time", "subject", "data"):
            yield (
                f"{event_type}/{attribute}=missing",
                _dumps(envelope(event_type, data, **{attribute: _MISSING})),
            )
            for n, value in enumerate(ANY_VALUES):
                yield (
                    f"{event_type}/{attribute}={n}",
                    _dumps(envelope(event_type, data, **{attribute: value})),
                )
        for n, value in enumerate(TIMES):
            yield f"{event_type}/time#{n}", _dumps(envelope(event_type, data, time=value))
        for n, value in enumerate(SUBJECTS):
            yield f"{event_type}/subject#{n}", _dumps(envelope(event_type, data, subject=value))
        for n, value in enumerate(TYPES):
            yield f"{event_type}/type#{n}", _dumps(envelope(event_type, data, type=value))
        yield (
            f"{event_type}/extension",
            _dumps(envelope(event_type, data, traceparent="00-abc-01", region="ha-long")),
        )
        nested: Any = "deep"
        for _ in range(40):
            nested = {"n": nested}
        yield f"{event_type}/extension-deep", _dumps(envelope(event_type, data, trace=nested))
        yield (
            f"{event_type}/nul-subject",
            _dumps(envelope(event_type, data, subject="ix\u00001")),
        )
        for field in data:
            yield (
                f"{event_type}/data.{field}=missing",
                _dumps(envelope(event_type, {k: v for k, v in data.items() if k != field})),
            )
            for n, value in enumerate(ANY_VALUES):
                yield (
                    f"{event_type}/data.{field}={n}",
                    _dumps(envelope(event_type, {**data, field: value})),
                )
        yield (
            f"{event_type}/data.unknown",
            _dumps(envelope(event_type, {**data, "colour": "red"})),
        )
    hospital = VALID["city.hospital.status.v1"]
    yield (
        "city.hospital.status.v1/beds-over-total",
        _dumps(envelope("city.hospital.status.v1", {**hospital, "beds_occupied": 401})),
    )
    yield (
        "city.hospital.status.v1/icu-over-total",
        _dumps(envelope("city.hospital.status.v1", {**hospital, "icu_occupied": 21})),
    )
    school = VALID["city.school.attendance.v1"]
    yield (
        "city.school.attendance.v1/present-over-enrolled",
        _dumps(envelope("city.school.attendance.v1", {**school, "present": 901})),
    )
    yield (
        "city.traffic.flow.v1/data-nul",
        _dumps(envelope("city.traffic.flow.v1", VALID["city.traffic.flow.v1"]))[:-2]
        + b',"colour":"\\u0000"}}',
    )
    yield (
        "city.traffic.flow.v1/duplicate-key",
        _dumps(envelope("city.traffic.flow.v1", VALID["city.traffic.flow.v1"]))[:-1]
        + b',"subject":"ix-2"}',
    )
    yield (
        "city.traffic.flow.v1/lone-surrogate",
        _dumps(envelope("city.traffic.flow.v1", VALID["city.traffic.flow.v1"]))[:-1]
        + b',"note":"\\ud800"}',
    )
