"""Every record of the incident tier's inputs, in each partition, with none left out.

Faust's consumer (faust-streaming 0.15.3) can skip records after a rebalance: measured
here, a worker that kept a partition through a rebalance sought back to its committed
offset 8 and was next handed offset 115; its consumer counted 9-114 as a gap
(``Consumer._add_gap``, meant for compacted topics and transaction markers) and committed
past it, so nobody ever processed them (in one run 25 of 70 incidents came out wrong);
single records were skipped too. Records processed twice are harmless here (the tier's
state is absolute), records skipped are not.

So each agent takes its records through :meth:`Positions.records`. At every assignment
the group's committed offsets are read from Kafka (:meth:`Positions.assigned`, on Faust's
``on_partitions_assigned`` signal, while Faust recovers the tables): Faust commits an
offset only after flushing its producer, so everything before it has its effects in
Kafka, and it is where the partition's records start. From there the next offset of
every partition is kept in memory; a record past it means Faust skipped the ones before
it: they are read straight from Kafka with a consumer of no group and handed to the agent
first (and logged). A record before it, handed over again within the same assignment,
was processed already in this process and is passed over. A record never waits for the
starts: one Faust hands over before they are read (a fetch from before its seek) goes on
as given and the partition is followed from it. (An agent made to wait there stopped
receiving records from Faust for good, in the kill -9 test.)

A skip is seen at the record after it, so a skip at a partition's end (the last records
before a pause in its input) would wait for the next input. Faust's consumer drops them
that way too: records fetched before a rebalance and given up while its flow was
suspended still move its read offset on, and their refetch is dropped below it. So
:meth:`Positions.resume` is called on a timer: a partition of the assignment that holds
records past the next offset to hand over, and has handed over none for a few calls
(``QUIET_CHECKS_IDLE``, or ``QUIET_CHECKS_BUSY`` while its agent is busy with the
topic's other partitions), is sought back to that offset in Faust's consumer, which
hands them over again (logged).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition

from ioc.settings import Settings
from streams.kafka import client_options, committed_offsets

log = logging.getLogger(__name__)

#: Times a partition is sought back to the same offset before it is left alone.
SEEKS_PER_OFFSET = 3
#: Checks (Positions.resume) a partition behind its end may hand over nothing before it
#: is sought back: while its topic's agent is idle, and while the agent is busy with the
#: topic's other partitions (the partition's records may be queued behind theirs: Faust
#: buffers up to 4,096 records per agent, 20-25 s of a backlog here).
QUIET_CHECKS_IDLE = 2
QUIET_CHECKS_BUSY = 6

#: A record handed to an agent: its key and value.
Record = tuple[bytes | None, bytes | None]


class Positions:
    """Where each assigned input partition starts (its committed offset) and the next
    offset to hand over, and the direct reads that fill what Faust skipped."""

    def __init__(self, settings: Settings, group_id: str, topics: Iterable[str]) -> None:
        self.settings, self.group_id = settings, group_id
        #: The topics the agents read (an assignment also holds the tables' changelogs).
        self.topics = frozenset(topics)
        self._reader: AIOKafkaConsumer | None = None
        # The agents of one worker share the reader: one partition read at a time.
        self._lock = asyncio.Lock()
        #: The assignment the starts are of (Faust's consumer generation), and the starts.
        self._generation: int | None = None
        self._starts: dict[TopicPartition, int] = {}
        self._ready = asyncio.Event()
        #: Next offset to hand over, per partition, with the generation it is of.
        self._next: dict[TopicPartition, tuple[int, int]] = {}
        #: Partitions followed from a record handed over before their start was read:
        #: that record's offset and generation, checked against the start once read.
        self._unchecked: dict[TopicPartition, tuple[int, int]] = {}
        #: Records read straight from Kafka because Faust skipped them (this process).
        self.filled = 0
        #: Partitions behind their end at the last :meth:`resume`, with the offset then.
        self._behind: dict[TopicPartition, tuple[int, int]] = {}
        #: Records handed over per topic, and the counts at the last check.
        self._handed: dict[str, int] = {}
        self._handed_then: dict[str, int] = {}
        #: Partitions sought back in this assignment: the offset, and how many times.
        self._sought: dict[TopicPartition, tuple[int, int]] = {}
        #: Times a partition was sought back because its records stopped (this process).
        self.resumed = 0

    async def assigned(self, partitions: Iterable[TopicPartition], generation: int) -> None:
        """A new assignment: read where each partition starts (the group's committed
        offset, or the partition's first record when the group committed none)."""
        self._ready.clear()
        tps = [
            TopicPartition(tp.topic, tp.partition) for tp in partitions if tp.topic in self.topics
        ]
        starts: dict[TopicPartition, int] = {}
        if tps:
            committed = await committed_offsets(self.settings, self.group_id, tps)
            starts = {
                tp: m.offset for tp, m in committed.items() if m is not None and m.offset >= 0
            }
            missing = [tp for tp in tps if tp not in starts]
            if missing:
                async with self._lock:
                    reader = await self._consumer()
                    first = await reader.beginning_offsets(missing)
                starts.update({tp: int(first[tp]) for tp in missing})
        self._starts, self._generation = starts, generation
        self._behind.clear()
        self._sought.clear()
        self._ready.set()

    async def records(self, stream: faust.StreamT[Any]) -> AsyncIterator[Record]:
        """The stream's records, each partition's in offset order from where it starts:
        what Faust skipped is read and handed over first, what was handed over already in
        this assignment is passed over."""
        async for event in stream.events():
            message = event.message
            tp = TopicPartition(message.topic, message.partition)
            generation = message.generation_id
            if not self._starts_of(generation):
                continue  # a record of an older assignment: Faust hands it to no one
            ready = self._ready.is_set() and generation == self._generation
            kept = self._next.get(tp)
            if kept is not None and kept[1] == generation:
                expected: int | None = kept[0]
                first = self._unchecked.get(tp)
                if ready and first is not None and first[1] == generation:
                    # Followed since a record handed over before the starts were read:
                    # whatever lies between the start and that record was skipped.
                    del self._unchecked[tp]
                    start = self._starts.get(tp)
                    if start is not None and start < first[0]:
                        for record in await self._fill(tp, start, first[0]):
                            yield record
            elif ready:
                expected = self._starts.get(tp)
            else:
                expected = None
                self._unchecked[tp] = (message.offset, generation)
            if expected is not None and message.offset < expected:
                continue
            if expected is not None and message.offset > expected:
                for record in await self._fill(tp, expected, message.offset):
                    yield record
            yield message.key, message.value
            self._handed[tp.topic] = self._handed.get(tp.topic, 0) + 1
            self._next[tp] = (message.offset + 1, generation)

    async def resume(self, seek: Callable[[TopicPartition, int], Awaitable[None]]) -> int:
        """Seek back (with ``seek``, Faust's consumer's) every partition of the assignment
        that holds records past the next offset to hand over and has handed over none for
        ``QUIET_CHECKS_IDLE`` calls (``QUIET_CHECKS_BUSY`` while records of the topic's
        other partitions are handed over); and a partition followed from a record handed
        over before the starts were read, with records between its start and that record,
        to its start (that record comes again: at least once). Returns how many were
        sought back."""
        generation = self._generation
        if not self._ready.is_set() or not self._starts or generation is None:
            return 0
        async with self._lock:
            reader = await self._consumer()
            ends = await reader.end_offsets(list(self._starts))
        if generation != self._generation or not self._ready.is_set():
            return 0  # a new assignment came meanwhile
        targets: dict[TopicPartition, int] = {}
        for tp, start in self._starts.items():
            first = self._unchecked.pop(tp, None)
            if first is not None and first[1] == generation and start < first[0]:
                targets[tp] = start
                continue
            kept = self._next.get(tp)
            expected = kept[0] if kept is not None and kept[1] == generation else start
            sought, times = self._sought.get(tp, (None, 0))
            if ends[tp] <= expected or (sought == expected and times >= SEEKS_PER_OFFSET):
                # At its end; or sought back there already and still nothing: what lies
                # there is nothing Faust hands over (transaction markers, say).
                self._behind.pop(tp, None)
            else:
                seen, checks = self._behind.get(tp, (None, 0))
                checks = checks + 1 if seen == expected else 1
                busy = self._handed.get(tp.topic, 0) != self._handed_then.get(tp.topic, 0)
                if checks >= (QUIET_CHECKS_BUSY if busy else QUIET_CHECKS_IDLE):
                    targets[tp] = expected
                else:
                    self._behind[tp] = (expected, checks)  # behind: it has time to move
        for tp, offset in targets.items():
            log.warning(
                "no record of %s[%d] handed over from offset %d, which ends at %d: "
                "seeking the consumer back to it",
                tp.topic,
                tp.partition,
                offset,
                ends[tp],
            )
            self._next[tp] = (offset, generation)
            self._behind.pop(tp, None)
            sought, times = self._sought.get(tp, (None, 0))
            self._sought[tp] = (offset, times + 1 if sought == offset else 1)
            await seek(tp, offset)
        self._handed_then = dict(self._handed)
        self.resumed += len(targets)
        return len(targets)

    async def _fill(self, tp: TopicPartition, start: int, end: int) -> list[Record]:
        """What Faust skipped, from ``start`` up to ``end``, read from Kafka (logged)."""
        missed = await self._read(tp, start, end)
        self.filled += len(missed)
        log.warning(
            "the consumer skipped offsets %d-%d of %s[%d] (%d records): read them directly",
            start,
            end - 1,
            tp.topic,
            tp.partition,
            len(missed),
        )
        return missed

    def _starts_of(self, generation: int | None) -> bool:
        """False for a record of an older assignment than the starts read; True
        otherwise (a record of an assignment whose starts are not read yet goes on as
        Faust gives it)."""
        if self._generation is not None and generation is not None:
            return generation >= self._generation
        return True

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
