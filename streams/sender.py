"""Sending records into Kafka in per-partition batches, for every bulk producer of the
project (the simulator, replays): idempotent producers that wait while Kafka cannot take
writes, and recover from a wedged one.

Records go straight into aiokafka's per-partition record batches (``create_batch`` and
``send_batch``) rather than through ``send`` one by one: no per-record future is created
or awaited. Callers choose the partition (``BatchSender.append``); the simulator computes
it with Kafka's default murmur2 partitioner (``simulators.producer``), replays keep the
recorded one.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaTimeoutError

from ioc.settings import Settings
from streams.kafka import producer_options, wedged

log = logging.getLogger(__name__)

MAX_PENDING_BATCHES = 512
#: How long Kafka may leave a batch unacknowledged before the sender reports the pause
#: (and again every as long while it lasts).
STALL_REPORT_S = 10.0
#: A wait on Kafka at least this long counts in ``ProduceStats.stalled_s``.
HELD_S = 1.0
#: What the stats count clock marks under (they are not events).
MARKS_LABEL = "marks"


@dataclass
class ProduceStats:
    """What a run produced so far, per domain, and where the simulated clock is."""

    produced: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)
    sim_ms: int = 0
    #: Seconds the sender was held by Kafka (a wait of a second or more at a stretch, for
    #: room in a partition's queue or an acknowledgement; logged past STALL_REPORT_S), and
    #: how many times a wedged producer was replaced.
    stalled_s: float = 0.0
    renewals: int = 0

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
    """A producer tuned for throughput: large batches, a short linger; idempotent, every
    in-sync replica acking (``streams.kafka.producer_options``)."""
    options: dict[str, Any] = {
        "linger_ms": 20,
        "max_batch_size": 1024 * 1024,
        "max_request_size": 4 * 1024 * 1024,
        **producer_options(settings),
    }
    options.update(overrides)
    producer = AIOKafkaProducer(**options)
    _REMAKE[producer] = lambda: make_producer(settings, **overrides)
    return producer


#: How to make a fresh producer like one ``make_producer`` made: a sender replaces a
#: wedged producer with it.
_REMAKE: weakref.WeakKeyDictionary[AIOKafkaProducer, Callable[[], AIOKafkaProducer]] = (
    weakref.WeakKeyDictionary()
)


#: A record as appended: key, value, timestamp, headers. Kept until Kafka acknowledges
#: its batch, so a wedged producer's batches can be sent again by a new one.
Row = tuple[bytes | None, bytes | None, int, list[tuple[str, bytes | None]] | None]


class BatchSender:
    """Fills per-partition record batches and sends them when full or on ``flush``.

    While Kafka cannot take writes (brokers down, fewer in-sync replicas than
    ``min.insync.replicas``) the idempotent producer holds the batches and the sender
    waits for them, reporting the pause, rather than dropping anything. A producer wedged
    on OutOfOrderSequenceNumber (``streams.kafka.wedged``) is replaced by ``renew()`` (by
    default a fresh one like it, for producers from ``make_producer``) and the batches it
    failed are sent again; ``close`` stops the replacements.
    """

    def __init__(
        self,
        producer: AIOKafkaProducer,
        topics: dict[str, str],
        stats: ProduceStats,
        *,
        renew: Callable[[], AIOKafkaProducer] | None = None,
    ):
        self.producer = producer
        self.topics = topics
        self.stats = stats
        self.renew = renew or _REMAKE.get(producer)
        #: Producers replaced after wedging; stopped by ``close`` (stopping one earlier
        #: would wait on its batches still in flight).
        self.retired: list[AIOKafkaProducer] = []
        self.partitions: dict[str, int] = {}
        self.open: dict[tuple[str, int], tuple[Any, str, list[Row]]] = {}
        self.pending: list[
            tuple[asyncio.Future[Any], str, list[Row], tuple[str, int], AIOKafkaProducer]
        ] = []

    async def start(self) -> None:
        """Learn each topic's partition count."""
        for topic in self.topics.values():
            self.partitions[topic] = len(await self.producer.partitions_for(topic))

    async def close(self) -> None:
        """Stop the producers this sender replaced and made (the caller stops the one it
        gave)."""
        if not self.retired:
            return
        for producer in [*self.retired[1:], self.producer]:
            await producer.stop()

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
            entry = self.open[slot] = (self.producer.create_batch(), label, [])
        if entry[0].append(timestamp=timestamp_ms, key=key, value=value, headers=headers) is None:
            await self._send(slot)
            entry = self.open[slot] = (self.producer.create_batch(), label, [])
            entry[0].append(timestamp=timestamp_ms, key=key, value=value, headers=headers)
        entry[2].append((key, value, timestamp_ms, headers))
        self.stats.produced[label] += 1

    async def _send(self, slot: tuple[str, int]) -> None:
        builder, label, rows = self.open.pop(slot)
        if not rows:
            return
        await self._hand_over(builder, label, rows, slot)
        if len(self.pending) >= MAX_PENDING_BATCHES:
            await self.settle(keep=MAX_PENDING_BATCHES // 2)

    async def _hand_over(
        self, builder: Any, label: str, rows: list[Row], slot: tuple[str, int]
    ) -> None:
        """Give a built batch to the producer, waiting (and reporting) while its queue for
        the partition stays full because Kafka takes nothing."""
        began = time.monotonic()
        while True:
            try:
                future = await self.producer.send_batch(builder, slot[0], partition=slot[1])
                break
            except KafkaTimeoutError:
                self._report_stall(began, slot)
        self._held(began)
        self.pending.append((future, label, rows, slot, self.producer))

    def _report_stall(self, began: float, slot: tuple[str, int]) -> None:
        waited = time.monotonic() - began
        log.warning(
            "Kafka has taken nothing for %.0f s (%s-%d): brokers down or fewer in-sync "
            "replicas than required; sending paused, nothing dropped",
            waited,
            *slot,
        )

    async def flush(self) -> None:
        """Send every partly filled record batch now, and count the acknowledged ones."""
        for slot in list(self.open):
            await self._send(slot)
        while self.pending and self.pending[0][0].done():
            await self.settle(keep=len(self.pending) - 1)

    async def settle(self, *, keep: int = 0) -> None:
        """Wait for acknowledgements until at most ``keep`` batches are in flight."""
        while len(self.pending) > keep:
            future, label, rows, slot, producer = self.pending.pop(0)
            began = time.monotonic()
            try:
                while True:
                    try:
                        await asyncio.wait_for(asyncio.shield(future), STALL_REPORT_S)
                        break
                    except TimeoutError:
                        self._report_stall(began, slot)
            except Exception as exc:
                if self.renew is not None and wedged(exc):
                    await self._resend(rows, label, slot, failed_on=producer, exc=exc)
                else:
                    self.stats.errors[label] += len(rows)
            finally:
                self._held(began)

    def _held(self, began: float) -> None:
        waited = time.monotonic() - began
        if waited >= HELD_S:
            self.stats.stalled_s += waited

    async def _resend(
        self,
        rows: list[Row],
        label: str,
        slot: tuple[str, int],
        *,
        failed_on: AIOKafkaProducer,
        exc: BaseException,
    ) -> None:
        """Send a wedged producer's failed batch again, through a new producer (made once
        per wedged one)."""
        assert self.renew is not None
        if failed_on is self.producer:
            log.warning("the producer is wedged (%r); a new one sends again what failed", exc)
            self.retired.append(self.producer)
            self.producer = self.renew()
            await self.producer.start()
            self.stats.renewals += 1
        builder = self.producer.create_batch()
        for key, value, timestamp_ms, headers in rows:
            builder.append(timestamp=timestamp_ms, key=key, value=value, headers=headers)
        await self._hand_over(builder, label, rows, slot)
