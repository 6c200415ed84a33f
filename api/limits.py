"""A bound on request bodies, checked before a route reads them.

Starlette's own limit (``FastAPI(max_body_size=...)``) answers a declared oversize body
with ``text/plain``; this one answers every oversize body with problem+json.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import ProblemResponse, problem_body


class BodyTooLarge(HTTPException):
    """The body grew past the limit while it was read (an HTTPException, so that
    FastAPI's body parsing lets it through unchanged)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"the body is over the limit of {max_bytes} bytes")


def _problem(max_bytes: int, path: str) -> dict[str, Any]:
    return problem_body(
        status=413,
        slug="body-too-large",
        title="Request body too large",
        detail=f"the body is over the limit of {max_bytes} bytes",
        instance=path,
    )


def install_body_limit(app: FastAPI, *, max_bytes: int) -> None:
    """Bound the request bodies of ``app`` to ``max_bytes``."""

    async def too_large(request: Request, exc: Exception) -> Response:
        return ProblemResponse(_problem(max_bytes, request.url.path), status_code=413)

    app.add_exception_handler(BodyTooLarge, too_large)
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_bytes)


#: Oversize bodies up to this many times the limit are read and dropped before the 413,
#: so ordinary clients get the answer; larger ones are cut off at once.
DRAIN_FACTOR = 4


class BodyLimitMiddleware:
    """A declared ``Content-Length`` over the limit is refused before anything is read;
    a chunked body is counted as it arrives and cut off at the limit."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            if int(declared) <= DRAIN_FACTOR * self.max_bytes:
                # Read and drop the body first: answered while it is still uploading, the
                # client would see the connection reset instead of the 413.
                more = True
                while more:
                    message = await receive()
                    more = message["type"] == "http.request" and message.get("more_body", False)
            body = orjson.dumps(_problem(self.max_bytes, scope.get("path", "")))
            headers = [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ]
            await send({"type": "http.response.start", "status": 413, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counting_receive, send)
