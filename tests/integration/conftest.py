"""Fixtures of the integration tier: a worker and an API for the test's namespace."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from ioc.settings import Settings
from tests.conftest import Namespace
from tests.utils.apikeys import keys_env
from tests.utils.namespaces import drop_namespace
from tests.utils.services import Process, free_port, wait_for


def start_worker(
    namespace: Namespace, *, env: dict[str, str] | None = None, name: str = "worker"
) -> Process:
    """Start ``ioc worker`` for the namespace and wait until it consumes."""
    port = free_port()
    process = Process(
        ["worker"],
        env={**namespace.env, "IOC_STREAMS__WEB_PORT": str(port), **(env or {})},
        log=namespace.logs / f"{name}.log",
    )
    process.web_port = port
    mark = process.log.stat().st_size if process.log.exists() else 0
    process.start()

    def ready() -> bool:
        text = process.log.read_bytes()[mark:].decode(errors="replace")
        return "Worker ready" in text or not process.alive()

    wait_for(ready, timeout=90, what="the worker to be ready")
    assert process.alive(), process.tail()
    return process


@pytest.fixture
def worker(namespace: Namespace) -> Iterator[Process]:
    """``ioc worker`` for the namespace, ready to consume."""
    process = start_worker(namespace)
    yield process
    process.stop()


def start_api(
    namespace: Namespace, *, env: dict[str, str] | None = None, name: str = "api"
) -> tuple[Process, str]:
    """Start ``ioc api`` for the namespace with the test keys of ``tests.utils.apikeys``;
    return the process and its base URL once it answers."""
    port = free_port()
    process = Process(
        ["api", "--port", str(port)],
        env={**namespace.env, **keys_env(), **(env or {})},
        log=namespace.logs / f"{name}.log",
    )
    process.start()
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: httpx.get(f"{base}/healthz").status_code == 200, timeout=30, what="the API")
    return process, base


@pytest.fixture
def api(namespace: Namespace) -> Iterator[str]:
    """``ioc api`` for the namespace, with the test keys of ``tests.utils.apikeys``;
    yields its base URL."""
    process, base = start_api(namespace)
    yield base
    process.stop()


async def new_namespace(infra: Settings, tmp_path_factory: pytest.TempPathFactory) -> Namespace:
    """A fresh namespace (topics created, schema migrated) with a logs directory of its
    own; the caller drops it (``drop_namespace``)."""
    from ioc.db.migrate import migrate
    from streams.admin import ensure_topics

    name = f"t_{uuid.uuid4().hex[:10]}"
    settings = infra.model_copy(update={"namespace": name})
    await migrate(settings)
    await ensure_topics(settings)
    env = {"IOC_NAMESPACE": name, "IOC_STATE_DIR": str(infra.state_dir)}
    return Namespace(settings=settings, env=env, logs=tmp_path_factory.mktemp(name))


@pytest.fixture(scope="module")
async def module_namespace(
    infra: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Namespace]:
    """One namespace shared by the tests of a module (topics created, schema migrated),
    dropped after the module."""
    namespace = await new_namespace(infra, tmp_path_factory)
    yield namespace
    await drop_namespace(namespace.settings)
