"""Fixtures of the integration tier: a worker and an API for the test's namespace."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Namespace
from tests.utils.services import Process, free_port, wait_for


@pytest.fixture
def worker(namespace: Namespace) -> Iterator[Process]:
    """``ioc worker`` for the namespace, ready to consume."""
    port = free_port()
    process = Process(
        ["worker"],
        env={**namespace.env, "IOC_STREAMS__WEB_PORT": str(port)},
        log=namespace.logs / "worker.log",
    )
    process.start()
    process.web_port = port  # type: ignore[attr-defined]
    wait_for(
        lambda: "Worker ready" in process.log.read_text(errors="replace") or not process.alive(),
        timeout=90,
        what="the worker to be ready",
    )
    assert process.alive(), process.tail()
    yield process
    process.stop()


@pytest.fixture
def api(namespace: Namespace) -> Iterator[str]:
    """``ioc api`` for the namespace; yields its base URL."""
    port = free_port()
    process = Process(
        ["api", "--port", str(port)], env=namespace.env, log=namespace.logs / "api.log"
    )
    process.start()
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: httpx.get(f"{base}/healthz").status_code == 200, timeout=30, what="the API")
    yield base
    process.stop()
