"""Soak: the pipeline under a steady live load, watched for memory, lag and losses.

    .venv/bin/python -m benchmarks.soak --seconds 1800 [--rate 5000] [--entities 20000]

The simulator produces live-time events (event time = now, paced by the wall clock) at
about ``--rate`` events/s into a fresh namespace, while one ``ioc worker`` consumes them.
Every few seconds it samples: events produced, events the database accounts for, the
aggregator group's lag on the raw topics, and the worker's resident memory. When the
load stops it waits for the database to account for every event (nothing lost) and
prints the samples and a summary as Markdown for ``benchmarks/RESULTS.md``.
``tests/soak/test_soak.py`` runs a bounded version of the same thing in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from benchmarks.provenance import commit_id
from contract.catalog import DOMAINS
from ioc.db.migrate import migrate
from ioc.settings import Settings
from simulators.engine import SimConfig, Simulation
from simulators.run import run_simulation
from streams.admin import ensure_topics
from streams.kafka import client_options
from streams.topics import raw_topic
from tests.utils.namespaces import drop_namespace
from tests.utils.truth import events_in_database

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Sample:
    at_s: float
    produced: int
    written: int
    lag: int
    rss_mb: float


@dataclass
class SoakReport:
    seconds: float
    produced: int = 0
    written: int = 0
    drain_s: float = float("nan")
    samples: list[Sample] = field(default_factory=list)
    worker_alive: bool = True

    def markdown(self) -> str:
        """Samples and summary as Markdown."""
        rows = [
            "| t (s) | produced | in database | consumer lag (records) | worker RSS (MB) |",
            "|---:|---:|---:|---:|---:|",
        ]
        rows += [
            f"| {s.at_s:.0f} | {s.produced:,} | {s.written:,} | {s.lag:,} | {s.rss_mb:.0f} |"
            for s in self.samples
        ]
        return "\n".join(rows)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def group_lag(settings: Settings, group: str, probe: AIOKafkaConsumer) -> tuple[int, int]:
    """Records in the raw topics, and how many of them ``group`` has not committed yet."""
    tps = [
        TopicPartition(raw_topic(settings, d), p)
        for d in DOMAINS
        for p in range(settings.kafka.partitions)
    ]
    ends = await probe.end_offsets(tps)
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    total = sum(ends.values())
    return total, total - sum(committed[tp].offset for tp in tps if tp in committed)


def rate_multiplier(*, entities: int, rate: float, start: datetime) -> float:
    """The simulator's event-rate multiplier that gives about ``rate`` events/s now."""
    probe = SimConfig(start=start, entities=entities, duration_s=120)
    base = sum(1 for _ in Simulation(probe).events()) / 120
    return rate / base


async def run_soak(
    base: Settings,
    *,
    seconds: float,
    rate: float = 5000,
    entities: int = 20_000,
    every_s: float = 5.0,
    logs: Path | None = None,
) -> SoakReport:
    """Run the soak in a fresh namespace; return what was measured."""
    settings = base.model_copy(update={"namespace": f"soak_{uuid.uuid4().hex[:8]}"})
    await migrate(settings)
    await ensure_topics(settings)
    logs = logs or Path(tempfile.mkdtemp())
    env = {**os.environ, "IOC_NAMESPACE": settings.namespace, "IOC_STREAMS__WEB_PORT": "0"}
    env["IOC_STATE_DIR"] = str(base.state_dir)
    with (logs / "soak-worker.log").open("wb") as out:
        worker = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ioc.cli",
            "worker",
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    report = SoakReport(seconds=seconds)
    probe = AIOKafkaConsumer(**client_options(settings))
    await probe.start()
    group = f"ioc-{settings.namespace}-aggregate"
    try:
        start = datetime.now(UTC)
        config = SimConfig(
            start=start,
            entities=entities,
            seed=7,
            rate=rate_multiplier(entities=entities, rate=rate, start=start),
            duration_s=seconds,
        )
        load = asyncio.create_task(run_simulation(settings, config, speed=1.0))
        began = time.monotonic()

        async def sample() -> Sample:
            produced, lag = await group_lag(settings, group, probe)
            return Sample(
                at_s=time.monotonic() - began,
                produced=produced,
                written=await events_in_database(settings),
                lag=lag,
                rss_mb=rss_mb(worker.pid) if worker.returncode is None else float("nan"),
            )

        while not load.done():
            await asyncio.wait({load}, timeout=every_s)
            report.samples.append(await sample())
        stats = load.result()
        report.produced = stats.total
        stopped = time.monotonic()
        while time.monotonic() - stopped < 180:
            report.written = await events_in_database(settings)
            if report.written >= report.produced:
                report.drain_s = time.monotonic() - stopped
                break
            await asyncio.sleep(0.5)
        # The aggregator commits what Kafka acknowledged at most every commit_interval_s:
        # its committed offsets reach the end that much after its last records.
        settled = time.monotonic() + settings.streams.commit_interval_s + 5
        while time.monotonic() < settled:  # polling Kafka, nothing here to wait on
            if (await group_lag(settings, group, probe))[1] == 0:
                break
            await asyncio.sleep(0.5)
        report.samples.append(await sample())
        report.worker_alive = worker.returncode is None
        return report
    finally:
        await probe.stop()
        if worker.returncode is None:
            worker.terminate()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(worker.wait(), 30)
        await drop_namespace(settings)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=1800)
    parser.add_argument("--rate", type=float, default=5000)
    parser.add_argument("--entities", type=int, default=20_000)
    parser.add_argument("--every", type=float, default=30)
    args = parser.parse_args()
    base = Settings(state_dir=ROOT / ".ioc")
    report = await run_soak(
        base, seconds=args.seconds, rate=args.rate, entities=args.entities, every_s=args.every
    )
    print(f"commit {commit_id()}, {os.cpu_count()} cores; {args.entities:,} entities")
    print(report.markdown())
    print(
        f"\nproduced {report.produced:,} in {report.seconds:.0f} s "
        f"({report.produced / report.seconds:,.0f} events/s); in database {report.written:,}; "
        f"drained {report.drain_s:.1f} s after the load stopped; worker alive: "
        f"{report.worker_alive}"
    )


if __name__ == "__main__":
    asyncio.run(main())
