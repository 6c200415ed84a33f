"""Refusing URLs that carry U+0000 (NUL) before any route sees them.

PostgreSQL's text cannot hold NUL; a parameter with one would reach a query and fail
there as a server error. Refused here as a 400 problem naming the cause.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_to_bytes

import orjson
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from api.problems import problem_body


def _has_nul(scope: Scope) -> bool:
    path: str = scope.get("path", "")
    query: bytes = scope.get("query_string", b"")
    return "\x00" in path or b"\x00" in unquote_to_bytes(query)


class RefuseNul:
    """ASGI middleware: 400 problem+json for a NUL in the path or query string."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not _has_nul(scope):
            await self.app(scope, receive, send)
            return
        prefix = ""
        if scope["type"] == "websocket":
            if "websocket.http.response" not in scope.get("extensions", {}):
                await send({"type": "websocket.close", "code": 1008, "reason": "NUL in the URL"})
                return
            # A bad request, answered on the handshake as any other (api.websockets).
            prefix = "websocket."
        body = orjson.dumps(
            problem_body(
                status=400,
                slug="nul-character",
                title="NUL character in the URL",
                detail="a path or query parameter holds U+0000, which no parameter may hold",
                instance=scope.get("path", "").replace("\x00", "\\u0000"),
            )
        )
        headers = [
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": f"{prefix}http.response.start", "status": 400, "headers": headers})
        await send({"type": f"{prefix}http.response.body", "body": body})


#: What every free-text path and query parameter may hold, as the OpenAPI document states
#: it (ECMA-262 and Python regexes alike): anything but U+0000.
NO_NUL = "^[^\\u0000]*$"


def _without_nul(schema: dict[str, Any]) -> None:
    """State in a parameter's schema that it holds no U+0000 (free-text strings only:
    enums, formats and patterns already exclude it)."""
    for branch in schema.get("anyOf", []):
        _without_nul(branch)
    if isinstance(schema.get("items"), dict):
        _without_nul(schema["items"])
    if schema.get("type") == "string" and not {"enum", "format", "pattern"} & set(schema):
        schema["pattern"] = NO_NUL


def install_input_guards(app: FastAPI) -> None:
    """Refuse NUL characters in URLs, and say so in the OpenAPI document (a client that
    follows the document never gets the 400)."""
    app.add_middleware(RefuseNul)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            for path in document.get("paths", {}).values():
                for operation in path.values():
                    for parameter in operation.get("parameters", []):
                        if parameter.get("in") in ("path", "query"):
                            _without_nul(parameter.get("schema", {}))
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]
