"""Fuzzing the event contract: whatever arrives, decoding accepts it or names a reason.

Inputs: arbitrary bytes, arbitrary JSON, a valid event with one attribute or payload field
replaced by anything, and hand-written hostile texts (huge numbers, NaN, deep nesting,
far timestamps, invalid UTF-8, duplicate keys, binary-mode headers). No exception other
than :class:`Rejection` may escape, and the entity store applies or dead-letters every
record it is given.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiokafka.structs import ConsumerRecord
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contract.envelope import Event, decode
from contract.rejection import REASONS, Rejection
from streams.alerts import RuleEngine, load_rules
from streams.state import EntityStore

AT = datetime(2024, 9, 7, 8, 0, tzinfo=UTC)
VALID: dict[str, Any] = {
    "specversion": "1.0",
    "id": "e-1",
    "source": "/sensors/ix-1",
    "type": "city.traffic.flow.v1",
    "time": "2024-09-07T08:00:05+07:00",
    "subject": "ix-1",
    "data": {"vehicles": 12, "avg_speed_kmh": 40.5, "occupancy_pct": 22.0, "interval_s": 60},
}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def outcome(value: bytes | None, **kwargs: Any) -> str:
    """'accepted', or the rejection's reason; anything else escaping fails the test."""
    refused: Rejection | None = None
    try:
        event = decode(value, **kwargs)
    except Rejection as rejection:
        refused = rejection
    if refused is not None:
        assert refused.reason in REASONS
        assert refused.detail
        return refused.reason
    assert isinstance(event, Event)
    return "accepted"


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_are_accepted_or_refused_with_a_reason(value: bytes) -> None:
    assert outcome(value, key=b"ix-1", domain="traffic") in {*REASONS, "accepted"}


@FUZZ
@given(json_values)
def test_arbitrary_json_is_refused_with_a_reason(value: Any) -> None:
    assert outcome(orjson.dumps(value), key=b"ix-1", domain="traffic") in REASONS


@FUZZ
@given(
    st.sampled_from([*VALID, "data.vehicles", "data.avg_speed_kmh", "data.kind", "data"]),
    json_values,
)
def test_a_valid_event_with_one_field_replaced_by_anything(field: str, value: Any) -> None:
    event = orjson.loads(orjson.dumps(VALID))
    if field.startswith("data."):
        event["data"][field[5:]] = value
    else:
        event[field] = value
    result = outcome(orjson.dumps(event), key=b"ix-1", domain="traffic")
    assert result in {*REASONS, "accepted"}


@FUZZ
@given(st.lists(st.tuples(st.text(max_size=20), st.binary(max_size=40)), max_size=6))
def test_arbitrary_headers_including_binary_mode_ones(headers: list[tuple[str, bytes]]) -> None:
    headers = [*headers, ("ce_specversion", b"1.0")] if len(headers) % 2 else headers
    value = orjson.dumps(VALID["data"]) if len(headers) % 2 else orjson.dumps(VALID)
    assert outcome(value, headers=headers, key=b"ix-1", domain="traffic") in {
        *REASONS,
        "accepted",
    }


def _text(event: dict[str, Any]) -> str:
    return orjson.dumps(event).decode()


HOSTILE: list[tuple[str, bytes, str]] = [
    (
        "a number beyond 64 bits",
        _text(VALID).replace("12,", "1" + "0" * 40 + ",").encode(),
        "invalid_field",
    ),
    ("a huge float", _text(VALID).replace("40.5", "1e308").encode(), "invalid_field"),
    ("NaN", _text(VALID).replace("40.5", "NaN").encode(), "not_json"),
    ("Infinity", _text(VALID).replace("40.5", "Infinity").encode(), "not_json"),
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000, "not_json"),
    (
        "deep nesting in data",
        _text(VALID).replace('"vehicles":12', '"x":' + "[" * 5000 + "]" * 5000).encode(),
        "not_json",
    ),
    (
        "year 1",
        _text(VALID).replace("2024-09-07T08:00:05", "0001-01-01T00:00:00").encode(),
        "invalid_field",  # before 1970: no Kafka timestamp can say it
    ),
    (
        "year 9999",
        _text(VALID).replace("2024-09-07T08:00:05", "9999-12-31T23:59:59").encode(),
        "accepted",
    ),
    (
        "year 10000",
        _text(VALID).replace("2024-09-07T08:00:05+07:00", "10000-01-01T00:00:00Z").encode(),
        "invalid_field",
    ),
    ("no time zone", _text(VALID).replace("+07:00", "").encode(), "invalid_field"),
    (
        "invalid UTF-8",
        _text(VALID).replace("ix-1", "ix-\udcff", 1).encode("utf-8", "surrogateescape"),
        "not_json",
    ),
    ("a lone surrogate escape", _text(VALID).replace('"e-1"', '"\\ud800"').encode(), "not_json"),
    (
        "duplicate keys, the last invalid",
        _text(VALID)[:-1].encode() + b',"subject":"ix 2"}',
        "invalid_field",
    ),
    ("duplicate keys, the last valid", _text(VALID)[:-1].encode() + b',"id":"e-2"}', "accepted"),
    (
        "a 1 MB string",
        _text(VALID).replace('"e-1"', '"' + "x" * 1_000_000 + '"').encode(),
        "invalid_field",
    ),
    ("NUL in the id", _text(VALID).replace('"e-1"', '"e\\u0000-1"').encode(), "invalid_field"),
    ("empty", b"", "not_json"),
    ("null", b"null", "not_object"),
]


@pytest.mark.parametrize(
    ("value", "expected"), [(v, e) for _, v, e in HOSTILE], ids=[n for n, _, _ in HOSTILE]
)
def test_hostile_texts(value: bytes, expected: str) -> None:
    assert outcome(value, key=b"ix-1", domain="traffic") == expected


def test_the_store_applies_or_dead_letters_every_hostile_record() -> None:
    store = EntityStore(
        rules=RuleEngine(load_rules()), lateness_ms=120_000, clock=lambda: AT.timestamp()
    )
    records = [
        ConsumerRecord("ioc.traffic.events", 0, n, 0, 0, b"ix-1", value, None, 0, 0, [])
        for n, (_, value, _) in enumerate(HOSTILE)
    ]
    batch = store.apply(records, domain="traffic", partition=0)
    assert sum(batch.outcomes.values()) == len(records)
    assert len(batch.deadletters) == len(records) - batch.outcomes["applied"]
    # Year 1 is before 1970, refused; the far-future ones are refused by the clock check,
    # so they cannot push the partition's watermark past every honest sensor.
    refused = {m.offset: r for m, r in batch.deadletters}
    for n, (name, _, _) in enumerate(HOSTILE):
        if name.startswith("year 9999"):
            assert refused[n].reason == "invalid_field"
            assert "ahead of the clock" in refused[n].detail
    assert store.watermarks[("traffic", 0)] <= AT.timestamp() * 1000 + 60_000
