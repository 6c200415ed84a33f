"""Dependencies handed to routes: the database pool of the namespace read, the settings,
the Kafka publisher."""

from __future__ import annotations

from typing import Annotated

import asyncpg
from fastapi import Depends, Path, Request

from api.namespaces import NamespaceDep
from api.problems import Problem
from api.publisher import Publisher
from ioc.settings import Settings


def get_pool(view: NamespaceDep) -> asyncpg.Pool:
    """The pool of the namespace the request reads (``?namespace=``, see api.namespaces)."""
    return view.pool


def get_own_pool(request: Request) -> asyncpg.Pool:
    """The pool of the API's own namespace, whoever calls (the readiness probe)."""
    pool: asyncpg.Pool = request.app.state.pool
    return pool


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_publisher(request: Request) -> Publisher:
    publisher: Publisher = request.app.state.publisher
    return publisher


def known_domain(
    domain: Annotated[str, Path(description="traffic, hospital, school or security")],
) -> str:
    """The path's domain; a 404 problem when there is no such domain."""
    from streams.catalog import DOMAINS

    if domain not in DOMAINS:
        raise Problem(
            404,
            "unknown-domain",
            "Unknown domain",
            f"no domain {domain!r}; known: {', '.join(DOMAINS)}",
        )
    return domain


PoolDep = Annotated[asyncpg.Pool, Depends(get_pool)]
OwnPoolDep = Annotated[asyncpg.Pool, Depends(get_own_pool)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
PublisherDep = Annotated[Publisher, Depends(get_publisher)]
DomainDep = Annotated[str, Depends(known_domain)]
