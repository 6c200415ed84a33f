"""``ioc simulate`` on real Kafka: the library's stream goes out; bad config sends nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime

import pytest

from simulators.engine import DOMAINS, SimConfig, Simulation
from streams.topics import raw_topic
from tests.utils.kafka import read_all, records_in
from tests.utils.namespaces import Namespace
from tests.utils.services import ROOT

START = "2025-03-12T08:00:00+07:00"


def _simulate(namespace: Namespace, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ioc.cli", "simulate", *args],
        cwd=ROOT,
        env={**os.environ, **namespace.env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_simulate_produces_the_library_stream_keyed_and_timestamped(
    namespace: Namespace,
) -> None:
    args = ["--entities", "300", "--seed", "4", "--speed", "0", "--duration", "120"]
    result = _simulate(namespace, *args, "--start", START)
    assert result.returncode == 0, result.stderr
    config = SimConfig(
        start=datetime.fromisoformat(START).astimezone(UTC), entities=300, seed=4, duration_s=120
    )
    expected = list(Simulation(config).events())
    assert f"produced {len(expected)} events (0 errors)" in result.stderr
    partitions = namespace.settings.kafka.partitions
    mark_ms = int(datetime.fromisoformat(START).timestamp() * 1000) + 60_000
    for domain in DOMAINS:
        wanted = [e for e in expected if e.domain == domain]
        # Besides the events, a clock mark on every partition each simulated minute.
        records = await read_all(
            namespace.settings,
            raw_topic(namespace.settings, domain),
            expect=len(wanted) + partitions,
        )
        events = [r for r in records if r.value]
        marks = [r for r in records if not r.value]
        assert len(events) == len(wanted), domain
        got = Counter((r.key, r.timestamp, r.value) for r in events)
        assert got == Counter((e.key, e.time_ms, e.value) for e in wanted)
        assert sorted(r.partition for r in marks) == list(range(partitions))
        assert {(r.key, r.timestamp, tuple(r.headers)) for r in marks} == {
            (None, mark_ms, (("ioc_mark", str(mark_ms).encode()),))
        }


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--domains", "traffic,weather"], "unknown domain 'weather'"),
        (["--rate", "-1"], "rate must be positive"),
        (["--scenario", "{path}"], "not valid JSON"),
        (["--scenario", "tsunami"], "scenario 'tsunami' not found"),
        (["--entities", "0"], "entities must be between"),
    ],
)
async def test_bad_configuration_exits_2_naming_the_problem_and_produces_nothing(
    namespace: Namespace, args: list[str], problem: str
) -> None:
    bad = namespace.logs / "bad-scenario.json"
    bad.write_text('{"name": "typhoon", "effects": [')
    args = [a.replace("{path}", str(bad)) for a in args]
    result = _simulate(namespace, *args, "--speed", "0", "--duration", "30")
    assert result.returncode == 2, result.stderr
    assert problem in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr
    for domain in DOMAINS:
        assert await records_in(namespace.settings, raw_topic(namespace.settings, domain)) == 0
