"""Live feeds and their clients: bad parameters, a client that never reads, the API
stopping while feeds are open. Same environment as test_live_feeds.py, its own worker and API."""

from __future__ import annotations

import asyncio
import signal
import socket
import time

import asyncpg
import httpx
import orjson
import pytest
from websockets.exceptions import InvalidStatus

from tests.utils.apikeys import KEYS, keys_env
from tests.utils.eventually import eventually
from tests.utils.live_clients import Received, open_sse, open_ws, url, ws_refusal
from tests.utils.live_env import (
    Live,
    live_env,  # noqa: F401 (the "live" fixture)
)
from tests.utils.services import Process, free_port

pytestmark = pytest.mark.timeout(120)


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
    if status == 401:
        # A refused key: the handshake completes and the socket closes with 1008.
        code, reason = await ws_refusal(live.base, since=headers.get("Last-Event-ID"), **params)
        assert (code, reason.split(":")[0]) == (1008, slug)
        return
    with pytest.raises(InvalidStatus) as refused:
        await open_ws(live.base, since=headers.get("Last-Event-ID"), **params)
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


def holds_a_snapshot(sock: socket.socket) -> bool:
    """Whether the server's first snapshot message is in the socket's receive buffer;
    looked at with MSG_PEEK, so the client still has read nothing."""
    sock.settimeout(0.5)
    try:
        return b"snapshot" in sock.recv(4096, socket.MSG_PEEK)
    except TimeoutError:
        return False


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
    await eventually(
        client.so_far, until=lambda r: set(names) <= set(r.entity_ids()), within_s=30, what="a wave"
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
    stalled: list[socket.socket] = []
    try:
        await eventually(
            fast.received.so_far, until=lambda r: bool(r.messages), within_s=10, what="snapshot"
        )
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
        # Building and encoding their two 8 MB snapshots is work the server does for any
        # client that connects, reading or not; what is measured here is what follows:
        # their sockets full and their queues filling while they read nothing.
        await eventually(
            lambda: asyncio.to_thread(lambda: all(holds_a_snapshot(s) for s in stalled)),
            within_s=30,
            what="the stalled clients' snapshots on their way",
        )
        # 2,100 distinct entities while the stalled clients read nothing: more than their
        # sockets hold plus their queue bound (1,000 entities), in waves a reader keeps up with.
        latencies = [
            await wave(live, fast.received, [f"{prefix}-{w}-{n}" for n in range(300)])
            for w in range(7)
        ]
        print(f"fast client: baseline wave {baseline:.2f} s, with stalled clients {latencies}")
        assert max(latencies) < max(3 * baseline, baseline + 2.0)
        await eventually(
            fast_sse.received.so_far,
            until=lambda r: sum(e.startswith(f"{prefix}-6-") for e in r.entity_ids()) == 300,
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
        for sock in stalled:
            sock.close()
        await fast.close()
        await fast_sse.close()


async def test_stopping_the_api_ends_open_feeds_with_a_reason(live: Live) -> None:
    port = free_port()
    api = Process(
        ["api", "--port", str(port)],
        env={**live.namespace.env, **keys_env()},
        log=live.namespace.logs / "api-stop.log",
    )
    api.start()
    base = f"http://127.0.0.1:{port}"
    eventually(lambda: httpx.get(f"{base}/healthz").status_code == 200, within_s=30, what="the API")
    sse = await open_sse(base, entity="lv-stop")
    ws = await open_ws(base, entity="lv-stop")
    try:
        for c in (sse.received, ws.received):
            await eventually(
                c.so_far, until=lambda r: bool(r.messages), within_s=10, what="a snapshot"
            )
        started = time.monotonic()
        # uvicorn re-raises the SIGTERM it handled once it has shut down.
        assert await asyncio.to_thread(api.stop, 20) in (0, -signal.SIGTERM)
        assert time.monotonic() - started < 10  # not held open by the event stream
        await eventually(
            sse.received.so_far, until=lambda r: bool(r.of("closing")), within_s=5, what="closing"
        )
        assert sse.received.of("closing")[-1]["reason"] == "shutdown"
        await asyncio.wait_for(ws.task, 5)
        assert ws.ws.close_code == 1001
    finally:
        api.stop()
        await sse.close()
        await ws.close()
