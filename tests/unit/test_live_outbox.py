"""The slow-client policy: entity updates merge per entity, alerts are never dropped,
an overflowing client is closed with a reason."""

from __future__ import annotations

import asyncio

import pytest

from api.live.messages import EventId, Message, encode
from api.live.outbox import SLOW_CONSUMER, Outbox, OutboxClosed

pytestmark = pytest.mark.timeout(10)


def message(seq: int, kind: str = "entity", entity: str = "e1") -> Message:
    payload = {"entity_id": entity, "n": seq}
    body, sse = encode(event_id=EventId("x", seq), kind=kind, payload=payload)  # type: ignore[arg-type]
    severity = "warning" if kind == "alert" else None
    return Message(seq, kind, "traffic", entity, severity, body, sse, payload)  # type: ignore[arg-type]


def drain(outbox: Outbox) -> list[int]:
    out = []
    while (m := outbox.pop()) is not None:
        out.append(m.seq)
    return out


def test_entity_updates_merge_latest_wins_and_keep_id_order() -> None:
    outbox = Outbox(max_entities=10, max_alerts=10)
    for m in [message(1, entity="a"), message(2, entity="b"), message(3, "alert", "a")]:
        assert outbox.offer(m)
    assert outbox.offer(message(4, entity="a"))  # replaces 1, goes behind the alert
    assert drain(outbox) == [2, 3, 4]
    assert outbox.merged == 1


def test_alert_transitions_are_never_merged() -> None:
    outbox = Outbox(max_entities=10, max_alerts=10)
    for seq in range(1, 6):
        assert outbox.offer(message(seq, "alert", "a"))
    assert drain(outbox) == [1, 2, 3, 4, 5]


def test_alert_backlog_overflow_closes_with_a_reason_and_drops_the_backlog() -> None:
    outbox = Outbox(max_entities=10, max_alerts=3)
    for seq in range(1, 4):
        assert outbox.offer(message(seq, "alert"))
    assert not outbox.offer(message(4, "alert"))
    assert outbox.closed_reason == SLOW_CONSUMER
    assert len(outbox) == 0
    assert not outbox.offer(message(5, entity="z"))
    with pytest.raises(OutboxClosed) as closed:
        outbox.pop()
    assert closed.value.reason == SLOW_CONSUMER


def test_entity_bound_counts_distinct_entities_not_updates() -> None:
    outbox = Outbox(max_entities=2, max_alerts=10)
    for seq in range(1, 50):
        assert outbox.offer(message(seq, entity="a" if seq % 2 else "b"))
    assert len(outbox) == 2
    assert not outbox.offer(message(50, entity="c"))
    assert outbox.closed_reason == SLOW_CONSUMER


async def test_get_waits_for_a_message_or_times_out_for_a_heartbeat() -> None:
    outbox = Outbox(max_entities=10, max_alerts=10)
    assert await outbox.get(0.05) is None
    asyncio.get_running_loop().call_later(0.05, outbox.offer, message(7))
    got = await outbox.get(5)
    assert got is not None
    assert got.seq == 7


async def test_wait_closed_wakes_on_overflow() -> None:
    outbox = Outbox(max_entities=1, max_alerts=1)
    waiter = asyncio.create_task(outbox.wait_closed())
    outbox.offer(message(1, "alert"))
    outbox.offer(message(2, "alert"))
    assert await asyncio.wait_for(waiter, 1) == SLOW_CONSUMER
    with pytest.raises(OutboxClosed):
        await outbox.get(1)
