"""The incident tier's input positions (``streams.incidents.positions``) on a real broker.

Faust's consumer can skip records after a rebalance (see the module): the agents take
their records through :meth:`Positions.records`, which starts each partition of an
assignment at the group's committed offset, reads what was skipped straight from Kafka
and passes over what was handed over already. A consumer cannot be made to skip on
demand, so here a stand-in stream hands over chosen offsets of a real partition, the way
the skipping consumer did (a jump, repeats after a rebalance); the tier's rebalance and
kill -9 test (test_incident_tier.py) runs the real thing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.incidents.positions import (
    QUIET_CHECKS_BUSY,
    SEEKS_PER_OFFSET,
    Positions,
)
from streams.kafka import client_options
from streams.topics import ALERTS_TOPIC
from tests.utils.namespaces import Namespace

pytestmark = pytest.mark.timeout(120)


@dataclass(frozen=True)
class _Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    generation_id: int


@dataclass(frozen=True)
class _Event:
    message: _Message


class _Stream:
    """Hands over the given offsets of one partition, in the given order, as records of
    consumer generation ``generation``."""

    def __init__(
        self, topic: str, offsets: Sequence[int], generation: int = 1, partition: int = 0
    ) -> None:
        self.topic, self.offsets, self.generation = topic, offsets, generation
        self.partition = partition

    async def events(self) -> AsyncIterator[_Event]:
        for offset in self.offsets:
            value = f"record {offset}".encode()
            key = f"k{offset}".encode()
            yield _Event(_Message(self.topic, self.partition, offset, key, value, self.generation))


async def _partition_of(namespace: Namespace, count: int, partition: int = 0) -> str:
    """A topic of the namespace whose partition ``partition`` holds ``count`` records,
    the n-th valued ``record n``."""
    topic = namespace.settings.topic(ALERTS_TOPIC)
    producer = AIOKafkaProducer(acks="all", **client_options(namespace.settings))
    await producer.start()
    try:
        for n in range(count):
            await producer.send_and_wait(
                topic, f"record {n}".encode(), key=f"k{n}".encode(), partition=partition
            )
    finally:
        await producer.stop()
    return topic


async def _commit(namespace: Namespace, group: str, topic: str, offset: int) -> None:
    """Commit ``offset`` of partition 0 for ``group``, as Faust does for its group."""
    consumer = AIOKafkaConsumer(
        group_id=group, enable_auto_commit=False, **client_options(namespace.settings)
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.commit({tp: offset})
    finally:
        await consumer.stop()


async def _handed(positions: Positions, stream: _Stream) -> list[str]:
    """What Positions hands an agent from ``stream``."""
    handed = []
    async for _key, value in positions.records(stream):  # type: ignore[arg-type]
        assert value is not None
        handed.append(value.decode())
    return handed


def _records(numbers: Iterable[int]) -> list[str]:
    return [f"record {n}" for n in numbers]


async def test_skipped_records_are_read_from_kafka_and_repeats_passed_over(
    namespace: Namespace,
) -> None:
    """A group that committed nothing starts at the partition's first record."""
    topic = await _partition_of(namespace, 20)
    positions = Positions(namespace.settings, f"{topic}-group", [topic])
    try:
        await positions.assigned([TopicPartition(topic, 0)], 1)
        # A jump (3-8 never handed over), a rebalance-like repeat (4, 5), jumps at the end,
        # and a first record past the start (0 never handed over).
        stream = _Stream(topic, [1, 2, 9, 10, 4, 5, 15, 19])
        assert await _handed(positions, stream) == _records(range(20))
        assert positions.filled == 1 + 6 + 4 + 3
    finally:
        await positions.stop()


