"""A Server-Sent Events response driven by a :class:`Feed`.

Starlette's StreamingResponse cannot let go of a client whose socket stopped taking data
(its send just waits), so the feed's pump owns the sending here.
"""

from __future__ import annotations

import asyncio
import contextlib

import orjson
from starlette.background import BackgroundTask
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from api.live.feed import DISCONNECTED, Feed, Frame
from api.live.messages import sse_event

CLOSE_TIMEOUT_S = 2.0


class EventStreamResponse(Response):
    """``text/event-stream`` of one feed: a ``retry`` hint, then its frames; ends with a
    ``closing`` event naming the reason when the server ends the stream."""

    media_type = "text/event-stream"

    def __init__(self, feed: Feed, *, retry_ms: int = 3000) -> None:
        self.feed, self.retry_ms = feed, retry_ms
        self.status_code = 200
        self.background: BackgroundTask | None = None
        self.init_headers({"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        await send(
            {
                "type": "http.response.body",
                "body": f"retry: {self.retry_ms}\n\n".encode(),
                "more_body": True,
            }
        )

        async def emit(frame: Frame) -> None:
            await send({"type": "http.response.body", "body": frame.sse, "more_body": True})

        async def client_gone() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        reason = await self.feed.pump(emit, client_gone=client_gone)
        if reason == DISCONNECTED:
            return
        closing = sse_event(orjson.dumps({"type": "closing", "reason": reason}), event="closing")
        # A stalled client may not take even this; then the server drops the connection.
        with contextlib.suppress(TimeoutError, OSError):
            await asyncio.wait_for(
                send({"type": "http.response.body", "body": closing, "more_body": False}),
                CLOSE_TIMEOUT_S,
            )
