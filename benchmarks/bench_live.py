"""Live feed latency: an event published to a raw topic until it reaches WebSocket clients.

    .venv/bin/python -m benchmarks.bench_live [--clients 200] [--rate 5000]
        [--entities 2000] [--seconds 60] [--subscribe probe|all] [--warmup S]

In a fresh namespace, an ``ioc worker`` and an ``ioc api`` run as processes of their own,
and ``ioc simulate`` (a third process) produces live-time events (event time = now) at
about ``--rate`` events/s. ``--clients`` WebSocket clients connect to ``/v1/live``, either
to the probe entity alone (``probe``: an operator's drill-down) or to the whole feed
(``all``: what the dashboard opens). Five times a second this process publishes a flow
event of a dedicated probe entity whose event time is the moment it was made; each client
times the arrival of the probe's entity update against that event time (one clock: all of
it runs on this machine). The same load runs through two phases of ``--seconds`` each:

- **A**: the clients alone;
- **B**: the same, plus one client that completed the WebSocket handshake and then never
  reads (a raw socket with a tiny receive window), subscribed to the whole feed.

Alerts: once a second this process also publishes a panic alarm of a camera of its own
(event time = now); a client of the alert transitions only (``kind=alert``, what the
dashboard's alert list reads) times each alarm's ``open`` transition of the instant rule
``security-alarm-panic`` against the alarm's event time. Every five seconds it publishes
an intrusion seen by a camera of its own, which the window rule ``security-intrusion``
foresees (``provisional``) and opens once its minute is final: the same client times the
provisional alert against the detection and against the end of the minute in which the
rule's condition held (the target: within 10 s of it), and the final ``open`` against it.

Where the time goes: a plain consumer of ``ioc.state`` in this process sees the probe's
state records too; their Kafka timestamp is when the worker produced them. So each
delivery splits into event -> worker's produce (fetch wait, batch, fold), -> seen on
``ioc.state`` (producer linger, acks, a consumer's fetch) and -> client (the API's
consumer, the hub, the send). CPU of each process per phase is read from /proc.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from websockets.asyncio.client import ClientConnection, connect

from benchmarks.live_probes import (
    ALARM_EVERY_S,
    INTRUSION_EVERY_S,
    PROBE,
    PROBES_PER_S,
    Deliveries,
    percentile,
    read_alerts,
    read_client,
    send_alarms,
    send_intrusions,
    send_probes,
    stalled_client,
    tap_state,
)
from benchmarks.provenance import commit_id
from benchmarks.soak import rate_multiplier
from contract.catalog import DOMAINS
from ioc.db.migrate import migrate
from ioc.settings import Settings
from streams.admin import ensure_topics
from streams.kafka import client_options
from streams.topics import raw_topic, topic_specs
from tests.utils.apikeys import KEYS, keys_env
from tests.utils.eventually import eventually
from tests.utils.services import Process, free_port

ROOT = Path(__file__).resolve().parents[1]


async def raw_events(settings: Settings, probe: AIOKafkaConsumer) -> int:
    """Records in the namespace's raw topics so far."""
    tps = [
        TopicPartition(raw_topic(settings, d), p)
        for d in DOMAINS
        for p in range(settings.kafka.partitions)
    ]
    return sum((await probe.end_offsets(tps)).values())


async def watch_let_go(api: Process, got: Deliveries, started: float) -> float:
    """Wait until the API logs a client let go as a slow consumer; switch the phase then."""
    mark = api.log.stat().st_size
    while True:  # a log file, not something one can await
        if b"let go: slow-consumer" in api.log.read_bytes()[mark:]:
            break
        await asyncio.sleep(0.1)
    if got.phase == "B":
        got.phase = "B2"
    return time.monotonic() - started


