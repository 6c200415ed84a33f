"""Replay: throughput at max speed from file into Kafka, and pacing accuracy at x10.

    .venv/bin/python -m benchmarks.bench_replay [--recording seeds/recordings/typhoon-yagi.mcap]

Max speed: the recording is replayed into a throw-away namespace (scan of every chunk
included), then, in the same run, the same records (read into memory first, not timed)
are sent by a plain aiokafka producer calling ``send`` per record with the recorded key,
value, headers, partition and timestamp (the baseline). Pacing: a slice of the recording
(``--paced-s`` seconds of event time) is replayed at x10; the error of each inter-event
gap is (sent_i - sent_{i-1}) - (due_i - due_{i-1}), where due is when the recorded
timestamps say the record should go.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import platform
import statistics
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from benchmarks.provenance import commit_id
from ioc.settings import Settings
from recordings.options import ReplayOptions
from recordings.recording import Recording
from recordings.replayer import Replayer
from recordings.store import SEEDS_DIR
from streams.kafka import client_options


async def max_speed(path: Path, settings: Settings) -> tuple[int, float, float]:
    """(records, seconds in all, seconds sending) of a replay as fast as possible: in all
    includes the integrity scan and the topic checks, sending is file to acknowledged."""
    replayer = Replayer(Recording(path), settings, ReplayOptions(namespace=settings.namespace))
    started = time.perf_counter()
    await replayer.run()
    first, last = replayer.sending
    return replayer.controller.progress.sent, time.perf_counter() - started, last - first


async def baseline(path: Path, settings: Settings) -> tuple[int, float]:
    """(records, seconds) of a plain producer sending the same records one by one."""
    records = list(Recording(path).records())
    producer = AIOKafkaProducer(
        acks="all", linger_ms=20, max_batch_size=1024 * 1024, **client_options(settings)
    )
    await producer.start()
    prefix = settings.topic_prefix
    started = time.perf_counter()
    try:
        futures = []
        for r in records:
            futures.append(
                await producer.send(
                    prefix + r.topic,
                    r.value,
                    key=r.key,
                    partition=r.partition,
                    timestamp_ms=r.timestamp_ms,
                    headers=list(r.headers),
                )
            )
            if len(futures) >= 50_000:
                await asyncio.gather(*futures)
                futures = []
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return len(records), time.perf_counter() - started


async def paced(path: Path, settings: Settings, seconds: int) -> list[float]:
    """Inter-event timing errors (ms) of a slice replayed at x10."""
    first = Recording(path).scan().first_ms or 0
    timings: list[tuple[float, float]] = []
    options = ReplayOptions(
        namespace=settings.namespace,
        speed=10,
        start_ms=first + 60_000,
        end_ms=first + 60_000 + seconds * 1000,
    )
    await Replayer(Recording(path), settings, options, timings=timings).run()
    return [
        ((sent - prev_sent) - (due - prev_due)) * 1000
        for (prev_due, prev_sent), (due, sent) in itertools.pairwise(timings)
    ]


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(path: Path, paced_s: int) -> None:
    settings = Settings(state_dir=Path(".ioc"), namespace=f"bench_{uuid.uuid4().hex[:8]}")
    try:
        sent, took, sending = await max_speed(path, settings)
        print(f"replay, max speed, in all:    {sent / took:12,.0f} events/s ({took:.2f} s)")
        print(f"replay, max speed, sending:   {sent / sending:12,.0f} events/s ({sent:,} records)")
        count, took_base = await baseline(path, settings)
        print(f"baseline aiokafka send():     {count / took_base:12,.0f} events/s")
        print(f"ratio sending / baseline:     {took_base / sending * sent / count:12.2f}")
        errors = await paced(path, settings, paced_s)
        absolute = [abs(e) for e in errors]
        print(
            f"x10 pacing, {len(errors):,} gaps: error p50 {quantile(absolute, 0.5):.2f} ms, "
            f"p99 {quantile(absolute, 0.99):.2f} ms, max {max(absolute):.2f} ms, "
            f"mean {statistics.fmean(errors):+.3f} ms"
        )
    finally:
        admin = AIOKafkaAdminClient(**client_options(settings))
        await admin.start()
        names = [t for t in await admin.list_topics() if t.startswith(settings.topic_prefix)]
        await admin.delete_topics(names)
        await admin.close()


def main() -> None:
    """Run the measurements and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recording", type=Path, default=SEEDS_DIR / "typhoon-yagi.mcap")
    parser.add_argument("--paced-s", type=int, default=120)
    args = parser.parse_args()
    commit = commit_id()
    print(
        f"commit {commit}, {platform.python_implementation()} {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} cores; recording {args.recording}"
    )
    asyncio.run(run(args.recording, args.paced_s))


if __name__ == "__main__":
    main()
