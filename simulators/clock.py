"""The simulated clock: event time starts at a chosen instant and runs at a chosen speed.

Event time is the simulated time. ``speed=1`` follows the wall clock, ``speed=60`` runs a
simulated hour per real minute, ``speed=None`` runs as fast as the consumer takes events.
The clock never decides *what* happens, only *when* it is released, so the event stream
is the same at any speed.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta, timezone

VIETNAM = timezone(timedelta(hours=7), "ICT")


class SimClock:
    """Maps simulated milliseconds to the wall-clock moment they are due."""

    def __init__(self, start: datetime, *, speed: float | None = 1.0) -> None:
        if start.tzinfo is None:
            raise ValueError("the simulated start time needs a time zone")
        if speed is not None and speed <= 0:
            raise ValueError(
                f"speed must be positive (or None for as fast as possible), got {speed}"
            )
        self.start = start.astimezone(UTC)
        self.start_ms = int(self.start.timestamp() * 1000)
        self.speed = speed
        self._wall_start = time.monotonic()

    def restart(self) -> None:
        """Make the simulated start due now (call when production begins)."""
        self._wall_start = time.monotonic()

    def due_in(self, sim_ms: int) -> float:
        """Seconds of wall time until ``sim_ms`` is due (0 when it is, or when unpaced)."""
        if self.speed is None:
            return 0.0
        due = self._wall_start + (sim_ms - self.start_ms) / 1000 / self.speed
        return max(0.0, due - time.monotonic())

    async def wait_until(self, sim_ms: int) -> None:
        """Sleep until ``sim_ms`` is due."""
        delay = self.due_in(sim_ms)
        if delay > 0:
            await asyncio.sleep(delay)

    def now(self) -> datetime:
        """The current simulated time."""
        if self.speed is None:
            return self.start
        elapsed = (time.monotonic() - self._wall_start) * self.speed
        return self.start + timedelta(seconds=elapsed)
