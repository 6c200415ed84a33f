"""The incident tier in tests: ``ioc incidents`` for a namespace, and its output read back:
incidents from ``ioc.incidents``, the places' hourly counts from ``area_activity_hour``
(stored by the area activity sink), and those counts made straight from the input."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping, Set
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from ioc.settings import Settings
from streams.alerts.transitions import FINAL_STATES, AlertTransition
from streams.incidents.activity import HourCount, hour_of
from streams.incidents.activity_store import AreaActivitySink
from streams.topics import AREA_ACTIVITY_TOPIC, INCIDENTS_TOPIC
from tests.utils.eventually import eventually
from tests.utils.kafka import read_all, records_in
from tests.utils.namespaces import Namespace
from tests.utils.services import Process

#: (area, hour ms) -> (alerts, incidents): rows of ``area_activity_hour`` with any count.
ActivityRows = dict[tuple[str, int], tuple[int, int]]


def start_incidents(namespace: Namespace, *, name: str = "incidents") -> Process:
    """Start ``ioc incidents`` for the namespace and wait until its Faust worker is ready."""
    process = Process(["incidents"], env=namespace.env, log=namespace.logs / f"{name}.log")
    mark = process.log.stat().st_size if process.log.exists() else 0
    process.start()

    def ready() -> bool:
        text = process.log.read_bytes()[mark:].decode(errors="replace")
        return "[^Worker]: Ready" in text or not process.alive()

    eventually(ready, within_s=90, what=f"{name} to be ready")
    assert process.alive(), process.tail()
    return process


async def incident_events(settings: Settings) -> list[dict[str, Any]]:
    """Every CloudEvent on the namespace's ``ioc.incidents`` now, in each partition's
    order."""
    topic = settings.topic(INCIDENTS_TOPIC)
    count = await records_in(settings, topic)
    records = await read_all(settings, topic, expect=count, timeout_s=60)
    assert len(records) == count, (len(records), count)
    return [orjson.loads(r.value) for r in records]


#: What an incident is, whatever transitions made it so (an incident opened with three
#: alerts, or opened with two and updated with a third, is the same incident).
WHAT = ("rule_id", "sop", "area_id", "level", "severity", "opened_at", "closed_at", "alerts")


def final_incidents(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each incident as its last correlation transition leaves it (retracted ones left
    out): the fields of :data:`WHAT` and ``closed``, whether it has closed."""
    last: dict[str, dict[str, Any]] = {}
    for event in events:
        if event["source"] == "/ioc/incidents":
            last[event["data"]["incident_id"]] = event["data"]
    return {
        i: {**{k: d[k] for k in WHAT}, "closed": d["state"] == "close"}
        for i, d in last.items()
        if d["state"] != "retract"
    }


def _ms(at: datetime | str) -> int:
    when = datetime.fromisoformat(at) if isinstance(at, str) else at
    return int(when.timestamp() * 1000)


def counted_activity(
    transitions: Iterable[AlertTransition], incidents: Mapping[str, Mapping[str, Any]]
) -> ActivityRows:
    """The rows ``area_activity_hour`` should hold, counted straight from the alert
    transitions sent (alerts with a final transition and no retraction, in their commune
    and their zone by opening hour) and from the incidents (as :func:`final_incidents`
    gives them: at their area, by opening hour)."""
    confirmed: dict[str, AlertTransition] = {}
    retracted: set[str] = set()
    for t in transitions:
        if t.state in FINAL_STATES:
            confirmed[t.alert_id] = t
        elif t.state == "retract":
            retracted.add(t.alert_id)
    alerts: Counter[tuple[str, int]] = Counter()
    for alert_id, t in confirmed.items():
        if alert_id not in retracted:
            for area in (t.commune_id, t.zone_id):
                assert area is not None
                alerts[(area, hour_of(_ms(t.opened_at)))] += 1
    opened = Counter((d["area_id"], hour_of(_ms(d["opened_at"]))) for d in incidents.values())
    return {row: (alerts[row], opened[row]) for row in set(alerts) | set(opened)}


def published_activity(counts: Iterable[HourCount]) -> ActivityRows:
    """The rows the sink makes of these records: each row's highest version."""
    best: dict[tuple[str, int], HourCount] = {}
    for count in counts:
        row = (count.area_id, count.hour_ms)
        if row not in best or best[row].version <= count.version:
            best[row] = count
    return {row: (c.alerts, c.incidents) for row, c in best.items() if c.alerts or c.incidents}


@asynccontextmanager
async def activity_sink(settings: Settings) -> AsyncIterator[AreaActivitySink]:
    """The area activity sink of the namespace, running in this process."""
    sink = AreaActivitySink(settings)
    await sink.start()
    try:
        yield sink
    finally:
        await sink.stop()


async def stored_activity(
    settings: Settings,
    sink: AreaActivitySink,
    *,
    skipped: Set[str] = frozenset({"repeat"}),
    within_s: float = 60,
) -> ActivityRows:
    """The namespace's ``area_activity_hour`` once the sink has taken every record now on
    ``ioc.area-activity`` (and skipped none for another reason than ``skipped``)."""
    topic = settings.topic(AREA_ACTIVITY_TOPIC)

    async def taken() -> tuple[int, int, dict[str, int]]:
        return await records_in(settings, topic), sink.applied, dict(sink.skipped)

    await eventually(
        taken,
        until=lambda seen: seen[1] + sum(seen[2].values()) >= seen[0],
        within_s=within_s,
        interval_s=0.5,
        what="the sink to take every record on ioc.area-activity (records, applied, skipped)",
    )
    assert not set(sink.skipped) - skipped, sink.skipped
    conn = await asyncpg.connect(
        settings.dsn, server_settings={"search_path": f"{settings.db_schema},public"}
    )
    try:
        rows = await conn.fetch("SELECT area_id, hour, alerts, incidents FROM area_activity_hour")
    finally:
        await conn.close()
    return {
        (r["area_id"], _ms(r["hour"])): (r["alerts"], r["incidents"])
        for r in rows
        if r["alerts"] or r["incidents"]
    }
