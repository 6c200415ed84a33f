"""Replaying a recording into a namespace's topics, paced by the recorded timestamps.

Each record goes to the partition it was recorded from, keyed as recorded, with its
recorded timestamp (or the shifted one), through the simulators' batch producer.

Order and pacing: records go out in recorded order, which keeps every partition's order
(the recorder writes each partition's records in offset order). A record is due when the
newest timestamp seen so far, scaled by the speed, is due: the recorder writes in arrival
order, so a record older than one before it (a late event) goes out at once rather than
holding the rest back.

Starting mid-recording: the last record of every (topic, key) before the start point is
sent first, unpaced, in recorded order. Keys are entity ids, so the sandbox worker starts
with each entity's latest state (its last payload) instead of missing it. Only raw
events are needed because the worker derives everything else from them; minute
aggregates before the start point hold that one event, not the recorded minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
import time
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from ioc.settings import Settings
from recordings.controller import ReplayController, ReplayState, Seek
from recordings.frame import KafkaRecord
from recordings.options import ReplayOptions
from recordings.reader import RecordingError, TopicInfo
from recordings.recording import Recording, Report
from recordings.timeshift import shift_headers, shift_value
from streams.kafka import client_options
from streams.marks import is_control
from streams.sender import BatchSender, ProduceStats, make_producer

log = logging.getLogger(__name__)


class ReplayError(Exception):
    """A replay that cannot start or go on, with the reason."""


@dataclass
class Target:
    """Where one recorded topic's records go."""

    topic: str
    partitions: int


