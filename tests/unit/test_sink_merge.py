"""The sink's batch merge: the newest absolute value per row wins."""

from __future__ import annotations

import msgspec

from streams.entity_record import EntityRecord
from streams.sink import merge_alerts, merge_records

T = 1_725_696_000_000


def _record(offset: int, buckets: dict[str, list[float]], changed: list[str]) -> EntityRecord:
    """A record as the sink decodes it from its JSON on ``ioc.state``."""
    wire = {
        "e": "ix",
        "d": "traffic",
        "p": 0,
        "o": offset,
        "t": T,
        "k": "city.traffic.flow.v1",
        "s": {"vehicles": 1},
        "b": {b: {"vehicles": v} for b, v in buckets.items()},
        "c": changed,
    }
    return msgspec.convert(wire, EntityRecord)


def test_later_record_supersedes_and_dropped_buckets_keep_their_last_value() -> None:
    first = _record(1, {str(T): [1, 5, 5, 5, 5, T]}, [str(T)])
    # Minute T became final and left the record; its last written value must survive.
    second = _record(2, {str(T + 60_000): [1, 7, 7, 7, 7, T + 60_000]}, [str(T + 60_000)])
    third = _record(3, {str(T + 60_000): [2, 9, 2, 7, 2, T + 61_000]}, [str(T + 60_000)])
    metrics, states = merge_records([first, second, third])
    assert metrics[("ix", "vehicles", T)][4:] == (1, 5, 5, 5, 5, 1)
    assert metrics[("ix", "vehicles", T + 60_000)][4:] == (2, 9, 2, 7, 2, 3)
    assert states["ix"][-1] == 3
    assert len(metrics) == 2


def _transition(state: str, updated_at: str) -> dict[str, object]:
    return {
        "alert_id": "a-1",
        "rule_id": "traffic-congestion",
        "entity_id": "ix",
        "domain": "traffic",
        "severity": "warning",
        "state": state,
        "opened_at": "2024-09-07T08:03:00+00:00",
        "since": "2024-09-07T08:00:00+00:00",
        "updated_at": updated_at,
        "resolved_at": None,
        "values": {},
        "title_en": "Congestion",
        "title_vi": "Ùn tắc giao thông",
    }


def test_an_open_at_the_time_of_its_provisional_alert_confirms_it() -> None:
    at = "2024-09-07T08:03:00+00:00"
    for order in (["provisional", "open"], ["open", "provisional"]):
        [row] = merge_alerts([_transition(state, at) for state in order])
        # (state, provisional): the confirmed open wins whichever came first in the batch.
        assert (row[5], row[-1]) == ("open", False)


def test_a_retracted_alert_stays_marked_provisional() -> None:
    at = "2024-09-07T08:03:00+00:00"
    [row] = merge_alerts([_transition("provisional", at), _transition("retract", at)])
    assert (row[5], row[-1]) == ("retracted", True)