async def test_an_assignment_starts_at_the_groups_committed_offset(namespace: Namespace) -> None:
    """After a rebalance Faust seeks to the committed offset (12) and may hand over 15
    first, or records before 12 again: the agent gets 12 on, each once. A later
    assignment starts again at what the group committed then (records are repeated:
    at least once, never skipped)."""
    topic = await _partition_of(namespace, 20)
    group = f"{topic}-group"
    await _commit(namespace, group, topic, 12)
    positions = Positions(namespace.settings, group, [topic])
    try:
        await positions.assigned([TopicPartition(topic, 0)], 3)
        assert await _handed(positions, _Stream(topic, [15, 16, 8, 9, 17, 18, 19], 3)) == (
            _records(range(12, 20))
        )
        # A record of an older assignment still in flight is passed over.
        assert await _handed(positions, _Stream(topic, [19], 2)) == []
        await _commit(namespace, group, topic, 16)
        await positions.assigned([TopicPartition(topic, 0)], 4)
        assert await _handed(positions, _Stream(topic, [18, 19], 4)) == _records(range(16, 20))
    finally:
        await positions.stop()


async def test_topics_the_agents_do_not_read_get_no_start(namespace: Namespace) -> None:
    """An assignment also holds the tables' changelogs: only the agents' inputs are read
    for starts; a partition with no start is handed over as Faust gives it."""
    topic = await _partition_of(namespace, 5)
    positions = Positions(namespace.settings, f"{topic}-group", ["some-other-topic"])
    try:
        await positions.assigned([TopicPartition(topic, 0)], 1)
        assert await _handed(positions, _Stream(topic, [3, 4])) == _records(range(3, 5))
    finally:
        await positions.stop()


async def test_records_handed_over_before_the_starts_are_checked_once_they_are(
    namespace: Namespace,
) -> None:
    """Faust may hand records over while the starts of the assignment are still being
    read (an agent never waits for them: one made to wait stopped receiving records). The
    partition is followed from the first record, and once the starts are read, what lay
    between the committed offset and that record is read and handed over."""
    topic = await _partition_of(namespace, 20)
    group = f"{topic}-group"
    await _commit(namespace, group, topic, 12)
    positions = Positions(namespace.settings, group, [topic])
    try:
        assert await _handed(positions, _Stream(topic, [15, 16], 5)) == _records(range(15, 17))
        await positions.assigned([TopicPartition(topic, 0)], 5)
        assert await _handed(positions, _Stream(topic, [17], 5)) == _records([12, 13, 14, 17])
        assert positions.filled == 3
    finally:
        await positions.stop()


