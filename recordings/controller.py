"""Steering a running replay: pause, resume, step, seek, stop, and its progress.

The replay loop asks the controller at every record (paced) or every chunk (as fast as
possible) whether it may go on; the CLI and the API call the methods below from the same
event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class ReplayState(StrEnum):
    """Where a replay is in its life."""

    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"
    STOPPED = "stopped"
    FAILED = "failed"


@dataclass
class Progress:
    """What a replay has done so far."""

    state: ReplayState = ReplayState.PENDING
    sent: int = 0
    primed: int = 0
    position: int = 0
    total: int = 0
    passes: int = 0
    event_time_ms: int | None = None
    errors: int = 0
    error: str | None = None
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass(frozen=True)
class Seek:
    """Where to continue: a record index, or the first record at or after a time."""

    index: int | None = None
    time_ms: int | None = None


class ReplayController:
    """Pause, resume, step, seek and stop one replay; read its progress."""

    def __init__(self) -> None:
        self.progress = Progress()
        self._changed = asyncio.Event()
        self._paused = False
        self._steps = 0
        self._stop = False
        self._seek: Seek | None = None
        #: Set by :meth:`gate` when it waited or stepped: pacing re-anchors on the record.
        self.resumed = False

    @property
    def stopping(self) -> bool:
        """True once stop() was asked."""
        return self._stop

    @property
    def paused(self) -> bool:
        """True while paused (steps may still go out)."""
        return self._paused

    @property
    def interrupted(self) -> bool:
        """True when the loop must leave its pass: stop or seek asked."""
        return self._stop or self._seek is not None

    def pause(self) -> None:
        """Hold the replay before its next record."""
        self._paused = True
        if self.progress.state == ReplayState.RUNNING:
            self.progress.state = ReplayState.PAUSED
        self._changed.set()

    def resume(self) -> None:
        """Go on at the configured pace from where it is."""
        self._paused = False
        if self.progress.state == ReplayState.PAUSED:
            self.progress.state = ReplayState.RUNNING
        self._changed.set()

    def step(self, count: int = 1) -> None:
        """While paused, let ``count`` more records out."""
        if count < 1:
            raise ValueError("step count must be at least 1")
        self._steps += count
        self._changed.set()

    def seek(self, seek: Seek) -> None:
        """Continue from another point (the state before it is primed again)."""
        if (seek.index is None) == (seek.time_ms is None):
            raise ValueError("seek to an index or to a time, not both or neither")
        if seek.index is not None and seek.index < 0:
            raise ValueError("seek index must not be negative")
        self._seek = seek
        self._changed.set()

    def stop(self) -> None:
        """End the replay after the record in hand (what was sent stays sent)."""
        self._stop = True
        self._changed.set()

    def take_seek(self) -> Seek | None:
        """The pending seek, once."""
        seek, self._seek = self._seek, None
        return seek

    async def gate(self) -> bool:
        """Wait while paused; True when a record may go out, False to stop or seek."""
        self.resumed = False
        while True:
            if self.interrupted:
                return False
            if not self._paused:
                return True
            if self._steps > 0:
                self._steps -= 1
                self.resumed = True
                return True
            self.resumed = True
            self._changed.clear()
            await self._changed.wait()

    async def sleep(self, seconds: float) -> None:
        """Sleep, but wake early when the replay is paused, stepped, sought or stopped."""
        self._changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout=seconds)
