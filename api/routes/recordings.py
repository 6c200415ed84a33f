"""Recordings for engineers (scope ``replay``): list, inspect, start and stop one."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from api.auth import ReplayCaller
from api.deps import NAME_RULE, JobsDep, SettingsDep, find_recording, valid_name
from api.params import RequestBody
from api.problems import Problem, problem_responses
from ioc.settings import NAMESPACE_PATTERN
from recordings.jobs import TooManyJobs
from recordings.reader import RecordingError
from recordings.recorder import RecorderError
from recordings.recording import Recording
from recordings.store import NAME_MAX_LENGTH, NAME_PATTERN

router = APIRouter(prefix="/v1/recordings", tags=["recordings"])

#: Recordings stop by themselves after at most this long (a week).
MAX_DURATION_S = 7 * 86_400
NameParam = Annotated[
    str, Path(description=NAME_RULE, pattern=NAME_PATTERN.pattern, max_length=NAME_MAX_LENGTH)
]


class RecordingStart(RequestBody):
    name: str = Field(
        description=NAME_RULE,
        pattern=NAME_PATTERN.pattern,
        max_length=NAME_MAX_LENGTH,
        examples=["drill-2025-03-12"],
    )
    namespace: str | None = Field(
        None,
        pattern=NAMESPACE_PATTERN.pattern,
        description="Namespace whose topics are recorded (default: the API's)",
    )
    topics: list[str] = Field(
        default_factory=lambda: ["ioc.*.events"], description="Topic names or globs"
    )
    duration_s: float | None = Field(
        None,
        gt=0,
        le=MAX_DURATION_S,
        description=f"Stop by itself after this many seconds (at most {MAX_DURATION_S:,}, "
        "a week); none: until stopped",
    )
    from_beginning: bool = Field(False, description="Start at the topics' oldest records")


class RecordingSummary(BaseModel):
    name: str
    source: Literal["recorded", "seed"] = Field(description="Recorded here, or shipped")
    bytes: int
    parts: int = Field(description="Files of the recording")
    recording: bool = Field(description="Being recorded by this API process now")


class RecordingList(BaseModel):
    recordings: list[RecordingSummary]


class RecordingStatus(BaseModel):
    """A recording started through the API."""

    name: str
    namespace: str
    state: Literal["recording", "done", "failed"]
    topics: list[str] = Field(description="Topics being recorded")
    records: int
    parts: int
    error: str | None


class TopicSummary(BaseModel):
    records: int
    base_topic: str = Field(description="The topic's name without its namespace prefix")
    namespace: str
    partitions: int


class RecordingInfo(BaseModel):
    """What a scan of a recording found. While its first part is being written only
    ``name``, ``source``, ``ok``, ``damage`` and ``recording`` are there."""

    name: str
    source: Literal["recorded", "seed"]
    parts: int | None = None
    bytes: int | None = None
    chunks: int | None = None
    records: int | None = Field(None, description="Readable records (up to any damage)")
    topics: dict[str, TopicSummary] | None = None
    first_time: str | None = Field(None, description="Earliest Kafka timestamp, ISO 8601")
    last_time: str | None = Field(None, description="Latest Kafka timestamp, ISO 8601")
    ok: bool | None = Field(description="No damage; null while being recorded")
    damage: str | None = Field(description="Where the recording broke, if it did")
    metadata: dict[str, str] | None = None
    recording: RecordingStatus | None = Field(description="Its recording job, if any")


@router.get("", responses=problem_responses())
async def list_recordings(caller: ReplayCaller, jobs: JobsDep) -> RecordingList:
    """List recordings (recorded ones and the shipped seeds) with their size."""
    out = []
    for entry in jobs.store.list():
        files = [entry.path] if entry.path.is_file() else list(entry.path.glob("*.mcap"))
        active = jobs.recordings.get(entry.name)
        out.append(
            RecordingSummary(
                name=entry.name,
                source=entry.source,
                bytes=sum(f.stat().st_size for f in files),
                parts=len(files),
                recording=active is not None and not active.task.done(),
            )
        )
    return RecordingList(recordings=out)


@router.get("/{name}", response_model_exclude_unset=True, responses=problem_responses(404))
async def recording_info(caller: ReplayCaller, jobs: JobsDep, name: NameParam) -> RecordingInfo:
    """Records per topic, time range and integrity of one recording."""
    entry = find_recording(jobs, name)
    active = jobs.recordings.get(entry.name)
    status = active.status() if active else None
    running = active is not None and not active.task.done()
    try:
        report = (await asyncio.to_thread(Recording(entry.path).scan)).as_dict()
    except RecordingError as exc:
        if not running:
            raise Problem(422, "unreadable-recording", "Unreadable recording", str(exc)) from None
        report = {}  # no part written yet
    if running:
        # The part being written has no summary yet: that is not damage.
        report.update(ok=None, damage=None)
    return RecordingInfo.model_validate(
        {"name": entry.name, "source": entry.source, **report, "recording": status}
    )


@router.post("", status_code=201, responses=problem_responses(409, 503))
async def start_recording(
    caller: ReplayCaller, jobs: JobsDep, settings: SettingsDep, body: RecordingStart
) -> RecordingStatus:
    """Start recording topics of a namespace until stopped (or for ``duration_s``). At
    most ``IOC_RECORDINGS__MAX_ACTIVE_RECORDINGS`` record at once: 409 too-many-recordings
    names them."""
    name = valid_name(body.name)
    namespace = body.namespace or settings.namespace
    if not NAMESPACE_PATTERN.fullmatch(namespace):
        raise Problem(
            422, "invalid-namespace", "Invalid namespace", f"{namespace!r} is not a namespace"
        )
    try:
        job = jobs.start_recording(
            name,
            namespace=namespace,
            topics=body.topics,
            duration_s=body.duration_s,
            from_beginning=body.from_beginning,
        )
    except FileExistsError as exc:
        raise Problem(409, "recording-exists", "Recording exists", str(exc)) from None
    except TooManyJobs as exc:
        raise Problem(409, "too-many-recordings", "Too many recordings", str(exc)) from None
    try:
        await jobs.wait_ready(job)
    except RecorderError as exc:
        raise Problem(422, "no-topics", "Nothing to record", str(exc)) from None
    except Exception as exc:
        await jobs.stop_recording(job)
        raise Problem(
            503,
            "kafka-unavailable",
            "Kafka unavailable",
            f"the recorder could not start: {exc}",
            headers={"Retry-After": "5"},
        ) from None
    return RecordingStatus.model_validate(job.status())


@router.post("/{name}/stop", responses=problem_responses(404, 409))
async def stop_recording(caller: ReplayCaller, jobs: JobsDep, name: NameParam) -> RecordingStatus:
    """Stop a recording started through the API; its files get their summary."""
    job = jobs.recordings.get(valid_name(name))
    if job is None:
        raise Problem(
            404, "unknown-recording", "Unknown recording", f"no recording {name!r} is running"
        )
    if job.task.done():
        raise Problem(409, "not-recording", "Not recording", f"{name!r} has already stopped")
    await jobs.stop_recording(job)
    return RecordingStatus.model_validate(job.status())
