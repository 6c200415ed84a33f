"""Live feeds end to end: raw events -> worker -> ioc.state / ioc.alerts -> API hub ->
WebSocket and SSE clients. One worker and one API serve the whole module; each test uses
entities of its own and event times later than the tests before it."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from websockets.exceptions import InvalidStatus

from api.live.messages import iso_ms
from ioc.db.migrate import migrate
from ioc.settings import Settings
from streams.admin import ensure_topics
from streams.topics import raw_topic
from tests.conftest import Namespace
from tests.integration.conftest import start_worker
from tests.utils.apikeys import KEYS, keys_env
from tests.utils.events import Record, flow_value
from tests.utils.kafka import produce
from tests.utils.live_clients import (
    EventClock,
    Received,
    SseClient,
    WsClient,
    open_sse,
    open_ws,
    url,
    wait_until,
)
from tests.utils.services import Process, free_port, wait_for

pytestmark = pytest.mark.timeout(120)

BAD = {"avg_speed_kmh": 9.0, "occupancy_pct": 92.0}
GOOD = {"avg_speed_kmh": 48.0, "occupancy_pct": 25.0}
#: Bounds of the API under test: small enough to reach in a test.
QUEUE_ENTITIES = 1000
REPLAY = 400
HEARTBEAT_S = 0.4

AREAS = [
    ("p", "province", None),
    ("z1", "zone", "p"),
    ("c1", "commune", "z1"),
    ("c2", "commune", "z1"),
]
ENTITIES = [
    ("lv-c1-a", "traffic", "c1"),
    ("lv-c2-b", "traffic", "c2"),
    ("lv-h-c1", "hospital", "c1"),
]


@dataclass
class Live:
    namespace: Namespace
    base: str
    clock: EventClock
    api: Process

    @property
    def settings(self) -> Settings:
        return self.namespace.settings

    async def flow(self, records: list[Record]) -> None:
        await produce(self.settings, raw_topic(self.settings, "traffic"), records)

    def flow_record(self, entity: str, at: datetime | None = None, **data: Any) -> Record:
        at = at or self.clock.tick()
        return Record(entity.encode(), flow_value(entity, at, **data), int(at.timestamp() * 1000))


async def seed_registry(settings: Settings) -> None:
    conn = await asyncpg.connect(settings.dsn)
    try:
        await conn.execute(f'SET search_path TO "{settings.db_schema}"')
        for area_id, kind, parent in AREAS:
            await conn.execute(
                "INSERT INTO area (id, kind, level, parent_id, name, name_vi, lat, lon, boundary)"
                " VALUES ($1, $2, $2, $3, $1, $1, 21.0, 107.0, '[]')",
                area_id,
                kind,
                parent,
            )
        for entity_id, domain, commune in ENTITIES:
            await conn.execute(
                "INSERT INTO entity (id, domain, kind, name, commune_id, zone_id, lat, lon)"
                " VALUES ($1, $2, 'sensor', $1, $3, 'z1', 21.0, 107.0)",
                entity_id,
                domain,
                commune,
            )
    finally:
        await conn.close()


@pytest.fixture(scope="module")
async def live(infra: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Live]:
    """A namespace with a small registry, its worker, and an API with small live bounds."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    settings = infra.model_copy(update={"namespace": name})
    await migrate(settings)
    await ensure_topics(settings)
    await seed_registry(settings)
    env = {"IOC_NAMESPACE": name, "IOC_STATE_DIR": str(infra.state_dir)}
    namespace = Namespace(settings=settings, env=env, logs=tmp_path_factory.mktemp(name))
    worker = start_worker(namespace)
    port = free_port()
    api = Process(
        ["api", "--port", str(port)],
        env={
            **env,
            **keys_env(),
            "IOC_LIVE__HEARTBEAT_S": str(HEARTBEAT_S),
            "IOC_LIVE__QUEUE_ENTITIES": str(QUEUE_ENTITIES),
            "IOC_LIVE__REPLAY_MESSAGES": str(REPLAY),
        },
        log=namespace.logs / "api.log",
    )
    api.start()
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: httpx.get(f"{base}/healthz").status_code == 200, timeout=30, what="the API")
    try:
        yield Live(namespace, base, EventClock(), api)
    finally:
        api.stop()
        worker.stop()


def minutes_of(live: Live, entity: str, pattern: str) -> list[Record]:
    """Six flow readings a minute per character of ``pattern`` (B bad, G good)."""
    start = live.clock.minutes(len(pattern))
    out = []
    for minute, kind in enumerate(pattern):
        for second in range(0, 60, 10):
            at = start + timedelta(minutes=minute, seconds=second)
            out.append(live.flow_record(entity, at, **(BAD if kind == "B" else GOOD)))
    return out


