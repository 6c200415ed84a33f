"""A second worker on one host (a sandbox's beside the demo's) finds the metrics port
taken: it serves /metrics on a free port, says which, and works."""

from __future__ import annotations

import re

import httpx

from tests.utils.namespaces import NamespaceFactory
from tests.utils.services import free_port, start_worker


def metrics(port: int) -> str:
    return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text


async def test_a_second_worker_takes_a_free_metrics_port_and_logs_it(
    namespace_factory: NamespaceFactory,
) -> None:
    port = free_port()
    env = {"IOC_STREAMS__WEB_PORT": str(port)}
    first = start_worker(await namespace_factory(), env=env, name="first")
    second = start_worker(await namespace_factory(), env=env, name="second")
    try:
        said = re.search(
            rf"port {port} is taken .*metrics on http://127\.0\.0\.1:(\d+)/metrics",
            second.log.read_text(),
        )
        assert said, second.tail()
        other = int(said.group(1))
        assert other != port
        for served in (port, other):
            assert "ioc_partitions_owned" in metrics(served)
        assert first.alive()
        assert second.alive()
    finally:
        second.stop()
        first.stop()
