"""Recordings for engineers (scope ``replay``): list, inspect, start and stop one."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from api.auth import ReplayCaller
from api.deps import SettingsDep
from api.params import RequestBody
from api.problems import Problem, problem_responses
from ioc.settings import NAMESPACE_PATTERN
from recordings.jobs import Jobs
from recordings.reader import RecordingError
from recordings.recorder import RecorderError
from recordings.recording import Recording
from recordings.store import NAME_MAX_LENGTH, NAME_PATTERN, Entry, NameError_, check_name

router = APIRouter(prefix="/v1/recordings", tags=["recordings"])

NAME_RULE = (
    f"Recording name: 1-{NAME_MAX_LENGTH} letters, digits, '.', '_' or '-', a letter or "
    "digit first, no '..'"
)
#: Recordings stop by themselves after at most this long (a week).
MAX_DURATION_S = 7 * 86_400
NameParam = Annotated[
    str, Path(description=NAME_RULE, pattern=NAME_PATTERN.pattern, max_length=NAME_MAX_LENGTH)
]


def jobs_of(request: Request) -> Jobs:
    """The API process's recordings and replays (made on first use)."""
    jobs: Jobs | None = getattr(request.app.state, "recording_jobs", None)
    if jobs is None:
        jobs = request.app.state.recording_jobs = Jobs(request.app.state.settings)
    return jobs


def valid_name(name: str) -> str:
    """``name`` if allowed, else a 422 problem saying why."""
    try:
        return check_name(name)
    except NameError_ as exc:
        raise Problem(422, "invalid-name", "Invalid recording name", str(exc)) from None


def find(jobs: Jobs, name: str) -> Entry:
    """The recording of that name, or a 404 problem."""
    entry = jobs.store.find(valid_name(name))
    if entry is None:
        raise Problem(404, "unknown-recording", "Unknown recording", f"no recording {name!r}")
    return entry


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
async def list_recordings(caller: ReplayCaller, request: Request) -> RecordingList:
    """List recordings (recorded ones and the shipped seeds) with their size."""
    jobs = jobs_of(request)
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
async def recording_info(caller: ReplayCaller, request: Request, name: NameParam) -> RecordingInfo:
    """Records per topic, time range and integrity of one recording."""
    jobs = jobs_of(request)
    entry = find(jobs, name)
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
    caller: ReplayCaller, request: Request, settings: SettingsDep, body: RecordingStart
) -> RecordingStatus:
    """Start recording topics of a namespace until stopped (or for ``duration_s``)."""
    jobs = jobs_of(request)
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
async def stop_recording(
    caller: ReplayCaller, request: Request, name: NameParam
) -> RecordingStatus:
    """Stop a recording started through the API; its files get their summary."""
    jobs = jobs_of(request)
    job = jobs.recordings.get(valid_name(name))
    if job is None:
        raise Problem(
            404, "unknown-recording", "Unknown recording", f"no recording {name!r} is running"
        )
    if job.task.done():
        raise Problem(409, "not-recording", "Not recording", f"{name!r} has already stopped")
    await jobs.stop_recording(job)
    return RecordingStatus.model_validate(job.status())