async def poll_db(settings: Settings, sql: str, *, within_s: float = 30) -> None:
    conn = await asyncpg.connect(settings.dsn)
    try:
        deadline = time.monotonic() + within_s
        while not await conn.fetchval(sql.replace("{s}", f'"{settings.db_schema}"')):
            assert time.monotonic() < deadline, f"timed out waiting for: {sql}"
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


def snapshot_of(received: Received) -> dict[str, object]:
    first = received.messages[0]
    assert first["type"] == "snapshot"
    assert first["more"] is False
    return first


def ids_increase(received: Received) -> bool:
    seqs = [int(m["id"].rsplit("-", 1)[1]) for m in received.messages if "id" in m]
    return seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


async def test_snapshot_then_entity_updates_and_alert_transitions_on_ws_and_sse(
    live: Live,
) -> None:
    # Five congested minutes open an alert on lv-jam; lv-calm reports once.
    await live.flow([*minutes_of(live, "lv-jam", "BBBBBGG"), live.flow_record("lv-calm")])
    await poll_db(
        live.settings,
        "SELECT count(*) = 1 FROM {s}.alert WHERE entity_id = 'lv-jam' AND state = 'open'",
    )
    await poll_db(
        live.settings,
        "SELECT count(*) = 2 FROM {s}.entity_state WHERE entity_id IN ('lv-jam', 'lv-calm')",
    )
    mine = "lv-jam,lv-calm,lv-new"
    ws = await open_ws(live.base, entity=mine)
    sse = await open_sse(live.base, entity=mine)
    try:
        for client in (ws.received, sse.received):
            await wait_until(client, lambda r: bool(r.messages), within_s=10, what="a snapshot")
            snapshot = snapshot_of(client)
            assert snapshot["reason"] == "initial"
            entities = {e["entity_id"]: e for e in snapshot["entities"]}  # type: ignore[attr-defined]
            assert sorted(entities) == ["lv-calm", "lv-jam"]
            assert entities["lv-jam"]["domain"] == "traffic"
            assert entities["lv-jam"]["state"]["avg_speed_kmh"] == GOOD["avg_speed_kmh"]
            alert: dict[str, Any] = snapshot["alerts"][0]  # type: ignore[index]
            assert len(snapshot["alerts"]) == 1  # type: ignore[arg-type]
            assert (alert["entity_id"], alert["rule_id"], alert["state"]) == (
                "lv-jam",
                "traffic-congestion",
                "open",
            )
            assert entities["lv-jam"]["alerts"] == [
                {"rule_id": "traffic-congestion", "alert_id": alert["alert_id"]}
            ]
        assert sse.status == 200
        assert sse.event_names[0] == "snapshot"

        # Good minutes resolve the alert; a new entity appears.
        good = minutes_of(live, "lv-jam", "GGGGGG")
        newcomer = live.flow_record("lv-new")
        await live.flow([*good, newcomer])
        last_jam = good[-1].time_ms
        for client in (ws.received, sse.received):

            def done(r: Received) -> bool:
                resolved = any(a["alert"]["state"] == "resolve" for a in r.of("alert"))
                jam = [m["entity"] for m in r.of("entity") if m["entity"]["entity_id"] == "lv-jam"]
                latest = bool(jam) and jam[-1]["event_time"] == iso_ms(last_jam)
                return resolved and latest and "lv-new" in r.entity_ids()

            await wait_until(client, done, within_s=30, what="updates after the snapshot")
            assert ids_increase(client)
            jam = [m["entity"] for m in client.of("entity") if m["entity"]["entity_id"] == "lv-jam"]
            assert jam[-1]["alerts"] == []
            resolve = next(
                a["alert"] for a in client.of("alert") if a["alert"]["state"] == "resolve"
            )
            assert resolve["alert_id"] == alert["alert_id"]
        assert "alert" in sse.event_names
        assert "entity" in sse.event_names
    finally:
        await ws.close()
        await sse.close()


def hospital_record(live: Live, entity: str) -> Record:
    at = live.clock.tick()
    value = orjson.dumps(
        {
            "specversion": "1.0",
            "id": f"{entity}-{at.timestamp()}",
            "source": "/tests",
            "type": "city.hospital.status.v1",
            "time": at,
            "subject": entity,
            "data": {
                "beds_total": 100,
                "beds_occupied": 50,
                "icu_total": 10,
                "icu_occupied": 5,
                "er_waiting": 3,
                "ambulances_available": 2,
            },
        }
    )
    return Record(entity.encode(), value, int(at.timestamp() * 1000))


