"""Headers every HTTP answer of the API carries.

- ``X-Content-Type-Options: nosniff`` on every answer: a browser takes a JSON or problem
  body for what its ``Content-Type`` says, never for a script or a page.
- ``Cache-Control: no-store`` on every answer but the static files. The API's answers are
  computed from the city's live state or for the caller's key; neither a shared cache
  on the city's network nor the disk cache of an operators' shared workstation may keep
  them. The dashboard's and Swagger UI's files are the same for everyone and carry
  validators (ETag, Last-Modified), so browsers may keep and revalidate them; a problem
  answer under their prefixes is still ``no-store``.

A route that sets its own ``Cache-Control`` keeps it (the live feed's ``no-cache``, the
dashboard page's ``no-cache``).

A pure ASGI middleware: it edits the ``http.response.start`` message and leaves the body
alone, so server-sent events stream as before; WebSocket connections pass untouched.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PROBLEM_TYPE = "application/problem+json"


class ResponseHeaders:
    """ASGI middleware adding ``nosniff`` and ``no-store`` (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, cacheable: tuple[str, ...]) -> None:
        self.app, self.cacheable = app, cacheable

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith(self.cacheable)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                problem = headers.get("content-type", "").startswith(PROBLEM_TYPE)
                if problem or not static:
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install_response_headers(app: FastAPI, *, cacheable: tuple[str, ...]) -> None:
    """Add the headers to every answer of ``app``; answers under the path prefixes in
    ``cacheable`` (static files) may be cached. Install it after the other middleware so
    that it wraps them, and their own answers (413, 400) get the headers too."""
    app.add_middleware(ResponseHeaders, cacheable=cacheable)