def cpu_s(pid: int, *, descendants: bool = True) -> float:
    """User + system CPU seconds so far of a process and (unless told otherwise) its live
    descendants (the worker's sink runs in a child process)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    total = sum(int(f) for f in fields[11:13]) / os.sysconf("SC_CLK_TCK")
    if not descendants:
        return total
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        total += sum(cpu_s(int(child)) for child in task.read_text().split())
    return total


async def run(args: argparse.Namespace, base: Settings, logs: Path) -> None:
    settings = base.model_copy(update={"namespace": f"bench_{uuid.uuid4().hex[:8]}"})
    await migrate(settings)
    await ensure_topics(settings)
    env = {"IOC_NAMESPACE": settings.namespace, "IOC_STATE_DIR": str(base.state_dir)}
    worker = Process(["worker"], env={**env, "IOC_STREAMS__WEB_PORT": "0"}, log=logs / "w.log")
    worker.start()
    eventually(lambda: "Worker ready" in worker.log.read_text(), within_s=90, what="the worker")
    port = free_port()
    api = Process(
        ["api", "--port", str(port)],
        env={**env, **keys_env(), "IOC_API__RATE_PER_S": "10000", "IOC_API__RATE_BURST": "10000"},
        log=logs / "api.log",
    ).start()
    url = f"http://127.0.0.1:{port}"
    # Each entity's record keeps its minutes until they are final (allowed lateness + one
    # minute): before that, records are smaller and cheaper to fold and write than they
    # will stay.
    warmup = args.warmup if args.warmup is not None else base.streams.allowed_lateness_s + 90
    duration = warmup + 2 * args.seconds + 10
    multiplier = rate_multiplier(entities=args.entities, rate=args.rate, start=datetime.now(UTC))
    load = Process(
        [
            *("simulate", "--entities", str(args.entities), "--rate", f"{multiplier:.3f}"),
            *("--speed", "1", "--duration", str(duration), "--namespace", settings.namespace),
        ],
        env=env,
        log=logs / "simulate.log",
    )
    got = Deliveries()
    clients: list[ClientConnection] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        eventually(lambda: httpx.get(f"{url}/healthz").status_code == 200, within_s=60, what="API")
        assert worker.popen is not None
        assert api.popen is not None
        print(f"worker pid {worker.popen.pid}, api pid {api.popen.pid} (for py-spy)", flush=True)
        query = f"api_key={KEYS['view']}" + (
            f"&entity={PROBE}" if args.subscribe == "probe" else ""
        )
        for _ in range(0, args.clients, 20):
            clients += await asyncio.gather(
                *(
                    connect(f"ws://127.0.0.1:{port}/v1/live?{query}", max_size=None)
                    for _ in range(min(20, args.clients - len(clients)))
                )
            )
        tasks = [asyncio.create_task(read_client(ws, got)) for ws in clients]
        # The operators' alert list: a client of the alert transitions only.
        alerts_ws = await connect(
            f"ws://127.0.0.1:{port}/v1/live?api_key={KEYS['view']}&kind=alert", max_size=None
        )
        clients.append(alerts_ws)
        tasks += [asyncio.create_task(read_alerts(alerts_ws, got))]
        tasks += [asyncio.create_task(tap_state(settings, got))]
        load.start()
        tasks += [asyncio.create_task(send_probes(settings))]
        tasks += [asyncio.create_task(send_alarms(settings))]
        tasks += [asyncio.create_task(send_intrusions(settings, got))]
        await asyncio.sleep(warmup)
        pids = {"worker": worker, "api": api, "simulate": load}
        cpu: dict[str, dict[str, float]] = {}
        rates: dict[str, float] = {}
        stalled: socket.socket | None = None
        watcher: asyncio.Task[float] | None = None
        offsets = AIOKafkaConsumer(**client_options(settings))
        await offsets.start()
        for phase in ("A", "B"):
            before = {n: cpu_s(p.popen.pid) for n, p in pids.items() if p.popen}
            before["bench (clients)"] = cpu_s(os.getpid(), descendants=False)
            produced = await raw_events(settings, offsets)
            got.phase = phase
            if phase == "B":
                watcher = asyncio.create_task(watch_let_go(api, got, time.monotonic()))
                stalled = stalled_client(url)
            await asyncio.sleep(args.seconds)
            got.phase = "drain"
            rates[phase] = (await raw_events(settings, offsets) - produced) / args.seconds
            after = {n: cpu_s(p.popen.pid) for n, p in pids.items() if p.popen}
            after["bench (clients)"] = cpu_s(os.getpid(), descendants=False)
            cpu[phase] = {n: (after[n] - before[n]) / args.seconds for n in before}
        await offsets.stop()
        let_go = "never"
        if watcher is not None:
            if watcher.done():
                let_go = f"after {watcher.result():.1f} s"
            watcher.cancel()
        if stalled is not None:
            stalled.close()
        report(args, got, cpu, rates, load_avg=os.getloadavg()[0])
        slowest(got)
        slow = api.log.read_text(errors="replace").count("let go: slow-consumer")
        print(f"\nthe client that never read was let go (slow-consumer) {let_go} into phase B;")
        print(f"clients let go as slow consumers in all (API log): {slow}")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(ws.close() for ws in clients), return_exceptions=True)
        for process in (load, api, worker):
            process.stop()
        await drop_topics(settings)


async def drop_topics(settings: Settings) -> None:
    """Delete the namespace's topics: the shared broker's open files are counted."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        await admin.delete_topics([s.name for s in topic_specs(settings, DOMAINS)])
    finally:
        await admin.close()


