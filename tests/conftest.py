"""Fixtures shared by every tier. Integration tiers start real Kafka and PostgreSQL once."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ioc.infra import KafkaBroker, PostgresCluster
from ioc.settings import Settings
from tests.utils.services import ROOT


@pytest.fixture(scope="session")
def infra() -> Iterator[Settings]:
    """Kafka and PostgreSQL through the project's launcher; stopped after the run if we
    started them (already running or external services are left as they were)."""
    settings = Settings(state_dir=ROOT / ".ioc")
    services = [KafkaBroker(settings), PostgresCluster(settings)]
    started = []
    for service in services:
        if service.status().state == "stopped":
            service.up()
            started.append(service)
        assert service.status().state in ("running", "external")
    yield settings
    for service in reversed(started):
        service.down()


@dataclass
class Namespace:
    """A sandbox namespace of its own for one test: topics, schema, consumer groups."""

    settings: Settings
    env: dict[str, str] = field(default_factory=dict)
    logs: Path = Path()


NamespaceFactory = Callable[[], Awaitable[Namespace]]


@pytest.fixture
async def namespace_factory(infra: Settings, tmp_path: Path) -> AsyncIterator[NamespaceFactory]:
    """Makes fresh namespaces, each with its topics created and its schema migrated;
    drops them after the test."""
    from ioc.db.migrate import migrate
    from streams.admin import ensure_topics
    from tests.utils.namespaces import drop_namespace

    made: list[Settings] = []

    async def make() -> Namespace:
        name = f"t_{uuid.uuid4().hex[:10]}"
        settings = infra.model_copy(update={"namespace": name})
        made.append(settings)
        await migrate(settings)
        await ensure_topics(settings)
        env = {"IOC_NAMESPACE": name, "IOC_STATE_DIR": str(infra.state_dir)}
        logs = tmp_path / name
        logs.mkdir()
        return Namespace(settings=settings, env=env, logs=logs)

    yield make
    for settings in made:
        await drop_namespace(settings)


@pytest.fixture
async def namespace(namespace_factory: NamespaceFactory) -> Namespace:
    """A fresh namespace with its topics created and its schema migrated."""
    return await namespace_factory()
