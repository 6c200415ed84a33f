"""Integrators' Kafka clients on the same entities and minutes: aiokafka (murmur2, like the
project's producers), confluent-kafka and kcat (librdkafka: CRC32 by default, murmur2 when
configured). Whatever the client, a record is either counted exactly once in its entity's
minute or dead-lettered as ``wrong_partition`` naming the client setting; nothing is lost
without a trace, across a worker killed with -9."""

from __future__ import annotations

import subprocess
from collections import Counter
from datetime import timedelta

import orjson
from confluent_kafka import Producer

from ioc.infra.debian import ensure_command
from streams.partitions import home_partition
from streams.topics import DEADLETTER_TOPIC, raw_topic
from tests.utils.events import T0, Record, flow_value
from tests.utils.kafka import produce, read_all
from tests.utils.namespaces import Namespace
from tests.utils.pipeline import settle
from tests.utils.services import start_worker
from tests.utils.truth import database_rows, truth_of

ENTITIES = [f"t-mix-{n:02d}" for n in range(24)]
CLIENTS = ("aiokafka", "confluent", "kcat", "confluent-murmur2", "kcat-murmur2")


def events(client: str, minutes: range) -> list[Record]:
    """Two flow readings a minute per entity, each client its own source and ids."""
    out = []
    for minute in minutes:
        for second in (7, 37):
            at = T0 + timedelta(minutes=minute, seconds=second)
            for n, entity in enumerate(ENTITIES):
                value = orjson.loads(
                    flow_value(entity, at, vehicles=n + minute + len(client), event_id="x")
                )
                value["source"] = f"/tests/{client}"
                value["id"] = f"{client}-{entity}-{minute}-{second}"
                out.append(Record(entity.encode(), orjson.dumps(value), 0))
    return out


def send_confluent(bootstrap: str, topic: str, records: list[Record], **config: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", **config})
    for record in records:
        producer.produce(topic, record.value, key=record.key)
    assert producer.flush(30) == 0, "confluent-kafka left records unsent"


def send_kcat(bootstrap: str, topic: str, records: list[Record], *partitioner: str) -> None:
    kcat = ensure_command("kcat", ["kcat"])
    lines = b"".join(r.key + b"|" + r.value + b"\n" for r in records)
    subprocess.run(
        [str(kcat), "-b", bootstrap, "-P", "-t", topic, "-K", "|", "-X", "acks=all", *partitioner],
        input=lines,
        check=True,
        capture_output=True,
        timeout=60,
    )


async def send(ns: Namespace, client: str, records: list[Record]) -> None:
    settings = ns.settings
    topic = raw_topic(settings, "traffic")
    bootstrap = settings.bootstrap_servers
    murmur2 = ["-X", "partitioner=murmur2_random"]
    if client == "aiokafka":
        await produce(settings, topic, records)
    elif client == "confluent":
        send_confluent(bootstrap, topic, records)
    elif client == "confluent-murmur2":
        send_confluent(bootstrap, topic, records, partitioner="murmur2_random")
    elif client == "kcat":
        send_kcat(bootstrap, topic, records)
    else:
        send_kcat(bootstrap, topic, records, *murmur2)


async def test_mixed_clients_count_exactly_or_dead_letter_with_the_setting_to_use(
    namespace: Namespace,
) -> None:
    settings = namespace.settings
    partitions = settings.kafka.partitions
    first = start_worker(namespace, name="worker-1")
    for client in CLIENTS:
        await send(namespace, client, events(client, range(0, 3)))
    first.kill9()  # whatever it had done; its successor starts from the committed offsets
    for client in CLIENTS:
        await send(namespace, client, events(client, range(3, 6)))
    # A reading at 08:10 from every entity makes every minute above final.
    closing = [
        Record(e.encode(), flow_value(e, T0 + timedelta(minutes=10), event_id=f"end-{e}"), 0)
        for e in ENTITIES
    ]
    await produce(settings, raw_topic(settings, "traffic"), closing)

    # Where each record really landed: the truth, read back from the topic.
    total = len(CLIENTS) * 6 * 2 * len(ENTITIES) + len(ENTITIES)
    landed = await read_all(settings, raw_topic(settings, "traffic"), expect=total)
    assert len(landed) == total
    at_home = [r for r in landed if home_partition(r.key, partitions) == r.partition]
    away = [r for r in landed if home_partition(r.key, partitions) != r.partition]
    sources = Counter(orjson.loads(r.value)["source"] for r in away)
    # librdkafka's default sends most keys elsewhere; configured, none; aiokafka never.
    assert sources["/tests/confluent"] > 0
    assert sources["/tests/kcat"] > 0
    assert set(sources) <= {"/tests/confluent", "/tests/kcat"}

    second = start_worker(namespace, name="worker-2")
    try:
        await settle(namespace, len(at_home), within_s=120)
        assert await database_rows(settings) == truth_of(r.value for r in at_home)
        letters = await read_all(settings, settings.topic(DEADLETTER_TOPIC), expect=len(away))
        assert len(letters) >= len(away)  # a record dead-lettered before the kill may repeat
        reasons = {dict(r.headers)["ioc_reason"] for r in letters}
        assert reasons == {b"wrong_partition"}
        assert {(r.partition, r.offset) for r in away} == {
            (source["partition"], source["offset"])
            for source in (orjson.loads(dict(r.headers)["ioc_source"]) for r in letters)
        }
        detail = dict(letters[0].headers)["ioc_detail"].decode()
        assert "partitioner=murmur2_random" in detail
        assert (
            second.counters().get('ioc_events_deadlettered_total{reason="wrong_partition"}', 0) >= 1
        )
        assert second.alive()
    finally:
        second.stop()
