"""Stream worker throughput: raw topic -> committed database rows, against a plain baseline.

    .venv/bin/python -m benchmarks.bench_streams [--events 200000] [--entities 2000]

Both measurements read the same backlog of flow events from the same local broker in
the same run:

- baseline: a plain aiokafka consumer that fetches and ``orjson.loads`` every record;
- the same loop validating every record with the event contract (``contract.envelope.decode``),
  the floor of per-event work any exact worker must do;
- worker: ``ioc worker`` (aggregator + sink), one or more processes, started on the
  backlog and timed until PostgreSQL holds every event (sum of counts = events
  produced): from process start, and in steady state (from 20 % to 80 % of the events).

Prints one Markdown table row for ``benchmarks/RESULTS.md``, with the worker's peak RSS.

    .venv/bin/python -m benchmarks.bench_streams --misplaced 0,0.1,1

instead times one worker over the same backlog with that share of its records produced
to a partition other than their key's (as a librdkafka client with its default
partitioner would): records accounted for per second (applied or dead-lettered as
``wrong_partition``), from the worker's own counters, one row per share, in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from benchmarks.provenance import commit_id
from contract.envelope import decode, encode
from ioc.db.migrate import migrate
from ioc.infra import KafkaBroker, PostgresCluster
from ioc.settings import Settings
from streams.admin import ensure_topics
from streams.kafka import client_options
from streams.partitions import home_partition
from streams.topics import raw_topic
from tests.utils.namespaces import drop_namespace

ROOT = Path(__file__).resolve().parents[1]
START = datetime(2024, 9, 7, 0, 0, tzinfo=UTC)


def backlog(events: int, entities: int) -> list[tuple[bytes, int, bytes]]:
    """Flow events spread evenly over entities, one reading per entity every 10 s."""
    out = []
    names = [f"b-ix-{i:05d}" for i in range(entities)]
    for n in range(events):
        entity = names[n % entities]
        at = START + timedelta(seconds=10 * (n // entities))
        value = encode(
            event_type="city.traffic.flow.v1",
            subject=entity,
            time=at,
            data={
                "vehicles": n % 50,
                "avg_speed_kmh": 40.0,
                "occupancy_pct": 20.0,
                "interval_s": 10,
            },
            event_id=f"b-{n}",
            source="/bench",
        )
        out.append((entity.encode(), int(at.timestamp() * 1000), value))
    return out


async def produce(
    settings: Settings, records: list[tuple[bytes, int, bytes]], *, misplaced: float = 0.0
) -> int:
    """Produce the backlog; a ``misplaced`` share of the records (every tenth for 0.1)
    goes to the partition after its key's. Returns how many went to their key's."""
    producer = AIOKafkaProducer(
        acks="all", linger_ms=20, max_batch_size=512 * 1024, **client_options(settings)
    )
    await producer.start()
    partitions = settings.kafka.partitions
    at_home = 0
    try:
        topic = raw_topic(settings, "traffic")
        futures = []
        for n, (key, ts, value) in enumerate(records):
            away = misplaced >= 1 or (misplaced > 0 and n % round(1 / misplaced) == 0)
            partition = (home_partition(key, partitions) + 1) % partitions if away else None
            at_home += not away
            futures.append(
                await producer.send(topic, value, key=key, timestamp_ms=ts, partition=partition)
            )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return at_home


async def baseline(settings: Settings, expect: int, *, validate: bool = False) -> float:
    """Events/s of a plain aiokafka consume-and-decode loop over the backlog; with
    ``validate``, each record also goes through the event contract (contract.envelope)."""
    consumer = AIOKafkaConsumer(
        raw_topic(settings, "traffic"),
        group_id=f"bench-baseline-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **client_options(settings),
    )
    await consumer.start()
    seen = 0
    started = time.perf_counter()
    try:
        while seen < expect:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for messages in batch.values():
                for message in messages:
                    if validate:
                        decode(message.value, key=message.key, domain="traffic")
                    else:
                        orjson.loads(message.value)
                    seen += 1
        await consumer.commit()
    finally:
        await consumer.stop()
    return seen / (time.perf_counter() - started)


async def events_written(settings: Settings) -> int:
    """Events the database accounts for: the sum of per-minute counts of one metric."""
    conn = await asyncpg.connect(settings.dsn)
    try:
        value = await conn.fetchval(
            f'SELECT coalesce(sum(count), 0) FROM "{settings.db_schema}".metric_minute '
            "WHERE metric = 'vehicles'"
        )
        return int(value)
    finally:
        await conn.close()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def run_workers(
    settings: Settings, expect: int, logs: Path, *, workers: int = 1
) -> tuple[float, float, float]:
    """Start ``workers`` worker processes on the backlog; return (events/s from process
    start to the last row, sustained events/s while the database went from 20 % to 80 %
    of the events, largest peak RSS MB)."""
    procs = []
    for n in range(workers):
        env = {
            **os.environ,
            "IOC_NAMESPACE": settings.namespace,
            "IOC_KAFKA__PARTITIONS": str(settings.kafka.partitions),
            "IOC_STREAMS__WEB_PORT": str(16066 + n),
        }
        path = logs / f"worker-{n}.log"
        with path.open("wb") as out:
            procs.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "ioc.cli",
                    "worker",
                    "--loglevel",
                    "warning",
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=ROOT,
                )
            )
    try:
        started = time.perf_counter()
        marks: list[tuple[float, int]] = []  # (time, events written), sampled
        peak = 0.0
        while time.perf_counter() - started < 900:
            await asyncio.sleep(0.1)
            peak = max(peak, *(peak_rss_mb(p.pid) for p in procs))
            written = await events_written(settings)
            marks.append((time.perf_counter(), written))
            if written >= expect:
                break
        if not marks or marks[-1][1] < expect:
            raise RuntimeError(f"workers did not finish; see {logs}")
        # From process start, startup (group join, recovery) is timed too: it is part of
        # what an operator waits for. Between 20 % and 80 % it is the steady state.
        low = next(m for m in marks if m[1] >= 0.2 * expect)
        high = next(m for m in marks if m[1] >= 0.8 * expect)
        sustained = (high[1] - low[1]) / (high[0] - low[0])
        return expect / (marks[-1][0] - started), sustained, peak
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.terminate()
            await proc.wait()


def counted(port: int) -> tuple[float, float]:
    """(records consumed, records dead-lettered) by the worker serving /metrics on ``port``."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    consumed = dead = 0.0
    for line in text.splitlines():
        if line.startswith("ioc_events_consumed_total"):
            consumed += float(line.rsplit(" ", 1)[1])
        elif line.startswith("ioc_events_deadlettered_total"):
            dead += float(line.rsplit(" ", 1)[1])
    return consumed, dead


