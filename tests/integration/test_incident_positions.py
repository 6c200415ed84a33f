"""The incident tier's input positions (``streams.incidents.positions``) on a real broker.

Faust's consumer can skip records after a rebalance (see the module): the agents take
their records through :meth:`Positions.records`, which reads what was skipped straight
from Kafka and passes over what was processed before. A consumer cannot be made to skip
on demand, so here a stand-in stream hands over chosen offsets of a real partition, the
way the skipping consumer did (a jump, then repeats after a rebalance), and the table is
a dict; the tier's rebalance test (test_incident_tier.py) runs the real thing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from streams.incidents.positions import Positions
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


@dataclass(frozen=True)
class _Event:
    message: _Message


class _Stream:
    """Hands over the given offsets of one partition, in the given order."""

    def __init__(self, topic: str, offsets: Sequence[int]) -> None:
        self.topic, self.offsets = topic, offsets

    async def events(self) -> AsyncIterator[_Event]:
        for offset in self.offsets:
            value = f"record {offset}".encode()
            yield _Event(_Message(self.topic, 0, offset, f"k{offset}".encode(), value))


async def _partition_of(namespace: Namespace, count: int) -> str:
    """A topic of the namespace whose partition 0 holds ``count`` records, the n-th
    valued ``record n``."""
    topic = namespace.settings.topic(ALERTS_TOPIC)
    producer = AIOKafkaProducer(acks="all", **client_options(namespace.settings))
    await producer.start()
    try:
        for n in range(count):
            await producer.send_and_wait(
                topic, f"record {n}".encode(), key=f"k{n}".encode(), partition=0
            )
    finally:
        await producer.stop()
    return topic


async def _handed(
    namespace: Namespace, table: dict[bytes, Any], topic: str, offsets: Sequence[int]
) -> tuple[list[str], list[Any]]:
    """What Positions hands an agent from a stream of ``offsets``, and the position the
    table held while each was processed."""
    positions = Positions(table, namespace.settings)  # type: ignore[arg-type]
    name = f"{topic}:0".encode()
    handed, held = [], []
    try:
        async for _key, value in positions.records(_Stream(topic, offsets)):  # type: ignore[arg-type]
            handed.append(value.decode())
            held.append(table.get(name))
    finally:
        await positions.stop()
    return handed, held


async def test_skipped_records_are_read_from_kafka_and_repeats_passed_over(
    namespace: Namespace,
) -> None:
    topic = await _partition_of(namespace, 20)
    table: dict[bytes, Any] = {}
    # A jump (3-8 never handed over), a rebalance's repeats (4, 5), jumps at the end.
    handed, held = await _handed(namespace, table, topic, [0, 1, 2, 9, 10, 4, 5, 15, 19])
    assert handed == [f"record {n}" for n in range(20)]
    assert table[f"{topic}:0".encode()] == 20
    # The position moves past a record only once the agent is done with it: while the
    # agent processed the records filled before 9, and 9 itself, it still said 3.
    assert held[:10] == [None, 1, 2, 3, 3, 3, 3, 3, 3, 3]
    assert held[10] == 10


async def test_a_new_owner_goes_on_from_the_kept_position(namespace: Namespace) -> None:
    """After a rebalance the consumer starts again at its committed offset (8 here),
    behind what the previous owner processed (12): only 12 on reach the agent."""
    topic = await _partition_of(namespace, 20)
    table: dict[bytes, Any] = {f"{topic}:0".encode(): 12}
    handed, _ = await _handed(namespace, table, topic, list(range(8, 20)))
    assert handed == [f"record {n}" for n in range(12, 20)]
    assert table[f"{topic}:0".encode()] == 20


async def test_with_no_position_the_partition_is_read_from_its_start(
    namespace: Namespace,
) -> None:
    """A consumer whose first record handed over is offset 5 skipped 0-4."""
    topic = await _partition_of(namespace, 8)
    handed, _ = await _handed(namespace, {}, topic, [5, 6, 7])
    assert handed == [f"record {n}" for n in range(8)]


async def test_a_position_past_the_end_of_a_topic_made_again_is_dropped(
    namespace: Namespace,
) -> None:
    topic = await _partition_of(namespace, 5)
    table: dict[bytes, Any] = {f"{topic}:0".encode(): 500}
    handed, _ = await _handed(namespace, table, topic, [0, 1, 2, 3, 4])
    assert handed == [f"record {n}" for n in range(5)]
    assert table[f"{topic}:0".encode()] == 5
