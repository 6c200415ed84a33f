"""Replays of the shipped typhoon recording through real workers and PostgreSQL:
pacing does not change the results, and a sandbox replay leaves live untouched."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from city.model import build_city
from contract.catalog import DOMAINS
from ioc.db.registry import load_registry
from ioc.settings import Settings
from recordings.options import ReplayOptions
from recordings.recording import Recording
from recordings.replayer import Replayer
from recordings.store import SEEDS_DIR
from streams.alerts.transitions import FINAL_STATES
from streams.kafka import client_options
from streams.state import IDLE_S
from streams.topics import ALERTS_TOPIC, INCIDENTS_TOPIC, STATE_TOPIC, raw_topic
from tests.utils.eventually import Steady, eventually
from tests.utils.incident_tier import final_incidents, incident_events, start_incidents
from tests.utils.kafka import read_all, records_in
from tests.utils.namespaces import Namespace, NamespaceFactory
from tests.utils.services import ROOT, Process, start_worker
from tests.utils.truth import database_rows

TYPHOON = SEEDS_DIR / "typhoon-yagi.mcap"
#: Paced replay: event seconds per wall-clock second (the recording's 30 minutes in 30 s).
PACED = 60
#: Rules whose alerts the recording must raise besides intrusions: the scenario's
#: landslides (injected at 13:00 local time), and the crashes, flooding, power losses, a
#: fire alarm and resuscitation admissions the storm makes more frequent.
STORM_RULES = {
    "traffic-landslide",
    "traffic-crash",
    "traffic-flooding",
    "security-alarm-power-loss",
    "security-alarm-fire",
    "hospital-triage-1",
}


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
    """The namespace's alert rows, but forecasts: rows still provisional (stored open with
    ``provisional`` set until an open confirms them) or retracted."""
    conn = await asyncpg.connect(settings.dsn)
    try:
        rows = await conn.fetch(
            "SELECT alert_id, rule_id, entity_id, state, opened_at, since, updated_at, "
            f'resolved_at, "values"::text FROM "{settings.db_schema}".alert '
            "WHERE state <> 'retracted' AND NOT provisional ORDER BY alert_id"
        )
    finally:
        await conn.close()
    return [tuple(r) for r in rows]


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


async def _final_transitions(settings: Settings) -> list[dict[str, Any]]:
    """The transitions (CloudEvents' data) of every open, update and resolve the worker
    published on the namespace's ``ioc.alerts``, in a fixed order (partitions interleave
    differently per run)."""
    topic = settings.topic(ALERTS_TOPIC)
    ends = await _end_offsets(settings)
    expect = sum(n for tp, n in ends.items() if tp.topic == topic)
    messages = await read_all(settings, topic, expect=expect)
    assert len(messages) == expect, f"{topic}: read {len(messages)} of {expect}"
    found = [orjson.loads(m.value)["data"] for m in messages]
    final = [t for t in found if t["state"] in FINAL_STATES]
    return sorted(final, key=lambda t: orjson.dumps(t, option=orjson.OPT_SORT_KEYS))


async def _settled_incidents(settings: Settings) -> dict[str, dict[str, Any]]:
    """The namespace's incidents once ioc.incidents has stopped growing for 8 s (more than
    the tier's ticks and commits take)."""
    topic = settings.topic(INCIDENTS_TOPIC)
    await eventually(
        lambda: records_in(settings, topic),
        until=Steady(8, holds=lambda count: count > 0),
        within_s=120,
        interval_s=1,
        what=f"{topic} to stop growing for 8 s",
    )
    return final_incidents(await incident_events(settings))


async def _settle(worker: Process, settings: Settings, sent: int) -> dict[Any, Any]:
    """Wait until the worker consumed ``sent`` records and the database (minutes and
    alerts) stopped changing with nothing pending in the sink; return the minute rows.

    Stopped changing means for longer than the worker's idle sweep takes to come: entities
    that reported in the replay's last seconds are judged once the watermark has stood
    still for streams.state.IDLE_S."""

    async def now() -> tuple[Any, ...]:
        consumed = worker.total("ioc_events_consumed_total")
        pending = worker.total("ioc_sink_pending_records")
        rows = await database_rows(settings)
        return rows, await _alerts(settings), consumed, pending

    rows, _, _, _ = await eventually(
        now,
        until=Steady(
            IDLE_S + 3,
            of=lambda seen: seen[:2],
            holds=lambda seen: seen[2] >= sent and seen[3] == 0 and seen[0],
        ),
        within_s=180,
        interval_s=1.5,
        what=f"{settings.namespace} to settle: {sent} records consumed, nothing pending, "
        f"minutes and alerts still for {IDLE_S + 3} s",
    )
    return rows  # type: ignore[no-any-return]


