"""Simulated events fed to a namespace's raw topics, and the wait until the worker's
database accounts for them."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from simulators.engine import SimConfig, Simulation
from simulators.events import SimEvent
from streams.topics import raw_topic
from tests.utils.events import Record
from tests.utils.eventually import eventually
from tests.utils.kafka import produce
from tests.utils.namespaces import Namespace
from tests.utils.truth import events_in_database

START = datetime(2024, 9, 5, 7, 30, tzinfo=UTC)


def simulated(*, entities: int, minutes: int, seed: int = 3) -> list[SimEvent]:
    config = SimConfig(start=START, entities=entities, seed=seed, duration_s=minutes * 60)
    return list(Simulation(config).events())


async def produce_events(ns: Namespace, events: list[SimEvent]) -> None:
    by_domain: dict[str, list[Record]] = defaultdict(list)
    for e in events:
        by_domain[e.domain].append(Record(e.key, e.value, e.time_ms))
    for domain, records in by_domain.items():
        await produce(ns.settings, raw_topic(ns.settings, domain), records)


async def settle(
    ns: Namespace, expected_events: int, *, within_s: float = 180, dsn: str | None = None
) -> int:
    """Wait until the database (of ``dsn``, or the namespace's) accounts for at least
    ``expected_events`` applied events; return how many it holds."""
    return await eventually(
        lambda: events_in_database(ns.settings, dsn),
        until=lambda count: count >= expected_events,
        within_s=within_s,
        interval_s=0.5,
        what=f"the database of {ns.settings.namespace} to hold {expected_events} events",
    )