async def misplaced_run(settings: Settings, expect: int, logs: Path) -> tuple[float, float, float]:
    """One worker over the backlog until its counters account for every record; return
    (records/s from process start, records/s from 20 % to 80 %, records dead-lettered)."""
    port = 16066
    env = {
        **os.environ,
        "IOC_NAMESPACE": settings.namespace,
        "IOC_KAFKA__PARTITIONS": str(settings.kafka.partitions),
        "IOC_STREAMS__WEB_PORT": str(port),
    }
    with (logs / "worker.log").open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ioc.cli",
            "worker",
            "--loglevel",
            "warning",
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    try:
        started = time.perf_counter()
        marks: list[tuple[float, float]] = []
        dead = 0.0
        while time.perf_counter() - started < 900:
            await asyncio.sleep(0.1)
            try:
                consumed, dead = await asyncio.to_thread(counted, port)
            except httpx.HTTPError:
                continue  # not serving yet
            marks.append((time.perf_counter(), consumed))
            if consumed >= expect:
                break
        if not marks or marks[-1][1] < expect:
            raise RuntimeError(f"the worker did not finish; see {logs}")
        low = next(m for m in marks if m[1] >= 0.2 * expect)
        high = next(m for m in marks if m[1] >= 0.8 * expect)
        return expect / (marks[-1][0] - started), (high[1] - low[1]) / (high[0] - low[0]), dead
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--entities", type=int, default=2_000)
    parser.add_argument(
        "--workers",
        default="1",
        help="worker processes; a comma-separated list runs one measurement per count",
    )
    parser.add_argument("--partitions", type=int, default=None)
    parser.add_argument(
        "--misplaced",
        default=None,
        help="shares of records on a wrong partition (0,0.1,1): one worker, one row each",
    )
    args = parser.parse_args()
    base = Settings(state_dir=ROOT / ".ioc")
    KafkaBroker(base).up()
    PostgresCluster(base).up()
    if args.partitions:
        base = base.model_copy(
            update={"kafka": base.kafka.model_copy(update={"partitions": args.partitions})}
        )
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    records = backlog(args.events, args.entities)
    if args.misplaced is not None:
        for share in (float(x) for x in args.misplaced.split(",")):
            settings = base.model_copy(update={"namespace": f"bench_{uuid.uuid4().hex[:8]}"})
            await migrate(settings)
            await ensure_topics(settings)
            at_home = await produce(settings, records, misplaced=share)
            rate, sustained, dead = await misplaced_run(
                settings, args.events, Path(tempfile.mkdtemp())
            )
            await drop_namespace(settings)
            assert dead == args.events - at_home, (dead, at_home)
            print(
                f"| {commit_id()} | {machine} | {share:.0%} | {args.events:,} "
                f"| {at_home:,} | {dead:,.0f} | {rate:,.0f} | {sustained:,.0f} |",
                flush=True,
            )
        return
    for workers in (int(n) for n in args.workers.split(",")):
        # A namespace of its own per measurement: same backlog, fresh groups and tables.
        settings = base.model_copy(update={"namespace": f"bench_{uuid.uuid4().hex[:8]}"})
        await migrate(settings)
        await ensure_topics(settings)
        await produce(settings, records)
        base_rate = await baseline(settings, args.events)
        validated_rate = await baseline(settings, args.events, validate=True)
        logs = Path(tempfile.mkdtemp())
        rate, sustained, peak = await run_workers(settings, args.events, logs, workers=workers)
        await drop_namespace(settings)
        print(
            f"| {commit_id()} | {machine} | {settings.kafka.partitions} | {workers} "
            f"| {args.events:,} | {args.entities:,} | {base_rate:,.0f} | {validated_rate:,.0f} "
            f"| {rate:,.0f} | {sustained:,.0f} | {sustained / base_rate:.2f} | {peak:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    asyncio.run(main())
