"""Fixtures of the integration tier: a worker and an API for the test's namespace."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from ioc.settings import Settings
from tests.utils.namespaces import Namespace, drop_namespace, new_namespace
from tests.utils.services import Process, start_api, start_worker


@pytest.fixture
def worker(namespace: Namespace) -> Iterator[Process]:
    """``ioc worker`` for the namespace, ready to consume."""
    process = start_worker(namespace)
    yield process
    process.stop()


@pytest.fixture
def api(namespace: Namespace) -> Iterator[str]:
    """``ioc api`` for the namespace, with the test keys of ``tests.utils.apikeys``;
    yields its base URL."""
    process, base = start_api(namespace)
    yield base
    process.stop()


@pytest.fixture(scope="module")
async def module_namespace(
    infra: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Namespace]:
    """One namespace shared by the tests of a module (topics created, schema migrated),
    dropped after the module."""
    namespace = await new_namespace(infra, tmp_path_factory)
    yield namespace
    await drop_namespace(namespace.settings)
