"""``ioc record`` then ``ioc replay`` on real Kafka: 50,000 records come back as recorded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from streams.kafka import client_options
from streams.topics import raw_topic
from tests.utils.eventually import eventually
from tests.utils.kafka import read_all
from tests.utils.namespaces import Namespace, NamespaceFactory
from tests.utils.services import ROOT, Process

RECORDS = 50_000
T0_MS = 1_725_670_800_000


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ioc.cli", *args],
        cwd=ROOT,
        env={**os.environ, **env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=180,
    )


async def _produce(namespace: Namespace) -> None:
    """Records with keys, null keys, tombstones, headers (and none), over two topics."""
    settings = namespace.settings
    topics = [raw_topic(settings, "traffic"), raw_topic(settings, "hospital")]
    producer = AIOKafkaProducer(acks="all", linger_ms=5, **client_options(settings))
    await producer.start()
    try:
        futures = []
        for i in range(RECORDS):
            headers = [("trace", str(i).encode()), ("tenant", b"qn")] if i % 3 else []
            futures.append(
                await producer.send(
                    topics[i % 2],
                    None if i % 101 == 1 and i % 97 else f"payload-{i}-{'x' * (i % 40)}".encode(),
                    key=None if i % 97 == 0 else f"qn-{i % 500:04d}".encode(),
                    partition=i % 8 if i % 97 == 0 else None,
                    timestamp_ms=T0_MS + i,
                    headers=headers,
                )
            )
        for future in futures:
            await future
    finally:
        await producer.stop()


def _by_partition(records: list[Any], prefix: str) -> dict[tuple[str, int], list[Any]]:
    out: dict[tuple[str, int], list[Any]] = defaultdict(list)
    for r in sorted(records, key=lambda r: (r.topic, r.partition, r.offset)):
        out[(r.topic.removeprefix(prefix), r.partition)].append(r)
    return out


async def test_recorded_records_replay_with_key_value_headers_partition_and_relative_times(
    namespace_factory: NamespaceFactory, tmp_path: Path
) -> None:
    source, sandbox = await namespace_factory(), await namespace_factory()
    env = {**source.env, "IOC_RECORDINGS__DIR": str(tmp_path / "recordings")}
    recorder = Process(
        ["record", "round-trip", "--namespace", source.settings.namespace, "-t", "ioc.*.events"],
        env=env,
        log=source.logs / "record.log",
    ).start()
    try:
        eventually(
            lambda: "Ctrl-C stops" in recorder.log.read_text(), within_s=60, what="recording"
        )
        await _produce(source)
        eventually(
            lambda: f"record: {RECORDS:,} records" in recorder.log.read_text(),
            within_s=90,
            what="the recorder to write every record",
        )
        assert recorder.popen is not None
        os.killpg(recorder.popen.pid, signal.SIGINT)
        assert recorder.popen.wait(30) == 0, recorder.tail()
    finally:
        recorder.stop()
    assert f"recorded {RECORDS:,} records" in recorder.log.read_text()

    info = _cli(env, "recording", "verify", "round-trip")
    assert info.returncode == 0, info.stderr
    assert "ok: every chunk is whole" in info.stderr
    assert f"{RECORDS // 2:>10,} records" in info.stderr  # each topic holds half

    replay = _cli(
        env,
        "replay",
        "round-trip",
        "--namespace",
        sandbox.settings.namespace,
        "--speed",
        "0",
        "--shift-to-now",
    )
    assert replay.returncode == 0, replay.stderr
    assert f"{RECORDS:,} records sent" in replay.stderr

    originals: list[Any] = []
    replayed: list[Any] = []
    for domain in ("traffic", "hospital"):
        originals += await read_all(
            source.settings, raw_topic(source.settings, domain), expect=RECORDS // 2
        )
        replayed += await read_all(
            sandbox.settings, raw_topic(sandbox.settings, domain), expect=RECORDS // 2
        )
    assert len(originals) == len(replayed) == RECORDS
    before = _by_partition(originals, source.settings.topic_prefix)
    after = _by_partition(replayed, sandbox.settings.topic_prefix)
    assert before.keys() == after.keys()
    shift = replayed[0].timestamp - next(
        o.timestamp
        for o in originals
        if (o.topic.removeprefix(source.settings.topic_prefix), o.partition, o.offset)
        == (
            replayed[0].topic.removeprefix(sandbox.settings.topic_prefix),
            replayed[0].partition,
            replayed[0].offset,
        )
    )
    assert shift > 0  # moved to now
    for slot, records in before.items():
        again = after[slot]
        assert [(r.key, r.value, tuple(r.headers)) for r in records] == [
            (r.key, r.value, tuple(r.headers)) for r in again
        ], slot
        assert [r.timestamp + shift for r in records] == [r.timestamp for r in again], slot