async def test_filters_by_domain_area_entity_and_severity(live: Live) -> None:
    everything = ",".join(e for e, _, _ in ENTITIES)
    reference = await open_ws(live.base, entity=everything)
    hospitals = await open_ws(live.base, domain="hospital")
    commune = await open_sse(live.base, area="c1")
    zone_traffic = await open_ws(live.base, area="z1", domain="traffic")
    one = await open_sse(live.base, entity="lv-c2-b")
    critical_alerts = await open_ws(live.base, kind="alert", severity="critical")
    clients: list[WsClient | SseClient] = [
        reference,
        hospitals,
        commune,
        zone_traffic,
        one,
        critical_alerts,
    ]
    try:
        for c in clients:
            await wait_until(c.received, lambda r: bool(r.messages), within_s=10, what="snapshot")
        await live.flow([live.flow_record("lv-c1-a"), live.flow_record("lv-c2-b")])
        await produce(
            live.settings, raw_topic(live.settings, "hospital"), [hospital_record(live, "lv-h-c1")]
        )
        await wait_until(
            reference.received,
            lambda r: len(set(r.entity_ids())) == 3,
            within_s=20,
            what="all three entities",
        )
        await asyncio.sleep(0.5)  # the hub offered each update to every client at once
        assert set(hospitals.received.entity_ids()) == {"lv-h-c1"}
        assert set(commune.received.entity_ids()) == {"lv-c1-a", "lv-h-c1"}
        assert set(zone_traffic.received.entity_ids()) == {"lv-c1-a", "lv-c2-b"}
        assert set(one.received.entity_ids()) == {"lv-c2-b"}
        # Only alerts were asked for, and none is critical: the snapshot and nothing else.
        assert [m["type"] for m in critical_alerts.received.messages] == ["snapshot"]
        assert snapshot_of(critical_alerts.received)["entities"] == []
        # An area's snapshot holds only its entities, domain filter included.
        assert all(
            e["domain"] == "hospital"
            for e in snapshot_of(hospitals.received)["entities"]  # type: ignore[attr-defined]
        )
    finally:
        for c in clients:
            await c.close()


async def test_resume_from_the_last_event_id_on_ws_and_sse(live: Live) -> None:
    mine = "lv-r1,lv-r2"
    reference = await open_ws(live.base, entity=mine)
    first = await open_ws(live.base, entity=mine)
    try:
        await live.flow([live.flow_record("lv-r1")])
        await wait_until(
            first.received, lambda r: "lv-r1" in r.entity_ids(), within_s=20, what="r1"
        )
        last_seen = first.received.last_id()
        await first.close()

        # Missed while away: two updates of r1 (merged to the latest) and one of r2.
        missed = [live.flow_record("lv-r1"), live.flow_record("lv-r1", vehicles=77)]
        await live.flow([*missed, live.flow_record("lv-r2")])
        await wait_until(
            reference.received,
            lambda r: r.entity_ids().count("lv-r1") >= 2 and "lv-r2" in r.entity_ids(),
            within_s=20,
            what="the missed updates",
        )
        ws = await open_ws(live.base, entity=mine, since=last_seen)
        sse = await open_sse(live.base, entity=mine, last_event_id=last_seen)
        try:
            for client in (ws.received, sse.received):
                await wait_until(
                    client,
                    lambda r: {"lv-r1", "lv-r2"} <= set(r.entity_ids()),
                    within_s=10,
                    what="the replay",
                )
                assert client.messages[0] == {"type": "resumed", "since": last_seen}
                assert not client.of("snapshot")
                r1 = [
                    m["entity"] for m in client.of("entity") if m["entity"]["entity_id"] == "lv-r1"
                ]
                assert r1[-1]["state"]["vehicles"] == 77
                assert all(
                    int(m["id"].split("-")[-1]) > int(last_seen.split("-")[-1])
                    for m in client.of("entity")
                )
        finally:
            await ws.close()
            await sse.close()

        # An id of another API process, and one older than the replay buffer: snapshots.
        unknown = await open_ws(live.base, entity=mine, since="1-1")
        await live.flow([live.flow_record(f"lv-bulk-{n}") for n in range(REPLAY + 50)])
        too_old = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            probe = await open_ws(live.base, entity="lv-none", since=last_seen)
            await wait_until(probe.received, lambda r: bool(r.messages), within_s=10, what="start")
            kind = probe.received.messages[0]
            await probe.close()
            if kind["type"] == "snapshot":
                too_old = kind
                break
            await asyncio.sleep(0.3)
        assert too_old is not None, "the replay buffer never moved past the old id"
        assert too_old["reason"] == "too-old"
        await wait_until(unknown.received, lambda r: bool(r.messages), within_s=10, what="start")
        assert snapshot_of(unknown.received)["reason"] == "unknown-id"
        await unknown.close()
    finally:
        await reference.close()
        await first.close()


