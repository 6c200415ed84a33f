"""Producing and reading records with aiokafka, as an integrator's client would."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord, TopicPartition

from ioc.settings import Settings
from streams.kafka import client_options
from tests.utils.events import Record


async def produce(
    settings: Settings,
    topic: str,
    records: Iterable[Record],
    *,
    headers: Sequence[tuple[str, bytes]] | None = None,
) -> int:
    """Send records (key, value, Kafka timestamp = event time); return how many."""
    producer = AIOKafkaProducer(acks="all", linger_ms=5, **client_options(settings))
    await producer.start()
    sent = 0
    try:
        futures = []
        for record in records:
            futures.append(
                await producer.send(
                    topic,
                    record.value,
                    key=record.key,
                    timestamp_ms=record.time_ms,
                    headers=list(headers) if headers else None,
                )
            )
            sent += 1
        for future in futures:
            await future
    finally:
        await producer.stop()
    return sent


async def read_all(
    settings: Settings, topic: str, *, expect: int, timeout_s: float = 60
) -> list[ConsumerRecord]:
    """Read a topic from the beginning until ``expect`` records arrived or time ran out."""
    consumer = AIOKafkaConsumer(
        topic,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        **client_options(settings),
    )
    await consumer.start()
    out: list[ConsumerRecord] = []
    try:
        import time

        deadline = time.monotonic() + timeout_s
        while len(out) < expect and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for messages in batch.values():
                out.extend(messages)
    finally:
        await consumer.stop()
    return out


async def records_in(settings: Settings, topic: str) -> int:
    """How many records a topic holds (the sum of its partitions' end offsets): what has
    been written, without waiting for anything to arrive."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    assert described.get("error_code", 0) == 0, f"no topic {topic}: {described}"
    partitions = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
    consumer = AIOKafkaConsumer(enable_auto_commit=False, group_id=None, **client_options(settings))
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return sum(ends.values())
