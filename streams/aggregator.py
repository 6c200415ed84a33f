"""The aggregator: raw topics -> entity state, in batches of thousands of records.

One consumer group (``ioc-<namespace>-aggregate``) reads every domain's raw topic with
aiokafka's ``getmany``. Each batch is folded by :class:`streams.state.EntityStore`, its
changelog records, alert transitions and dead letters are produced, and only when Kafka
has acknowledged all of them are the batch's source offsets committed (at most every
``commit_interval_s``). A crash therefore repeats at most the uncommitted records, which
the entity records' offsets (``o``) recognise as duplicates.

Partitions are owned as (domain, partition number). When the group hands this worker a
partition, its entities are read back from the compacted changelog ``ioc.state``
(co-partitioned with the raw topics) before any of its records is applied. Its watermark
travels with the committed offset, as the commit's metadata: the records after that
offset are folded again from the watermark they were first folded from. Rebalance
callbacks and batches take turns on one lock, so a partition is never given away in the
middle of a batch, and a batch never runs on state that is still being recovered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from mode import Service

from contract.catalog import DOMAINS
from ioc.settings import Settings
from streams.alerts import AnyRuleModel, RuleEngine
from streams.counters import (
    CONSUMED,
    CONTROL,
    DEADLETTERED,
    DUPLICATES,
    OWNED,
    PROCESSED,
    REGISTERED,
)
from streams.deadletter import deadletter_headers
from streams.entity_record import decode_record
from streams.kafka import client_options, committed_offsets, producer_options, wedged
from streams.marks import mark_headers
from streams.registry import read_entities
from streams.state import Batch, EntityStore, Owned
from streams.topics import ALERTS_TOPIC, DEADLETTER_TOPIC, STATE_TOPIC, raw_topic

log = logging.getLogger(__name__)

#: One record to produce: topic, value, key, partition (None: by key), headers.
Send = tuple[str, bytes, bytes | None, int | None, list[tuple[str, bytes]] | None]


def watermark_metadata(watermark_ms: int | None, observed_ms: int | None = None) -> str:
    """The commit metadata that carries a partition's watermark at that offset, and since
    when it has been observed without a gap (``EntityStore.observed``)."""
    if watermark_ms is None:
        return ""
    carried = {"watermark": watermark_ms}
    if observed_ms is not None:
        carried["observed"] = observed_ms
    return orjson.dumps(carried).decode()


def watermark_of(metadata: str) -> int | None:
    """The watermark a commit carries (None: no event folded before that offset)."""
    return _carried(metadata, "watermark")


def observed_of(metadata: str) -> int | None:
    """Since when the partition had been observed, as the commit carries it."""
    return _carried(metadata, "observed")


def _carried(metadata: str, name: str) -> int | None:
    if not metadata:
        return None
    value = orjson.loads(metadata).get(name)
    return int(value) if value is not None else None


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, aggregator: Aggregator) -> None:
        self.aggregator = aggregator

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # Waits for the batch in flight, then commits what is produced before we let go.
        # Until the new assignment nothing more is folded: a batch folded now would be
        # committed later, perhaps over the offsets of a partition's next owner.
        async with self.aggregator.lock:
            await self.aggregator.commit()
            self.aggregator.revoked = True

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.aggregator.take(assigned)


class Aggregator(Service):
    """Folds the namespace's raw topics into entity state on ``ioc.state``."""

    def __init__(self, settings: Settings, *, rules: Sequence[AnyRuleModel], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.domains = {raw_topic(settings, d): d for d in DOMAINS}
        self.state_topic = settings.topic(STATE_TOPIC)
        self.alerts_topic = settings.topic(ALERTS_TOPIC)
        self.deadletter_topic = settings.topic(DEADLETTER_TOPIC)
        self.store = EntityStore(
            rules=RuleEngine(rules),
            lateness_ms=settings.streams.allowed_lateness_s * 1000,
            max_ahead_ms=int(settings.streams.max_ahead_s * 1000),
        )
        self.group_id = f"ioc-{settings.namespace}-aggregate"
        self.owned: set[Owned] = set()
        self.lock = asyncio.Lock()
        # Offsets (and watermarks) of batches Kafka has acknowledged, not yet committed.
        self.uncommitted: dict[TopicPartition, tuple[int, str]] = {}
        self.committed_at = time.monotonic()
        # Between a revoke and the next assignment: nothing is folded or swept.
        self.revoked = False
        self.ready = False
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self._retiring: asyncio.Task[None] | None = None
        self.registry_since: datetime | None = None

    async def on_start(self) -> None:
        # The registry first, so that the first batches are judged with it (a database
        # that is down delays nothing: the refresh task tries again).
        await self._read_registry()
        options = client_options(self.settings)
        self.producer = self._new_producer()
        await self.producer.start()
        self.consumer = AIOKafkaConsumer(
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
            # A worker killed with -9 holds its partitions until its session times out.
            session_timeout_ms=10_000,
            heartbeat_interval_ms=2_000,
            **options,
        )
        self.consumer.subscribe(sorted(self.domains), listener=_Rebalance(self))
        await self.consumer.start()

    def _new_producer(self) -> AIOKafkaProducer:
        # Idempotent with acks=all (streams.kafka.producer_options): a leader change
        # neither loses nor repeats a changelog record or an alert transition.
        return AIOKafkaProducer(
            linger_ms=5, max_batch_size=1024 * 1024, **producer_options(self.settings)
        )

    async def _renew_producer(self) -> None:
        """Replace a wedged producer (``streams.kafka.wedged``) with a new one."""
        old, self.producer = self.producer, self._new_producer()
        if old is not None:
            # In the background: stopping waits for whatever the old one still holds.
            self._retiring = asyncio.create_task(old.stop())
        delay = 0.2
        while True:
            try:
                await self.producer.start()
                return
            except KafkaError as exc:
                log.warning("starting a new producer failed (%s); retrying", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def on_stop(self) -> None:
        if self.consumer is not None:
            async with self.lock:
                await self.commit()
            await self.consumer.stop()
        if self.producer is not None:
            await self.producer.stop()

    @Service.task
    async def _run(self) -> None:
        assert self.consumer is not None
        streams = self.settings.streams
        swept = time.monotonic()
        while not self.should_stop:
            if time.monotonic() - swept >= streams.sweep_interval_s and not self.revoked:
                swept = time.monotonic()
                async with self.lock:
                    batch = self.store.sweep(limit=streams.sweep_max_records)
                    if batch.changelog:
                        await self._produce([batch])
            async with self.lock:
                fetched = await self.consumer.getmany(
                    timeout_ms=int(streams.max_wait_s * 1000), max_records=streams.max_events
                )
                if self.revoked:
                    self._unread(fetched)
                    fetched = {}
                # Records of a partition given away meanwhile are left to its new owner;
                # those of a partition assigned while getmany waited, before take() made
                # it ours, are read again once it is.
                self._unread(
                    {
                        tp: messages
                        for tp, messages in fetched.items()
                        if (self.domains[tp.topic], tp.partition) not in self.owned
                    }
                )
                fetched = {
                    tp: messages
                    for tp, messages in fetched.items()
                    if (self.domains[tp.topic], tp.partition) in self.owned
                }
                if fetched:
                    await self._process(fetched)
                if time.monotonic() - self.committed_at >= streams.commit_interval_s:
                    await self.commit()

    def _unread(self, fetched: dict[TopicPartition, list[Any]]) -> None:
        """Put the consumer back before records it handed over that will not be folded,
        for each partition it is still assigned: getmany moved its position past them,
        and dropped they would be lost until the next rebalance or restart (seen as a
        takeover that stopped 11,000 events short)."""
        assert self.consumer is not None
        assigned = self.consumer.assignment()
        for tp, messages in fetched.items():
            if messages and tp in assigned:
                self.consumer.seek(tp, messages[0].offset)

    async def _read_registry(self) -> None:
        """Take in the registry's rows changed since the last read (all, the first time)."""
        try:
            entries, self.registry_since = await read_entities(
                self.settings, since=self.registry_since
            )
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("reading the entity registry failed (%s); trying again", exc)
            return
        async with self.lock:
            self.store.register(entries)
        REGISTERED.set(len(self.store.registry))

    @Service.task
    async def _registry(self) -> None:
        """Keep the registry in step with the database (``streams.registry``)."""
        while not self.should_stop:
            await self.sleep(self.settings.streams.registry_refresh_s)
            await self._read_registry()

    @Service.task
    async def _clock(self) -> None:
        """Mark each owned raw partition that has been quiet for ``clock_interval_s`` with
        the present time (``streams.marks``), in the namespaces that take marks."""
        if not self.settings.clock_marks:
            return
        interval = self.settings.streams.clock_interval_s
        while not self.should_stop:
            await self.sleep(interval)
            if self.producer is None or self.revoked:
                continue
            now_ms = int(time.time() * 1000)
            quiet_since = now_ms - int(interval * 1000)
            try:
                for domain, partition in sorted(self.owned):
                    watermark = self.store.watermarks.get((domain, partition))
                    if watermark is not None and watermark >= quiet_since:
                        continue  # its own records keep it moving
                    await self.producer.send(
                        raw_topic(self.settings, domain),
                        b"",
                        partition=partition,
                        timestamp_ms=now_ms,
                        headers=mark_headers(now_ms),
                    )
            except KafkaError as exc:
                log.warning("writing clock marks failed (%s); trying again", exc)

    async def _process(self, fetched: dict[TopicPartition, list[Any]]) -> None:
        assert self.consumer is not None
        batches: list[Batch] = []
        for tp, messages in fetched.items():
            domain = self.domains[tp.topic]
            # The topic's partition count, from the metadata the consumer fetches with.
            partitions = len(self.consumer.partitions_for_topic(tp.topic) or ()) or None
            batches.append(
                self.store.apply(
                    messages, domain=domain, partition=tp.partition, partitions=partitions
                )
            )
        await self._produce(batches)
        # Counted once Kafka has everything the batch asked for, dead letters included
        # (_produce counts those): a scrape never sees records consumed but not yet
        # accounted for.
        for (tp, messages), batch in zip(fetched.items(), batches, strict=True):
            domain = self.domains[tp.topic]
            CONSUMED.labels(domain).inc(len(messages))
            PROCESSED.labels(domain).inc(batch.outcomes["applied"])
            DUPLICATES.labels(domain).inc(batch.outcomes["duplicate"])
            for kind in ("mark", "action"):
                if batch.outcomes[kind]:
                    CONTROL.labels(kind).inc(batch.outcomes[kind])
        watermarks, observed = self.store.watermarks, self.store.observed
        for tp, messages in fetched.items():
            owned = (self.domains[tp.topic], tp.partition)
            metadata = watermark_metadata(watermarks.get(owned), observed.get(owned))
            self.uncommitted[tp] = (messages[-1].offset + 1, metadata)

    async def commit(self) -> None:
        """Commit the offsets of every batch produced so far, with their watermarks.

        Called under the lock: every commit_interval_s, before partitions are given away,
        and when the worker stops. A worker killed in between repeats at most that
        interval's records, which the entity records' offsets turn into duplicates.
        """
        assert self.consumer is not None
        self.committed_at = time.monotonic()
        if not self.uncommitted:
            return
        offsets, self.uncommitted = self.uncommitted, {}
        try:
            await self.consumer.commit(offsets)
        except CommitFailedError:
            # The group moved on while we produced; the new owner repeats these records,
            # which the entity records' offsets turn into duplicates.
            log.warning("commit failed after a rebalance; the records will be seen again")
        except KafkaError as exc:
            # The group coordinator was lost (its broker down, the offsets partition's
            # leader moving) or the offsets topic has fewer in-sync replicas than it needs:
            # still ours, so the next commit carries these offsets, unless newer ones
            # of the same partitions came meanwhile.
            log.warning("commit failed (%r); trying again with the next commit", exc)
            self.uncommitted = {**offsets, **self.uncommitted}

    async def _produce(self, batches: list[Batch]) -> None:
        """Send everything the batches ask for and wait until Kafka has all of it.

        Until then nothing is committed, so a failure here is retried rather than raised.
        The idempotent producer retries by itself across leader changes and waits while
        Kafka cannot take writes; what it gives up on is sent again, and only that, by a
        new producer when the old one is wedged (``streams.kafka.wedged``). The records are
        absolute values, so one written twice changes nothing.
        """
        pending = [send for batch in batches for send in self._sends(batch)]
        delay = 0.2
        while pending:
            failures = await self._send_all(pending)
            pending = [send for send, exc in zip(pending, failures, strict=True) if exc]
            errors = [exc for exc in failures if exc is not None]
            if not errors:
                break
            wedge = next((exc for exc in errors if wedged(exc)), None)
            if wedge is not None:
                log.warning(
                    "the producer is wedged (%r); a new one sends the %d records not acknowledged",
                    wedge,
                    len(pending),
                )
                await self._renew_producer()
                continue
            log.warning(
                "%d records not acknowledged (%r); retrying in %.1f s",
                len(pending),
                errors[0],
                delay,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        reasons = Counter(r.reason for batch in batches for _, r in batch.deadletters)
        for reason, count in reasons.items():
            DEADLETTERED.labels(reason).inc(count)

    async def _send_all(self, sends: list[Send]) -> list[BaseException | None]:
        """Hand ``sends`` to the producer and wait for each; the error of each that failed."""
        assert self.producer is not None
        producer = self.producer
        futures: list[asyncio.Future[Any]] = []
        refused: list[BaseException] = []
        try:
            for topic, value, key, partition, headers in sends:
                futures.append(
                    await producer.send(topic, value, key=key, partition=partition, headers=headers)
                )
        except KafkaError as exc:
            # Those handed over still finish; the rest were never sent.
            refused = [exc] * (len(sends) - len(futures))
        results = await asyncio.gather(*futures, return_exceptions=True)
        return [r if isinstance(r, BaseException) else None for r in results] + refused

    def _sends(self, batch: Batch) -> list[Send]:
        """The records a batch asks for: its changelog, alerts and dead letters."""
        sends: list[Send] = [
            (self.state_topic, value, key, partition, None)
            for partition, key, value in batch.changelog
        ]
        sends += [
            (self.alerts_topic, value, key, partition, None)
            for partition, key, value in batch.alerts
        ]
        sends += [
            (
                self.deadletter_topic,
                message.value if message.value is not None else b"",
                message.key,
                None,
                deadletter_headers(message=message, rejection=rejection),
            )
            for message, rejection in batch.deadletters
        ]
        return sends

    async def take(self, assigned: set[TopicPartition]) -> None:
        """Own exactly ``assigned``: forget what went elsewhere, recover what is new."""
        wanted = {(self.domains[tp.topic], tp.partition) for tp in assigned}
        async with self.lock:
            self.store.drop(self.owned - wanted)
            new = wanted - self.owned
            delay = 0.2
            while new:
                try:
                    await self._recover(new)
                    await self._resume_watermarks(new)
                    break
                except KafkaError as exc:
                    # Owning a partition without its state would fold its records onto
                    # nothing; the group waits for us meanwhile.
                    log.warning("recovering %d partitions failed (%s); retrying", len(new), exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
            self.owned = wanted
            self.revoked = False
            for domain in self.domains.values():
                OWNED.labels(domain).set(sum(1 for d, _ in wanted if d == domain))
            log.info("owning %d raw partitions (%d recovered)", len(wanted), len(new))
        if not self.ready:
            # Tests and operators wait for this line: the worker is consuming.
            self.ready = True
            log.warning("Worker ready: consuming %s", ", ".join(sorted(self.domains)))

    async def _resume_watermarks(self, new: set[Owned]) -> None:
        """Set the watermarks of newly owned partitions from their commits' metadata."""
        tps = [TopicPartition(raw_topic(self.settings, d), p) for d, p in new]
        committed = await committed_offsets(self.settings, self.group_id, tps)
        for tp in tps:
            commit = committed.get(tp)
            watermark = observed = None
            if commit is not None and commit.offset >= 0:
                watermark = watermark_of(commit.metadata)
                observed = observed_of(commit.metadata)
            self.store.resume((self.domains[tp.topic], tp.partition), watermark, observed)

    async def _recover(self, new: set[Owned]) -> None:
        """Read the entities of newly owned partitions back from ``ioc.state``."""
        partitions = sorted({p for _, p in new})
        tps = [TopicPartition(self.state_topic, p) for p in partitions]
        reader = AIOKafkaConsumer(
            enable_auto_commit=False,
            max_partition_fetch_bytes=8 * 1024 * 1024,
            **client_options(self.settings),
        )
        await reader.start()
        try:
            reader.assign(tps)
            await reader.seek_to_beginning(*tps)
            end = await reader.end_offsets(tps)
            left = {tp for tp in tps if end[tp] > 0}
            restored = 0
            while left:
                fetched = await reader.getmany(*left, timeout_ms=1000, max_records=10_000)
                for messages in fetched.values():
                    for message in messages:
                        record = decode_record(message.value) if message.value else None
                        if record is None or (record.domain, record.partition) in new:
                            self.store.restore(message.key, record)
                            restored += 1
                for tp in list(left):
                    if await reader.position(tp) >= end[tp]:
                        left.discard(tp)
            log.info("recovered %d entity records from %s", restored, self.state_topic)
        finally:
            await reader.stop()
