"""The event contract: valid events decode; each kind of bad record gets its own reason."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from contract.envelope import decode
from contract.rejection import REASONS, Rejection
from tests.utils.events import T0, flow_value


def _event(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = orjson.loads(flow_value("ix-1", T0, vehicles=12))
    for key, value in changes.items():
        if value is None:
            event.pop(key, None)
        else:
            event[key] = value
    return event


def _reject(value: bytes, **kwargs: Any) -> Rejection:
    with pytest.raises(Rejection) as info:
        decode(value, **kwargs)
    return info.value


def test_valid_flow_event_decodes_with_event_time_and_metrics() -> None:
    event = decode(flow_value("ix-1", T0, vehicles=12), key=b"ix-1", domain="traffic")
    assert event.entity_id == "ix-1"
    assert event.domain == "traffic"
    assert event.time_ms == int(T0.timestamp() * 1000)
    assert event.payload.metrics() == {"vehicles": 12, "avg_speed_kmh": 42.5, "occupancy_pct": 30.0}


@pytest.mark.parametrize(
    ("value", "reason", "field"),
    [
        (b"\xff\xfe not utf-8", "not_json", None),
        (b"{truncated", "not_json", None),
        (b"[1, 2]", "not_object", None),
        (orjson.dumps(_event(subject=None)), "missing_field", "subject"),
        (orjson.dumps(_event(time=None)), "missing_field", "time"),
        (orjson.dumps(_event(specversion="0.3")), "invalid_field", "specversion"),
        (orjson.dumps(_event(time="2024-09-07T08:00:00")), "invalid_field", "time"),
        (orjson.dumps(_event(type="city.traffic.teleport.v1")), "unknown_type", "type"),
        (orjson.dumps(_event(type="not-a-type")), "invalid_field", "type"),
        (orjson.dumps(_event(data={"vehicles": 1})), "missing_field", "data.avg_speed_kmh"),
        (
            orjson.dumps(
                _event(
                    data={"vehicles": -1, "avg_speed_kmh": 1, "occupancy_pct": 1, "interval_s": 60}
                )
            ),
            "invalid_field",
            "data.vehicles",
        ),
        (
            orjson.dumps(
                _event(
                    data={
                        "vehicles": "many",
                        "avg_speed_kmh": 1,
                        "occupancy_pct": 1,
                        "interval_s": 60,
                    }
                )
            ),
            "invalid_field",
            "data.vehicles",
        ),
        (
            orjson.dumps(
                _event(
                    data={
                        "vehicles": 1,
                        "avg_speed_kmh": 1,
                        "occupancy_pct": 1,
                        "interval_s": 60,
                        "colour": "red",
                    }
                )
            ),
            "invalid_field",
            "data.colour",
        ),
    ],
)
def test_each_bad_record_gets_a_specific_reason(
    value: bytes, reason: str, field: str | None
) -> None:
    rejection = _reject(value)
    assert rejection.reason == reason
    assert rejection.field == field
    assert rejection.reason in REASONS
    assert rejection.detail


def test_key_must_match_subject_and_be_present() -> None:
    assert _reject(flow_value("ix-1", T0), key=b"ix-2").reason == "key_mismatch"
    assert "no key" in _reject(flow_value("ix-1", T0), key=b"").detail


def test_event_on_another_domains_topic_is_refused() -> None:
    assert _reject(flow_value("ix-1", T0), domain="hospital").reason == "wrong_topic"


def test_binary_mode_headers_are_accepted() -> None:
    structured = _event()
    headers = [(f"ce_{k}", str(v).encode()) for k, v in structured.items() if k != "data"]
    event = decode(orjson.dumps(structured["data"]), headers=headers, key=b"ix-1")
    assert event.payload.metrics()["vehicles"] == 12
    assert event.envelope.id == structured["id"]


def test_binary_mode_with_a_non_json_payload_is_not_json() -> None:
    assert _reject(b"<xml/>", headers=[("ce_specversion", b"1.0")]).reason == "not_json"


def test_unknown_reason_codes_cannot_be_made() -> None:
    with pytest.raises(ValueError, match="unknown rejection reason"):
        Rejection("because", "no")
