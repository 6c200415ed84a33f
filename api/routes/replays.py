"""Replays for engineers (scope ``replay``): start one into a namespace, watch its
progress, pause, resume, step, seek, stop. The live namespace (or the API's own) is a
target only for ``admin`` callers who say so (``allow_live``)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.auth import ReplayCaller
from api.deps import NAME_RULE, JobsDep, SettingsDep, find_recording
from api.params import JSON_INTEGER, MAX_INDEX, Instant, RecordIndex, RequestBody
from api.problems import Problem, problem_responses
from ioc.settings import NAMESPACE_PATTERN
from recordings.controller import ReplayState, Seek
from recordings.jobs import Jobs, ReplayJob, TooManyJobs
from recordings.options import MAX_SPEED, MIN_SPEED, OptionsError, ReplayOptions
from recordings.reader import RecordingError
from recordings.recording import Recording
from recordings.store import NAME_MAX_LENGTH, NAME_PATTERN

router = APIRouter(prefix="/v1/replays", tags=["replays"])


class ReplayStart(RequestBody):
    recording: str = Field(
        description=NAME_RULE,
        pattern=NAME_PATTERN.pattern,
        max_length=NAME_MAX_LENGTH,
        examples=["typhoon-yagi"],
    )
    namespace: str | None = Field(
        None,
        pattern=NAMESPACE_PATTERN.pattern,
        description="Target namespace (default: the sandbox)",
    )
    speed: float | None = Field(
        1.0,
        ge=MIN_SPEED,
        le=MAX_SPEED,
        description=f"x{MIN_SPEED:g} to x{MAX_SPEED:g}; null: as fast as possible",
    )
    loop: bool = False
    start_index: RecordIndex = Field(0, description="First record, in recorded order")
    end_index: Annotated[int, Field(ge=1, le=MAX_INDEX), JSON_INTEGER] | None = Field(
        None, description="Record to stop before (default: the end)"
    )
    start_time: Instant | None = Field(None, description="Start at the first record from then")
    end_time: Instant | None = Field(None, description="Stop at the first record from then")
    topics: list[str] = Field(default_factory=list, description="Globs on recorded base topics")
    remap: dict[str, str] = Field(default_factory=dict, description="Base topic -> base topic")
    shift_to_now: bool = False
    allow_live: bool = Field(False, description="Target the live namespace (admin only)")
    partial: bool = Field(False, description="Replay a damaged recording up to the damage")
    prime: bool = Field(True, description="Send each entity's last event before the start")
    paused: bool = Field(False, description="Start paused (then step or resume)")


class StepBody(RequestBody):
    count: Annotated[int, Field(ge=1, le=1_000_000), JSON_INTEGER] = 1


class SeekBody(RequestBody):
    """A record index or a time: exactly one of them (``minProperties`` and
    ``maxProperties`` say so in the OpenAPI document)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"minProperties": 1, "maxProperties": 1}
    )

    # Not nullable: absent is the only way to leave one out. The None defaults are never
    # validated, so the document and the errors name plain types (no union of null).
    index: RecordIndex = Field(None, description="Continue from this record index")  # type: ignore[assignment]
    time: Instant = Field(None, description="Continue from the first record at or after this time")  # type: ignore[assignment]

    @model_validator(mode="after")
    def _one_of_them(self) -> SeekBody:
        if len(self.model_fields_set) != 1:
            raise ValueError("seek to an index or to a time: exactly one of them")
        return self


class ReplayStatus(BaseModel):
    """A replay started through the API, and its progress."""

    id: str
    recording: str
    namespace: str = Field(description="Target namespace")
    speed: float | None
    loop: bool
    started_by: str = Field(description="The key that started it")
    state: ReplayState
    sent: int = Field(description="Records sent")
    primed: int = Field(description="Entities' last events sent before the start point")
    position: int = Field(description="Index of the record in hand")
    total: int = Field(description="Records in the recording (0 until it is scanned)")
    passes: int = Field(description="Passes finished (loops)")
    event_time_ms: int | None = Field(description="Kafka timestamp of the record in hand")
    errors: int
    error: str | None
    started_at: float = Field(description="Unix time, seconds")
    finished_at: float | None


class ReplayList(BaseModel):
    replays: list[ReplayStatus]


def _ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def _status(job: ReplayJob) -> ReplayStatus:
    return ReplayStatus.model_validate(job.status())


def _job(jobs: Jobs, replay_id: str) -> ReplayJob:
    job = jobs.replays.get(replay_id)
    if job is None:
        raise Problem(404, "unknown-replay", "Unknown replay", f"no replay {replay_id!r}")
    return job


def _steerable(job: ReplayJob) -> None:
    if job.task.done():
        raise Problem(
            409,
            "replay-ended",
            "Replay ended",
            f"replay {job.id} is {job.controller.progress.state}",
        )