class Replayer:
    """Replays one recording into ``target`` (the settings of the target namespace)."""

    def __init__(
        self,
        recording: Recording,
        target: Settings,
        options: ReplayOptions,
        controller: ReplayController | None = None,
        *,
        timings: list[tuple[float, float]] | None = None,
        report: Report | None = None,
    ) -> None:
        if target.namespace != options.namespace:
            raise ReplayError("target settings and options name different namespaces")
        self.recording = recording
        self.target = target
        self.options = options
        self.controller = controller or ReplayController()
        self.stats = ProduceStats()
        self.targets: dict[str, Target | None] = {}
        #: (due, sent) monotonic times of paced records, when asked (benchmarks).
        self.timings = timings
        self.sender: BatchSender | None = None
        self.report = report
        self.sending = (0.0, 0.0)

    async def run(self) -> None:
        """Replay until the end (every pass when looping), a stop, or an error."""
        progress = self.controller.progress
        try:
            report = self.report
            if report is None:
                report = await asyncio.to_thread(self.recording.scan)
            damage = report.damage
            if damage is not None and not self.options.partial:
                raise RecordingError(
                    f"{damage.describe()}; {sum(report.records.values())} records before it "
                    "can be replayed with partial"
                )
            progress.total = sum(report.records.values())
            await self._prepare(report.topics)
            producer = make_producer(self.target)
            await producer.start()
            try:
                self.sender = BatchSender(producer, {}, self.stats)
                progress.state = (
                    ReplayState.PAUSED if self.controller.paused else ReplayState.RUNNING
                )
                #: perf_counter at the first pass and once Kafka acknowledged the last
                #: record: the sending rate without the scan and the topic checks.
                self.sending = (time.perf_counter(), 0.0)
                await self._passes()
                await self.sender.flush()
                await self.sender.settle()
                self.sending = (self.sending[0], time.perf_counter())
            finally:
                if self.sender is not None:
                    await self.sender.close()  # producers made in place of a wedged one
                await producer.stop()
            progress.errors = self.stats.total_errors
            if progress.errors:
                raise ReplayError(f"Kafka refused {progress.errors} records")
            progress.state = (
                ReplayState.STOPPED if self.controller.stopping else ReplayState.FINISHED
            )
        except (RecordingError, ReplayError) as exc:
            progress.state, progress.error = ReplayState.FAILED, str(exc)
            raise
        except Exception as exc:
            progress.state, progress.error = ReplayState.FAILED, f"{type(exc).__name__}: {exc}"
            raise
        finally:
            progress.finished_at = time.time()

    async def _prepare(self, topics: dict[str, TopicInfo]) -> None:
        """Map recorded topics to target topics; create missing ones with the recorded
        partition count; refuse a target whose count differs."""
        from streams.admin import ensure_topics

        wanted: dict[str, Target] = {}
        for topic, info in topics.items():
            if not self.options.wants(info.base_topic):
                self.targets[topic] = None
                continue
            if info.partitions < 1:
                raise ReplayError(f"{topic}: the recording does not say its partition count")
            name = self.target.topic(self.options.target_base(info.base_topic))
            self.targets[topic] = wanted[topic] = Target(name, info.partitions)
        if not wanted:
            raise ReplayError(
                "no recorded topic passes the topic filter "
                f"{list(self.options.topics)}; recorded: "
                + ", ".join(sorted(i.base_topic for i in topics.values()))
            )
        await ensure_topics(self.target)
        admin = AIOKafkaAdminClient(**client_options(self.target))
        await admin.start()
        try:
            existing = await self._partition_counts(admin, wanted)
            missing = [t for t in wanted.values() if t.topic not in existing]
            if missing:
                # Another replay may create them between our look and our request.
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics([NewTopic(t.topic, t.partitions, 1) for t in missing])
                existing = await self._partition_counts(admin, wanted)
            for source, target in wanted.items():
                have = existing.get(target.topic)
                if have != target.partitions:
                    raise ReplayError(
                        f"{target.topic} has {have} partitions, {source} was recorded from "
                        f"{target.partitions}: records keep their partition, so the counts "
                        "must match"
                    )
        finally:
            await admin.close()

    @staticmethod
    async def _partition_counts(
        admin: AIOKafkaAdminClient, wanted: dict[str, Target]
    ) -> dict[str, int]:
        names = sorted({t.topic for t in wanted.values()})
        counts: dict[str, int] = {}
        for entry in await admin.describe_topics(names):
            if entry.get("error_code", 0) == 0 and entry.get("partitions"):
                counts[entry["topic"]] = len(entry["partitions"])
        return counts

    async def _passes(self) -> None:
        start = Seek(index=self.options.start_index, time_ms=self.options.start_ms)
        controller = self.controller
        while True:
            sought = await self._pass(start)
            if controller.stopping:
                return
            if sought is not None:
                start = sought
                continue
            controller.progress.passes += 1
            if not self.options.loop:
                return
            start = Seek(index=self.options.start_index, time_ms=self.options.start_ms)

    async def _pass(self, start: Seek) -> Seek | None:
        """One pass from ``start`` to the end point; the seek that interrupted it, if any."""
        options, controller, progress = self.options, self.controller, self.controller.progress
        assert self.sender is not None
        targets = self.targets
        start_index = start.index or 0
        start_ms, end_index, end_ms = start.time_ms, options.end_index, options.end_ms
        primed: dict[tuple[str, bytes | None], tuple[int, KafkaRecord]] = {}
        pace = -1
        index = -1
        started = False
        delta = 0
        anchor_wall = anchor_pace = 0.0
        speed = options.speed
        for chunk in self.recording.chunks(partial=options.partial):
            await asyncio.sleep(0)  # let the API, the progress bar and Kafka's I/O run
            for record in chunk:
                index += 1
                target = targets.get(record.topic)
                if target is None:
                    continue
                ts = record.timestamp_ms
                if ts > pace:
                    pace = ts
                if not started:
                    if index < start_index or (start_ms is not None and pace < start_ms):
                        # Control records (clock marks, operators' actions) are no
                        # entity's state: priming sends each entity's last event only.
                        if options.prime and not is_control(record.value, record.headers):
                            primed[(record.topic, record.key)] = (index, record)
                        continue
                    started = True
                    delta = int(time.time() * 1000) - pace if options.shift_to_now else 0
                    await self._prime(primed, delta)
                    primed.clear()
                    anchor_wall, anchor_pace = time.monotonic(), pace
                if (end_index is not None and index >= end_index) or (
                    end_ms is not None and pace > end_ms
                ):
                    return None
                due = 0.0
                if speed is not None:
                    due = anchor_wall + (pace - anchor_pace) / 1000 / speed
                    wait = due - time.monotonic()
                    if wait > 0.0005:
                        await self.sender.flush()
                        await controller.sleep(wait)
                if controller.paused or controller.interrupted:
                    await self.sender.flush()
                    if not await controller.gate():
                        return controller.take_seek()
                    if controller.resumed:
                        # Paused or stepped: this record is due now, the rest keep their gaps.
                        anchor_wall, anchor_pace = time.monotonic(), pace
                        due = anchor_wall
                if self.timings is not None and speed is not None:
                    self.timings.append((due, time.monotonic()))
                await self._send(record, target, delta)
                progress.sent += 1
                progress.position = index
                progress.event_time_ms = ts
                if controller.paused:
                    await self.sender.flush()
        if not started and primed:
            # The start point is past the end: nothing to replay but the state before it.
            await self._prime(primed, 0)
        return None

    async def _prime(
        self, primed: dict[tuple[str, bytes | None], tuple[int, KafkaRecord]], delta: int
    ) -> None:
        for _, record in sorted(primed.values(), key=lambda item: item[0]):
            target = self.targets[record.topic]
            assert target is not None
            await self._send(record, target, delta)
            self.controller.progress.primed += 1

    async def _send(self, record: KafkaRecord, target: Target, delta: int) -> None:
        assert self.sender is not None
        value, headers = record.value, record.headers
        if delta:
            value, headers = shift_value(value, delta), shift_headers(headers, delta)
        await self.sender.append(
            target.topic,
            record.partition,
            key=record.key,
            value=value,
            timestamp_ms=record.timestamp_ms + delta,
            # aiokafka's record builder takes a list, nothing else.
            headers=list(headers) if headers else [],
            label=target.topic,
        )


def matching(names: list[str], patterns: list[str]) -> list[str]:
    """Names matching any glob (every name when there is no pattern)."""
    return [n for n in names if not patterns or any(fnmatch.fnmatchcase(n, p) for p in patterns)]
