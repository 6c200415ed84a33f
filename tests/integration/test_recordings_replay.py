"""Replays of the shipped typhoon recording through real workers and PostgreSQL:
pacing does not change the results, and a sandbox replay leaves live untouched."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from ioc.settings import Settings
from recordings.options import ReplayOptions
from recordings.recording import Recording
from recordings.replayer import Replayer
from recordings.store import SEEDS_DIR
from streams.catalog import DOMAINS
from streams.kafka import client_options
from streams.state import IDLE_S
from streams.topics import ALERTS_TOPIC, STATE_TOPIC, raw_topic
from tests.conftest import Namespace, NamespaceFactory
from tests.integration.conftest import start_worker
from tests.utils.services import ROOT, Process
from tests.utils.truth import database_rows

TYPHOON = SEEDS_DIR / "typhoon-yagi.mcap"


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).astimezone(UTC).timestamp() * 1000)


async def _replay(ns: Namespace, **options: Any) -> int:
    """Replay the typhoon into ``ns``; return the records sent (primed included)."""
    replayer = Replayer(
        Recording(TYPHOON), ns.settings, ReplayOptions(namespace=ns.settings.namespace, **options)
    )
    await replayer.run()
    progress = replayer.controller.progress
    return progress.sent + progress.primed


async def _alerts(settings: Settings) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(settings.dsn)
    try:
        rows = await conn.fetch(
            "SELECT alert_id, rule_id, entity_id, state, opened_at, since, updated_at, "
            f'resolved_at, "values"::text FROM "{settings.db_schema}".alert ORDER BY alert_id'
        )
    finally:
        await conn.close()
    return [tuple(r) for r in rows]


async def _settle(worker: Process, settings: Settings, sent: int) -> dict[Any, Any]:
    """Wait until the worker consumed ``sent`` records and the database (minutes and
    alerts) stopped changing with nothing pending in the sink; return the minute rows.

    Stopped changing means for longer than the worker's idle sweep takes to come: entities
    that reported in the replay's last seconds are judged once the watermark has stood
    still for streams.state.IDLE_S."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 180
    last: tuple[Any, ...] | None = None
    since = loop.time()
    while loop.time() < deadline:
        consumed = worker.total("ioc_events_consumed_total")
        pending = worker.total("ioc_sink_pending_records")
        rows = await database_rows(settings)
        now = (rows, await _alerts(settings))
        if now != last:
            last, since = now, loop.time()
        elif consumed >= sent and pending == 0 and rows and loop.time() - since > IDLE_S + 3:
            return rows
        await asyncio.sleep(1.5)
    raise AssertionError(f"{settings.namespace}: not settled ({worker.tail()})")


async def test_typhoon_at_x10_and_x100_gives_identical_minutes_and_alerts(
    namespace_factory: NamespaceFactory,
) -> None:
    """Pacing invariance on a 6-minute slice (07:50-07:56 UTC, 15 minutes before landfall,
    when intrusion alerts open and resolve), primed with every entity's state before it.

    x1 of the whole 30-minute file would take half an hour; x10 stands in for it because
    it already paces every event by its recorded gap: one wall-clock second carries 10 s
    of event time, so each worker batch (50 ms) holds about half a second of events and
    the sweep runs several times per event minute, as at x1, whereas at x100 a batch
    spans several event seconds and minutes close within one batch. The stream layer
    works on event time only, so the minute rows and the alerts must be the same.
    """
    slow, fast = await namespace_factory(), await namespace_factory()
    workers = [start_worker(slow, name="slow"), start_worker(fast, name="fast")]
    try:
        window = {
            "start_ms": _ms("2024-09-07T07:50:00+00:00"),
            "end_ms": _ms("2024-09-07T07:56:00+00:00"),
        }
        sent_slow, sent_fast = await asyncio.gather(
            _replay(slow, speed=10, **window), _replay(fast, speed=100, **window)
        )
        assert sent_slow == sent_fast > 20_000
        rows_slow = await _settle(workers[0], slow.settings, sent_slow)
        rows_fast = await _settle(workers[1], fast.settings, sent_fast)
        alerts_slow, alerts_fast = await _alerts(slow.settings), await _alerts(fast.settings)
    finally:
        for worker in workers:
            worker.stop()
    assert len(rows_slow) > 10_000
    assert rows_slow == rows_fast
    assert {a[3] for a in alerts_slow} >= {"open", "resolved"}
    assert alerts_slow == alerts_fast


async def _end_offsets(settings: Settings) -> dict[Any, int]:
    topics = [raw_topic(settings, d) for d in DOMAINS]
    topics += [settings.topic(STATE_TOPIC), settings.topic(ALERTS_TOPIC)]
    consumer = AIOKafkaConsumer(group_id=None, **client_options(settings))
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(settings.kafka.partitions)]
        return dict(await consumer.end_offsets(tps))
    finally:
        await consumer.stop()


async def test_a_sandbox_replay_leaves_live_aggregates_and_topics_alone(
    namespace_factory: NamespaceFactory,
) -> None:
    """A namespace stands in for live: the CLI runs with it as its own (IOC_NAMESPACE), so
    replaying into it needs --allow-live, and a replay into a sandbox changes nothing there
    while the sandbox fills."""
    live, sandbox = await namespace_factory(), await namespace_factory()
    live_worker = start_worker(live, name="live")
    sandbox_worker = start_worker(sandbox, name="sandbox")
    try:
        sent = await _replay(live, end_ms=_ms("2024-09-07T07:45:00+00:00"))
        live_rows = await _settle(live_worker, live.settings, sent)
        live_alerts = await _alerts(live.settings)
        live_offsets = await _end_offsets(live.settings)

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "ioc.cli", "replay", str(TYPHOON), "--speed", "0", *args],
                cwd=ROOT,
                env={**os.environ, **live.env, "COLUMNS": "200"},
                capture_output=True,
                text=True,
                timeout=300,
            )

        refused = cli("--namespace", live.settings.namespace)
        assert refused.returncode == 2
        assert "--allow-live" in refused.stderr
        done = cli("--namespace", sandbox.settings.namespace)
        assert done.returncode == 0, done.stderr
        total = sum(Recording(TYPHOON).scan().records.values())
        sandbox_rows = await _settle(sandbox_worker, sandbox.settings, total)
        assert len(sandbox_rows) > len(live_rows)
        assert await database_rows(live.settings) == live_rows
        assert await _alerts(live.settings) == live_alerts
        assert await _end_offsets(live.settings) == live_offsets
    finally:
        live_worker.stop()
        sandbox_worker.stop()