class _Seeks:
    """Stands in for Faust's consumer's ``seek``: records where partitions were sought."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int]] = []

    async def __call__(self, tp: TopicPartition, offset: int) -> None:
        self.calls.append((tp.topic, tp.partition, offset))


async def test_a_partition_whose_last_records_stopped_is_sought_back(
    namespace: Namespace,
) -> None:
    """Faust's consumer can drop a partition's last records (fetched before a rebalance,
    given up while its flow was suspended): no later record shows the skip. A partition
    behind its end that hands over nothing between two checks is sought back to the next
    offset to hand over; one that moves on, or is at its end, is left alone."""
    topic = await _partition_of(namespace, 20)
    tp = TopicPartition(topic, 0)
    positions = Positions(namespace.settings, f"{topic}-group", [topic])
    seeks = _Seeks()
    try:
        await positions.assigned([tp], 1)
        assert await _handed(positions, _Stream(topic, range(12))) == _records(range(12))
        # Behind (12 of 20) at the first check: it has until the next one.
        assert await positions.resume(seeks) == 0
        # It moves on meanwhile: still nothing to do.
        assert await _handed(positions, _Stream(topic, [12, 13, 14])) == _records([12, 13, 14])
        assert await positions.resume(seeks) == 0
        assert seeks.calls == []
        # 15-19 never come: sought back to 15, and handed over when the consumer refetches.
        assert await positions.resume(seeks) == 1
        assert seeks.calls == [(topic, 0, 15)]
        assert await _handed(positions, _Stream(topic, range(15, 20))) == _records(range(15, 20))
        # At its end: left alone.
        assert await positions.resume(seeks) == 0
        assert await positions.resume(seeks) == 0
        assert (seeks.calls, positions.resumed) == ([(topic, 0, 15)], 1)
    finally:
        await positions.stop()


async def test_a_partition_sought_back_in_vain_is_left_alone_after_three_tries(
    namespace: Namespace,
) -> None:
    """Offsets past the last record Faust hands over that hold none it would (transaction
    markers, say) must not be sought back for ever: three tries at the same offset."""
    topic = await _partition_of(namespace, 10)
    positions = Positions(namespace.settings, f"{topic}-group", [topic])
    seeks = _Seeks()
    try:
        await positions.assigned([TopicPartition(topic, 0)], 1)
        assert await _handed(positions, _Stream(topic, range(8))) == _records(range(8))
        for _ in range(10):
            await positions.resume(seeks)
        assert seeks.calls == [(topic, 0, 8)] * SEEKS_PER_OFFSET
        # A new assignment tries again.
        await positions.assigned([TopicPartition(topic, 0)], 2)
        for _ in range(2):
            await positions.resume(seeks)
        assert seeks.calls[-1] == (topic, 0, 0)
    finally:
        await positions.stop()


async def test_records_before_the_first_one_handed_over_early_are_sought_back(
    namespace: Namespace,
) -> None:
    """A partition followed from a record handed over before the starts were read, with
    no record after it: what lies between the committed offset and that record is sought
    back at the next check (the early records come again: at least once)."""
    topic = await _partition_of(namespace, 17)
    group = f"{topic}-group"
    await _commit(namespace, group, topic, 12)
    positions = Positions(namespace.settings, group, [topic])
    seeks = _Seeks()
    try:
        assert await _handed(positions, _Stream(topic, [15, 16], 5)) == _records([15, 16])
        await positions.assigned([TopicPartition(topic, 0)], 5)
        assert await positions.resume(seeks) == 1
        assert seeks.calls == [(topic, 0, 12)]
        handed = await _handed(positions, _Stream(topic, range(12, 17), 5))
        assert handed == _records(range(12, 17))
        assert await positions.resume(seeks) == 0
    finally:
        await positions.stop()


async def test_a_partition_waiting_while_its_agent_is_busy_is_given_longer(
    namespace: Namespace,
) -> None:
    """While the agent hands over the topic's other partitions, a partition's records
    may be queued behind theirs in Faust's buffer: it is sought back only after
    QUIET_CHECKS_BUSY checks without a record (after two once the agent is idle)."""
    topic = await _partition_of(namespace, 20, partition=0)
    await _partition_of(namespace, 40, partition=1)
    quiet, busy = TopicPartition(topic, 0), TopicPartition(topic, 1)
    positions = Positions(namespace.settings, f"{topic}-group", [topic])
    seeks = _Seeks()
    try:
        await positions.assigned([quiet, busy], 1)
        assert await _handed(positions, _Stream(topic, range(10))) == _records(range(10))
        for check in range(1, QUIET_CHECKS_BUSY):
            # Partition 1 moves on between the checks; partition 0 stays at 10 of 20.
            more = range((check - 1) * 5, check * 5)
            assert await _handed(positions, _Stream(topic, more, partition=1)) == _records(more)
            assert await positions.resume(seeks) == 0, check
        assert await _handed(positions, _Stream(topic, [25], partition=1)) == _records([25])
        assert await positions.resume(seeks) == 1
        assert seeks.calls == [(topic, 0, 10)]
        # Partition 1 stops at 26 of 40 too (seen at the last check), and the agent is
        # idle now: the second check without a record seeks it back.
        assert await positions.resume(seeks) == 1
        assert seeks.calls[-1] == (topic, 1, 26)
    finally:
        await positions.stop()
