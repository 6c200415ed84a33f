"""Simulator throughput: events generated on one core, and events produced into Kafka.

    .venv/bin/python -m benchmarks.bench_simulators [--events 500000]

Generation runs the whole engine (city model, four domains, templates) without Kafka.
Production sends the same pre-generated payloads three ways, in the same run: through
the simulator's batch producer, through a plain aiokafka producer calling ``send`` per
record (the baseline), and generating and producing together as ``ioc simulate --speed 0``
does. Topics live in a throw-away namespace that is deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import time
import uuid
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from benchmarks.provenance import commit_id
from contract.catalog import DOMAINS
from ioc.settings import Settings
from simulators.clock import SimClock
from simulators.engine import SimConfig, Simulation
from simulators.events import Batch
from simulators.producer import produce
from streams.admin import ensure_topics
from streams.kafka import client_options
from streams.sender import ProduceStats, make_producer
from streams.topics import raw_topic, topic_specs

START = datetime(2025, 3, 12, 1, 0, tzinfo=UTC)  # a Wednesday, 08:00 in Quang Ninh


def generation(entities: int, seconds: int) -> tuple[int, float, float]:
    """(events, setup seconds, generation seconds) for ``seconds`` of simulated time."""
    started = time.perf_counter()
    simulation = Simulation(SimConfig(start=START, entities=entities, duration_s=seconds))
    built = time.perf_counter()
    events = sum(len(b) for b in simulation.batches())
    return events, built - started, time.perf_counter() - built


def pregenerate(target: int) -> list[Batch]:
    """At least ``target`` events of the default city, in batches."""
    out: list[Batch] = []
    count = 0
    for batch in Simulation(SimConfig(start=START, entities=20_000)).batches():
        out.append(batch)
        count += len(batch)
        if count >= target:
            break
    return out


async def baseline(settings: Settings, batches: list[Batch]) -> float:
    """Events/s of a plain aiokafka producer sending the same records one ``send`` at a time."""
    producer = AIOKafkaProducer(
        acks="all", linger_ms=20, max_batch_size=1024 * 1024, **client_options(settings)
    )
    await producer.start()
    topics = {d: raw_topic(settings, d) for d in DOMAINS}
    started, futures, count = time.perf_counter(), [], 0
    try:
        for batch in batches:
            topic = topics[batch.domain]
            for key, value, ts in zip(batch.keys, batch.values, batch.times, strict=True):
                futures.append(await producer.send(topic, value, key=key, timestamp_ms=ts))
            count += len(batch)
            if len(futures) > 50_000:
                await asyncio.gather(*futures)
                futures.clear()
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return count / (time.perf_counter() - started)


async def ours(settings: Settings, batches: list[Batch]) -> tuple[float, ProduceStats]:
    """Events/s of the simulator's batch producer on the same records."""
    producer = make_producer(settings)
    await producer.start()
    topics = {d: raw_topic(settings, d) for d in DOMAINS}
    started = time.perf_counter()
    try:
        stats = await produce(producer, topics, batches, clock=SimClock(START, speed=None))
    finally:
        await producer.stop()
    return stats.total / (time.perf_counter() - started), stats


async def end_to_end(settings: Settings, seconds: int) -> tuple[float, ProduceStats]:
    """Events/s generating and producing together (``ioc simulate --speed 0``)."""
    simulation = Simulation(SimConfig(start=START, entities=20_000, duration_s=seconds))
    producer = make_producer(settings)
    await producer.start()
    topics = {d: raw_topic(settings, d) for d in DOMAINS}
    started = time.perf_counter()
    try:
        stats = await produce(
            producer, topics, simulation.batches(), clock=SimClock(START, speed=None)
        )
    finally:
        await producer.stop()
    return stats.total / (time.perf_counter() - started), stats


async def kafka_part(events: int) -> None:
    settings = Settings(namespace=f"bench_{uuid.uuid4().hex[:8]}")
    await ensure_topics(settings)
    batches = pregenerate(events)
    count = sum(len(b) for b in batches)
    size = sum(len(v) for b in batches for v in b.values) / count
    try:
        rate_base = await baseline(settings, batches)
        rate_ours, stats = await ours(settings, batches)
        rate_e2e, stats_e2e = await end_to_end(settings, seconds=250)
    finally:
        admin = AIOKafkaAdminClient(**client_options(settings))
        await admin.start()
        await admin.delete_topics([s.name for s in topic_specs(settings, DOMAINS)])
        await admin.close()
    print(
        f"payloads: {count:,} events, mean value {size:.0f} bytes, "
        f"{settings.kafka.partitions} partitions"
    )
    print(f"baseline aiokafka send():        {rate_base:12,.0f} events/s")
    print(
        f"simulator batch producer:        {rate_ours:12,.0f} events/s  errors {stats.total_errors}"
    )
    print(f"ratio simulator / baseline:      {rate_ours / rate_base:12.2f}")
    print(
        f"generate + produce (end to end): {rate_e2e:12,.0f} events/s  ({stats_e2e.total:,} events)"
    )


def main() -> None:
    """Run both parts and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--no-kafka", action="store_true")
    args = parser.parse_args()
    commit = commit_id()
    print(
        f"commit {commit}, {platform.python_implementation()} {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} cores"
    )
    for entities, seconds in ((2000, 3600), (20_000, 300), (100_000, 120)):
        n, setup, spent = generation(entities, seconds)
        print(
            f"generate {entities:>7,} entities: {n:>9,} events in {spent:5.2f} s = "
            f"{n / spent:10,.0f} events/s (model and templates built in {setup:.2f} s)"
        )
    if not args.no_kafka:
        asyncio.run(kafka_part(args.events))


if __name__ == "__main__":
    main()
