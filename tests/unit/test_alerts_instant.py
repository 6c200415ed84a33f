"""Instant rules: one event opens an alert at once; repeats update it; it resolves on a
clear event, after quiet minutes (judged on final event time) or by an operator; the
same records give the same transitions however they are batched or swept."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
from aiokafka.structs import ConsumerRecord

from streams.alerts import AlertTransition, InstantRule, RuleEngine
from streams.state import EntityStore
from tests.utils.events import T0
from tests.utils.events import alarm_value as alarm
from tests.utils.events import smoke_value as smoke
from tests.utils.rules import instant_rules as rules

LATENESS_MS = 120_000
MINUTE = timedelta(minutes=1)


class Feed:
    """Records into one partition of an entity store, offsets counted."""

    def __init__(self) -> None:
        self.store = EntityStore(rules=RuleEngine(rules()), lateness_ms=LATENESS_MS)
        self.offset = 0
        self.transitions: list[dict[str, Any]] = []

    def send(self, *pairs: tuple[bytes, bytes]) -> list[dict[str, Any]]:
        records = []
        for key, value in pairs:
            records.append(
                ConsumerRecord(
                    "ioc.security.events", 0, self.offset, 0, 0, key, value, None, 0, 0, []
                )
            )
            self.offset += 1
        batch = self.store.apply(records, domain="security", partition=0)
        return self._take([orjson.loads(v)["data"] for _, _, v in batch.alerts])

    def sweep(self) -> list[dict[str, Any]]:
        batch = self.store.sweep()
        return self._take([orjson.loads(v)["data"] for _, _, v in batch.alerts])

    def _take(self, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.transitions += found
        return found


def states(found: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(t["rule_id"], t["state"]) for t in found]


def test_a_matching_event_opens_an_alert_in_the_same_batch() -> None:
    feed = Feed()
    [opened] = feed.send((b"cam-1", alarm("cam-1", T0)))
    assert (opened["rule_id"], opened["state"], opened["severity"]) == (
        "alarm-fire",
        "open",
        "critical",
    )
    assert opened["opened_at"] == opened["updated_at"] == "2024-09-07T08:00:00+00:00"
    assert opened["values"] == {"kind": "fire", "zone": "lobby", "matches": 1}
    # Other kinds and low confidence match nothing.
    assert feed.send((b"cam-2", alarm("cam-2", T0, kind="tamper"))) == []
    assert feed.send((b"cam-2", smoke("cam-2", T0 + MINUTE, 0.69))) == []


def test_repeats_update_the_open_alert_at_most_every_update_minutes() -> None:
    feed = Feed()
    feed.send((b"cam-1", alarm("cam-1", T0)))
    repeats = [(b"cam-1", alarm("cam-1", T0 + timedelta(minutes=m))) for m in (1, 2, 5, 6, 9)]
    found = feed.send(*repeats)
    assert states(found) == [("alarm-fire", "update")]
    assert found[0]["updated_at"] == "2024-09-07T08:05:00+00:00"
    assert found[0]["values"]["matches"] == 4
    assert len({t["alert_id"] for t in feed.transitions}) == 1


def test_quiet_minutes_resolve_once_they_are_final_and_the_next_match_opens_anew() -> None:
    feed = Feed()
    [opened] = feed.send((b"cam-1", alarm("cam-1", T0)))
    # Another camera's events move the partition's watermark; the quiet end (10 min after
    # the match) is final only once the watermark passes it by the allowed lateness.
    assert feed.send((b"cam-9", alarm("cam-9", T0 + timedelta(minutes=11), kind="tamper"))) == []
    assert feed.sweep() == []
    feed.send((b"cam-9", alarm("cam-9", T0 + timedelta(minutes=12, seconds=1), kind="tamper")))
    [resolved] = feed.sweep()
    assert (resolved["alert_id"], resolved["state"]) == (opened["alert_id"], "resolve")
    assert resolved["resolved_at"] == "2024-09-07T08:10:00+00:00"
    [again] = feed.send((b"cam-1", alarm("cam-1", T0 + timedelta(minutes=13))))
    assert again["state"] == "open"
    assert again["alert_id"] != opened["alert_id"]


def test_a_match_after_the_quiet_minutes_resolves_and_opens_in_one_step() -> None:
    feed = Feed()
    feed.send((b"cam-1", alarm("cam-1", T0)))
    found = feed.send((b"cam-1", alarm("cam-1", T0 + timedelta(minutes=10))))
    assert states(found) == [("alarm-fire", "resolve"), ("alarm-fire", "open")]
    assert found[0]["resolved_at"] == "2024-09-07T08:10:00+00:00"


def test_a_clear_event_resolves_at_its_time() -> None:
    feed = Feed()
    feed.send((b"cam-1", smoke("cam-1", T0, 0.9)))
    found = feed.send((b"cam-1", alarm("cam-1", T0 + MINUTE, kind="tamper", zone="all-clear")))
    assert states(found) == [("smoke", "resolve")]
    assert found[0]["resolved_at"] == "2024-09-07T08:01:00+00:00"
    assert states(feed.send((b"cam-1", smoke("cam-1", T0 + 2 * MINUTE, 0.8)))) == [
        ("smoke", "open")
    ]


def test_an_operator_resolve_lets_the_next_match_open_a_new_alert() -> None:
    feed = Feed()
    [opened] = feed.send((b"cam-1", alarm("cam-1", T0)))
    record = feed.store.records[b"cam-1"]
    assert feed.store.rules.close(record.rules, opened["alert_id"])
    assert not feed.store.rules.close(record.rules, opened["alert_id"])
    [again] = feed.send((b"cam-1", alarm("cam-1", T0 + MINUTE)))
    assert again["state"] == "open"
    assert again["alert_id"] != opened["alert_id"]


def _history(batch_size: int, sweep_every: int) -> list[tuple[str, str, str]]:
    feed = Feed()
    events = []
    for minute in range(0, 40):
        at = T0 + timedelta(minutes=minute, seconds=7)
        events.append((b"cam-9", alarm("cam-9", at, kind="tamper")))
        if minute in (1, 2, 4, 9, 25, 26, 38):
            events.append((b"cam-1", alarm("cam-1", at + timedelta(seconds=3))))
        if minute in (3, 5, 30):
            events.append((b"cam-2", smoke("cam-2", at, 0.95)))
    for n, start in enumerate(range(0, len(events), batch_size)):
        feed.send(*events[start : start + batch_size])
        if n % sweep_every == 0:
            feed.sweep()
    for _ in range(3):
        feed.sweep()
    return [(t["alert_id"], t["state"], t["updated_at"]) for t in feed.transitions]


def test_batching_and_sweeping_change_when_transitions_come_not_which() -> None:
    one_by_one = _history(batch_size=1, sweep_every=1)
    assert sorted(one_by_one) == sorted(_history(batch_size=7, sweep_every=3))
    assert sorted(one_by_one) == sorted(_history(batch_size=1000, sweep_every=1))
    assert [s for _, s, _ in one_by_one].count("open") >= 4


def test_instant_states_survive_a_window_evaluation() -> None:
    engine = RuleEngine(rules())
    found: list[AlertTransition] = []
    states_: dict[str, Any] = {}
    found += engine.on_event(
        states_,
        entity_id="cam-1",
        event_type="city.security.alarm.v1",
        data={"kind": "fire", "zone": "x"},
        time_ms=int(T0.timestamp() * 1000),
        watermark_ms=None,
        lateness_ms=LATENESS_MS,
    )
    evaluation = engine.evaluate(
        states_,
        entity_id="cam-1",
        domain="security",
        buckets={},
        watermark_ms=int(T0.timestamp() * 1000),
        lateness_ms=LATENESS_MS,
    )
    assert evaluation.states == states_
    assert evaluation.transitions == []
    assert isinstance(rules()[0], InstantRule)


def test_quiet_minutes_ending_inside_a_minute_resolve_with_no_minute_becoming_final() -> None:
    """The sweep used to walk again only when a minute became final: a stream that stopped
    after the quiet minutes' end but before the next minute's end left the alert open,
    while a faster feed resolved it (seen replaying the typhoon at x40 and full speed)."""
    feed = Feed()
    # The fire alarm's alert opens at 08:00:30 and goes quiet (10 minutes) at 08:10:30.
    feed.send((b"cam-1", alarm("cam-1", T0 + timedelta(seconds=30))))
    # Another camera moves the watermark to 08:12:10: minute 08:09 is final; 08:10:10 less
    # the lateness is not past the quiet end yet.
    feed.send((b"cam-2", smoke("cam-2", T0 + timedelta(minutes=12, seconds=10), 0.1)))
    assert feed.sweep() == []
    # 08:12:40: the quiet end is past with the lateness, and no other minute is final.
    feed.send((b"cam-2", smoke("cam-2", T0 + timedelta(minutes=12, seconds=40), 0.1)))
    [resolved] = feed.sweep()
    assert (resolved["rule_id"], resolved["state"]) == ("alarm-fire", "resolve")
    assert resolved["resolved_at"].startswith("2024-09-07T08:10:30")
