"""Producing simulated batches into Kafka, paced by the simulated clock or as fast as possible.

Batches go through ``streams.sender.BatchSender``; the partition of each entity is
computed once with Kafka's default murmur2 partitioner (so the result is the same as any
client keying by entity id).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Iterator

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

from simulators.clock import SimClock
from simulators.events import Batch
from streams.marks import mark_headers
from streams.sender import MARKS_LABEL, BatchSender, ProduceStats

log = logging.getLogger(__name__)

#: Wall time between the parts of one simulated second that a paced run sends.
SLICE_S = 0.1


class SimulatedSender(BatchSender):
    """A sender of the simulator's batches: each entity's records on its key's partition."""

    def __init__(
        self,
        producer: AIOKafkaProducer,
        topics: dict[str, str],
        stats: ProduceStats,
    ):
        super().__init__(producer, topics, stats)
        self.partition_of: dict[bytes, int] = {}

    def _partition(self, key: bytes, count: int) -> int:
        partition: int = (murmur2(key) & 0x7FFFFFFF) % count
        self.partition_of[key] = partition
        return partition

    async def add(self, batch: Batch) -> None:
        """Append a batch's records (or its clock marks); full record batches are sent on
        the way."""
        topic = self.topics[batch.domain]
        count = self.partitions[topic]
        if batch.mark:
            for number in range(count):
                await self.append(
                    topic,
                    number,
                    key=None,
                    value=b"",
                    timestamp_ms=batch.due_ms,
                    headers=list(mark_headers(batch.due_ms)),
                    label=MARKS_LABEL,
                )
            return
        cache, open_ = self.partition_of, self.open
        for key, value, time_ms in zip(batch.keys, batch.values, batch.times, strict=True):
            partition = cache.get(key)
            if partition is None:
                partition = self._partition(key, count)
            slot = (topic, partition)
            entry = open_.get(slot)
            if entry is None:
                entry = open_[slot] = (self.producer.create_batch(), batch.domain, [])
            if entry[0].append(timestamp=time_ms, key=key, value=value) is None:
                await self._send(slot)
                entry = open_[slot] = (self.producer.create_batch(), batch.domain, [])
                entry[0].append(timestamp=time_ms, key=key, value=value)
            entry[2].append((key, value, time_ms, None))
        self.stats.produced[batch.domain] += len(batch)


def slices_per_second(speed: float | None) -> int:
    """In how many parts a paced run sends each simulated second: one per ``SLICE_S`` of
    wall time, at most 10 (one unpaced, or when a second lasts less than that)."""
    if speed is None:
        return 1
    return max(1, min(10, int(1 / (speed * SLICE_S))))


def spread(batches: Iterable[Batch], slices: int) -> Iterator[Batch]:
    """Cut each simulated second's batches into ``slices`` parts due evenly over it.

    A city's sensors do not all report at the top of the second: sent as one burst, a
    second's events would reach the stream worker as one batch of thousands, and every
    event behind them waits for its fold. Event times stay as generated; only the
    moment of sending spreads. Within a domain the order is kept.
    """
    group: list[Batch] = []
    for batch in batches:
        if group and batch.due_ms != group[0].due_ms:
            yield from _sliced(group, slices)
            group = []
        group.append(batch)
    yield from _sliced(group, slices)


def _sliced(group: list[Batch], slices: int) -> Iterator[Batch]:
    if slices == 1:
        yield from group
        return
    for part in range(slices):
        for batch in group:
            if batch.mark:
                if part == slices - 1:
                    yield batch  # after the second's events
                continue
            # Rounded up: a second of few records sends them at its start.
            first = -(-len(batch) * part // slices)
            end = -(-len(batch) * (part + 1) // slices)
            if first < end:
                yield Batch(
                    batch.domain,
                    batch.due_ms + 1000 * part // slices,
                    batch.keys[first:end],
                    batch.values[first:end],
                    batch.times[first:end],
                )


async def produce(
    producer: AIOKafkaProducer,
    topics: dict[str, str],
    batches: Iterable[Batch],
    *,
    clock: SimClock,
    stats: ProduceStats | None = None,
) -> ProduceStats:
    """Send batches to their domain's topic, keyed by entity, timestamped with event time.

    With a paced clock each second's records are sent in parts spread over that second
    (:func:`spread`), each part when it is due, and what was appended is flushed before
    waiting; unpaced, record batches go out as they fill.
    """
    stats = stats or ProduceStats()
    sender = SimulatedSender(producer, topics, stats)
    await sender.start()
    clock.restart()
    stats.started = time.monotonic()
    since_yield = 0
    try:
        for batch in spread(batches, slices_per_second(clock.speed)):
            stats.sim_ms = batch.due_ms
            delay = clock.due_in(batch.due_ms)
            if delay > 0:
                await sender.flush()
                await asyncio.sleep(delay)
                since_yield = 0
            await sender.add(batch)
            since_yield += len(batch)
            if since_yield > 20_000:  # let the progress line and the sender run
                await asyncio.sleep(0)
                since_yield = 0
        await sender.flush()
        await sender.settle()
    finally:
        await sender.close()
    return stats