async def test_the_whole_typhoon_paced_and_at_full_speed_gives_identical_results(
    namespace_factory: NamespaceFactory,
) -> None:
    """Pacing invariance on the whole recording: replayed at x60 into one sandbox and
    as fast as possible into another, each with its own worker, it gives the same minute
    rows, the same final alert transitions on ``ioc.alerts``, the same final alert rows and
    the same incidents from the incident tier (``ioc incidents``, Faust) of each sandbox.

    x60 plays the 30 minutes in 30 s (x1 would take half an hour of the suite) and still
    paces every record by its recorded gap: a worker batch (50 ms) holds about three event
    seconds and the sweep runs twice per event minute, whereas at full speed a
    batch spans many event seconds and minutes become final within one batch. The stream
    layer works on event time only, so what is final must not depend on that. (The
    recording ends with a clock mark at its window's end, recordings.simulated: without
    it, paced, a wrong-way alert whose quiet minutes ended in the last minute stayed
    open, while at full speed it resolved.)

    Final means the transitions ``open``, ``update`` and ``resolve``. The engine's
    ``provisional`` and ``retract`` transitions (an alert foreseen from minutes that are
    not final yet, and its withdrawal) depend on how the records arrived, by design: they
    are left out, and so are alert rows left ``provisional`` or ``retracted``.
    """
    paced, fast = await namespace_factory(), await namespace_factory()
    # The recording's city in both registries, so that alerts carry their places and the
    # incident tier correlates them.
    made = Recording(TYPHOON).scan().parts[0].metadata
    city = build_city(int(made["entities"]), seed=int(made["seed"]))
    for ns in (paced, fast):
        await load_registry(ns.settings, city)
    workers = await asyncio.gather(
        asyncio.to_thread(start_worker, paced, name="paced"),
        asyncio.to_thread(start_worker, fast, name="fast"),
        asyncio.to_thread(start_incidents, paced, name="paced-incidents"),
        asyncio.to_thread(start_incidents, fast, name="fast-incidents"),
    )

    async def at_full_speed() -> tuple[int, dict[Any, Any]]:
        sent = await _replay(fast)
        return sent, await _settle(workers[1], fast.settings, sent)

    try:
        # The full-speed sandbox settles while the paced replay goes on.
        sent, (sent_fast, rows_fast) = await asyncio.gather(
            _replay(paced, speed=PACED), at_full_speed()
        )
        assert sent == sent_fast == sum(Recording(TYPHOON).scan().records.values())
        rows_paced = await _settle(workers[0], paced.settings, sent)
        incidents = await asyncio.gather(*(_settled_incidents(ns.settings) for ns in (paced, fast)))
    finally:
        for worker in workers:
            worker.stop()
    transitions = await _final_transitions(paced.settings)
    assert len(rows_paced) > 50_000
    assert rows_paced == rows_fast
    assert transitions == await _final_transitions(fast.settings)
    alerts = await _alerts(paced.settings)
    assert alerts == await _alerts(fast.settings)
    opened = Counter(t["rule_id"] for t in transitions if t["state"] == "open")
    assert set(opened) >= STORM_RULES, opened
    assert opened["traffic-landslide"] == 5  # the scenario's five road segments
    assert {t["state"] for t in transitions} >= {"open", "resolve"}
    assert {a[3] for a in alerts} == {"open", "resolved"}
    # The same incidents, ids, members, states and times: the landslides' among them.
    assert incidents[0] == incidents[1]
    landslides = [i for i in incidents[0].values() if i["rule_id"] == "landslide"]
    assert len(landslides) >= 3, incidents[0]


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
        sent = await _replay(live, end_ms=_ms("2024-09-07T05:50:00+00:00"))
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
