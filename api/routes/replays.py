"""Replays for engineers (scope ``replay``): start one into a namespace, watch its
progress, pause, resume, step, seek, stop. The live namespace (or the API's own) is a
target only for ``admin`` callers who say so (``allow_live``)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from api.auth import ReplayCaller
from api.deps import SettingsDep
from api.problems import Problem, problem_responses
from api.routes.recordings import find, jobs_of
from recordings.controller import Seek
from recordings.jobs import Jobs, ReplayJob
from recordings.options import OptionsError, ReplayOptions
from recordings.reader import RecordingError
from recordings.recording import Recording

router = APIRouter(prefix="/v1/replays", tags=["replays"])


class ReplayStart(BaseModel):
    recording: str = Field(description="Recording name", examples=["typhoon-yagi"])
    namespace: str | None = Field(None, description="Target namespace (default: the sandbox)")
    speed: float | None = Field(1.0, description="x0.1 to x1000; null: as fast as possible")
    loop: bool = False
    start_index: int = Field(0, ge=0)
    end_index: int | None = Field(None, ge=1)
    start_time: datetime | None = None
    end_time: datetime | None = None
    topics: list[str] = Field(default_factory=list, description="Globs on recorded base topics")
    remap: dict[str, str] = Field(default_factory=dict, description="Base topic -> base topic")
    shift_to_now: bool = False
    allow_live: bool = Field(False, description="Target the live namespace (admin only)")
    partial: bool = Field(False, description="Replay a damaged recording up to the damage")
    prime: bool = Field(True, description="Send each entity's last event before the start")
    paused: bool = Field(False, description="Start paused (then step or resume)")


class StepBody(BaseModel):
    count: int = Field(1, ge=1, le=1_000_000)


class SeekBody(BaseModel):
    index: int | None = Field(None, ge=0)
    time: datetime | None = None


def _ms(value: datetime | None) -> int | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise Problem(422, "invalid-time", "Invalid time", f"{value.isoformat()} needs a zone")
    return int(value.timestamp() * 1000)


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
    caller: ReplayCaller, request: Request, settings: SettingsDep, body: ReplayStart
) -> dict[str, Any]:
    """Start replaying a recording into a namespace (a sandbox unless told otherwise)."""
    jobs = jobs_of(request)
    entry = find(jobs, body.recording)
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
    if damage is not None and not options.partial:
        raise Problem(
            422,
            "damaged-recording",
            "Damaged recording",
            f"{damage.describe()}; {sum(report.records.values())} records before it can be "
            "replayed with partial",
        )
    job = jobs.start_replay(
        entry.name, entry.path, report, options, started_by=caller.name, paused=body.paused
    )
    return job.status()


@router.get("", responses=problem_responses())
async def list_replays(caller: ReplayCaller, request: Request) -> dict[str, Any]:
    """Replays of this API process, newest last, with their progress."""
    return {"replays": [job.status() for job in jobs_of(request).replays.values()]}


@router.get("/{replay_id}", responses=problem_responses(404))
async def replay_status(caller: ReplayCaller, request: Request, replay_id: str) -> dict[str, Any]:
    """Progress of one replay."""
    return _job(jobs_of(request), replay_id).status()


@router.post("/{replay_id}/pause", responses=problem_responses(404, 409))
async def pause_replay(caller: ReplayCaller, request: Request, replay_id: str) -> dict[str, Any]:
    """Hold the replay before its next record."""
    job = _job(jobs_of(request), replay_id)
    _steerable(job)
    job.controller.pause()
    return job.status()


@router.post("/{replay_id}/resume", responses=problem_responses(404, 409))
async def resume_replay(caller: ReplayCaller, request: Request, replay_id: str) -> dict[str, Any]:
    """Go on at the replay's pace."""
    job = _job(jobs_of(request), replay_id)
    _steerable(job)
    job.controller.resume()
    return job.status()


@router.post("/{replay_id}/step", responses=problem_responses(404, 409))
async def step_replay(
    caller: ReplayCaller, request: Request, replay_id: str, body: StepBody
) -> dict[str, Any]:
    """Let ``count`` records out of a paused replay."""
    job = _job(jobs_of(request), replay_id)
    _steerable(job)
    job.controller.step(body.count)
    return job.status()


@router.post("/{replay_id}/seek", responses=problem_responses(404, 409))
async def seek_replay(
    caller: ReplayCaller, request: Request, replay_id: str, body: SeekBody
) -> dict[str, Any]:
    """Continue from a record index or a time (the state before it is primed again)."""
    job = _job(jobs_of(request), replay_id)
    _steerable(job)
    try:
        job.controller.seek(Seek(index=body.index, time_ms=_ms(body.time)))
    except ValueError as exc:
        raise Problem(422, "invalid-seek", "Invalid seek", str(exc)) from None
    return job.status()


@router.post("/{replay_id}/stop", responses=problem_responses(404, 409))
async def stop_replay(caller: ReplayCaller, request: Request, replay_id: str) -> dict[str, Any]:
    """End the replay; what was sent stays sent."""
    job = _job(jobs_of(request), replay_id)
    _steerable(job)
    job.controller.stop()
    await asyncio.wait([job.task], timeout=10)
    return job.status()
