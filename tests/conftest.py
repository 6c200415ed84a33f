"""Fixtures shared by every tier. Integration tiers start real Kafka and PostgreSQL once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from ioc.infra import KafkaBroker, PostgresCluster
from ioc.settings import Settings
from tests.utils.namespaces import Namespace, NamespaceFactory, drop_namespace, new_namespace
from tests.utils.services import ROOT


@pytest.fixture(scope="session")
def infra() -> Iterator[Settings]:
    """Kafka and PostgreSQL through the project's launcher; stopped after the run if we
    started them (already running or external services are left as they were)."""
    settings = Settings(state_dir=ROOT / ".ioc")
    services: list[KafkaBroker | PostgresCluster] = [
        KafkaBroker(settings),
        PostgresCluster(settings),
    ]
    started = []
    for service in services:
        if service.status().state == "stopped":
            service.up()
            started.append(service)
        assert service.status().state in ("running", "external")
    yield settings
    for service in reversed(started):
        service.down()


@pytest.fixture
async def namespace_factory(
    infra: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[NamespaceFactory]:
    """Makes fresh namespaces, each with its topics created and its schema migrated;
    drops them after the test."""
    made: list[Namespace] = []

    async def make() -> Namespace:
        made.append(await new_namespace(infra, tmp_path_factory))
        return made[-1]

    yield make
    for namespace in made:
        await drop_namespace(namespace.settings)


@pytest.fixture
async def namespace(namespace_factory: NamespaceFactory) -> Namespace:
    """A fresh namespace with its topics created and its schema migrated."""
    return await namespace_factory()
