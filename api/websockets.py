"""How a WebSocket handshake is refused, so that every client learns why.

Two kinds of refusal, as the README states:
- a bad request (a malformed parameter, an unknown area): the handshake is answered with
  the same problem+json HTTP response an SSE client gets (422, 404, ...), through the
  ASGI WebSocket denial-response extension;
- a refused credential or scope (401, 403), the rate limits (429) and a full namespace
  table (503): the handshake completes and the connection is closed at once with 1008
  ("policy violation") or 1013 ("try again later") and a reason that starts with the
  problem's slug. Browsers see nothing of a refused handshake but a generic failure;
  the close code and reason they do see.
"""

from __future__ import annotations

from fastapi import FastAPI, WebSocketException
from fastapi.exceptions import WebSocketRequestValidationError
from starlette.websockets import WebSocket, WebSocketState

from api.problems import ProblemResponse, validation_problem

#: RFC 6455: a close frame's reason is at most 123 bytes of UTF-8.
MAX_REASON_BYTES = 123


def close_reason(text: str) -> str:
    """``text`` cut to fit a close frame, on a character boundary."""
    return text.encode()[:MAX_REASON_BYTES].decode("utf-8", "ignore")


async def _close_after_accept(websocket: WebSocket, exc: WebSocketException) -> None:
    if websocket.client_state == WebSocketState.CONNECTING:
        await websocket.accept()
    if websocket.client_state == WebSocketState.CONNECTED:
        await websocket.close(code=exc.code, reason=close_reason(exc.reason or ""))


async def _invalid_handshake(
    websocket: WebSocket, exc: WebSocketRequestValidationError
) -> ProblemResponse:
    return ProblemResponse(validation_problem(exc.errors(), websocket.url.path), status_code=422)


def install_websocket_refusals(app: FastAPI) -> None:
    """Refuse WebSocket handshakes as the module docstring says."""
    app.add_exception_handler(WebSocketException, _close_after_accept)  # type: ignore[arg-type]
    app.add_exception_handler(
        WebSocketRequestValidationError,
        _invalid_handshake,  # type: ignore[arg-type]
    )
