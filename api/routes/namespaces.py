"""``GET /v1/namespaces``: what the caller may read with ``?namespace=``."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from api.auth import ViewCaller
from api.namespaces import Namespaces
from api.problems import problem_responses

router = APIRouter(prefix="/v1", tags=["namespaces"])


class NamespaceInfo(BaseModel):
    name: str = Field(examples=["sandbox"])
    own: bool = Field(description="The namespace this API serves when none is named")
    entities: int = Field(description="Entities with a live state")
    newest: datetime | None = Field(description="Event time of the newest live state")


class NamespaceList(BaseModel):
    items: list[NamespaceInfo] = Field(description="The API's own namespace first")


@router.get("/namespaces", responses=problem_responses())
async def list_namespaces(caller: ViewCaller, request: Request) -> NamespaceList:
    """The namespaces the caller may read: for engineers (`replay` scope) every namespace
    with tables in the database, the live one and the sandboxes replays fill; for others
    the API's own. Read one with `?namespace=<name>` on any read route or live feed."""
    namespaces: Namespaces = request.app.state.namespaces
    names = await namespaces.names() if caller.can("replay") else [namespaces.own.name]
    items = []
    async with namespaces.own.pool.acquire() as conn:
        for name in names:
            # The names come from the catalogue and match NAMESPACE_PATTERN: identifiers.
            row = await conn.fetchrow(
                f'SELECT count(*) AS n, max(event_time) AS newest FROM "{name}".entity_state'
            )
            assert row is not None
            items.append(
                NamespaceInfo(
                    name=name,
                    own=name == namespaces.own.name,
                    entities=row["n"],
                    newest=row["newest"],
                )
            )
    return NamespaceList(items=items)
