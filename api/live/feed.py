"""One client's feed, whatever the transport: snapshot or resume, then updates and
heartbeats, until the client goes or its outbox closes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from starlette.websockets import WebSocketDisconnect, WebSocketDisconnected

from api.live.hub import Hub, Subscription
from api.live.incidents import merge_incidents, read_incidents
from api.live.messages import sse_event
from api.live.outbox import SLOW_CONSUMER, OutboxClosed
from api.live.snapshot import merge, read_database, resolved_among, snapshot_bodies
from ioc.settings import LiveSettings

log = logging.getLogger(__name__)

DISCONNECTED = "disconnected"
INTERNAL_ERROR = "internal-error"


@dataclass(frozen=True, slots=True)
class Frame:
    """One message in both encodings: a JSON body (WebSocket) and an SSE event."""

    body: bytes
    sse: bytes


def ping_frame() -> Frame:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return Frame(orjson.dumps({"type": "ping", "time": now}), f": ping {now}\n\n".encode())


class Feed:
    """A subscription of the hub and what it takes to start it (the database)."""

    def __init__(
        self, *, hub: Hub, subscription: Subscription, pool: asyncpg.Pool, settings: LiveSettings
    ) -> None:
        self.hub, self.subscription, self.pool, self.settings = hub, subscription, pool, settings

    async def frames(self) -> AsyncIterator[Frame]:
        """Snapshot (or a note that the stream resumes), then updates; raises OutboxClosed."""
        sub = self.subscription
        if sub.snapshot_reason is None:
            body = orjson.dumps({"type": "resumed", "since": str(sub.position)})
            yield Frame(body, sse_event(body, event="resumed"))
        else:
            async with self.pool.acquire() as conn:
                rows = await read_database(conn, sub.filter)
                closed = await resolved_among(conn, [t["alert_id"] for t in sub.overlay_alerts])
                incidents = await read_incidents(
                    conn, sub.filter, [t["incident_id"] for t in sub.overlay_incidents]
                )
            # Merged and encoded in a thread too: tens of milliseconds for a whole city.
            bodies = await asyncio.to_thread(
                self._snapshot, sub, rows, closed, incidents, self.settings.snapshot_chunk
            )
            sub.overlay_entities, sub.overlay_alerts, sub.overlay_incidents = [], [], []
            sub.areas = []
            for body, event_id in bodies:
                yield Frame(body, sse_event(body, event="snapshot", event_id=event_id))
        while True:
            message = await sub.outbox.get(self.settings.heartbeat_s)
            yield ping_frame() if message is None else Frame(message.body, message.sse)

    @staticmethod
    def _snapshot(
        sub: Subscription,
        rows: tuple[list[dict[str, Any]], list[dict[str, Any]]],
        closed: set[str],
        incident_rows: list[dict[str, Any]],
        chunk: int,
    ) -> list[tuple[bytes, str | None]]:
        entities, alerts = merge(sub, *rows, closed=closed)
        incidents = merge_incidents(sub, incident_rows)
        return list(
            snapshot_bodies(
                sub, entities, alerts, chunk=chunk, incidents=incidents, areas=sub.areas
            )
        )

    async def pump(
        self,
        send: Callable[[Frame], Awaitable[None]],
        *,
        client_gone: Callable[[], Awaitable[None]],
        grace_s: float = 1.0,
    ) -> str:
        """Send frames until the client goes or the outbox closes; the reason it ended.

        A client whose socket stopped taking data keeps ``send`` waiting; the outbox
        closing (it overflowed) cancels that send, so a stalled client is let go too.
        """

        async def run() -> str:
            try:
                async for frame in self.frames():
                    await send(frame)
            except OutboxClosed as closed:
                return closed.reason
            return DISCONNECTED  # frames() only ends by raising

        async def watch() -> str:
            await client_gone()
            return DISCONNECTED

        sender = asyncio.create_task(run())
        closed = asyncio.create_task(self.subscription.outbox.wait_closed())
        gone = asyncio.create_task(watch())
        try:
            done, _ = await asyncio.wait({sender, closed, gone}, return_when="FIRST_COMPLETED")
            if gone in done:
                return DISCONNECTED
            if sender not in done:
                # The outbox closed: a sender waiting on it ends at once; one stuck sending
                # to a stalled socket gets a moment, then is cancelled.
                await asyncio.wait({sender}, timeout=grace_s)
                if not sender.done():
                    return self._ended(closed.result(), stalled=True)
            exc = sender.exception()
            if exc is None:
                return self._ended(sender.result(), stalled=False)
            if _is_disconnect(exc):
                return DISCONNECTED
            log.error("live feed failed", exc_info=exc)
            return INTERNAL_ERROR
        finally:
            self.hub.unsubscribe(self.subscription)
            for task in (sender, closed, gone):
                task.cancel()
            await asyncio.gather(sender, closed, gone, return_exceptions=True)

    def _ended(self, reason: str, *, stalled: bool) -> str:
        if reason == SLOW_CONSUMER:
            log.warning(
                "live client let go: %s (%s)",
                reason,
                "its socket stopped taking data" if stalled else "its queue overflowed",
            )
        return reason


def _is_disconnect(exc: BaseException) -> bool:
    """Errors that only mean the client has gone (uvicorn's ClientDisconnected is an OSError)."""
    return isinstance(exc, OSError | WebSocketDisconnect | WebSocketDisconnected)
