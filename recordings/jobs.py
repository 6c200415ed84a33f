"""Recordings and replays running inside the API process, by name and by id.

The API starts them as asyncio tasks beside the routes; each keeps its progress, and
``close`` (the API's shutdown) stops them so every recording file gets its summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ioc.settings import Settings
from recordings.controller import ReplayController
from recordings.options import ReplayOptions
from recordings.recorder import Recorder
from recordings.recording import Recording, Report
from recordings.replayer import Replayer
from recordings.store import RecordingStore

log = logging.getLogger(__name__)


@dataclass
class RecordingJob:
    """A recording being made."""

    name: str
    namespace: str
    recorder: Recorder
    stop: asyncio.Event
    task: asyncio.Task[Any]
    started_at: float = field(default_factory=time.time)

    def status(self) -> dict[str, Any]:
        """JSON-ready state."""
        error = None
        if self.task.done() and not self.task.cancelled() and self.task.exception():
            error = str(self.task.exception())
        return {
            "name": self.name,
            "namespace": self.namespace,
            "state": "recording" if not self.task.done() else ("failed" if error else "done"),
            "topics": sorted(self.recorder.topics),
            "records": self.recorder.stats.total,
            "parts": self.recorder.stats.parts,
            "error": error,
        }


@dataclass
class ReplayJob:
    """A replay started through the API."""

    id: str
    recording: str
    options: ReplayOptions
    controller: ReplayController
    task: asyncio.Task[Any]
    started_by: str

    def status(self) -> dict[str, Any]:
        """JSON-ready state and progress."""
        return {
            "id": self.id,
            "recording": self.recording,
            "namespace": self.options.namespace,
            "speed": self.options.speed,
            "loop": self.options.loop,
            "started_by": self.started_by,
            **self.controller.progress.as_dict(),
        }


class TooManyJobs(Exception):
    """As many replays (or recordings) as allowed are active already."""

    def __init__(self, kind: str, limit: int, setting: str, active: list[str]) -> None:
        super().__init__(
            f"{limit} {kind} are active already, the most this API process runs at once "
            f"({setting}); stop one first: {', '.join(active)}"
        )


def _check_room(kind: str, active: list[str], limit: int, setting: str) -> None:
    """TooManyJobs when ``active`` holds ``limit`` jobs of the kind already."""
    if len(active) >= limit:
        raise TooManyJobs(kind, limit, setting, active)


class Jobs:
    """The recordings and replays of one API process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = RecordingStore(settings)
        self.recordings: dict[str, RecordingJob] = {}
        self.replays: dict[str, ReplayJob] = {}

    def start_recording(
        self,
        name: str,
        *,
        namespace: str,
        topics: list[str],
        duration_s: float | None,
        from_beginning: bool,
    ) -> RecordingJob:
        """Start recording; FileExistsError when the name is taken, TooManyJobs when as
        many recordings as allowed are active."""
        directory = self.store.new_path(name)
        _check_room(
            "recordings",
            sorted(j.name for j in self.recordings.values() if not j.task.done()),
            self.settings.recordings.max_active_recordings,
            "IOC_RECORDINGS__MAX_ACTIVE_RECORDINGS",
        )
        settings = self.settings.model_copy(update={"namespace": namespace})
        recorder = Recorder(
            settings, directory, patterns=topics, name=name, from_beginning=from_beginning
        )
        stop = asyncio.Event()
        task = asyncio.create_task(recorder.run(stop, duration_s=duration_s))
        job = self.recordings[name] = RecordingJob(name, namespace, recorder, stop, task)
        return job

    async def wait_ready(self, job: RecordingJob, timeout_s: float = 30) -> None:
        """Wait until the recorder is positioned on its topics (or failed)."""
        deadline = time.monotonic() + timeout_s
        while not job.recorder.stats.ready and not job.task.done():
            if time.monotonic() > deadline:
                raise TimeoutError("the recorder did not reach Kafka in time")
            await asyncio.sleep(0.05)
        if job.task.done() and job.task.exception():
            raise job.task.exception()  # type: ignore[misc]

    async def stop_recording(self, job: RecordingJob) -> None:
        """Stop a recording and wait until its file is closed."""
        job.stop.set()
        with contextlib.suppress(Exception):
            await job.task

    def start_replay(
        self,
        name: str,
        path: Path,
        report: Report,
        options: ReplayOptions,
        *,
        started_by: str,
        paused: bool,
    ) -> ReplayJob:
        """Start replaying a recording already scanned (``report``)."""
        self.check_replay_room()
        target = self.settings.model_copy(update={"namespace": options.namespace})
        controller = ReplayController()
        if paused:
            controller.pause()
        replayer = Replayer(Recording(path), target, options, controller, report=report)
        job_id = uuid.uuid4().hex[:12]

        async def run() -> None:
            try:
                await replayer.run()
            except Exception:
                log.exception("replay %s of %s failed", job_id, name)

        task = asyncio.create_task(run())
        job = self.replays[job_id] = ReplayJob(job_id, name, options, controller, task, started_by)
        return job

    def check_replay_room(self) -> None:
        """TooManyJobs when as many replays as allowed are running or paused."""
        _check_room(
            "replays",
            [j.id for j in self.replays.values() if not j.task.done()],
            self.settings.recordings.max_active_replays,
            "IOC_RECORDINGS__MAX_ACTIVE_REPLAYS",
        )

    async def close(self) -> None:
        """Stop every replay and recording (recordings get their summary)."""
        for replay in self.replays.values():
            replay.controller.stop()
        for recording in self.recordings.values():
            recording.stop.set()
        tasks = [j.task for j in self.replays.values()] + [j.task for j in self.recordings.values()]
        if tasks:
            await asyncio.wait(tasks, timeout=10)
