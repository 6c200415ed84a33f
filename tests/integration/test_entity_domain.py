"""One domain per entity: an event of another domain than the entity's (its registry
entry's, or that of its first applied event) is refused with its own reason, by the API
(422) and by the worker (dead letter), and never touches the entity's state."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import orjson

from city.model import build_city
from ioc.db.registry import load_registry
from streams.topics import DEADLETTER_TOPIC, raw_topic
from tests.utils.apikeys import auth
from tests.utils.events import T0, Record, alarm_value, flow_value, status_value
from tests.utils.eventually import eventually
from tests.utils.kafka import produce, read_all
from tests.utils.namespaces import Namespace
from tests.utils.services import start_api, start_worker

JUNCTION = next(e for e in build_city(60).entities if e.kind == "intersection").id


def publish(base: str, value: bytes) -> httpx.Response:
    return httpx.post(
        f"{base}/v1/events",
        content=value,
        headers={**auth("admin"), "Content-Type": "application/cloudevents+json"},
    )


async def domain_of(ns: Namespace, entity: str) -> str | None:
    conn = await asyncpg.connect(ns.settings.dsn)
    try:
        domain: str | None = await conn.fetchval(
            f'SELECT domain FROM "{ns.settings.db_schema}".entity_state WHERE entity_id = $1',
            entity,
        )
    finally:
        await conn.close()
    return domain


async def test_an_entity_keeps_one_domain_at_the_api_and_in_the_worker(
    namespace: Namespace,
) -> None:
    settings = namespace.settings
    await load_registry(settings, build_city(60))
    worker = start_worker(namespace)  # reads the registry at start
    api, base = start_api(namespace)
    try:
        # A registered junction: a hospital status about it is refused at once.
        refused = publish(base, status_value(JUNCTION, T0))
        assert refused.status_code == 422, refused.text
        [item] = refused.json()["rejected"]
        assert item["reason"] == "wrong_domain"
        assert "is a traffic entity (the registry says so)" in item["detail"]
        # An unregistered entity becomes traffic with its first event...
        await produce(
            settings,
            raw_topic(settings, "traffic"),
            [Record(b"t-free-1", flow_value("t-free-1", T0), 0)],
        )
        await eventually(
            lambda: domain_of(namespace, "t-free-1"),
            until=lambda domain: domain == "traffic",
            within_s=20,
            what="t-free-1 to be registered as traffic by its first event",
        )
        assert await domain_of(namespace, "t-free-1") == "traffic"
        # ...and stays so, at the API and straight on Kafka.
        later = publish(base, alarm_value("t-free-1", T0, kind="fire"))
        assert later.status_code == 422, later.text
        assert "traffic entity (its first event says so)" in later.json()["rejected"][0]["detail"]
        await produce(
            settings,
            raw_topic(settings, "hospital"),
            [Record(JUNCTION.encode(), status_value(JUNCTION, T0), 0)],
        )
        await produce(
            settings,
            raw_topic(settings, "security"),
            [Record(b"t-free-1", alarm_value("t-free-1", T0, kind="fire"), 0)],
        )
        letters = await read_all(settings, settings.topic(DEADLETTER_TOPIC), expect=2)
        reasons: list[dict[str, Any]] = [
            {"key": r.key, "reason": dict(r.headers)["ioc_reason"]} for r in letters
        ]
        assert sorted(reasons, key=lambda r: r["key"]) == [
            {"key": JUNCTION.encode(), "reason": b"wrong_domain"},
            {"key": b"t-free-1", "reason": b"wrong_domain"},
        ]
        eventually(
            lambda: worker.total("ioc_events_deadlettered_total") >= 2,
            within_s=10,
            what="the refusals counted",
        )
        # Nothing of the refused events reached a state.
        assert await domain_of(namespace, JUNCTION) is None
        assert await domain_of(namespace, "t-free-1") == "traffic"
        assert orjson.loads(letters[0].value)["subject"] in (JUNCTION, "t-free-1")
    finally:
        api.stop()
        worker.stop()
