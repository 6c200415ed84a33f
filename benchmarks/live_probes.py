"""The probes of bench_live: probe events, the clients timing them, a tap on ``ioc.state``
for the worker's share of the delay, and a client that never reads."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from websockets.asyncio.client import ClientConnection

from contract.envelope import encode
from ioc.settings import Settings
from streams.kafka import client_options
from streams.topics import STATE_TOPIC, raw_topic
from tests.utils.apikeys import KEYS

PROBE = "bench-probe-0001"
PROBE_MARK = f'"entity_id":"{PROBE}"'.encode()
PROBES_PER_S = 5.0
#: Alarm probes: a panic alarm of a camera of their own every ALARM_EVERY_S, each opening
#: an alert of the instant rule security-alarm-panic.
ALARM_PREFIX = "bench-alarm-"
ALARM_MARK = f'"entity_id":"{ALARM_PREFIX}'.encode()
ALARM_EVERY_S = 1.0
ALARM_DATA = {"kind": "panic", "zone": "bench"}
#: Window-rule probes: an intrusion seen by a camera of their own every INTRUSION_EVERY_S,
#: which the window rule security-intrusion foresees (provisional) and, once its minute is
#: final, opens.
INTRUSION_PREFIX = "bench-intrusion-"
INTRUSION_MARK = f'"entity_id":"{INTRUSION_PREFIX}'.encode()
INTRUSION_EVERY_S = 5.0
INTRUSION_DATA = {"kind": "intrusion", "confidence": 0.95, "count": 1}


def percentile(samples: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by nearest rank; NaN for no samples."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Deliveries:
    """Probe arrivals: (phase, ms from event time to arrival) per client, and per hop."""

    def __init__(self) -> None:
        self.phase = "warmup"
        self.client_ms: dict[str, list[float]] = {}
        self.worker_ms: dict[str, list[float]] = {}  # event time -> state record produced
        self.state_ms: dict[str, list[float]] = {}  # event time -> state record consumed
        self.frames: dict[str, int] = {}  # every message the clients received
        self.alert_ms: dict[str, list[float]] = {}  # alarm's event time -> its alert arrives
        # Intrusions: event time -> the provisional alert arrives; the end of the minute in
        # which the condition held -> the provisional alert (negative: before that end) and
        # -> the final open.
        self.foreseen_ms: dict[str, list[float]] = {}
        self.foreseen_end_ms: dict[str, list[float]] = {}
        self.confirmed_end_ms: dict[str, list[float]] = {}
        self.intrusions: dict[str, float] = {}  # probe camera -> its detection's event time
        # (event time, ms to the worker's produce, phase) of every probe in a phase: when
        # the slow ones were
        self.timeline: list[tuple[float, float, str]] = []

    def frame(self) -> None:
        self.frames[self.phase] = self.frames.get(self.phase, 0) + 1

    def add(self, into: dict[str, list[float]], value: float) -> None:
        into.setdefault(self.phase, []).append(value)


def event_ms(text: str) -> float:
    return datetime.fromisoformat(text).timestamp() * 1000


async def read_client(ws: ClientConnection, got: Deliveries) -> None:
    """Time every probe update this client receives; everything else is only counted."""
    with contextlib.suppress(Exception):
        while True:
            data = await ws.recv(decode=False)
            got.frame()
            if PROBE_MARK not in data:
                continue
            now = time.time() * 1000
            message = orjson.loads(data)
            if message.get("type") == "entity":
                got.add(got.client_ms, now - event_ms(message["entity"]["event_time"]))


async def read_alerts(ws: ClientConnection, got: Deliveries) -> None:
    """Time every alarm probe's alert from the alarm's event time (its ``opened_at``)."""
    with contextlib.suppress(Exception):
        while True:
            data = await ws.recv(decode=False)
            if ALARM_MARK in data:
                now = time.time() * 1000
                message = orjson.loads(data)
                alert = message.get("alert") or {}
                if message.get("type") == "alert" and alert.get("state") == "open":
                    got.add(got.alert_ms, now - event_ms(alert["opened_at"]))
            elif INTRUSION_MARK in data:
                _time_intrusion(got, orjson.loads(data), now=time.time() * 1000)


def _time_intrusion(got: Deliveries, message: dict[str, Any], *, now: float) -> None:
    alert = message.get("alert") or {}
    if message.get("type") != "alert" or alert.get("rule_id") != "security-intrusion":
        return
    minute_end = event_ms(alert["opened_at"])
    if alert["state"] == "provisional":
        detected = got.intrusions.get(alert["entity_id"])
        if detected is not None:
            got.add(got.foreseen_ms, now - detected)
        got.add(got.foreseen_end_ms, now - minute_end)
    elif alert["state"] == "open":
        got.add(got.confirmed_end_ms, now - minute_end)


async def send_every(
    settings: Settings,
    domain: str,
    interval_s: float,
    make: Callable[[int, datetime], tuple[str, str, dict[str, Any]]],
) -> None:
    """Publish an event every ``interval_s``, event time = when made: ``make(n, at)``
    gives its entity, event type and payload."""
    producer = AIOKafkaProducer(acks="all", linger_ms=0, **client_options(settings))
    await producer.start()
    topic = raw_topic(settings, domain)
    try:
        n = 0
        while True:
            at = datetime.now(UTC)
            entity, event_type, data = make(n, at)
            value = encode(
                event_type=event_type,
                subject=entity,
                time=at,
                data=data,
                event_id=f"bench-{uuid.uuid4().hex}",
                source="/bench/live",
            )
            await producer.send(
                topic, value, key=entity.encode(), timestamp_ms=int(at.timestamp() * 1000)
            )
            n += 1
            await asyncio.sleep(interval_s)
    finally:
        await producer.stop()


async def send_alarms(settings: Settings) -> None:
    """A panic alarm of a new probe camera every ALARM_EVERY_S."""
    await send_every(
        settings,
        "security",
        ALARM_EVERY_S,
        lambda n, _: (f"{ALARM_PREFIX}{n:06d}", "city.security.alarm.v1", ALARM_DATA),
    )


async def send_intrusions(settings: Settings, got: Deliveries) -> None:
    """An intrusion seen by a new probe camera every INTRUSION_EVERY_S."""

    def make(n: int, at: datetime) -> tuple[str, str, dict[str, Any]]:
        camera = f"{INTRUSION_PREFIX}{n:06d}"
        got.intrusions[camera] = at.timestamp() * 1000
        return camera, "city.security.detection.v1", INTRUSION_DATA

    await send_every(settings, "security", INTRUSION_EVERY_S, make)


async def tap_state(settings: Settings, got: Deliveries) -> None:
    """The probe's ``ioc.state`` records: when the worker produced them, when they arrive."""
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **client_options(settings))
    await consumer.start()
    try:
        topic = settings.topic(STATE_TOPIC)
        tps = [TopicPartition(topic, p) for p in range(settings.kafka.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        while True:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                now = time.time() * 1000
                for record in records:
                    if record.key == PROBE.encode() and record.value:
                        t = orjson.loads(record.value)["t"]
                        got.add(got.worker_ms, record.timestamp - t)
                        if got.phase in ("A", "B", "B2"):
                            got.timeline.append((t, record.timestamp - t, got.phase))
                        got.add(got.state_ms, now - t)
    finally:
        await consumer.stop()


async def send_probes(settings: Settings) -> None:
    """A flow event of the probe entity every 1/PROBES_PER_S s."""

    def flow(n: int, _: datetime) -> tuple[str, str, dict[str, Any]]:
        data = {"vehicles": n % 50, "avg_speed_kmh": 40.0, "occupancy_pct": 20.0, "interval_s": 10}
        return PROBE, "city.traffic.flow.v1", data

    await send_every(settings, "traffic", 1 / PROBES_PER_S, flow)


def stalled_client(base: str) -> socket.socket:
    """A WebSocket handshake to the whole feed, then nothing is ever read."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    host, port = base.removeprefix("http://").split(":")
    sock.connect((host, int(port)))
    sock.sendall(
        f"GET /v1/live?api_key={KEYS['view']} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    return sock