def report(
    args: argparse.Namespace,
    got: Deliveries,
    cpu: dict[str, dict[str, float]],
    rates: dict[str, float],
    *,
    load_avg: float,
) -> None:
    commit = commit_id()
    print(
        f"\ncommit {commit}; {platform.machine()}, {os.cpu_count()} cores, load {load_avg:.1f}; "
        f"{args.clients} clients subscribed to {args.subscribe}; {args.entities:,} entities; "
        f"{PROBES_PER_S:.0f} probes/s; phases of {args.seconds:.0f} s\n"
    )
    print(
        "| phase | load (events/s) | frames/s to clients | deliveries | p50 (ms) | p99 (ms) "
        "| max (ms) | event -> worker produced p50/p99 | event -> ioc.state consumed p50/p99 "
        "| CPU (cores) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|---|---|")
    phases = (
        ("A", "A: clients", "A"),
        ("B", "B: + one client never reading", "B"),
        ("B2", "B, after it was let go", "B"),
    )
    # Frames per second over each whole phase (B with the part after the let-go).
    frames = {
        "A": f"{got.frames.get('A', 0) / args.seconds:,.0f}",
        "B": f"{(got.frames.get('B', 0) + got.frames.get('B2', 0)) / args.seconds:,.0f}",
    }
    for phase, label, of in phases:
        ms = got.client_ms.get(phase, [])
        w, s = got.worker_ms.get(phase, []), got.state_ms.get(phase, [])
        load = ", ".join(f"{n} {v:.2f}" for n, v in cpu.get(phase, {}).items())
        print(
            f"| {label} | {rates.get(of, 0):,.0f} | {frames.get(phase, '')} "
            f"| {len(ms):,} "
            f"| {percentile(ms, 0.5):.0f} | {percentile(ms, 0.99):.0f} "
            f"| {max(ms, default=float('nan')):.0f} "
            f"| {percentile(w, 0.5):.0f} / {percentile(w, 0.99):.0f} "
            f"| {percentile(s, 0.5):.0f} / {percentile(s, 0.99):.0f} | {load} |"
        )
    print(
        f"\nalarm -> its alert on /v1/live (instant rule security-alarm-panic, one alarm "
        f"every {ALARM_EVERY_S:g} s, a client of kind=alert):\n"
    )
    print("| phase | alerts | p50 (ms) | p99 (ms) | max (ms) |")
    print("|---|---:|---:|---:|---:|")
    for phase, label, _ in phases:
        ms = got.alert_ms.get(phase, [])
        print(
            f"| {label} | {len(ms):,} | {percentile(ms, 0.5):.0f} | {percentile(ms, 0.99):.0f} "
            f"| {max(ms, default=float('nan')):.0f} |"
        )
    print(
        "\nintrusion -> window rule security-intrusion on /v1/live (one intrusion every "
        f"{INTRUSION_EVERY_S:g} s): the provisional alert after the detection, and after the "
        "end of the minute the condition held in (negative: before it); the final open "
        "after that end (ms, p50 / p99 / max):\n"
    )
    print(
        "| phase | provisional | detection -> provisional | minute end -> provisional "
        "| confirmed | minute end -> open |"
    )
    print("|---|---:|---|---|---:|---|")

    def spread(ms: list[float]) -> str:
        top = max(ms, default=float("nan"))
        return f"{percentile(ms, 0.5):,.0f} / {percentile(ms, 0.99):,.0f} / {top:,.0f}"

    for phase, label, _ in phases:
        early, ahead = got.foreseen_ms.get(phase, []), got.foreseen_end_ms.get(phase, [])
        final = got.confirmed_end_ms.get(phase, [])
        print(
            f"| {label} | {len(ahead):,} | {spread(early)} | {spread(ahead)} "
            f"| {len(final):,} | {spread(final)} |"
        )


def slowest(got: Deliveries, count: int = 12) -> None:
    """The probes the worker took longest with, in time order: bursts show as neighbours."""
    worst = sorted(sorted(got.timeline, key=lambda p: -p[1])[:count])
    print(f"\nthe {count} probes the worker produced last (UTC, ms event -> produced, phase):")
    for t, ms, phase in worst:
        at = datetime.fromtimestamp(t / 1000, UTC)
        print(f"  {at:%H:%M:%S}.{at.microsecond // 1000:03d}  {ms:,.0f}  ({phase})")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rate", type=float, default=5000)
    parser.add_argument("--entities", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--subscribe", choices=("probe", "all"), default="probe")
    parser.add_argument(
        "--warmup", type=float, help="seconds of load before phase A (default: until steady)"
    )
    args = parser.parse_args()
    base = Settings(state_dir=ROOT / ".ioc")
    logs = Path(tempfile.mkdtemp(prefix="bench-live-"))
    print(f"logs in {logs}", flush=True)
    await run(args, base, logs)


if __name__ == "__main__":
    asyncio.run(main())
