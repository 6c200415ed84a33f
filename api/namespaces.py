"""The namespaces one API process reads: its own, and any other an engineer names.

A namespace is a topic prefix plus a database schema (``ioc.settings``). The API serves
its own namespace (``IOC_NAMESPACE``, the live one in production) to everyone with
``view``. A caller holding ``replay`` (or ``admin``) may name another with
``?namespace=``, to watch a sandbox a replay is filling: every read route, the alert
actions and the live feeds then use that namespace's schema and topics.

Each named namespace gets a small pool of its own, opened on first use, and a live-feed
consumer only once a client asks for its feed. What nobody has used for
``api.namespace_idle_s`` (and no live client watches) is closed again; at most
``api.max_namespaces`` are open besides the API's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Annotated

import asyncpg
from fastapi import Depends, Query
from starlette.requests import HTTPConnection

from api.auth import Caller, ViewCaller, websocket_refusal
from api.live.consumer import FeedConsumer, new_hub
from api.live.hub import Hub
from api.problems import Problem
from ioc.db.pool import create_pool
from ioc.settings import NAMESPACE_PATTERN, Settings

log = logging.getLogger(__name__)

#: What a route reading ``?namespace=`` may answer besides its own problems: an unknown
#: namespace (404), or too many open (503).
NAMESPACE_PROBLEMS = (404, 503)
#: An unwatched namespace unused this long gives way to another when the bound is reached.
EVICT_AFTER_S = 5.0
#: Connections of a named namespace's pool: engineers watching a replay, not the city.
NAMED_POOL_SIZE = 4

NAMESPACES_QUERY = """
SELECT n.nspname AS name
FROM pg_namespace n JOIN pg_class c ON c.relnamespace = n.oid
WHERE c.relname = 'entity_state' AND c.relkind IN ('r', 'p')
ORDER BY n.nspname
"""


@dataclass(eq=False)
class NamespaceView:
    """What the API reads of one namespace: its settings, pool, and live feed."""

    settings: Settings
    pool: asyncpg.Pool
    hub: Hub | None = None
    task: asyncio.Task[None] | None = None
    used: float = field(default_factory=time.monotonic)

    @property
    def name(self) -> str:
        return self.settings.namespace

    def watched(self) -> bool:
        return self.hub is not None and self.hub.clients > 0


class Namespaces:
    """The API's own namespace view and the named ones opened on demand."""

    def __init__(self, own: NamespaceView) -> None:
        self.own = own
        self.settings = own.settings
        self.named: dict[str, NamespaceView] = {}
        self._lock = asyncio.Lock()
        self._reaper: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._reaper = asyncio.create_task(self._reap_idle(), name="namespace-reaper")

    async def view(self, name: str) -> NamespaceView:
        """The view of namespace ``name``; a 404 problem when its schema does not exist."""
        if name == self.own.name:
            return self.own
        async with self._lock:
            view = self.named.get(name)
            if view is None:
                view = await self._open(name)
                self.named[name] = view
        view.used = time.monotonic()
        return view

    async def _open(self, name: str) -> NamespaceView:
        async with self.own.pool.acquire() as conn:
            exists = await conn.fetchval(
                "SELECT to_regclass($1) IS NOT NULL", f"{name}.entity_state"
            )
        if not exists:
            raise Problem(
                404,
                "unknown-namespace",
                "Unknown namespace",
                f"no namespace {name!r}: no schema holds its tables (GET /v1/namespaces)",
            )
        api = self.settings.api
        if len(self.named) >= api.max_namespaces:
            # Unwatched ones give way, unless a request may still be using their pool.
            await self._close_idle(idle_s=EVICT_AFTER_S)
        if len(self.named) >= api.max_namespaces:
            raise Problem(
                503,
                "too-many-namespaces",
                "Too many namespaces open",
                f"{api.max_namespaces} other namespaces are being watched; try again later",
                headers={"Retry-After": "30"},
            )
        settings = self.settings.model_copy(update={"namespace": name})
        pool = await create_pool(settings, max_size=NAMED_POOL_SIZE)
        log.info("namespace %s opened for reading", name)
        return NamespaceView(settings=settings, pool=pool)

    async def hub(self, view: NamespaceView) -> Hub:
        """The live hub of ``view``, its consumer started (and positioned) if it was not."""
        if view.hub is not None:
            return view.hub
        hub = new_hub(view.settings)
        consumer = FeedConsumer(view.settings, hub)
        view.hub = hub
        view.task = asyncio.create_task(consumer.run(), name=f"live-feed-{view.name}")
        # Clients subscribe once the consumer has a position: updates after their snapshot
        # are then not missed. A namespace without topics yet serves snapshots meanwhile.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(consumer.ready.wait(), view.settings.live.start_timeout_s)
        return hub

    async def names(self) -> list[str]:
        """Every namespace with tables in the database, the API's own first."""
        async with self.own.pool.acquire() as conn:
            rows = await conn.fetch(NAMESPACES_QUERY)
        found = [r["name"] for r in rows if NAMESPACE_PATTERN.fullmatch(r["name"])]
        return [self.own.name] + [n for n in found if n != self.own.name]

    def close_hubs(self) -> None:
        """End every named namespace's live feeds (the server is stopping)."""
        for view in self.named.values():
            if view.hub is not None:
                view.hub.close()

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        async with self._lock:
            for view in list(self.named.values()):
                await _shut(view)
            self.named.clear()

    async def _reap_idle(self) -> None:
        idle_s = self.settings.api.namespace_idle_s
        while True:
            await asyncio.sleep(max(1.0, idle_s / 4))
            async with self._lock:
                await self._close_idle(idle_s=idle_s)

    async def _close_idle(self, *, idle_s: float) -> None:
        now = time.monotonic()
        for name, view in list(self.named.items()):
            if not view.watched() and now - view.used >= idle_s:
                del self.named[name]
                await _shut(view)
                log.info("namespace %s closed (idle)", name)


async def _shut(view: NamespaceView) -> None:
    if view.hub is not None:
        view.hub.close()
    if view.task is not None:
        view.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await view.task
    await view.pool.close()


NamespaceParam = Annotated[
    str | None,
    Query(
        pattern=NAMESPACE_PATTERN.pattern,
        description="Read this namespace instead of the API's own (a sandbox a replay "
        "fills, for instance). Needs the `replay` or `admin` scope unless it is the API's "
        "own. `GET /v1/namespaces` lists them.",
        examples=["sandbox"],
    ),
]


async def namespace_view(
    conn: HTTPConnection, caller: ViewCaller, namespace: NamespaceParam = None
) -> NamespaceView:
    """The namespace the request reads: the API's own, or the one it names."""
    namespaces: Namespaces = conn.app.state.namespaces
    if namespace is None or namespace == namespaces.own.name:
        return namespaces.own
    try:
        require_engineer(caller, namespace)
        return await namespaces.view(namespace)
    except Problem as problem:
        if conn.scope["type"] != "websocket":
            raise
        raise websocket_refusal(problem) from None


def require_engineer(caller: Caller, namespace: str) -> None:
    if not caller.can("replay"):
        raise Problem(
            403,
            "forbidden",
            "Forbidden",
            f"{caller.name!r} lacks the 'replay' scope needed to read namespace {namespace!r}",
        )


NamespaceDep = Annotated[NamespaceView, Depends(namespace_view)]
