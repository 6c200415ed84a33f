"""A broker killed mid-stream: the throughput dip and the time to recover.

    .venv/bin/python -m benchmarks.bench_broker_failover [--entities 2000] [--speed 40]
        [--minutes 120] [--outage-s 10]

A three-broker KRaft cluster of its own (``ioc.infra.kafka``: replication 3,
``min.insync.replicas=2``) on free ports beside the shared broker, a sandbox namespace on
it, one ``ioc worker``, and the simulated city fed by the simulator's own producer path
(idempotent, ``acks=all``) at ``--speed`` times real time. Once the flow is steady each
broker in turn is killed with -9 and restarted ``--outage-s`` later; the next kill waits
until every replica is back in sync.

Sampled every second: events the worker has folded (its ``ioc_events_processed_total``)
and events handed to the producer. Per kill: the steady rate in the 20 s before it, the
lowest one-second rate after it, how long the folded rate stayed under half the steady
one, and the time until the worker had caught up (its lag back to the lag before the
kill plus one second of flow). At the end the database totals must equal the truth and
no event may be dead-lettered; the run fails otherwise.

Last, brokers 1 and 2 are killed together for ``--outage-s``: fewer in-sync replicas than
``min.insync.replicas`` and no controller quorum, so writes stop; the producer pauses
(reported as ``stalled_s``) and the flow resumes once they are back.

Prints a Markdown table for ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from benchmarks.provenance import commit_id
from ioc.db.migrate import migrate
from ioc.infra import PostgresCluster
from ioc.settings import Settings
from simulators.clock import SimClock
from simulators.engine import SimConfig, Simulation
from simulators.producer import produce
from streams.admin import ensure_topics
from streams.sender import ProduceStats, make_producer
from streams.topics import DEADLETTER_TOPIC, raw_topic
from tests.utils.cluster import Cluster, kafka_cluster
from tests.utils.eventually import eventually
from tests.utils.kafka import records_in
from tests.utils.namespaces import Namespace, drop_namespace
from tests.utils.pipeline import START
from tests.utils.services import Process, start_worker
from tests.utils.truth import database_rows, events_in_database, truth_of

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Kill:
    node: int
    at_s: float
    steady: float = 0.0
    lowest: float = 0.0
    under_half_s: float = 0.0
    producer_paused_s: float = 0.0
    recovered_s: float | None = None
    in_sync_s: float = 0.0


class Sampler:
    """Once a second: (time, events folded by the worker, events handed to Kafka). A
    second whose scrape of the worker fails is left out, not counted as nothing folded."""

    def __init__(self, worker: Process, stats: ProduceStats) -> None:
        self.worker, self.stats = worker, stats
        self.samples: list[tuple[float, float, int]] = []
        self.missed = 0
        self.began = time.monotonic()

    async def run(self) -> None:
        while True:
            try:
                folded = await asyncio.to_thread(self.worker.total, "ioc_events_processed_total")
            except Exception:  # the worker's endpoint did not answer in time
                self.missed += 1
            else:
                self.samples.append((time.monotonic() - self.began, folded, self.stats.total))
            await asyncio.sleep(1.0)

    def rates(self) -> list[tuple[float, float, float, float]]:
        """(time, folded per second, handed per second, lag in events) between
        consecutive samples."""
        out = []
        for (t0, f0, h0), (t1, f1, h1) in zip(self.samples, self.samples[1:], strict=False):
            out.append((t1, (f1 - f0) / (t1 - t0), (h1 - h0) / (t1 - t0), h1 - f1))
        return out


def judge(kill: Kill, rates: list[tuple[float, float, float, float]], *, until_s: float) -> None:
    """The kill's figures from the samples between 20 s before it and ``until_s`` (the
    next kill, or 120 s after)."""
    before = [r for r in rates if kill.at_s - 20 <= r[0] < kill.at_s]
    after = [r for r in rates if kill.at_s <= r[0] < until_s]
    kill.steady = statistics.median(r[1] for r in before) if before else 0.0
    handed = statistics.median(r[2] for r in before) if before else 0.0
    normal_lag = (statistics.median(r[3] for r in before) if before else 0.0) + kill.steady
    kill.lowest = min((r[1] for r in after), default=0.0)
    kill.under_half_s = sum(1.0 for r in after if r[1] < kill.steady / 2)
    kill.producer_paused_s = sum(1.0 for r in after if r[2] < handed / 2)
    behind = [r[0] for r in after if r[3] > normal_lag]
    kill.recovered_s = (behind[-1] - kill.at_s + 1) if behind else 0.0
    if behind and behind[-1] >= after[-1][0]:
        kill.recovered_s = None  # still behind at the end of the window


async def run(args: argparse.Namespace) -> None:
    infra = Settings(state_dir=ROOT / ".ioc")
    assert PostgresCluster(infra).status().state in ("running", "external"), "./run infra up"
    config = SimConfig(start=START, entities=args.entities, seed=23, duration_s=args.minutes * 60)
    tmp = Path(tempfile.mkdtemp(prefix="ioc-failover-"))
    try:
        with kafka_cluster(infra, tmp / "state") as cluster:
            name = f"bench_failover_{uuid.uuid4().hex[:8]}"
            settings = cluster.settings.model_copy(update={"namespace": name})
            await migrate(settings)
            await ensure_topics(settings)
            env = {"IOC_NAMESPACE": name, "IOC_STATE_DIR": str(settings.state_dir)}
            namespace = Namespace(settings=settings, env={**env, **cluster.env}, logs=tmp / "logs")
            try:
                await measure(args, cluster, namespace, config)
            finally:
                await drop_namespace(settings)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


async def measure(
    args: argparse.Namespace, cluster: Cluster, namespace: Namespace, config: SimConfig
) -> None:
    settings = namespace.settings
    worker = start_worker(namespace)
    stats = ProduceStats()
    sampler = Sampler(worker, stats)
    topics = {domain: raw_topic(settings, domain) for domain in config.domains}
    producer = make_producer(settings)
    await producer.start()
    load = os.getloadavg()
    try:
        feeding = asyncio.create_task(
            produce(
                producer,
                topics,
                Simulation(config).batches(),
                clock=SimClock(config.start, speed=args.speed),
                stats=stats,
            )
        )
        sampling = asyncio.create_task(sampler.run())
        kills = []
        paused_before = 0.0
        await asyncio.sleep(args.warmup_s)
        for node in cluster.broker.nodes:
            if feeding.done():
                break
            kill = Kill(node.node_id, time.monotonic() - sampler.began)
            node.kill()
            await asyncio.sleep(args.outage_s)
            await asyncio.to_thread(node.start)
            await eventually(cluster.in_sync, within_s=300, interval_s=0.5, what="replicas in sync")
            kill.in_sync_s = time.monotonic() - sampler.began - kill.at_s
            kills.append(kill)
            await asyncio.sleep(max(0.0, args.gap_s - kill.in_sync_s))
        if not feeding.done():
            # Two brokers down: fewer in-sync replicas than min.insync.replicas, and no
            # controller quorum. Writes must stop (the producer pauses) and resume after.
            kill = Kill(0, time.monotonic() - sampler.began)
            paused_before = stats.stalled_s
            pair = cluster.broker.nodes[:2]
            for node in pair:
                node.kill()
            await asyncio.sleep(args.outage_s)
            await asyncio.gather(*(asyncio.to_thread(node.start) for node in pair))
            await eventually(cluster.in_sync, within_s=300, interval_s=0.5, what="replicas in sync")
            kill.in_sync_s = time.monotonic() - sampler.began - kill.at_s
            kills.append(kill)
        sent = await feeding
        paused_by_pair = sent.stalled_s - paused_before if kills and kills[-1].node == 0 else 0.0
        sampling.cancel()
    finally:
        await producer.stop()
    try:
        events = [e.value for e in Simulation(config).events()]
        deadline = time.monotonic() + 600
        while await events_in_database(settings) < len(events):
            assert time.monotonic() < deadline, "the database never held every event"
            await asyncio.sleep(1)
        exact = await database_rows(settings) == truth_of(events)
        dead = await records_in(settings, settings.topic(DEADLETTER_TOPIC))
    finally:
        worker.stop()
    rates = sampler.rates()
    for kill, following in zip(kills, [*kills[1:], None], strict=True):
        end_s = following.at_s if following else kill.at_s + 120
        judge(kill, rates, until_s=min(end_s, kill.at_s + 120))
    end = os.getloadavg()
    load = (max(load[0], end[0]), max(load[1], end[1]), max(load[2], end[2]))
    print(
        f"\ncommit {commit_id()}, {platform.machine()}, {os.cpu_count()} cores, load avg "
        f"(1/5/15 min, max of start and end) {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}; "
        f"{len(events):,} events at {args.speed:g}x ({sent.total / max(1.0, rates[-1][0]):,.0f}"
        f" ev/s offered on average), {args.outage_s:g} s outages; producer paused "
        f"{sent.stalled_s:.0f} s, renewed {sent.renewals}x, errors {sent.total_errors}; "
        f"database exact: {exact}; dead letters: {dead}; worker scrapes missed: "
        f"{sampler.missed}\n"
    )
    print(
        "| node killed | worker steady (ev/s) | lowest 1 s after (ev/s) | worker under half "
        "steady (s) | producer under half its rate (s) | caught up after (s) | back in sync "
        "after (s) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for kill in kills:
        recovered = f"{kill.recovered_s:.0f}" if kill.recovered_s is not None else "not yet"
        print(
            f"| {kill.node or '1 and 2 together'} | {kill.steady:,.0f} | {kill.lowest:,.0f} | "
            f"{kill.under_half_s:.0f} | {kill.producer_paused_s:.0f} | {recovered} | "
            f"{kill.in_sync_s:.0f} |"
        )
    print(f"\nproducer paused {paused_by_pair:.0f} s (reported) while two brokers were down")
    assert exact, "the database totals differ from the truth"
    assert dead == 0, f"{dead} events dead-lettered"
    assert sent.total_errors == 0, f"Kafka refused {sent.total_errors} events"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=2000)
    parser.add_argument("--speed", type=float, default=40.0)
    parser.add_argument("--minutes", type=int, default=120, help="simulated minutes")
    parser.add_argument("--outage-s", type=float, default=10.0)
    parser.add_argument("--warmup-s", type=float, default=30.0)
    parser.add_argument("--gap-s", type=float, default=40.0, help="between two kills")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
