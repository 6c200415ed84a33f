"""The hub: ids, filtered fan-out, replay and resume, repeats, snapshot overlay."""

from __future__ import annotations

import orjson
import pytest

from api.live.filters import LiveFilter
from api.live.hub import INITIAL, TOO_OLD, UNKNOWN_ID, Hub
from api.live.messages import EventId
from api.live.outbox import SLOW_CONSUMER
from tests.utils.live import T0_MS, alert_id, state_record, transition

pytestmark = pytest.mark.timeout(10)


def hub(replay: int = 100, max_alerts: int = 100) -> Hub:
    return Hub(replay_messages=replay, max_entities=100, max_alerts=max_alerts, epoch="ep")


def drain_ids(h: Hub, sub: object) -> list[str]:
    out = []
    while (m := sub.outbox.pop()) is not None:  # type: ignore[attr-defined]
        out.append(orjson.loads(m.body)["id"])
    return out


def test_every_message_gets_the_next_id_and_a_compact_entity_view() -> None:
    h = hub()
    first = h.publish_state(state_record("e1", open_rules=("traffic-congestion",)))
    second = h.publish_alert(transition("e1"))
    assert first is not None
    assert second is not None
    body = orjson.loads(first.body)
    assert body["id"] == "ep-1"
    assert orjson.loads(second.body)["id"] == "ep-2"
    assert body["type"] == "entity"
    assert body["entity"] == {
        "entity_id": "e1",
        "domain": "traffic",
        "event_type": "city.traffic.flow.v1",
        "event_time": "2024-09-07T08:00:00Z",
        "state": {"vehicles": 10},
        "alerts": [
            {"rule_id": "traffic-congestion", "alert_id": alert_id("traffic-congestion", "e1")}
        ],
    }
    assert first.sse.startswith(b"id: ep-1\nevent: entity\ndata: {")
    assert h.last_id == EventId("ep", 2)


def test_fan_out_follows_each_clients_filter() -> None:
    h = hub()
    everyone = h.subscribe(LiveFilter())
    hospitals = h.subscribe(LiveFilter(domains=frozenset({"hospital"})))
    critical = h.subscribe(LiveFilter(severities=frozenset({"critical"})))
    alerts_only = h.subscribe(LiveFilter(kinds=frozenset({"alert"})))
    in_area = h.subscribe(LiveFilter(areas=frozenset({"z"}), area_entities=frozenset({"h1"})))
    h.publish_state(state_record("t1"))  # ep-1
    h.publish_state(state_record("h1", domain="hospital"))  # ep-2
    h.publish_alert(transition("t1", severity="warning"))  # ep-3
    h.publish_alert(transition("h1", domain="hospital", severity="critical", rule="er"))  # ep-4
    assert drain_ids(h, everyone) == ["ep-1", "ep-2", "ep-3", "ep-4"]
    assert drain_ids(h, hospitals) == ["ep-2", "ep-4"]
    # Severity filters alerts only; entity updates have none.
    assert drain_ids(h, critical) == ["ep-1", "ep-2", "ep-4"]
    assert drain_ids(h, alerts_only) == ["ep-3", "ep-4"]
    assert drain_ids(h, in_area) == ["ep-2", "ep-4"]


def test_clients_naming_entities_get_those_entities_and_leave_no_trace() -> None:
    h = hub()
    everyone = h.subscribe(LiveFilter())
    e1 = h.subscribe(LiveFilter(entities=frozenset({"e1"})))
    e1_e2 = h.subscribe(LiveFilter(entities=frozenset({"e1", "e2"})))
    e2_hospital = h.subscribe(
        LiveFilter(entities=frozenset({"e2"}), domains=frozenset({"hospital"}))
    )
    h.publish_state(state_record("e1"))  # ep-1
    h.publish_state(state_record("e2"))  # ep-2
    h.publish_state(state_record("e3"))  # ep-3
    h.publish_alert(transition("e2"))  # ep-4
    assert drain_ids(h, everyone) == ["ep-1", "ep-2", "ep-3", "ep-4"]
    assert drain_ids(h, e1) == ["ep-1"]
    assert drain_ids(h, e1_e2) == ["ep-1", "ep-2", "ep-4"]
    assert drain_ids(h, e2_hospital) == []  # named, but its other filters still apply
    h.unsubscribe(e1)
    h.unsubscribe(e1)  # twice is harmless
    h.publish_state(state_record("e1", time_ms=T0_MS + 1000))  # ep-5
    assert drain_ids(h, e1) == []
    assert drain_ids(h, e1_e2) == ["ep-5"]
    for sub in (everyone, e1_e2, e2_hospital):
        h.unsubscribe(sub)
    assert h.clients == 0
    assert not h._by_entity
    assert not h._unnamed


