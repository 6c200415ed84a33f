"""``/v1/live`` (WebSocket) and ``/v1/live/sse`` (Server-Sent Events)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Depends, Header, Query, Request, WebSocket

from api.auth import ViewCaller, takes_query_key
from api.live.feed import DISCONNECTED, INTERNAL_ERROR, Feed, Frame
from api.live.filters import LiveFilter, invalid, parse_filter
from api.live.messages import EventId
from api.live.outbox import SHUTDOWN, SLOW_CONSUMER
from api.live.sse import EventStreamResponse
from api.namespaces import NamespaceDep, Namespaces, NamespaceView
from api.problems import Problem

router = APIRouter(prefix="/v1/live", tags=["live"])

#: WebSocket close codes of a server-ended feed; the reason text is the same word as SSE's.
CLOSE_CODES = {SHUTDOWN: 1001, INTERNAL_ERROR: 1011, SLOW_CONSUMER: 4008}
CLOSE_TIMEOUT_S = 2.0

Values = Annotated[list[str] | None, Query()]


def _filter(
    kind: Values = None,
    domain: Values = None,
    area: Values = None,
    entity: Values = None,
    severity: Values = None,
) -> LiveFilter:
    """Filters of the feed; see ``api.live.filters``."""
    return parse_filter(kind=kind, domain=domain, area=area, entity=entity, severity=severity)


FilterDep = Annotated[LiveFilter, Depends(_filter)]


#: The areas asked for and every area inside them (a zone's communes, a province's all).
AREAS_WITHIN = """
WITH RECURSIVE within (id, depth) AS (
    SELECT id, 0 FROM area WHERE id = ANY($1)
    UNION
    SELECT a.id, w.depth + 1 FROM area a JOIN within w ON a.parent_id = w.id WHERE w.depth < 8
)
SELECT DISTINCT id FROM within
"""


async def _resolve_areas(pool: asyncpg.Pool, live_filter: LiveFilter) -> LiveFilter:
    """The filter with its areas turned into the entities the registry places in them,
    and into the areas inside them (incidents are placed in a commune or a zone)."""
    if live_filter.areas is None:
        return live_filter
    areas = sorted(live_filter.areas)
    async with pool.acquire() as conn:
        known = {r["id"] for r in await conn.fetch("SELECT id FROM area WHERE id = ANY($1)", areas)}
        unknown = sorted(live_filter.areas - known)
        if unknown:
            raise Problem(
                404, "unknown-area", "Unknown area", f"no area {', '.join(map(repr, unknown))}"
            )
        rows = await conn.fetch(
            "SELECT DISTINCT entity_id FROM area_entity WHERE area_id = ANY($1)", areas
        )
        within = await conn.fetch(AREAS_WITHIN, areas)
    return dataclasses.replace(
        live_filter,
        area_entities=frozenset(r["entity_id"] for r in rows),
        area_ids=frozenset(r["id"] for r in within),
    )


def _since(text: str | None, name: str) -> EventId | None:
    if not text:
        return None
    try:
        return EventId.parse(text)
    except ValueError as exc:
        raise invalid(f"{name}: {exc}") from None


async def _feed(
    conn: Request | WebSocket, view: NamespaceView, live_filter: LiveFilter, since: EventId | None
) -> Feed:
    namespaces: Namespaces = conn.app.state.namespaces
    hub = await namespaces.hub(view)
    subscription = hub.subscribe(live_filter, since)
    return Feed(hub=hub, subscription=subscription, pool=view.pool, settings=view.settings.live)


@router.get(
    "/sse",
    # Stated, because FastAPI reads a default status from the response class's __init__,
    # which EventStreamResponse has not: /openapi.json failed with a 500 without it.
    status_code=200,
    response_class=EventStreamResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "The event stream"},
        404: {"description": "Unknown area or namespace"},
        422: {"description": "Bad filter, event id or namespace name"},
        503: {"description": "Too many other namespaces open (see Retry-After)"},
    },
)
@takes_query_key
async def live_sse(
    request: Request,
    _caller: ViewCaller,
    view: NamespaceDep,
    live_filter: FilterDep,
    since: Annotated[str | None, Query(max_length=64)] = None,
    last_event_id: Annotated[str | None, Header(max_length=64)] = None,
) -> EventStreamResponse:
    """Snapshot, then entity updates, alert transitions, incidents and area tiles as SSE."""
    resolved = await _resolve_areas(view.pool, live_filter)
    start = _since(last_event_id, "Last-Event-ID") or _since(since, "since")
    return EventStreamResponse(await _feed(request, view, resolved, start))


@router.websocket("")
@takes_query_key
async def live_ws(
    websocket: WebSocket,
    _caller: ViewCaller,
    view: NamespaceDep,
    live_filter: FilterDep,
    since: Annotated[str | None, Query(max_length=64)] = None,
) -> None:
    """Snapshot, then entity updates, alert transitions, incidents and area tiles as JSON."""
    resolved = await _resolve_areas(view.pool, live_filter)
    feed = await _feed(websocket, view, resolved, _since(since, "since"))
    try:
        await websocket.accept()
    except BaseException:
        feed.hub.unsubscribe(feed.subscription)
        raise

    async def emit(frame: Frame) -> None:
        await websocket.send({"type": "websocket.send", "text": frame.body.decode()})

    async def client_gone() -> None:
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass

    reason = await feed.pump(emit, client_gone=client_gone)
    if reason != DISCONNECTED:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                websocket.close(CLOSE_CODES.get(reason, 1011), reason), CLOSE_TIMEOUT_S
            )
