"""Running a simulation into a namespace's raw topics, with a live progress line.

``ioc simulate`` is a thin wrapper around :func:`run_simulation`; tests and benchmarks
call it (or :class:`simulators.engine.Simulation` without Kafka) directly.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from rich.console import Console
from rich.live import Live
from rich.text import Text

from ioc.settings import Settings
from simulators.clock import SimClock
from simulators.engine import SimConfig, Simulation
from simulators.producer import produce
from streams.sender import ProduceStats, make_producer
from streams.topics import raw_topic


class ProgressLine:
    """Events per second per domain over the last interval, errors, and the simulated time."""

    def __init__(self, stats: ProduceStats) -> None:
        self.stats = stats
        self.last: Counter[str] = Counter()
        self.last_at = time.monotonic()

    def render(self) -> str:
        """One line describing the run right now."""
        now = time.monotonic()
        elapsed = max(now - self.last_at, 1e-9)
        current = Counter(self.stats.produced)
        rates = "  ".join(
            f"{domain} {(current[domain] - self.last[domain]) / elapsed:,.0f}/s"
            for domain in sorted(current)
        )
        self.last, self.last_at = current, now
        sim = self.stats.sim_time.strftime("%Y-%m-%d %H:%M:%S UTC") if self.stats.sim_ms else "-"
        return (
            f"simulate: {rates or 'waiting'} | {self.stats.total:,} events, "
            f"{self.stats.total_errors} errors | event time {sim}"
        )


async def _report(line: ProgressLine, console: Console, live: Live | None) -> None:
    while True:
        await asyncio.sleep(1.0 if live else 5.0)
        if live:
            live.update(Text(line.render()))
        else:
            console.print(line.render())


async def run_simulation(
    settings: Settings,
    config: SimConfig,
    *,
    speed: float | None,
    console: Console | None = None,
) -> ProduceStats:
    """Produce the configured stream into the namespace's raw topics; return what was sent."""
    from streams.admin import ensure_topics

    simulation = Simulation(config)
    clock = SimClock(config.start, speed=speed)
    topics = {domain: raw_topic(settings, domain) for domain in config.domains}
    await ensure_topics(settings)
    producer = make_producer(settings)
    await producer.start()
    stats = ProduceStats()
    line = ProgressLine(stats)
    live = Live(Text(""), console=console) if console and console.is_terminal else None
    reporter = asyncio.create_task(_report(line, console, live)) if console else None
    try:
        if live:
            live.start()
        return await produce(producer, topics, simulation.batches(), clock=clock, stats=stats)
    finally:
        if reporter:
            reporter.cancel()
        if live:
            live.update(Text(line.render()))
            live.stop()
        await producer.stop()
