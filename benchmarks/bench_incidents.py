"""Incident tier: alert transitions/s over a backlog, and alert -> incident delay.

    .venv/bin/python -m benchmarks.bench_incidents [--transitions 5000] [--entities 2000]
        [--rates 5,50] [--seconds 60] [--every 10] [--timeout 240] [--skip-alone]

About 4 minutes with the defaults. The backlog is 5,000 transitions, not more, because
the tier's time per transition grows with the alerts its places hold: 20,000 took it 14
minutes here; for that, raise ``--timeout`` (seconds to catch up) and add ``--skip-alone``.
A fresh sandbox namespace (topics only: the tier uses no database), deleted at the end.

1. Throughput: a storm backlog of alert transitions (CloudEvents as the worker publishes
   them on ``ioc.alerts``) is produced, then read by a plain aiokafka consume-and-decode
   loop (baseline), correlated in this process with the project's ``Place`` (no Kafka,
   no Faust), and taken by one ``ioc incidents`` process, timed from its "[^Worker]:
   Ready" line until its group has committed ``ioc.alerts`` to the end ("forwarded")
   and its repartition topics to the offsets they had then ("correlated").
2. Delay: with the tier caught up, transitions at each rate for ``--seconds``; every
   ``--every``-th a ``traffic-flooding`` open in a commune with no flooding incident
   open, which opens one at once: timed from the producer to the incident's ``open``
   naming it on ``ioc.incidents``.

benchmarks/RESULTS.md ("Incident tier") has the details and the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from benchmarks.provenance import commit_id
from city.model import City, Entity, build_city
from ioc.settings import Settings
from streams.admin import ensure_topics
from streams.alerts import AnyRuleModel, load_rules
from streams.alerts.transitions import alert_id, transition
from streams.incidents.app import LEVELS
from streams.incidents.correlate import Place, fact_of
from streams.incidents.rules import CorrelationRule, load_correlation_rules
from streams.kafka import client_options
from streams.topics import ALERTS_TOPIC, INCIDENTS_TOPIC

ROOT = Path(__file__).resolve().parents[1]
MINUTE_MS = 60_000
#: Event time of the backlog's first minute: typhoon Yagi's landfall day.
START_MS = int(datetime(2024, 9, 7, 5, 0, tzinfo=UTC).timestamp() * 1000)
#: The rule whose opens are timed, and the alert rule that opens it alone.
PROBE_INCIDENT, PROBE_ALERT = "flooding", "traffic-flooding"
NAMED_SHARE, NEVER_RESOLVED = 0.75, 0.05
#: Alerts of the delay phase's background kept open at once.
OPEN_FILLERS = 30


@dataclass(frozen=True, slots=True)
class Record:
    """One alert transition for ``ioc.alerts``: keyed by entity, Kafka time = event time."""

    key: bytes
    time_ms: int
    value: bytes
    alert_id: str


class Storm:
    """Alert transitions of the city's entities, as the stream worker publishes them."""

    def __init__(self, city: City, *, seed: int) -> None:
        self.rng = random.Random(seed)
        self.rules: dict[str, AnyRuleModel] = {r.id: r for r in load_rules()}
        self.correlation = load_correlation_rules()
        self.flooding = next(r for r in self.correlation if r.id == PROBE_INCIDENT)
        named = {
            i
            for i, r in self.rules.items()
            if any(
                c.relates(rule_id=i, domain=r.domain, severity=r.severity) for c in self.correlation
            )
        }
        self.named, self.other = sorted(named), sorted(set(self.rules) - named)
        self.entities = {d: city.in_domain(d) for d in {r.domain for r in self.rules.values()}}

    def floods(self, rule_id: str) -> bool:
        """Whether the probe's incident rule takes alerts of this rule."""
        r = self.rules[rule_id]
        return self.flooding.relates(rule_id=rule_id, domain=r.domain, severity=r.severity)

    def pick(self, *, flooding: bool = True) -> tuple[str, Entity]:
        """A rule (three in four named by a correlation rule) and an entity of its domain;
        without ``flooding``, none the flooding rule takes."""
        while True:
            pool = self.named if self.rng.random() < NAMED_SHARE else self.other
            rule_id = self.rng.choice(pool)
            if flooding or not self.floods(rule_id):
                return rule_id, self.rng.choice(self.entities[self.rules[rule_id].domain])

    def record(
        self, rule_id: str, entity: Entity, *, resolve: bool, opened_ms: int, at_ms: int
    ) -> Record:
        made = alert_id(rule_id=rule_id, entity_id=entity.id, opened_minute_ms=opened_ms)
        alert = transition(
            self.rules[rule_id],
            alert_id=made,
            entity_id=entity.id,
            state="resolve" if resolve else "open",
            opened_ms=opened_ms,
            since_ms=opened_ms - MINUTE_MS,
            at_ms=at_ms,
            values={},
        ).model_copy(update={"commune_id": entity.commune, "zone_id": entity.zone})
        return Record(entity.id.encode(), at_ms, alert.to_json(), made)


