"""Recording live topics: every record of the chosen topics, from now (or the beginning)
until stopped, a duration, or a number of records, into a recording directory.

The recorder assigns itself every partition of the chosen topics (no consumer group, so
it commits nothing and never disturbs the worker's group) and writes what each fetch
returns merged across partitions by time, each partition in offset order. That keeps the
file close to time order, which is what a paced replay follows.
"""

from __future__ import annotations

import asyncio
import fnmatch
import heapq
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from ioc.settings import LIVE_NAMESPACE, NAMESPACE_PATTERN, Settings
from recordings.frame import KafkaRecord
from recordings.writer import RecordingWriter
from streams.kafka import client_options

DEFAULT_TOPICS = ("ioc.*.events",)


class RecorderError(Exception):
    """A recording that cannot start, with the reason."""


@dataclass
class RecorderStats:
    """What was recorded so far."""

    records: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)
    ready: bool = False
    parts: int = 0

    @property
    def total(self) -> int:
        """Records written."""
        return sum(self.records.values())


def base_name(topic: str, namespace: str) -> str | None:
    """The topic's name inside ``namespace`` (None when it belongs to another one)."""
    if topic.startswith("__"):
        return None
    if namespace != LIVE_NAMESPACE:
        prefix = f"{namespace}."
        return topic[len(prefix) :] if topic.startswith(prefix) else None
    first, _, rest = topic.partition(".")
    # In live, "<ns>.ioc...." belongs to the namespace <ns>.
    if rest.startswith("ioc.") and NAMESPACE_PATTERN.fullmatch(first):
        return None
    return topic


def select_topics(names: list[str], namespace: str, patterns: list[str]) -> dict[str, str]:
    """Full topic name -> base name of the namespace's topics matching any pattern."""
    out = {}
    for name in sorted(names):
        base = base_name(name, namespace)
        if base is not None and any(fnmatch.fnmatchcase(base, p) for p in patterns):
            out[name] = base
    return out


def _by_time(messages: list[Any], source: int) -> Iterator[tuple[int, int, int, Any]]:
    # Keyed by the newest timestamp so far: non-decreasing, so a partition keeps its order.
    newest = -1
    for n, message in enumerate(messages):
        newest = max(newest, message.timestamp)
        yield newest, source, n, message


class Recorder:
    """Records the topics of one namespace matching ``patterns`` into ``directory``."""

    def __init__(
        self,
        settings: Settings,
        directory: Path,
        *,
        patterns: list[str],
        name: str,
        from_beginning: bool = False,
    ) -> None:
        self.settings = settings
        self.directory = directory
        self.patterns = patterns or list(DEFAULT_TOPICS)
        self.name = name
        self.from_beginning = from_beginning
        self.stats = RecorderStats()
        self.topics: dict[str, str] = {}

    async def _resolve(self) -> dict[str, int]:
        admin = AIOKafkaAdminClient(**client_options(self.settings))
        await admin.start()
        try:
            self.topics = select_topics(
                await admin.list_topics(), self.settings.namespace, self.patterns
            )
            if not self.topics:
                raise RecorderError(
                    f"no topic of namespace {self.settings.namespace!r} matches "
                    + ", ".join(self.patterns)
                )
            described = await admin.describe_topics(sorted(self.topics))
            return {d["topic"]: len(d["partitions"]) for d in described}
        finally:
            await admin.close()

    async def run(
        self,
        stop: asyncio.Event,
        *,
        duration_s: float | None = None,
        max_records: int | None = None,
    ) -> RecorderStats:
        """Record until ``stop`` is set, ``duration_s`` passed or ``max_records`` written."""
        partitions = await self._resolve()
        recordings = self.settings.recordings
        metadata = {
            "name": self.name,
            "namespace": self.settings.namespace,
            "topics": ",".join(self.patterns),
            "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        consumer = AIOKafkaConsumer(
            enable_auto_commit=False,
            group_id=None,
            max_partition_fetch_bytes=4 * 1024 * 1024,
            **client_options(self.settings),
        )
        await consumer.start()
        writer = RecordingWriter(
            self.directory,
            chunk_bytes=recordings.chunk_bytes,
            split_bytes=recordings.split_bytes,
            split_s=recordings.split_s,
            metadata=metadata,
        )
        try:
            tps = [TopicPartition(t, p) for t, n in partitions.items() for p in range(n)]
            for topic, base in self.topics.items():
                writer.add_topic(
                    topic,
                    {
                        "namespace": self.settings.namespace,
                        "base_topic": base,
                        "partitions": str(partitions[topic]),
                    },
                )
            consumer.assign(tps)
            if self.from_beginning:
                await consumer.seek_to_beginning(*tps)
            else:
                await consumer.seek_to_end(*tps)
            for tp in tps:  # resolve the positions now: records from here on are ours
                await consumer.position(tp)
            self.stats.ready = True
            self.stats.started = time.monotonic()
            deadline = None if duration_s is None else time.monotonic() + duration_s
            while not stop.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                fetched = await consumer.getmany(timeout_ms=200, max_records=20_000)
                if fetched:
                    await asyncio.to_thread(self._write, writer, fetched, max_records)
                self.stats.parts = len(writer.parts)
                if max_records is not None and self.stats.total >= max_records:
                    break
        finally:
            await consumer.stop()
            await asyncio.to_thread(writer.close)
            self.stats.parts = len(writer.parts)
        return self.stats

    def _write(
        self, writer: RecordingWriter, fetched: dict[TopicPartition, list[Any]], limit: int | None
    ) -> None:
        now_ns = time.time_ns()
        merged = heapq.merge(
            *(_by_time(messages, i) for i, messages in enumerate(fetched.values()))
        )
        records = self.stats.records
        for _, _, _, m in merged:
            if limit is not None and self.stats.total >= limit:
                return
            writer.write(
                KafkaRecord(
                    m.topic,
                    m.partition,
                    m.offset,
                    m.timestamp,
                    m.key,
                    m.value,
                    tuple(m.headers),
                    m.timestamp_type,
                ),
                publish_time_ns=now_ns,
            )
            records[m.topic] += 1
