"""The incident tier in tests: ``ioc incidents`` for a namespace, and its output read back."""

from __future__ import annotations

from typing import Any

import orjson

from ioc.settings import Settings
from streams.topics import INCIDENTS_TOPIC
from tests.conftest import Namespace
from tests.utils.kafka import read_all, records_in
from tests.utils.services import Process, wait_for


def start_incidents(namespace: Namespace, *, name: str = "incidents") -> Process:
    """Start ``ioc incidents`` for the namespace and wait until its Faust worker is ready."""
    process = Process(["incidents"], env=namespace.env, log=namespace.logs / f"{name}.log")
    mark = process.log.stat().st_size if process.log.exists() else 0
    process.start()

    def ready() -> bool:
        text = process.log.read_bytes()[mark:].decode(errors="replace")
        return "[^Worker]: Ready" in text or not process.alive()

    wait_for(ready, timeout=90, what=f"{name} to be ready")
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
