"""Alert rules through the whole pipeline: raw events -> worker -> ioc.alerts -> alert table."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any

import asyncpg
import httpx
import jsonschema  # type: ignore[import-untyped]
import orjson
from cloudevents.core.formats.json import JSONFormat

from streams.topics import ALERTS_TOPIC, raw_topic
from tests.utils.apikeys import auth
from tests.utils.events import T0, Record, flow_value
from tests.utils.eventually import eventually
from tests.utils.kafka import produce, read_all
from tests.utils.namespaces import Namespace
from tests.utils.services import Process, start_api

BAD: dict[str, Any] = {"avg_speed_kmh": 9.0, "occupancy_pct": 92.0}
GOOD: dict[str, Any] = {"avg_speed_kmh": 48.0, "occupancy_pct": 25.0}


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
    transitions = [orjson.loads(m.value)["data"] for m in messages]
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
        rows: list[asyncpg.Record] = await eventually(
            lambda: conn.fetch(
                f'SELECT entity_id, state, rule_id FROM "{settings.db_schema}".alert'
            ),
            until=lambda rows: rows and all(r["state"] == "resolved" for r in rows),
            within_s=30,
            what="every stored alert to be resolved",
        )
    finally:
        await conn.close()
    assert [(r["entity_id"], r["state"], r["rule_id"]) for r in rows] == [
        ("t-ix-jam", "resolved", "traffic-congestion")
    ]


def readings(entity: str, minute: int, seconds: range, data: dict[str, Any]) -> list[Record]:
    return [
        Record(
            entity.encode(),
            flow_value(entity, T0 + timedelta(minutes=minute, seconds=s), vehicles=20, **data),
            0,
        )
        for s in seconds
    ]


async def test_a_foreseen_alert_is_stored_provisional_then_confirmed_or_retracted(
    namespace: Namespace, worker: Process
) -> None:
    """Congestion needs three bad final minutes. Two bad minutes that are final and half of
    a third one that is not are enough to foresee it: a provisional alert, stored and
    acknowledged like any other. The third minute's final average confirms it (same id) or,
    when the rest of the minute runs freely, retracts it."""
    settings = namespace.settings
    topic = raw_topic(settings, "traffic")
    api, base = start_api(namespace)
    try:
        first_half = range(0, 30, 10)
        ahead = []  # two bad minutes, half a bad one; a reading at 08:04 makes 08:00-08:01 final
        for entity in ("t-ix-soon", "t-ix-maybe"):
            ahead += readings(entity, 0, range(0, 60, 10), BAD)
            ahead += readings(entity, 1, range(0, 60, 10), BAD)
            ahead += readings(entity, 2, first_half, BAD)
            ahead += readings(entity, 4, range(0, 1), GOOD)
        await produce(settings, topic, ahead)

        def stored(entity: str, **query: str) -> list[dict[str, Any]]:
            answer = httpx.get(
                f"{base}/v1/alerts", params={"entity": entity, **query}, headers=auth("view")
            )
            assert answer.status_code == 200, answer.text
            items: list[dict[str, Any]] = answer.json()["items"]
            return items

        for entity in ("t-ix-soon", "t-ix-maybe"):
            eventually(partial(stored, entity), within_s=30, what=f"{entity}'s provisional alert")
            [alert] = stored(entity)
            assert (alert["state"], alert["provisional"]) == ("open", True)
            assert alert["opened_at"].startswith(minute_text(3))

        def acknowledge(alert_id: object) -> dict[str, Any]:
            answer = httpx.post(f"{base}/v1/alerts/{alert_id}/ack", headers=auth("view"))
            assert answer.status_code == 200, answer.text
            acked: dict[str, Any] = answer.json()
            return acked

        # Operators may acknowledge a provisional alert.
        [soon] = stored("t-ix-soon")
        acked = acknowledge(soon["alert_id"])
        assert (acked["state"], acked["provisional"]) == ("acknowledged", True)

        # The rest of 08:02: still congested at t-ix-soon, flowing at t-ix-maybe; then a
        # reading at 08:06 makes 08:02 final (one minute plus two of lateness after it).
        rest = range(30, 60, 10)
        await produce(
            settings,
            topic,
            [
                *readings("t-ix-soon", 2, rest, BAD),
                *readings("t-ix-maybe", 2, range(30, 60, 5), GOOD),
            ],
        )
        await produce(
            settings,
            topic,
            [
                *readings("t-ix-soon", 6, range(0, 1), GOOD),
                *readings("t-ix-maybe", 6, range(0, 1), GOOD),
            ],
        )
        eventually(
            lambda: not stored("t-ix-soon")[0]["provisional"],
            within_s=30,
            what="the provisional alert to be confirmed",
        )
        [confirmed] = stored("t-ix-soon")
        assert confirmed["alert_id"] == soon["alert_id"]
        assert confirmed["state"] == "acknowledged"  # what the operator did stays
        eventually(
            lambda: stored("t-ix-maybe")[0]["state"] == "retracted",
            within_s=30,
            what="the unfounded provisional alert to be retracted",
        )
        [retracted] = stored("t-ix-maybe", state="retracted")
        assert retracted["provisional"] is True
        # Retracted is not open: it is out of the operators' list and of the live snapshot.
        assert stored("t-ix-maybe", state="open") == []
        # ioc.alerts carries CloudEvents: the SDK reads each, the served schema of its type
        # accepts it, and its id is the same for a repeat.
        messages = await read_all(settings, settings.topic(ALERTS_TOPIC), expect=5, timeout_s=30)
        schemas: dict[str, Any] = {}

        def schema(kind: str) -> Any:
            if kind not in schemas:
                schemas[kind] = httpx.get(f"{base}/v1/schemas/{kind}", headers=auth("view")).json()
            return schemas[kind]

        for message in messages:
            event = JSONFormat().read(None, message.value)
            assert event.get_source() in ("/ioc/rules", "/ioc/operators")
            assert event.get_subject() == message.key.decode()
            jsonschema.validate(orjson.loads(message.value), schema(event.get_type()))
        assert "city.alert.acknowledged.v1" in schemas  # the operator's, from the API
    finally:
        api.stop()

    states = [
        (t["entity_id"], t["state"]) for t in (orjson.loads(m.value)["data"] for m in messages)
    ]
    assert states.count(("t-ix-soon", "provisional")) == 1
    assert states.count(("t-ix-soon", "open")) == 1
    assert states.count(("t-ix-maybe", "provisional")) == 1
    assert states.count(("t-ix-maybe", "retract")) == 1
    assert ("t-ix-maybe", "open") not in states