def backlog(storm: Storm, count: int, *, span_minutes: int) -> tuple[list[Record], set[str]]:
    """About ``count`` transitions in event-time order, and the communes left with an
    unresolved alert the flooding rule takes (their flooding incidents never close)."""
    records: list[Record] = []
    stuck: set[str] = set()
    used: set[tuple[str, str, int]] = set()
    while len(records) < count:
        rule_id, entity = storm.pick()
        opened = START_MS + storm.rng.randrange(span_minutes) * MINUTE_MS
        if (rule_id, entity.id, opened) in used:
            continue
        used.add((rule_id, entity.id, opened))
        records.append(storm.record(rule_id, entity, resolve=False, opened_ms=opened, at_ms=opened))
        if storm.rng.random() < NEVER_RESOLVED:
            if storm.floods(rule_id):
                stuck.add(entity.commune)
            continue
        resolved = opened + storm.rng.randrange(5, 91) * MINUTE_MS
        records.append(
            storm.record(rule_id, entity, resolve=True, opened_ms=opened, at_ms=resolved)
        )
    records.sort(key=lambda r: (r.time_ms, r.alert_id))
    return records, stuck


class Probes:
    """The delay phase's transitions, one per call: a probe (a traffic-flooding open in
    the next free commune, round-robin), its resolve, then background alerts."""

    def __init__(self, storm: Storm, communes: Sequence[str], *, every: int, start_ms: int) -> None:
        self.storm, self.every, self.start_ms = storm, every, start_ms
        roads = storm.entities["traffic"]
        self.probes = [next(e for e in roads if e.commune == c) for c in communes]
        # A commune's next probe must open after its last one's incident closed: the
        # quiet time after its resolve (one step later), with a tenth to spare.
        quiet_ms = storm.flooding.quiet_minutes * MINUTE_MS
        rounds = every * len(self.probes) - 1
        self.step_ms = math.ceil(1.1 * quiet_ms / rounds / 1000) * 1000
        self.slot = 0
        self.last: tuple[Entity, int] | None = None
        self.open: deque[tuple[str, Entity, int]] = deque()

    def next(self) -> tuple[Record, bool]:
        """The next transition, and whether it is a probe."""
        i, self.slot = self.slot, self.slot + 1
        at = opened = self.start_ms + i * self.step_ms
        probe, resolve = i % self.every == 0, False
        if probe:
            rule_id, entity = PROBE_ALERT, self.probes[(i // self.every) % len(self.probes)]
            self.last = (entity, at)
        elif i % self.every == 1 and self.last is not None:
            (entity, opened), rule_id, resolve = self.last, PROBE_ALERT, True
        elif len(self.open) >= OPEN_FILLERS and i % 2:
            (rule_id, entity, opened), resolve = self.open.popleft(), True
        else:
            rule_id, entity = self.storm.pick(flooding=False)
            self.open.append((rule_id, entity, at))
        record = self.storm.record(rule_id, entity, resolve=resolve, opened_ms=opened, at_ms=at)
        return record, probe


def partitions(settings: Settings, topic: str) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for p in range(settings.kafka.partitions)]


async def produce(settings: Settings, records: Sequence[Record]) -> None:
    producer = AIOKafkaProducer(
        acks="all", linger_ms=20, max_batch_size=512 * 1024, **client_options(settings)
    )
    await producer.start()
    topic = settings.topic(ALERTS_TOPIC)
    try:
        sent = [
            await producer.send(topic, r.value, key=r.key, timestamp_ms=r.time_ms) for r in records
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def plain_baseline(settings: Settings, expect: int) -> float:
    """Records/s of a plain aiokafka loop fetching and decoding (orjson) the backlog."""
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **client_options(settings))
    await consumer.start()
    tps = partitions(settings, settings.topic(ALERTS_TOPIC))
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    seen = 0
    started = time.perf_counter()
    try:
        while seen < expect:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for messages in batch.values():
                for message in messages:
                    orjson.loads(message.value)
                    seen += 1
    finally:
        await consumer.stop()
    return seen / (time.perf_counter() - started)


def correlation_alone(records: Sequence[Record], rules: Sequence[CorrelationRule]) -> float:
    """Records/s of the agents' per-record work in this process: decode, the place from
    its table value, take, step, the value back; both levels, no Kafka, no Faust."""
    by_level = {level: [r for r in rules if r.level == level] for level in LEVELS}
    tables: dict[tuple[str, str], dict[str, object]] = {}
    started = time.perf_counter()
    for record in records:
        for level in LEVELS:
            data = orjson.loads(record.value)["data"]
            area, fact = data.get(f"{level}_id"), fact_of(data)
            if not area or fact is None:
                continue
            place = Place(area, level, tables.get((level, area)))
            place.take(fact, at_ms=iso_ms(data["updated_at"]))
            place.step(by_level[level])
            tables[level, area] = place.to_value()
    return len(records) / (time.perf_counter() - started)


def iso_ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


class Tier:
    """One ``ioc incidents`` process of the namespace, logging to a file of its own."""

    def __init__(self, settings: Settings, logs: Path) -> None:
        self.settings, self.log = settings, logs / "incidents.log"
        self.env = {
            **os.environ,
            "IOC_NAMESPACE": settings.namespace,
            "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
            # Faust's data directory: not in the checkout.
            "IOC_STATE_DIR": str(logs),
        }
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> tuple[float, float]:
        """Start it; return (time started, time its Ready line appeared), perf_counter."""
        with self.log.open("wb") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "ioc.cli",
                "incidents",
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        started = time.perf_counter()
        while time.perf_counter() - started < 120:
            if b"[^Worker]: Ready" in self.log.read_bytes():
                return started, time.perf_counter()
            if self.proc.returncode is not None:
                break
            await asyncio.sleep(0.05)
        raise RuntimeError(f"ioc incidents did not get ready; see {self.log}")

    def peak_rss_mb(self) -> float:
        """Its resident memory's high-water mark (psutil is not installed)."""
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return math.nan

    def cpu_s(self) -> float:
        """User + system CPU seconds so far."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.terminate()
        try:
            await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


async def caught_up(settings: Settings, *, within_s: float) -> tuple[float, float]:
    """Wait until the tier's group has committed ioc.alerts to its end, then its
    repartition topics to the ends they had at that moment; return both times."""
    group = f"ioc-{settings.namespace}-incidents"
    alerts = settings.topic(ALERTS_TOPIC)
    repartition = [tp for lv in LEVELS for tp in partitions(settings, f"{alerts}.{lv}s")]
    admin = AIOKafkaAdminClient(**client_options(settings))
    ends = AIOKafkaConsumer(**client_options(settings))
    await admin.start()
    await ends.start()
    try:
        target = await ends.end_offsets(partitions(settings, alerts))
        forwarded: float | None = None
        started = shown = time.perf_counter()
        while time.perf_counter() < started + within_s:
            committed = await admin.list_consumer_group_offsets(group)
            done = {tp: c.offset for tp, c in committed.items()}
            if time.perf_counter() - shown >= 30:
                shown = time.perf_counter()
                taken = sum(done.get(tp, 0) for tp in repartition)
                print(f"  {shown - started:4.0f} s: {taken:,} repartitioned records done")
            if all(done.get(tp, 0) >= end for tp, end in target.items()):
                if forwarded is None:
                    forwarded = time.perf_counter()
                    target = await ends.end_offsets(repartition)
                else:
                    return forwarded, time.perf_counter()
            await asyncio.sleep(0.1)
        raise RuntimeError(f"the incident tier did not catch up within {within_s:.0f} s")
    finally:
        await ends.stop()
        await admin.close()


@dataclass
class Delays:
    """What one delay phase measured."""

    rate: float
    probes: int
    #: Delays in the order the probes were sent (missing ones left out).
    delays_ms: list[float]
    cpu_cores: float

    def trend(self) -> tuple[float, float]:
        """Median delay of the first and of the last quarter of the probes sent: whether
        the tier fell behind during the phase."""
        quarter = max(1, len(self.delays_ms) // 4)
        first, last = self.delays_ms[:quarter], self.delays_ms[-quarter:]
        return statistics.median(first), statistics.median(last)


async def delay_phase(
    settings: Settings, tier: Tier, probes: Probes, *, rate: float, seconds: float
) -> Delays:
    """Publish ``rate`` transitions/s for ``seconds``; time each probe to its incident."""
    reader = AIOKafkaConsumer(enable_auto_commit=False, **client_options(settings))
    producer = AIOKafkaProducer(acks="all", **client_options(settings))
    await reader.start()
    await producer.start()
    tps = partitions(settings, settings.topic(INCIDENTS_TOPIC))
    reader.assign(tps)
    await reader.seek_to_end(*tps)
    for tp in tps:
        await reader.position(tp)  # pinned now: what the phase makes comes after
    sent: dict[str, float] = {}
    delays: dict[str, float] = {}
    sending, complete = True, asyncio.Event()

    async def read() -> None:
        while True:
            batch = await reader.getmany(timeout_ms=100)
            now = time.perf_counter()
            for messages in batch.values():
                for message in messages:
                    data = orjson.loads(message.value)["data"]
                    if data.get("state") != "open" or data.get("rule_id") != PROBE_INCIDENT:
                        continue
                    for made in data["alerts"]:
                        if made in sent and made not in delays:
                            delays[made] = (now - sent[made]) * 1000
            if not sending and len(delays) == len(sent):
                complete.set()

    reading = asyncio.create_task(read())
    alerts = settings.topic(ALERTS_TOPIC)
    cpu = tier.cpu_s()
    started = time.perf_counter()
    try:
        for n in range(round(rate * seconds)):
            await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))
            record, probe = probes.next()
            if probe:
                sent[record.alert_id] = time.perf_counter()
            await producer.send(alerts, record.value, key=record.key, timestamp_ms=record.time_ms)
        await producer.flush()
        cores = (tier.cpu_s() - cpu) / (time.perf_counter() - started)
        sending = False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(complete.wait(), 30)
    finally:
        reading.cancel()
        await producer.stop()
        await reader.stop()
    return Delays(rate, len(sent), [delays[a] for a in sent if a in delays], cores)


def quantile(ordered: Sequence[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)] if ordered else math.nan


async def drop_topics(settings: Settings) -> None:
    """Delete the namespace's topics and the Faust app's own (its leader topic)."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        app = f"ioc-{settings.namespace}-incidents"
        names = [
            n
            for n in await admin.list_topics()
            if n.startswith(settings.topic_prefix) or n.startswith(app)
        ]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()


async def run(args: argparse.Namespace) -> None:
    settings = Settings(state_dir=ROOT / ".ioc", namespace=f"bench_{uuid.uuid4().hex[:8]}")
    city = build_city(args.entities, seed=0)
    storm = Storm(city, seed=args.seed)
    records, stuck = backlog(storm, args.transitions, span_minutes=args.span_minutes)
    free = [c.id for c in city.communes if c.id not in stuck]
    free = [c for c in free if any(e.commune == c for e in storm.entities["traffic"])]
    print(
        f"namespace {settings.namespace}: {len(records):,} transitions, {args.entities:,} "
        f"entities, {len(city.communes)} communes ({len(free)} free for probes)",
        flush=True,
    )
    logs = Path(tempfile.mkdtemp(prefix="bench_incidents_"))
    tier = Tier(settings, logs)
    try:
        await ensure_topics(settings)
        await produce(settings, records)
        plain = await plain_baseline(settings, len(records))
        print(f"transitions/s: plain consume + orjson (baseline): {plain:10,.0f}", flush=True)
        if not args.skip_alone:
            alone = await asyncio.to_thread(correlation_alone, records, storm.correlation)
            print(f"transitions/s: correlation alone, this process:   {alone:10,.0f}", flush=True)
        load = os.getloadavg()[0]
        started, ready = await tier.start()
        cpu = tier.cpu_s()
        forwarded, correlated = await caught_up(settings, within_s=args.timeout)
        n, cores = len(records), (tier.cpu_s() - cpu) / (correlated - ready)
        print(
            f"ioc incidents: Ready {ready - started:.1f} s after its start; {cores:.2f} cores, "
            f"load {load:.1f}-{os.getloadavg()[0]:.1f}; transitions/s:",
            flush=True,
        )
        for what, begin, end in (
            ("forwarded (ioc.alerts committed), from Ready", ready, forwarded),
            ("correlated (repartition topics), from Ready", ready, correlated),
            ("correlated, from process start", started, correlated),
        ):
            print(f"  {what + ':':48} {n / (end - begin):8,.0f} ({end - begin:.1f} s)")
        print(f"  peak RSS {tier.peak_rss_mb():.0f} MB", flush=True)
        probes = Probes(
            storm,
            free,
            every=args.every,
            start_ms=START_MS + (args.span_minutes + 12 * 60) * MINUTE_MS,
        )
        print(f"delay phases: event time {probes.step_ms / 1000:.0f} s per transition")
        for rate in (float(r) for r in args.rates.split(",")):
            # Each phase starts with the tier caught up on the one before.
            await caught_up(settings, within_s=args.timeout)
            load = os.getloadavg()[0]
            got = await delay_phase(settings, tier, probes, rate=rate, seconds=args.seconds)
            d = sorted(got.delays_ms)
            early, late = got.trend() if d else (math.nan, math.nan)
            print(
                f"  {rate:g}/s: {len(d)} of {got.probes} probes, ms p50 {quantile(d, 0.5):,.0f} "
                f"p95 {quantile(d, 0.95):,.0f} p99 {quantile(d, 0.99):,.0f} "
                f"max {max(d, default=math.nan):,.0f} (p50 of the first / last quarter "
                f"{early:,.0f} / {late:,.0f}); tier cpu {got.cpu_cores:.2f} cores, "
                f"load {load:.1f}-{os.getloadavg()[0]:.1f}",
                flush=True,
            )
        print(f"peak RSS of the tier: {tier.peak_rss_mb():.0f} MB; log {tier.log}")
    finally:
        await tier.stop()
        await drop_topics(settings)


def main() -> None:
    """Run both measurements and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--transitions", type=int, default=5_000, help="backlog size")
    parser.add_argument("--entities", type=int, default=2_000)
    parser.add_argument("--span-minutes", type=int, default=240, help="event time of the backlog")
    parser.add_argument("--rates", default="5,50", help="transitions/s, one delay phase each")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--every", type=int, default=10, help="one probe per this many")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=240, help="seconds to catch up")
    parser.add_argument("--skip-alone", action="store_true", help="no in-process correlation")
    args = parser.parse_args()
    if args.every < 3:
        parser.error("--every must be at least 3 (a probe, its resolve, background)")
    print(
        f"commit {commit_id()}, {platform.python_implementation()} {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} cores",
        flush=True,
    )
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
