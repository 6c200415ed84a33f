"""Dependencies handed to routes: the database pool of the namespace read, the settings,
the Kafka publisher, the recordings and replays of the process. Each long-lived object is
made in the app's lifespan (``api.main``) and only looked up here."""

from __future__ import annotations

from typing import Annotated

import asyncpg
from fastapi import Depends, Path, Request

from api.namespaces import NamespaceDep
from api.problems import Problem
from api.publisher import Publisher
from contract.catalog import DOMAINS
from ioc.settings import Settings
from recordings.jobs import Jobs
from recordings.store import NAME_MAX_LENGTH, Entry, NameError_, check_name

#: What a recording's name may be, for the OpenAPI document of every route naming one.
NAME_RULE = (
    f"Recording name: 1-{NAME_MAX_LENGTH} letters, digits, '.', '_' or '-', a letter or "
    "digit first, no '..'"
)


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


def get_jobs(request: Request) -> Jobs:
    """The API process's recordings and replays."""
    jobs: Jobs = request.app.state.jobs
    return jobs


def valid_name(name: str) -> str:
    """``name`` if allowed as a recording's name, else a 422 problem saying why."""
    try:
        return check_name(name)
    except NameError_ as exc:
        raise Problem(422, "invalid-name", "Invalid recording name", str(exc)) from None


def find_recording(jobs: Jobs, name: str) -> Entry:
    """The recording of that name, or a 404 problem."""
    entry = jobs.store.find(valid_name(name))
    if entry is None:
        raise Problem(404, "unknown-recording", "Unknown recording", f"no recording {name!r}")
    return entry


def known_domain(
    domain: Annotated[str, Path(description=f"{', '.join(DOMAINS[:-1])} or {DOMAINS[-1]}")],
) -> str:
    """The path's domain; a 404 problem when there is no such domain."""
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
JobsDep = Annotated[Jobs, Depends(get_jobs)]
DomainDep = Annotated[str, Depends(known_domain)]
