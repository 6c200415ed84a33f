"""100,000 hostile messages (15 kinds) straight into the raw topics while normal traffic flows: the
worker stays up, normal aggregates stay exact, every hostile message is dead-lettered
with its reason."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

import orjson
from aiokafka import AIOKafkaProducer

from simulators.events import SimEvent
from streams.kafka import client_options
from streams.topics import DEADLETTER_TOPIC, raw_topic
from tests.utils.eventually import eventually
from tests.utils.kafka import read_all
from tests.utils.namespaces import Namespace
from tests.utils.pipeline import produce_events, settle, simulated
from tests.utils.services import Process
from tests.utils.truth import database_rows, truth_of

HOSTILE = 100_000


@dataclass(frozen=True)
class Hostile:
    domain: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    reason: str


def _swap(value: bytes, old: str, new: str) -> bytes:
    return value.decode().replace(old, new, 1).encode("utf-8", "surrogateescape")


def hostile_messages(normal: list[SimEvent], *, count: int, seed: int = 9) -> Iterator[Hostile]:
    """Broken variants of real events, aimed at real entities, each with the reason the
    contract gives it."""
    rng = random.Random(seed)
    other = {"traffic": "hospital", "hospital": "school", "school": "security"}
    for n in range(count):
        good = normal[rng.randrange(len(normal))]
        event = orjson.loads(good.value)
        domain, value = good.domain, good.value
        key: bytes | None = good.key
        headers: list[tuple[str, bytes]] = []
        kind = n % 15
        if kind == 0:
            noise = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
            value, reason = b"\xff" + noise, "not_json"  # never valid UTF-8
        elif kind == 1:
            value, reason = orjson.dumps([event]), "not_object"
        elif kind == 2:
            del event["subject"]
            value, reason = orjson.dumps(event), "missing_field"
        elif kind == 3:
            first = next(iter(event["data"]))
            event["data"][first] = {"nested": ["wrong", "type"]}
            value, reason = orjson.dumps(event), "invalid_field"
        elif kind == 4:
            event["type"] = f"city.{domain}.teleport.v1"
            value, reason = orjson.dumps(event), "unknown_type"
        elif kind == 5:
            domain = other.get(domain, "traffic")
            value, reason = orjson.dumps(event), "wrong_topic"
        elif kind == 6:
            key, reason = cast(bytes, key) + b"-x", "key_mismatch"
        elif kind == 7:
            key, reason = None, "key_mismatch"
        elif kind == 8:
            event["time"] = "9999-12-31T23:59:59Z"
            value, reason = orjson.dumps(event), "invalid_field"
        elif kind == 9:
            value, reason = value[:-2] + b',"x":NaN}}', "not_json"
        elif kind == 10:
            value, reason = b"[" * 5000 + b"]" * 5000, "not_json"
        elif kind == 11:
            value, reason = _swap(value, event["id"], event["id"] + "\udcff"), "not_json"
        elif kind == 12:
            value, reason = value[:-1] + b',"specversion":"0.3"}', "invalid_field"
        elif kind == 13:
            # Valid but for a NUL, which PostgreSQL's text and jsonb cannot store.
            event["id"] += "\u0000"
            value, reason = orjson.dumps(event), "invalid_field"
        else:
            # Binary mode (ce_* headers) announcing a payload that is not JSON.
            headers = [("ce_specversion", b"1.0"), ("ce_type", event["type"].encode())]
            value, reason = b"\x00\x01 not json", "not_json"
        yield Hostile(domain, key, value, headers, reason)


async def produce_hostile(ns: Namespace, messages: list[Hostile]) -> None:
    producer = AIOKafkaProducer(acks="all", linger_ms=5, **client_options(ns.settings))
    await producer.start()
    try:
        futures = [
            await producer.send(
                raw_topic(ns.settings, m.domain), m.value, key=m.key, headers=m.headers or None
            )
            for m in messages
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def test_100k_hostile_messages_are_dead_lettered_and_normal_traffic_stays_exact(
    namespace: Namespace, worker: Process
) -> None:
    normal = simulated(entities=2000, minutes=10, seed=21)
    messages = list(hostile_messages(normal, count=HOSTILE))
    expected = Counter(m.reason for m in messages)
    assert set(expected) >= {"not_json", "invalid_field", "key_mismatch", "wrong_topic"}
    # A real client writes both at once, interleaved in the same partitions.
    await asyncio.gather(produce_events(namespace, normal), produce_hostile(namespace, messages))
    total = len(normal) + HOSTILE
    eventually(
        lambda: worker.total("ioc_events_consumed_total") >= total,
        within_s=240,
        interval_s=1,
        what="the worker to consume everything",
    )
    assert worker.alive(), worker.tail()
    assert worker.total("ioc_events_processed_total") == len(normal)
    assert worker.total("ioc_events_deadlettered_total") == HOSTILE
    await settle(namespace, len(normal))
    assert await database_rows(namespace.settings) == truth_of(e.value for e in normal)
    letters = await read_all(
        namespace.settings, namespace.settings.topic(DEADLETTER_TOPIC), expect=HOSTILE
    )
    assert len(letters) == HOSTILE
    reasons = Counter(dict(m.headers)["ioc_reason"].decode() for m in letters)
    assert reasons == expected