async def test_heartbeats_on_a_quiet_feed(live: Live) -> None:
    ws = await open_ws(live.base, entity="lv-quiet")
    sse = await open_sse(live.base, entity="lv-quiet")
    try:
        await asyncio.sleep(HEARTBEAT_S * 4)
        for client in (ws.received, sse.received):
            assert client.pings >= 2
            assert [m["type"] for m in client.messages] == ["snapshot"]
    finally:
        await ws.close()
        await sse.close()


@pytest.mark.parametrize(
    ("params", "headers", "status", "slug"),
    [
        ({"domain": "trafic"}, {}, 422, "invalid-request"),
        ({"severity": "urgent"}, {}, 422, "invalid-request"),
        ({"area": "atlantis"}, {}, 404, "unknown-area"),
        ({}, {"Last-Event-ID": "not an id"}, 422, "invalid-request"),
        ({"key": None}, {}, 401, "unauthenticated"),
    ],
)
async def test_bad_parameters_get_problem_details(
    live: Live, params: dict[str, str | None], headers: dict[str, str], status: int, slug: str
) -> None:
    address = url(live.base, "/v1/live/sse", **params)
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(address, headers={"Accept": "text/event-stream", **headers})
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith(slug)
    # The WebSocket handshake is refused the same way, before it completes.
    with pytest.raises(InvalidStatus) as refused:
        await open_ws(live.base, since=headers.get("Last-Event-ID"), **params)
    if status == 401:
        assert refused.value.response.status_code == 403  # closed (1008) before accept
    else:
        assert refused.value.response.status_code == status
        assert orjson.loads(refused.value.response.body)["type"].endswith(slug)


def stalled_socket(live: Live, request: bytes) -> socket.socket:
    """A client that sends its request and then never reads (a tiny receive window)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    port = int(live.base.rsplit(":", 1)[1])
    sock.connect(("127.0.0.1", port))
    sock.sendall(request)
    return sock


def drained_to_the_end(sock: socket.socket, *, timeout: float) -> bytes:
    """Read everything the server sent; fails unless the server closed the connection."""
    sock.settimeout(timeout)
    data = bytearray()
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    return bytes(data)


async def wave(live: Live, client: Received, names: list[str]) -> float:
    """Produce one update per entity; seconds until ``client`` has them all."""
    start = time.monotonic()
    await live.flow([live.flow_record(n) for n in names])
    await wait_until(
        client, lambda r: set(names) <= set(r.entity_ids()), within_s=30, what="a wave"
    )
    return time.monotonic() - start


async def test_a_client_that_never_reads_does_not_delay_another(live: Live) -> None:
    prefix = "lv-slow"
    # 8 MB of snapshot, so that the stalled clients' sockets fill up whatever their buffers.
    conn = await asyncpg.connect(live.settings.dsn)
    try:
        await conn.execute(
            f'INSERT INTO "{live.settings.db_schema}".entity_state'
            " (entity_id, domain, event_type, event_time, state, version)"
            " SELECT 'lv-big-' || n, 'traffic', 'city.traffic.flow.v1', now(),"
            " jsonb_build_object('note', repeat('x', 4000)), 0 FROM generate_series(1, 2000) n"
        )
    finally:
        await conn.close()
    fast = await open_ws(live.base, domain="traffic")
    fast_sse = await open_sse(live.base, domain="traffic")
    try:
        await wait_until(fast.received, lambda r: bool(r.messages), within_s=10, what="snapshot")
        baseline = await wave(live, fast.received, [f"{prefix}-base-{n}" for n in range(300)])
        key = KEYS["view"]
        host = live.base.removeprefix("http://")
        stalled = [
            stalled_socket(
                live,
                f"GET /v1/live/sse?api_key={key} HTTP/1.1\r\nHost: {host}\r\n"
                "Accept: text/event-stream\r\n\r\n".encode(),
            ),
            stalled_socket(
                live,
                f"GET /v1/live?api_key={key} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n".encode(),
            ),
        ]
        # 2,100 distinct entities while the stalled clients read nothing: more than their
        # sockets hold plus their queue bound (1,000 entities), in waves a reader keeps up with.
        latencies = [
            await wave(live, fast.received, [f"{prefix}-{w}-{n}" for n in range(300)])
            for w in range(7)
        ]
        print(f"fast client: baseline wave {baseline:.2f} s, with stalled clients {latencies}")
        assert max(latencies) < max(3 * baseline, baseline + 2.0)
        await wait_until(
            fast_sse.received,
            lambda r: sum(e.startswith(f"{prefix}-6-") for e in r.entity_ids()) == 300,
            within_s=10,
            what="the SSE reader",
        )
        assert not fast.received.of("closing")
        # The stalled clients were let go: their connections end once read.
        for sock in stalled:
            await asyncio.to_thread(drained_to_the_end, sock, timeout=10)
        log = live.api.log.read_text()
        assert log.count("live client let go: slow-consumer") == 2, log[-2000:]
    finally:
        await fast.close()
        await fast_sse.close()
