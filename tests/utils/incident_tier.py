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


def final_incidents(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The last correlation transition of each incident (retracted ones left out): what
    the incident is once the tier has seen every alert."""
    last: dict[str, dict[str, Any]] = {}
    for event in events:
        if event["source"] == "/ioc/incidents":
            last[event["data"]["incident_id"]] = event["data"]
    return {i: d for i, d in last.items() if d["state"] != "retract"}
