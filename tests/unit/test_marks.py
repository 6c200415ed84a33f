"""Control records on the raw topics: clock marks move a quiet partition's watermark
(and are refused when forged far ahead), operators' actions close an alert; replays move
marks with their shift."""

from __future__ import annotations

from datetime import timedelta

import pytest
from aiokafka.structs import ConsumerRecord

from recordings.timeshift import shift_headers
from streams.alerts import RuleEngine
from streams.marks import (
    ControlError,
    Mark,
    action_headers,
    control_of,
    is_control,
    mark_headers,
)
from streams.state import Batch, EntityStore
from tests.utils.events import T0
from tests.utils.events import alarm_value as alarm
from tests.utils.rules import instant_rules as rules

LATENESS_MS = 120_000

T0_MS = int(T0.timestamp() * 1000)


def record(
    offset: int, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]
) -> ConsumerRecord:
    return ConsumerRecord("ioc.security.events", 0, offset, 0, 0, key, value, None, 0, 0, headers)


def apply(entities: EntityStore, *records: ConsumerRecord) -> Batch:
    return entities.apply(list(records), domain="security", partition=0)


def store(now_ms: int = T0_MS) -> EntityStore:
    return EntityStore(
        rules=RuleEngine(rules()), lateness_ms=LATENESS_MS, clock=lambda: now_ms / 1000
    )


def test_a_mark_moves_a_quiet_partitions_watermark_and_its_alerts_resolve() -> None:
    entities = store(now_ms=T0_MS + 3_600_000)
    opened = entities.apply(
        [record(0, b"cam-1", alarm("cam-1", T0), [])], domain="security", partition=0
    )
    assert opened.outcomes["applied"] == 1
    # Nothing else ever arrives on this partition but marks: 10 quiet minutes plus the
    # allowed lateness later, the sweep resolves the alert.
    quiet = T0_MS + 12 * 60_000 + 1
    batch = entities.apply(
        [record(1, None, b"", mark_headers(quiet))], domain="security", partition=0
    )
    assert batch.outcomes == {"mark": 1}
    assert entities.watermarks[("security", 0)] == quiet
    resolved = entities.sweep()
    assert len(resolved.alerts) == 1
    assert b'"state":"resolve"' in resolved.alerts[0][2]
    # An older mark never moves the watermark back.
    entities.apply([record(2, None, b"", mark_headers(T0_MS))], domain="security", partition=0)
    assert entities.watermarks[("security", 0)] == quiet


def test_a_mark_far_ahead_of_the_clock_or_unreadable_is_dead_lettered() -> None:
    entities = store()
    ahead = T0_MS + 61_000
    batch = entities.apply(
        [
            record(0, None, b"", mark_headers(ahead)),
            record(1, None, b"", [("ioc_mark", b"soon")]),
            record(2, b"cam-1", b"", [("ioc_action", b"delete"), ("ioc_alert", b"x")]),
        ],
        domain="security",
        partition=0,
    )
    assert batch.outcomes == {"invalid_field": 3}
    assert [r.detail.split(":")[0] for _, r in batch.deadletters] == [
        "ioc_mark",
        "ioc_mark must be an event time in ms, not 'soon'",
        "ioc_action 'delete' is not one of ['resolve']",
    ]
    assert ("security", 0) not in entities.watermarks


def test_an_operators_resolve_in_the_log_closes_the_alert() -> None:
    entities = store(now_ms=T0_MS + 3_600_000)
    batch = entities.apply(
        [record(0, b"cam-1", alarm("cam-1", T0), [])], domain="security", partition=0
    )
    alert = batch.alerts[0][2].split(b'"alert_id":"')[1].split(b'"')[0].decode()
    closed = entities.apply(
        [record(1, b"cam-1", b"", action_headers("resolve", alert))],
        domain="security",
        partition=0,
    )
    assert closed.outcomes == {"action": 1}
    assert len(closed.changelog) == 1  # the closed state is written
    assert closed.alerts == []  # the API announced the resolve
    reopened = entities.apply(
        [record(2, b"cam-1", alarm("cam-1", T0 + timedelta(minutes=1)), [])],
        domain="security",
        partition=0,
    )
    assert b'"state":"open"' in reopened.alerts[0][2]


def test_control_records_are_told_from_events() -> None:
    assert control_of(b"", mark_headers(5)) == Mark(5)
    assert control_of(b"{}", mark_headers(5)) is None  # an event with a stray header
    assert is_control(b"", action_headers("resolve", "a"))
    assert not is_control(b"", [("ce_type", b"x")])
    with pytest.raises(ControlError):
        control_of(b"", [("ioc_action", b"resolve")])


def test_a_replay_shifted_in_time_moves_its_marks() -> None:
    headers = tuple(mark_headers(T0_MS))
    assert shift_headers(headers, 1000) == (("ioc_mark", str(T0_MS + 1000).encode()),)


def test_a_partition_that_stood_still_is_swept_whole() -> None:
    """A replay that ended leaves entities that reported in its last seconds: no next
    event will come, so once the watermark has stood still, the sweep judges them too."""
    now = [T0_MS / 1000 + 3600]
    entities = EntityStore(rules=RuleEngine(rules()), lateness_ms=LATENESS_MS, clock=lambda: now[0])
    apply(entities, record(0, b"cam-1", alarm("cam-1", T0), []))  # opens; quiet end 08:10
    # cam-1's last record comes while its quiet end is not final yet (08:09:55 of 08:12)...
    nearly = T0 + timedelta(minutes=11, seconds=55)
    apply(entities, record(1, b"cam-1", alarm("cam-1", nearly, kind="tamper"), []))
    # ...and another camera's makes it final; then the partition falls silent.
    final = T0 + timedelta(minutes=12, seconds=1)
    apply(entities, record(2, b"cam-2", alarm("cam-2", final, kind="tamper"), []))
    # cam-1 reported 6 s ago in event time: its own next event is expected, not swept.
    assert entities.sweep().alerts == []
    now[0] += 4
    assert entities.sweep().alerts == []
    now[0] += 2  # the watermark has not moved for 6 s: nothing more is coming
    [(_, key, value)] = entities.sweep().alerts
    assert key == b"cam-1"
    assert b'"state":"resolve"' in value
