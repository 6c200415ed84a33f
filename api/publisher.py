"""Producing integrators' events to the raw topics: the API's one Kafka producer.

The producer belongs to the app's lifespan. It is started at start-up when Kafka
answers, and otherwise on the first publish, so the API serves reads while Kafka is
down and publishing answers 503 until it is back.

The producer is idempotent with ``acks=all`` (``streams.kafka.producer_options``): a
record acknowledged is on ``min.insync.replicas`` brokers, and the producer's retries
across a leader change write it once. When Kafka cannot take writes within the timeout
(brokers down, fewer in-sync replicas than required) the request answers 503: those
events were not accepted, though the producer may still write them once Kafka is back;
the integrator's retry of the same (source, id) is then counted once by the worker.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from ioc.settings import Settings
from streams.kafka import producer_options, wedged

log = logging.getLogger(__name__)


class KafkaUnavailable(Exception):
    """Kafka did not take the records in time."""


@dataclass(frozen=True, slots=True)
class OutRecord:
    """One record for a raw topic: key = entity id, timestamp = event time."""

    topic: str
    key: bytes
    value: bytes
    timestamp_ms: int
    headers: tuple[tuple[str, bytes], ...] = ()


class RecentIds:
    """The last ``size`` event ids (with their sources) that Kafka acknowledged."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._ids: OrderedDict[tuple[str, str], None] = OrderedDict()

    def __contains__(self, event: tuple[str, str]) -> bool:
        return event in self._ids

    def add(self, events: Iterable[tuple[str, str]]) -> None:
        if self.size == 0:
            return
        for event in events:
            self._ids[event] = None
            self._ids.move_to_end(event)
        while len(self._ids) > self.size:
            self._ids.popitem(last=False)


class Publisher:
    """Sends records with acks from all in-sync replicas, within a time bound."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.timeout_s = settings.api.publish_timeout_s
        self.recent = RecentIds(settings.api.publish_dedup_ids)
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()
        # Wedged producers being stopped in the background (a reference keeps the task).
        self._retiring: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Connect now if Kafka answers; otherwise the first publish tries again."""
        try:
            await self._ensure_producer()
        except KafkaUnavailable as exc:
            log.warning("Kafka not reachable at start-up (%s); will retry on publish", exc)

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
        for task in list(self._retiring):
            task.cancel()

    def _retire(self, producer: AIOKafkaProducer) -> None:
        """Drop a wedged producer (``streams.kafka.wedged``): the next publish starts a new
        one. It is stopped in the background, since stopping waits for its batches."""
        if self._producer is producer:
            self._producer = None
        task = asyncio.create_task(producer.stop())
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _ensure_producer(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is not None:
                return self._producer
            timeout_ms = int(self.timeout_s * 1000)
            producer = AIOKafkaProducer(
                linger_ms=2, request_timeout_ms=timeout_ms, **producer_options(self.settings)
            )
            try:
                async with asyncio.timeout(self.timeout_s):
                    await producer.start()
            except (KafkaError, TimeoutError, OSError) as exc:
                await producer.stop()
                raise KafkaUnavailable(f"{type(exc).__name__}: {exc}") from None
            self._producer = producer
            return producer

    async def send(self, records: list[OutRecord]) -> None:
        """Send ``records`` and wait until Kafka has them all; raise KafkaUnavailable
        when it does not answer within the timeout (some may have been written)."""
        producer = await self._ensure_producer()
        try:
            async with asyncio.timeout(self.timeout_s):
                futures = [
                    await producer.send(
                        r.topic,
                        r.value,
                        key=r.key,
                        timestamp_ms=r.timestamp_ms,
                        headers=list(r.headers) or None,
                    )
                    for r in records
                ]
                results = await asyncio.gather(*futures, return_exceptions=True)
        except (KafkaError, TimeoutError) as exc:
            raise KafkaUnavailable(f"{type(exc).__name__}: {exc}") from None
        failed = [r for r in results if isinstance(r, BaseException)]
        if any(wedged(exc) for exc in failed):
            log.warning("the Kafka producer is wedged (%r); starting a new one", failed[0])
            self._retire(producer)
        if failed:
            raise KafkaUnavailable(f"{len(failed)} of {len(records)} not written: {failed[0]!r}")
