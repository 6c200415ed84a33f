"""The idempotent producer wedged on OutOfOrderSequenceNumber (aio-libs/aiokafka#1017),
and the way out of each producer of the project: a new producer that sends again what was
not acknowledged.

The wedge is made for real: the producer's next sequence number for a partition is
moved past the one the broker expects, as a lost acknowledgement around a broker restart
leaves it, so the broker refuses every later batch to that partition.
"""

from __future__ import annotations

from aiokafka import AIOKafkaProducer
from aiokafka.errors import OutOfOrderSequenceNumber
from aiokafka.structs import TopicPartition

from api.publisher import KafkaUnavailable, OutRecord, Publisher
from streams.aggregator import Aggregator
from streams.sender import BatchSender, ProduceStats, make_producer
from streams.state import Batch
from streams.topics import STATE_TOPIC, raw_topic
from tests.utils.kafka import read_all
from tests.utils.namespaces import Namespace


def wedge(producer: AIOKafkaProducer, tp: TopicPartition) -> None:
    """Skip three sequence numbers of ``tp``: the broker now sees a gap in every batch."""
    producer._txn_manager.increment_sequence_number(tp, 3)


async def test_a_wedged_aiokafka_producer_stays_wedged(namespace: Namespace) -> None:
    """What the recovery is for: without a new producer, nothing more reaches the partition."""
    topic = raw_topic(namespace.settings, "traffic")
    producer = make_producer(namespace.settings)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"first", key=b"k", partition=0)
        wedge(producer, TopicPartition(topic, 0))
        for attempt in range(2):
            try:
                await producer.send_and_wait(topic, b"%d" % attempt, key=b"k", partition=0)
            except OutOfOrderSequenceNumber:
                continue
            raise AssertionError("the broker took a batch after a sequence gap")
    finally:
        await producer.stop()


async def test_the_batch_sender_replaces_a_wedged_producer_and_loses_nothing(
    namespace: Namespace,
) -> None:
    topic = raw_topic(namespace.settings, "traffic")
    producer = make_producer(namespace.settings)
    await producer.start()
    stats = ProduceStats()
    sender = BatchSender(producer, {"traffic": topic}, stats)
    try:
        for n in range(10):
            await sender.append(
                topic, 0, key=b"k", value=b"a%d" % n, timestamp_ms=n, headers=[], label="traffic"
            )
        await sender.flush()
        await sender.settle()
        wedge(sender.producer, TopicPartition(topic, 0))
        for n in range(10):
            await sender.append(
                topic, n % 2, key=b"k", value=b"b%d" % n, timestamp_ms=n, headers=[], label="t"
            )
        await sender.flush()
        await sender.settle()
    finally:
        await sender.close()
        await producer.stop()
    assert (stats.renewals, stats.total_errors) == (1, 0)
    assert sender.producer is not producer
    values = [m.value for m in await read_all(namespace.settings, topic, expect=21, timeout_s=5)]
    assert sorted(values) == sorted(
        [b"a%d" % n for n in range(10)] + [b"b%d" % n for n in range(10)]
    )


async def test_the_worker_replaces_a_wedged_producer_and_loses_nothing(
    namespace: Namespace,
) -> None:
    settings = namespace.settings
    topic = settings.topic(STATE_TOPIC)
    aggregator = Aggregator(settings, rules=[])
    aggregator.producer = aggregator._new_producer()
    await aggregator.producer.start()
    try:
        await aggregator._produce([Batch(changelog=[(0, b"e1", b"v1"), (1, b"e2", b"v2")])])
        first = aggregator.producer
        wedge(first, TopicPartition(topic, 0))
        await aggregator._produce([Batch(changelog=[(0, b"e1", b"v3"), (1, b"e2", b"v4")])])
        assert aggregator.producer is not first
    finally:
        await aggregator.producer.stop()
    records = await read_all(settings, topic, expect=5, timeout_s=5)
    assert sorted(m.value for m in records) == [b"v1", b"v2", b"v3", b"v4"]


async def test_the_api_answers_503_once_and_publishes_through_a_new_producer(
    namespace: Namespace,
) -> None:
    settings = namespace.settings
    topic = raw_topic(settings, "traffic")
    publisher = Publisher(settings)
    await publisher.start()

    def record(value: bytes) -> OutRecord:
        return OutRecord(topic=topic, key=b"k", value=value, timestamp_ms=0)

    try:
        await publisher.send([record(b"one")])
        assert publisher._producer is not None
        partition = (await read_all(settings, topic, expect=1))[0].partition
        wedge(publisher._producer, TopicPartition(topic, partition))
        try:
            await publisher.send([record(b"refused")])
        except KafkaUnavailable:
            pass
        else:
            raise AssertionError("a wedged producer's batch was reported as written")
        await publisher.send([record(b"two")])
    finally:
        await publisher.stop()
    values = [m.value for m in await read_all(settings, topic, expect=3, timeout_s=5)]
    assert sorted(values) == [b"one", b"two"]
