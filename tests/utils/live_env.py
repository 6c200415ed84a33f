"""The environment of the live-feed integration tests: a namespace with a small
registry, its worker, an API with small live bounds, and builders of what they produce."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import orjson
import pytest

from ioc.settings import Settings
from streams.topics import raw_topic
from tests.utils.events import Record, flow_value
from tests.utils.kafka import produce
from tests.utils.live_clients import (
    EventClock,
    Received,
)
from tests.utils.namespaces import Namespace, drop_namespace, new_namespace
from tests.utils.services import Process, start_api, start_worker

BAD: dict[str, Any] = {"avg_speed_kmh": 9.0, "occupancy_pct": 92.0}
GOOD: dict[str, Any] = {"avg_speed_kmh": 48.0, "occupancy_pct": 25.0}
#: Bounds of the API under test: small enough to reach in a test.
QUEUE_ENTITIES = 1000
REPLAY = 400
HEARTBEAT_S = 0.4

AREAS = [
    ("p", "province", None),
    ("z1", "zone", "p"),
    ("c1", "commune", "z1"),
    ("c2", "commune", "z1"),
]
ENTITIES = [
    ("lv-c1-a", "traffic", "c1"),
    ("lv-c2-b", "traffic", "c2"),
    ("lv-h-c1", "hospital", "c1"),
]


@dataclass
class Live:
    namespace: Namespace
    base: str
    clock: EventClock
    api: Process

    @property
    def settings(self) -> Settings:
        return self.namespace.settings

    async def flow(self, records: list[Record]) -> None:
        await produce(self.settings, raw_topic(self.settings, "traffic"), records)

    def flow_record(self, entity: str, at: datetime | None = None, **data: Any) -> Record:
        at = at or self.clock.tick()
        return Record(entity.encode(), flow_value(entity, at, **data), int(at.timestamp() * 1000))


async def seed_registry(settings: Settings) -> None:
    conn = await asyncpg.connect(settings.dsn)
    try:
        await conn.execute(f'SET search_path TO "{settings.db_schema}"')
        for area_id, kind, parent in AREAS:
            await conn.execute(
                "INSERT INTO area (id, kind, level, parent_id, name, name_vi, lat, lon, boundary)"
                " VALUES ($1, $2, $2, $3, $1, $1, 21.0, 107.0, '[]')",
                area_id,
                kind,
                parent,
            )
        for entity_id, domain, commune in ENTITIES:
            await conn.execute(
                "INSERT INTO entity (id, domain, kind, name, commune_id, zone_id, lat, lon)"
                " VALUES ($1, $2, 'sensor', $1, $3, 'z1', 21.0, 107.0)",
                entity_id,
                domain,
                commune,
            )
    finally:
        await conn.close()


@pytest.fixture(scope="module", name="live")
async def live_env(
    infra: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Live]:
    """A namespace with a small registry, its worker, and an API with small live bounds."""
    namespace = await new_namespace(infra, tmp_path_factory)
    await seed_registry(namespace.settings)
    worker = start_worker(namespace)
    api, base = start_api(
        namespace,
        env={
            "IOC_LIVE__HEARTBEAT_S": str(HEARTBEAT_S),
            "IOC_LIVE__QUEUE_ENTITIES": str(QUEUE_ENTITIES),
            "IOC_LIVE__REPLAY_MESSAGES": str(REPLAY),
        },
    )
    try:
        yield Live(namespace, base, EventClock(), api)
    finally:
        api.stop()
        worker.stop()
        await drop_namespace(namespace.settings)


def minutes_of(live: Live, entity: str, pattern: str) -> list[Record]:
    """Six flow readings a minute per character of ``pattern`` (B bad, G good)."""
    start = live.clock.minutes(len(pattern))
    out = []
    for minute, kind in enumerate(pattern):
        for second in range(0, 60, 10):
            at = start + timedelta(minutes=minute, seconds=second)
            out.append(live.flow_record(entity, at, **(BAD if kind == "B" else GOOD)))
    return out


async def db_value(settings: Settings, sql: str) -> Any:
    """The value of a query of the namespace's schema (written ``{s}`` in ``sql``)."""
    conn = await asyncpg.connect(settings.dsn)
    try:
        return await conn.fetchval(sql.replace("{s}", f'"{settings.db_schema}"'))
    finally:
        await conn.close()


def snapshot_of(received: Received) -> dict[str, object]:
    first = received.messages[0]
    assert first["type"] == "snapshot"
    assert first["more"] is False
    return first


def ids_increase(received: Received) -> bool:
    seqs = [int(m["id"].rsplit("-", 1)[1]) for m in received.messages if "id" in m]
    return seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def hospital_record(live: Live, entity: str) -> Record:
    at = live.clock.tick()
    value = orjson.dumps(
        {
            "specversion": "1.0",
            "id": f"{entity}-{at.timestamp()}",
            "source": "/tests",
            "type": "city.hospital.status.v1",
            "time": at,
            "subject": entity,
            "data": {
                "beds_total": 100,
                "beds_occupied": 50,
                "icu_total": 10,
                "icu_occupied": 5,
                "er_waiting": 3,
                "ambulances_available": 2,
            },
        }
    )
    return Record(entity.encode(), value, int(at.timestamp() * 1000))
