"""The event contract and the API's parameter types on what an outside probe sent
(issue 16): deep nesting, numbers of the wrong kind, times out of range."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest
from pydantic import TypeAdapter, ValidationError

from api.params import MAX_INDEX, Instant, RecordIndex
from contract.envelope import MAX_DEPTH, decode, event_object
from contract.rejection import Rejection
from recordings.store import NAME_MAX_LENGTH, NAME_PATTERN, is_name
from tests.utils.events import T0, flow_value

INCIDENT = {"kind": "crash", "severity": 3, "lanes_blocked": 1}


def event(**changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = orjson.loads(flow_value("ix-1", T0))
    value.update(changes)
    return value


def nested(levels: int) -> list[Any]:
    """A list ``levels`` deep (itself the first)."""
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value


def refusal(raw: bytes, **kwargs: Any) -> Rejection:
    with pytest.raises(Rejection) as info:
        decode(raw, **kwargs)
    return info.value


def deep_bytes(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


# Deep nesting.


@pytest.mark.parametrize("where", ["data", "extension"])
def test_an_event_nested_past_the_limit_is_refused_naming_it(where: str) -> None:
    # One level too many: the event is level 1, an attribute level 2, a member of data 3.
    raw = flow_value("ix-1", T0)
    if where == "data":
        raw = raw.replace(b'"data":{', b'"data":{"deep":' + deep_bytes(MAX_DEPTH - 1) + b",")
        field = "data"
    else:
        raw = raw[:-1] + b',"ext":' + deep_bytes(MAX_DEPTH) + b"}"
        field = "ext"
    refused = refusal(raw)
    assert (refused.reason, refused.field) == ("invalid_field", field)
    assert f"deeper than {MAX_DEPTH} levels" in refused.detail


def test_nesting_up_to_the_limit_is_left_to_the_other_rules() -> None:
    # An extension attribute MAX_DEPTH levels down (counting the event) is allowed here.
    assert event_object(event(ext=nested(MAX_DEPTH - 1)))["ext"] == nested(MAX_DEPTH - 1)
    with pytest.raises(Rejection):
        event_object(event(ext=nested(MAX_DEPTH)))


def test_the_depth_is_found_in_objects_as_well_as_arrays() -> None:
    deep: dict[str, Any] = {"leaf": 1}
    for n in range(MAX_DEPTH):
        deep = {"k": deep, "sibling": [n]} if n % 2 else {"list": [deep]}
    with pytest.raises(Rejection) as info:
        event_object(event(data=deep))
    assert info.value.field == "data"


def test_a_binary_mode_payload_nested_past_the_limit_is_refused() -> None:
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"b-1"),
        ("ce_source", b"/tests"),
        ("ce_type", b"city.traffic.flow.v1"),
        ("ce_time", T0.isoformat().encode()),
        ("ce_subject", b"ix-1"),
    ]
    refused = refusal(b'{"deep":' + deep_bytes(300) + b"}", headers=headers)
    assert (refused.reason, refused.field) == ("invalid_field", "data")


def test_something_other_than_an_object_is_not_an_event() -> None:
    with pytest.raises(Rejection) as info:
        event_object(nested(300))
    assert info.value.reason == "not_object"


# Numbers and times in the contract.


@pytest.mark.parametrize(
    ("kind", "data", "field"),
    [
        ("city.traffic.incident.v1", {**INCIDENT, "lanes_blocked": False}, "data.lanes_blocked"),
        ("city.traffic.incident.v1", {**INCIDENT, "severity": True}, "data.severity"),
        ("city.traffic.incident.v1", {**INCIDENT, "severity": "3"}, "data.severity"),
        ("city.traffic.incident.v1", {**INCIDENT, "severity": 3.5}, "data.severity"),
        ("city.hospital.admission.v1", {"triage": True}, "data.triage"),
        ("city.hospital.admission.v1", {"triage": "2"}, "data.triage"),
        (
            "city.security.detection.v1",
            {"kind": "crowd", "confidence": True},
            "data.confidence",
        ),
        (
            "city.security.detection.v1",
            {"kind": "crowd", "confidence": "0.5"},
            "data.confidence",
        ),
        (
            "city.traffic.flow.v1",
            {"vehicles": 1, "avg_speed_kmh": 1, "occupancy_pct": False, "interval_s": 60},
            "data.occupancy_pct",
        ),
    ],
)
def test_booleans_and_text_do_not_pass_for_numbers(
    kind: str, data: dict[str, Any], field: str
) -> None:
    refused = refusal(orjson.dumps(event(type=kind, data=data)))
    assert (refused.reason, refused.field) == ("invalid_field", field)


def test_json_numbers_keep_passing_as_the_schemas_allow() -> None:
    # JSON Schema's "integer" admits 3.0; "number" admits 3.
    decoded = decode(
        orjson.dumps(event(type="city.traffic.incident.v1", data={**INCIDENT, "severity": 3.0}))
    )
    assert decoded.payload.metrics() == {"incidents": 1, "lanes_blocked": 1}
    flow = {"vehicles": 4, "avg_speed_kmh": 30, "occupancy_pct": 20, "interval_s": 60.0}
    assert decode(orjson.dumps(event(data=flow))).payload.metrics()["avg_speed_kmh"] == 30.0
    admission = decode(orjson.dumps(event(type="city.hospital.admission.v1", data={"triage": 1})))
    assert admission.payload.metrics() == {"admissions": 1, "admissions_urgent": 1}


@pytest.mark.parametrize(
    "time",
    [
        1_700_000_000,
        1_700_000_000.5,
        "1700000000",
        "2024-09-07",
        "2024-09-07 08:00:00+07:00",
        "2024-09-07T08:00:00",
        True,
    ],
)
def test_the_event_time_is_only_an_rfc3339_string_with_a_zone(time: Any) -> None:
    refused = refusal(orjson.dumps(event(time=time)))
    assert (refused.reason, refused.field) == ("invalid_field", "time")
    assert "RFC 3339" in refused.detail


@pytest.mark.parametrize("time", ["0001-01-01T00:00:00+14:00", "1969-12-31T23:59:59Z"])
def test_an_event_time_before_1970_is_refused(time: str) -> None:
    refused = refusal(orjson.dumps(event(time=time)))
    assert (refused.reason, refused.field) == ("invalid_field", "time")
    assert "1970" in refused.detail


@pytest.mark.parametrize(
    "time", ["2024-09-07T08:00:00.123+07:00", "2024-09-07t01:00:00z", "1970-01-01T00:00:00Z"]
)
def test_rfc3339_times_still_decode(time: str) -> None:
    assert decode(orjson.dumps(event(time=time))).time_ms >= 0


# The API's parameter types.


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:00:00+14:00",
        "1969-12-31T23:59:59Z",
        "1969-12-31T23:59:59+14:00",
        "9999-01-01T00:00:00Z",
        "9999-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "2024-01-01T00:00:00",
        "1700000000",
        1_700_000_000,
    ],
)
def test_a_time_parameter_out_of_range_or_not_rfc3339_is_refused(value: str | int) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(Instant).validate_python(value)


@pytest.mark.parametrize(
    "value",
    [
        "1970-01-01T00:00:00Z",
        "1970-01-01T00:00:00+14:00",
        "2024-09-07T08:00:00+07:00",
        "9998-12-31T23:59:59Z",
        "9998-12-31T23:59:59-14:00",
    ],
)
def test_a_time_parameter_in_range_is_taken(value: str) -> None:
    assert TypeAdapter(Instant).validate_python(value).tzinfo is not None


def test_the_time_range_is_in_the_parameter_schema() -> None:
    schema = TypeAdapter(Instant).json_schema()
    assert schema["format"] == "date-time"
    assert "1970-01-01" in schema["description"]
    assert "9998-12-31" in schema["description"]
    pattern = re.compile(schema["pattern"])
    assert pattern.match("1970-01-01T00:00:00Z")
    assert pattern.match("9998-12-31T23:59:59-14:00")
    assert not pattern.match("1969-12-31T23:59:59Z")
    assert not pattern.match("9999-01-01T00:00:00Z")


@pytest.mark.parametrize("value", [-1, MAX_INDEX + 1, 1e20, True])
def test_a_record_index_is_bounded(value: Any) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(RecordIndex).validate_python(value, strict=isinstance(value, bool))


# The recording name rule as the OpenAPI document states it.


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("typhoon-yagi", True),
        ("a.b_c-1", True),
        ("a.", True),
        ("x" * NAME_MAX_LENGTH, True),
        ("x" * (NAME_MAX_LENGTH + 1), False),
        ("a..b", False),
        ("..", False),
        (".hidden", False),
        ("-dash", False),
        ("typhoon-yagi\n", False),
        ("a/b", False),
        ("", False),
    ],
)
def test_the_name_pattern_says_what_check_name_does(name: str, valid: bool) -> None:
    assert is_name(name) is valid
    # ECMAScript reads the pattern the same way: no newline before the end, no '..'.
    fits = bool(NAME_PATTERN.search(name)) and "\n" not in name
    assert (fits and len(name) <= NAME_MAX_LENGTH) is valid
