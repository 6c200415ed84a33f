"""Producing simulated batches into Kafka, paced by the simulated clock or as fast as possible.

Records go straight into aiokafka's per-partition record batches (``create_batch`` and
``send_batch``) rather than through ``send`` one by one: the partition of each entity is
computed once with Kafka's default murmur2 partitioner (so the result is the same as any
client keying by entity id), and no per-record future is created or awaited.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

from ioc.settings import Settings
from simulators.clock import SimClock
from simulators.events import Batch
from streams.kafka import client_options
from streams.marks import mark_headers

MAX_PENDING_BATCHES = 512
#: Wall time between the parts of one simulated second that a paced run sends.
SLICE_S = 0.1
#: What the stats count clock marks under (they are not events).
MARKS_LABEL = "marks"


@dataclass
class ProduceStats:
    """What a run produced so far, per domain, and where the simulated clock is."""

    produced: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)
    sim_ms: int = 0

    @property
    def total(self) -> int:
        """Events handed to Kafka (clock marks apart)."""
        return sum(n for label, n in self.produced.items() if label != MARKS_LABEL)

    @property
    def total_errors(self) -> int:
        """Records Kafka did not acknowledge."""
        return sum(self.errors.values())

    @property
    def rate(self) -> float:
        """Average records per second since the start."""
        elapsed = time.monotonic() - self.started
        return self.total / elapsed if elapsed > 0 else 0.0

    @property
    def sim_time(self) -> datetime:
        """The event time reached."""
        return datetime.fromtimestamp(self.sim_ms / 1000, UTC)


def make_producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    """A producer tuned for throughput: large batches, a short linger, every replica acking."""
    options: dict[str, Any] = {
        "acks": "all",
        "linger_ms": 20,
        "max_batch_size": 1024 * 1024,
        "max_request_size": 4 * 1024 * 1024,
        **client_options(settings),
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


class BatchSender:
    """Fills per-partition record batches and sends them when full or on ``flush``."""

    def __init__(self, producer: AIOKafkaProducer, topics: dict[str, str], stats: ProduceStats):
        self.producer = producer
        self.topics = topics
        self.stats = stats
        self.partitions: dict[str, int] = {}
        self.partition_of: dict[bytes, int] = {}
        self.open: dict[tuple[str, int], tuple[Any, str, int]] = {}
        self.pending: list[tuple[asyncio.Future[Any], str, int]] = []

    async def start(self) -> None:
        """Learn each topic's partition count."""
        for topic in self.topics.values():
            self.partitions[topic] = len(await self.producer.partitions_for(topic))

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
                entry = open_[slot] = (self.producer.create_batch(), batch.domain, 0)
            builder = entry[0]
            if builder.append(timestamp=time_ms, key=key, value=value) is None:
                await self._send(slot)
                builder = self.producer.create_batch()
                builder.append(timestamp=time_ms, key=key, value=value)
                open_[slot] = (builder, batch.domain, 1)
            else:
                open_[slot] = (builder, entry[1], entry[2] + 1)
        self.stats.produced[batch.domain] += len(batch)

    async def append(
        self,
        topic: str,
        partition: int,
        *,
        key: bytes | None,
        value: bytes | None,
        timestamp_ms: int,
        headers: list[tuple[str, bytes | None]],
        label: str,
    ) -> None:
        """Append one record to a given partition (replays keep the recorded one); a full
        record batch is sent on the way. ``label`` is what ``stats`` counts it under."""
        slot = (topic, partition)
        entry = self.open.get(slot)
        if entry is None:
            entry = self.open[slot] = (self.producer.create_batch(), label, 0)
        builder = entry[0]
        if builder.append(timestamp=timestamp_ms, key=key, value=value, headers=headers) is None:
            await self._send(slot)
            builder = self.producer.create_batch()
            builder.append(timestamp=timestamp_ms, key=key, value=value, headers=headers)
            self.open[slot] = (builder, label, 1)
        else:
            self.open[slot] = (builder, entry[1], entry[2] + 1)
        self.stats.produced[label] += 1

    async def _send(self, slot: tuple[str, int]) -> None:
        builder, domain, records = self.open.pop(slot)
        if records == 0:
            return
        future = await self.producer.send_batch(builder, slot[0], partition=slot[1])
        self.pending.append((future, domain, records))
        if len(self.pending) >= MAX_PENDING_BATCHES:
            await self.settle(keep=MAX_PENDING_BATCHES // 2)

    async def flush(self) -> None:
        """Send every partly filled record batch now, and count the acknowledged ones."""
        for slot in list(self.open):
            await self._send(slot)
        while self.pending and self.pending[0][0].done():
            await self.settle(keep=len(self.pending) - 1)

    async def settle(self, *, keep: int = 0) -> None:
        """Wait for acknowledgements until at most ``keep`` batches are in flight."""
        while len(self.pending) > keep:
            future, domain, records = self.pending.pop(0)
            try:
                await future
            except Exception:
                self.stats.errors[domain] += records


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
    sender = BatchSender(producer, topics, stats)
    await sender.start()
    clock.restart()
    stats.started = time.monotonic()
    since_yield = 0
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
    return stats
