"""Clients of the live feeds for tests: a WebSocket and an SSE reader, and a clock that
hands out ever later event times (a partition's watermark never goes back, so events of a
later test must not be older than an earlier test's)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.utils.apikeys import KEYS
from tests.utils.events import T0


class EventClock:
    """Strictly increasing event times, minute-aligned blocks on request."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def minutes(self, count: int) -> datetime:
        """The start of the next ``count`` whole minutes, right after the last ones given."""
        start = self.now.replace(second=0, microsecond=0)
        if start < self.now:
            start += timedelta(minutes=1)
        self.now = start + timedelta(minutes=count)
        return start

    def tick(self) -> datetime:
        self.now += timedelta(milliseconds=100)
        return self.now


def url(base: str, path: str, *, key: str | None = KEYS["view"], **params: Any) -> str:
    query = {k: v for k, v in params.items() if v is not None}
    if key is not None:
        query["api_key"] = key
    return f"{base}{path}?{urlencode(query, doseq=True)}"


@dataclass
class Received:
    """Messages of one client in arrival order, with monotonic arrival times."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    pings: int = 0

    def add(self, message: dict[str, Any]) -> None:
        if message.get("type") == "ping":
            self.pings += 1
            return
        self.messages.append(message)
        self.times.append(time.monotonic())

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == kind]

    def entity_ids(self) -> list[str]:
        return [m["entity"]["entity_id"] for m in self.of("entity")]

    async def so_far(self) -> Received:
        """These messages, as a probe for ``eventually()``: awaitable, so that the wait
        lets the event loop go on receiving."""
        return self

    def __repr__(self) -> str:
        kinds = [m["type"] for m in self.messages]
        return f"Received({len(kinds)} messages of kinds {kinds}, {self.pings} pings)"

    def last_id(self) -> str:
        last: str = [m["id"] for m in self.messages if "id" in m][-1]
        return last


class WsClient:
    """Reads a ``/v1/live`` WebSocket in the background into ``received``."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws, self.received = ws, Received()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for text in self.ws:
            self.received.add(orjson.loads(text))

    async def close(self) -> None:
        await self.ws.close()
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def open_ws(base: str, **params: Any) -> WsClient:
    ws = await connect(url(base.replace("http", "ws", 1), "/v1/live", **params), max_size=None)
    return WsClient(ws)


async def ws_refusal(base: str, **params: Any) -> tuple[int, str]:
    """The close code and reason of a ``/v1/live`` WebSocket the API refuses after the
    handshake (fails if it sends a message first or keeps the connection open)."""
    async with connect(url(base.replace("http", "ws", 1), "/v1/live", **params)) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), timeout=10)
    frame = closed.value.rcvd
    assert frame is not None, "closed without a close frame"
    return frame.code, frame.reason


class SseClient:
    """Reads ``/v1/live/sse`` in the background; SSE comments count as pings."""

    def __init__(self, http: httpx.AsyncClient, address: str, headers: dict[str, str]) -> None:
        self.http, self.received = http, Received()
        self.status: int | None = None
        self.event_names: list[str] = []
        self.task = asyncio.create_task(self._read(address, headers))

    async def _read(self, address: str, headers: dict[str, str]) -> None:
        async with self.http.stream("GET", address, headers=headers) as response:
            self.status = response.status_code
            async for event in parse_sse(response.aiter_lines()):
                if "comment" in event:
                    self.received.pings += 1
                elif "data" in event:
                    self.event_names.append(event.get("event", "message"))
                    self.received.add(orjson.loads(event["data"]))

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.http.aclose()


async def open_sse(base: str, *, last_event_id: str | None = None, **params: Any) -> SseClient:
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    http = httpx.AsyncClient(timeout=httpx.Timeout(10, read=None))
    return SseClient(http, url(base, "/v1/live/sse", **params), headers)


async def parse_sse(lines: AsyncIterator[str]) -> AsyncIterator[dict[str, str]]:
    """Events as dicts of their fields (``data`` lines joined); comments as ``comment``."""
    event: dict[str, str] = {}
    async for line in lines:
        if line == "":
            if event:
                yield event
            event = {}
        elif line.startswith(":"):
            yield {"comment": line[1:].strip()}
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            event[name] = f"{event[name]}\n{value}" if name in event else value
