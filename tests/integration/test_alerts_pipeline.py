"""Alert rules through the whole pipeline: raw events -> worker -> ioc.alerts -> alert table."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import asyncpg
import orjson

from streams.topics import ALERTS_TOPIC, raw_topic
from tests.conftest import Namespace
from tests.utils.events import T0, Record, flow_value
from tests.utils.kafka import produce, read_all
from tests.utils.services import Process

BAD = {"avg_speed_kmh": 9.0, "occupancy_pct": 92.0}
GOOD = {"avg_speed_kmh": 48.0, "occupancy_pct": 25.0}


def minutes_of(entity: str, pattern: str) -> list[Record]:
    """Six flow readings a minute for each character of ``pattern`` (B bad, G good)."""
    out = []
    for minute, kind in enumerate(pattern):
        for second in range(0, 60, 10):
            at = T0 + timedelta(minutes=minute, seconds=second)
            data = BAD if kind == "B" else GOOD
            out.append(Record(entity.encode(), flow_value(entity, at, vehicles=20, **data), 0))
    return out


def minute_text(minutes: int) -> str:
    return (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M")


async def test_congestion_opens_after_three_bad_minutes_not_two_and_resolves_once(
    namespace: Namespace, worker: Process
) -> None:
    settings = namespace.settings
    # Six bad minutes (one alert, updated, never opened twice), then good ones; the
    # trailing minutes move the watermark so that every minute above becomes final.
    congested = minutes_of("t-ix-jam", "BBBBBB" + "G" * 9)
    two_only = minutes_of("t-ix-two", "BBGBBG" + "G" * 9)
    await produce(settings, raw_topic(settings, "traffic"), [*congested, *two_only])

    messages = await read_all(settings, settings.topic(ALERTS_TOPIC), expect=2, timeout_s=60)
    transitions = [orjson.loads(m.value) for m in messages]
    assert {t["entity_id"] for t in transitions} == {"t-ix-jam"}
    assert [t["state"] for t in transitions if t["state"] != "update"] == ["open", "resolve"]
    assert len({t["alert_id"] for t in transitions}) == 1
    opened = next(t for t in transitions if t["state"] == "open")
    # The third bad minute (08:02) completes the streak: opened at its end.
    assert opened["opened_at"].startswith(minute_text(3))
    assert opened["rule_id"] == "traffic-congestion"
    resolved = next(t for t in transitions if t["state"] == "resolve")
    # Three good minutes (08:06 to 08:08) clear it, at the end of 08:08.
    assert resolved["resolved_at"].startswith(minute_text(9))

    conn = await asyncpg.connect(settings.dsn)
    try:
        deadline = time.monotonic() + 30
        rows: list[asyncpg.Record] = []
        while time.monotonic() < deadline:
            rows = await conn.fetch(
                f'SELECT entity_id, state, rule_id FROM "{settings.db_schema}".alert'
            )
            if rows and all(r["state"] == "resolved" for r in rows):
                break
            await asyncio.sleep(0.3)
    finally:
        await conn.close()
    assert [(r["entity_id"], r["state"], r["rule_id"]) for r in rows] == [
        ("t-ix-jam", "resolved", "traffic-congestion")
    ]