def test_a_client_that_never_reads_is_closed_and_the_others_get_everything() -> None:
    h = hub(max_alerts=5)
    stalled = h.subscribe(LiveFilter())
    reader = h.subscribe(LiveFilter())
    got = []
    for n in range(20):
        h.publish_alert(transition(f"e{n}"))
        got += drain_ids(h, reader)
    assert got == [f"ep-{n}" for n in range(1, 21)]
    assert stalled.outbox.closed_reason == SLOW_CONSUMER


def test_repeats_are_not_published_again() -> None:
    h = hub()
    assert h.publish_state(state_record("e1")) is not None
    assert h.publish_state(state_record("e1")) is None  # same view (a redelivered record)
    assert h.publish_state(state_record("e1", time_ms=T0_MS + 1000)) is not None
    assert h.publish_alert(transition("e1")) is not None
    assert h.publish_alert(transition("e1")) is None
    assert h.publish_alert(transition("e1", state="update", minute=4)) is not None
    assert h.publish_alert(transition("e1", state="resolve", minute=9)) is not None
    assert h.publish_alert(transition("e1", state="update", minute=4)) is None  # after resolve
    assert h.seq == 5


def test_resume_replays_what_the_client_missed_through_its_filter() -> None:
    h = hub()
    for n in range(6):
        h.publish_state(state_record(f"e{n % 2}", time_ms=T0_MS + n * 1000))
    sub = h.subscribe(LiveFilter(entities=frozenset({"e1"})), since=EventId("ep", 2))
    assert sub.snapshot_reason is None
    assert sub.position == EventId("ep", 2)
    # e1 changed at 4 and 6; merged per entity, the latest is what is waiting.
    assert drain_ids(h, sub) == ["ep-6"]
    h.publish_state(state_record("e1", time_ms=T0_MS + 99_000))
    assert drain_ids(h, sub) == ["ep-7"]


def test_resume_at_the_newest_id_misses_nothing_even_without_a_ring() -> None:
    h = hub(replay=0)
    h.publish_state(state_record("e1"))
    sub = h.subscribe(LiveFilter(), since=EventId("ep", 1))
    assert sub.snapshot_reason is None
    assert drain_ids(h, sub) == []


@pytest.mark.parametrize(
    ("since", "reason"),
    [
        (EventId("ep", 1), TOO_OLD),  # ring holds 3..5, so 2 is missing
        (EventId("other", 4), UNKNOWN_ID),  # another API process, or one restarted
        (EventId("ep", 99), UNKNOWN_ID),
        (None, INITIAL),
    ],
)
def test_unresumable_ids_get_a_snapshot_and_say_why(since: EventId | None, reason: str) -> None:
    h = hub(replay=3)
    for n in range(5):
        h.publish_state(state_record("e1", time_ms=T0_MS + n))
    sub = h.subscribe(LiveFilter(), since=since)
    assert sub.snapshot_reason == reason
    assert sub.position == EventId("ep", 5)
    assert drain_ids(h, sub) == []
    assert [v["event_time"] for v in sub.overlay_entities] == ["2024-09-07T08:00:00.004000Z"]


def test_a_replay_larger_than_the_clients_queue_becomes_a_snapshot() -> None:
    h = hub(max_alerts=3)
    for n in range(6):
        h.publish_alert(transition(f"e{n}"))
    sub = h.subscribe(LiveFilter(), since=EventId("ep", 1))
    assert sub.snapshot_reason == TOO_OLD
    assert not sub.outbox.closed
    assert len(sub.overlay_alerts) == 6


def test_the_overlay_is_what_the_hub_knew_at_the_clients_position() -> None:
    h = hub()
    h.publish_state(state_record("e1", domain="traffic"))
    h.publish_state(state_record("h1", domain="hospital"))
    h.publish_alert(transition("e1"))
    h.publish_alert(transition("e2"))
    h.publish_alert(transition("e2", state="resolve", minute=8))
    sub = h.subscribe(LiveFilter(domains=frozenset({"traffic"})))
    assert [v["entity_id"] for v in sub.overlay_entities] == ["e1"]
    assert sorted((t["entity_id"], t["state"]) for t in sub.overlay_alerts) == [
        ("e1", "open"),
        ("e2", "resolve"),
    ]


def test_close_ends_every_client() -> None:
    h = hub()
    subs = [h.subscribe(LiveFilter()) for _ in range(3)]
    h.close()
    assert h.clients == 0
    assert all(s.outbox.closed_reason == "shutdown" for s in subs)
