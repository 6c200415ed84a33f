"""The README's client guide runs: each example (aiokafka, confluent-kafka, kcat, curl) is
executed as written, pointed at the test's broker, topic and API, and the worker applies
every event it published to the same entity and minute."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime

import orjson
import pytest

from ioc.infra.debian import ensure_command
from streams.partitions import home_partition
from streams.topics import raw_topic
from tests.utils.apikeys import KEYS
from tests.utils.kafka import read_all
from tests.utils.namespaces import Namespace
from tests.utils.pipeline import settle
from tests.utils.services import ROOT, Process, start_api
from tests.utils.truth import database_rows

EXAMPLE = re.compile(r"<!-- client: (\S+) -->\n```(\w+)\n(.*?)\n```", re.DOTALL)
CLIENTS = ("aiokafka", "confluent-kafka", "kcat", "curl")


def examples() -> dict[str, tuple[str, str]]:
    found = EXAMPLE.findall((ROOT / "README.md").read_text())
    return {client: (language, code) for client, language, code in found}


def test_the_guide_has_an_example_for_each_client() -> None:
    assert set(examples()) == set(CLIENTS)


def run_example(client: str, places: dict[str, str]) -> None:
    """Run the README's example for ``client`` as written, but for the test's ``places``
    (the broker, the topic and the API in the example -> the test's)."""
    language, code = examples()[client]
    for written, here in places.items():
        code = code.replace(written, here)
    command = [sys.executable, "-c", code] if language == "python" else ["bash", "-c", code]
    env = {**os.environ, "IOC_KEY": KEYS["publish:traffic"]}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{client}: {done.stdout}{done.stderr}"


@pytest.mark.timeout(240)
async def test_every_example_runs_and_its_event_is_applied(
    namespace: Namespace, worker: Process
) -> None:
    settings = namespace.settings
    topic = raw_topic(settings, "traffic")
    api, base = start_api(namespace)
    ensure_command("kcat", ["kcat"])
    try:
        for client in CLIENTS:
            run_example(
                client,
                {
                    "127.0.0.1:19092": settings.bootstrap_servers,
                    "ioc.traffic.events": topic,
                    "http://127.0.0.1:8000": base,
                },
            )
    finally:
        api.stop()

    records = await read_all(settings, topic, expect=4)
    ids = sorted(orjson.loads(r.value)["id"] for r in records)
    assert ids == ["acme-000123", "acme-000124", "acme-000125", "acme-000126"]
    home = home_partition(b"qn-ix-halong-001", settings.kafka.partitions)
    assert {r.partition for r in records} == {home}
    await settle(namespace, 4, within_s=60)
    minute = int(datetime(2024, 9, 7, 1, 0, tzinfo=UTC).timestamp() * 1000)
    rows = await database_rows(settings)
    assert rows[("qn-ix-halong-001", "vehicles", minute)] == (4, 158.0, 37.0, 42.0)