@router.post("", status_code=201, responses=problem_responses(404, 409))
async def start_replay(
    caller: ReplayCaller, jobs: JobsDep, settings: SettingsDep, body: ReplayStart
) -> ReplayStatus:
    """Start replaying a recording into a namespace (a sandbox unless told otherwise).
    At most ``IOC_RECORDINGS__MAX_ACTIVE_REPLAYS`` run or wait paused at once: 409
    too-many-replays names them."""
    entry = find_recording(jobs, body.recording)
    _room(jobs)
    try:
        options = ReplayOptions(
            namespace=body.namespace or settings.recordings.sandbox_namespace,
            speed=body.speed,
            loop=body.loop,
            start_index=body.start_index,
            end_index=body.end_index,
            start_ms=_ms(body.start_time),
            end_ms=_ms(body.end_time),
            topics=tuple(body.topics),
            remap=body.remap,
            shift_to_now=body.shift_to_now,
            partial=body.partial,
            prime=body.prime,
        )
    except OptionsError as exc:
        raise Problem(422, "invalid-replay", "Invalid replay", str(exc)) from None
    if options.touches_live(settings.namespace):
        if not caller.can("admin"):
            raise Problem(
                403,
                "live-needs-admin",
                "Forbidden",
                f"namespace {options.namespace!r} is live: only an admin key may replay into it",
            )
        if not body.allow_live:
            raise Problem(
                422,
                "live-not-allowed",
                "Live target not confirmed",
                f"namespace {options.namespace!r} is live: set allow_live to replay into it",
            )
    try:
        report = await asyncio.to_thread(Recording(entry.path).scan)
    except RecordingError as exc:
        raise Problem(422, "unreadable-recording", "Unreadable recording", str(exc)) from None
    damage = report.damage
    records = sum(report.records.values())
    if damage is not None and not options.partial:
        raise Problem(
            422,
            "damaged-recording",
            "Damaged recording",
            f"{damage.describe()}; {records} records before it can be replayed with partial",
        )
    if options.start_index > 0 and options.start_index >= records:
        raise Problem(
            422,
            "invalid-replay",
            "Invalid replay",
            f"start index {options.start_index:,} is past the end: {entry.name!r} holds "
            f"{records:,} records",
        )
    _room(jobs)  # others may have started while the recording was scanned
    job = jobs.start_replay(
        entry.name, entry.path, report, options, started_by=caller.name, paused=body.paused
    )
    return _status(job)


def _room(jobs: Jobs) -> None:
    try:
        jobs.check_replay_room()
    except TooManyJobs as exc:
        raise Problem(409, "too-many-replays", "Too many replays", str(exc)) from None


@router.get("", responses=problem_responses())
async def list_replays(caller: ReplayCaller, jobs: JobsDep) -> ReplayList:
    """Replays of this API process, newest last, with their progress."""
    return ReplayList(replays=[_status(job) for job in jobs.replays.values()])


@router.get("/{replay_id}", responses=problem_responses(404))
async def replay_status(caller: ReplayCaller, jobs: JobsDep, replay_id: str) -> ReplayStatus:
    """Progress of one replay."""
    return _status(_job(jobs, replay_id))


@router.post("/{replay_id}/pause", responses=problem_responses(404, 409))
async def pause_replay(caller: ReplayCaller, jobs: JobsDep, replay_id: str) -> ReplayStatus:
    """Hold the replay before its next record."""
    job = _job(jobs, replay_id)
    _steerable(job)
    job.controller.pause()
    return _status(job)


@router.post("/{replay_id}/resume", responses=problem_responses(404, 409))
async def resume_replay(caller: ReplayCaller, jobs: JobsDep, replay_id: str) -> ReplayStatus:
    """Go on at the replay's pace."""
    job = _job(jobs, replay_id)
    _steerable(job)
    job.controller.resume()
    return _status(job)


@router.post("/{replay_id}/step", responses=problem_responses(404, 409))
async def step_replay(
    caller: ReplayCaller, jobs: JobsDep, replay_id: str, body: StepBody
) -> ReplayStatus:
    """Let ``count`` records out of a paused replay."""
    job = _job(jobs, replay_id)
    _steerable(job)
    job.controller.step(body.count)
    return _status(job)


@router.post("/{replay_id}/seek", responses=problem_responses(404, 409))
async def seek_replay(
    caller: ReplayCaller, jobs: JobsDep, replay_id: str, body: SeekBody
) -> ReplayStatus:
    """Continue from a record index or a time (the state before it is primed again)."""
    job = _job(jobs, replay_id)
    _steerable(job)
    total = job.controller.progress.total
    if body.index is not None and total and body.index >= total:
        raise Problem(
            422,
            "invalid-seek",
            "Invalid seek",
            f"index {body.index:,} is past the end: the recording holds {total:,} records",
        )
    try:
        job.controller.seek(Seek(index=body.index, time_ms=_ms(body.time)))
    except ValueError as exc:
        raise Problem(422, "invalid-seek", "Invalid seek", str(exc)) from None
    return _status(job)


@router.post("/{replay_id}/stop", responses=problem_responses(404, 409))
async def stop_replay(caller: ReplayCaller, jobs: JobsDep, replay_id: str) -> ReplayStatus:
    """End the replay; what was sent stays sent."""
    job = _job(jobs, replay_id)
    _steerable(job)
    job.controller.stop()
    await asyncio.wait([job.task], timeout=10)
    return _status(job)
