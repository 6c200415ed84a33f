"""Producing simulated events into Kafka, paced by a simulated clock or as fast as possible."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer

from ioc.settings import Settings
from simulators.traffic import SimEvent
from streams.kafka import client_options


@dataclass
class ProduceStats:
    """What a run produced."""

    produced: int = 0
    errors: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.produced / elapsed if elapsed > 0 else 0.0


def make_producer(settings: Settings) -> AIOKafkaProducer:
    """A producer tuned for throughput: batches by size or after a few milliseconds."""
    return AIOKafkaProducer(
        acks="all",
        linger_ms=5,
        max_batch_size=256 * 1024,
        **client_options(settings),
    )


async def produce(
    producer: AIOKafkaProducer,
    topic: str,
    events: Iterable[SimEvent],
    *,
    speed: float | None = None,
    stats: ProduceStats | None = None,
) -> ProduceStats:
    """Send events keyed by entity with their event time as the Kafka timestamp.

    With ``speed`` (1 = real time, 60 = a simulated hour per minute) the sending follows
    the events' time; with ``None`` it is as fast as Kafka takes them.
    """
    stats = stats or ProduceStats()
    first_ms: int | None = None
    wall_start = time.monotonic()
    pending: list[asyncio.Future[object]] = []
    for event in events:
        if speed is not None:
            first_ms = event.time_ms if first_ms is None else first_ms
            due = wall_start + (event.time_ms - first_ms) / 1000 / speed
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        pending.append(
            await producer.send(topic, event.value, key=event.key, timestamp_ms=event.time_ms)
        )
        if len(pending) >= 10_000:
            stats.errors += await _settle(pending)
            pending.clear()
        stats.produced += 1
    stats.errors += await _settle(pending)
    return stats


async def _settle(pending: list[asyncio.Future[object]]) -> int:
    results = await asyncio.gather(*pending, return_exceptions=True)
    return sum(1 for r in results if isinstance(r, BaseException))
