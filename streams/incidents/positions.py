"""Every record of the incident tier's inputs, in each partition, with none left out.

Faust's consumer (faust-streaming 0.15.3) can skip records after a rebalance: measured
here, a worker that kept a partition through a rebalance went on from offset 115 after
seeking back to its committed offset 8, and its consumer counted 9-114 as a gap to
commit past (``Consumer._add_gap``), so nobody ever processed them; in one run 25 of 70
incidents came out wrong that way. Records it processes twice are harmless here (the
tier's state is absolute), records it skips are not.

So each agent takes its records through :meth:`Positions.records`, which keeps the next
offset to process of every input partition in a Faust table (changelog
``ioc.incidents.positions-changelog``, written after the record's effects, so a crash
in between repeats the record, never loses it). A record past that position means Faust
skipped the ones before it: they are read straight from Kafka with a consumer of no
group and handed to the agent first. A record before it was processed already (a repeat
after a rebalance or a restart) and is passed over.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.types import TableT

from ioc.settings import Settings
from streams.kafka import client_options

log = logging.getLogger(__name__)

#: A record handed to an agent: its key and value.
Record = tuple[bytes | None, bytes]


class Positions:
    """The next offset to process of each partition the app's agents read, and the
    direct reads that fill what Faust skipped."""

    def __init__(self, table: TableT[bytes, Any], settings: Settings) -> None:
        self.table = table
        self.settings = settings
        self._reader: AIOKafkaConsumer | None = None
        # The agents of one worker share the reader: one partition read at a time.
        self._lock = asyncio.Lock()
        self._checked: set[bytes] = set()
        #: Records read straight from Kafka because Faust skipped them (this process).
        self.filled = 0

    async def records(self, stream: faust.StreamT[Any]) -> AsyncIterator[Record]:
        """The stream's records, each partition's in offset order from its position on:
        what Faust skipped is read and handed over first, what was processed before is
        passed over. The position moves past a record once the agent asks for the next
        one, that is once the record's effects are done."""
        async for event in stream.events():
            message = event.message
            tp = TopicPartition(message.topic, message.partition)
            name = f"{message.topic}:{message.partition}".encode()
            start = self.table.get(name)
            if start is None:
                start = await self._beginning(tp)
            if message.offset < start:
                if await self._truncated(tp, name, start):
                    start = message.offset
                else:
                    continue
            if message.offset > start:
                missed = await self._read(tp, start, message.offset)
                self.filled += len(missed)
                log.warning(
                    "the consumer skipped offsets %d-%d of %s[%d] (%d records): read them directly",
                    start,
                    message.offset - 1,
                    message.topic,
                    message.partition,
                    len(missed),
                )
                for record in missed:
                    yield record
            yield message.key, message.value
            self.table[name] = message.offset + 1

    async def stop(self) -> None:
        if self._reader is not None:
            await self._reader.stop()
            self._reader = None

    async def _consumer(self) -> AIOKafkaConsumer:
        if self._reader is None:
            reader = AIOKafkaConsumer(
                **client_options(self.settings),
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
            )
            await reader.start()
            self._reader = reader
        return self._reader

    async def _beginning(self, tp: TopicPartition) -> int:
        """Where a partition no position was kept for starts: its first record (the app
        reads its inputs from the earliest offset)."""
        async with self._lock:
            reader = await self._consumer()
            offsets = await reader.beginning_offsets([tp])
        return int(offsets[tp])

    async def _truncated(self, tp: TopicPartition, name: bytes, start: int) -> bool:
        """Whether a kept position lies past the partition's end (the topic was made
        again): then it no longer says anything. Asked once per partition and process."""
        if name in self._checked:
            return False
        self._checked.add(name)
        async with self._lock:
            reader = await self._consumer()
            end = int((await reader.end_offsets([tp]))[tp])
        if start > end:
            log.warning(
                "position %d of %s[%d] is past its end %d: the topic was made again, "
                "starting from what the consumer gives",
                start,
                tp.topic,
                tp.partition,
                end,
            )
            return True
        return False

    async def _read(self, tp: TopicPartition, start: int, end: int) -> list[Record]:
        """The records of ``tp`` from offset ``start`` up to ``end`` (excluded), read from
        Kafka directly (records retention has deleted are gone: the read starts at the
        first one left)."""
        out: list[Record] = []
        async with self._lock:
            reader = await self._consumer()
            reader.assign([tp])
            reader.seek(tp, start)
            while await reader.position(tp) < end:
                batch = await reader.getmany(tp, timeout_ms=1000)
                for record in batch.get(tp, []):
                    if record.offset < end:
                        out.append((record.key, record.value))
            reader.unsubscribe()
        return out
