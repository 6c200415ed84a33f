"""The sink's batch merge: the newest absolute value per row wins."""

from __future__ import annotations

from streams.sink import merge_records

T = 1_725_696_000_000


def _record(offset: int, buckets: dict[str, list[float]], changed: list[str]) -> dict[str, object]:
    return {
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
