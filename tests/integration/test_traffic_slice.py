"""The first slice end to end: produced flow events -> worker -> PostgreSQL -> API series."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

import httpx

from streams.topics import raw_topic
from tests.utils.apikeys import auth
from tests.utils.events import T0, random_flow
from tests.utils.eventually import eventually
from tests.utils.kafka import produce
from tests.utils.namespaces import Namespace
from tests.utils.services import Process


def api_vehicle_sums(base: str, entities: list[str]) -> dict[tuple[str, datetime], int]:
    """Per-minute vehicle sums of every entity, as the API returns them."""
    sums: dict[tuple[str, datetime], int] = {}
    with httpx.Client(base_url=base, timeout=10, headers=auth("view")) as client:
        for entity in entities:
            response = client.get(
                f"/v1/traffic/entities/{entity}/series",
                params={
                    "metric": "vehicles",
                    "from": T0.isoformat(),
                    "to": (T0 + timedelta(minutes=10)).isoformat(),
                    "bucket": "1m",
                },
            )
            if response.status_code == 404:
                continue  # not written yet
            response.raise_for_status()
            for point in response.json()["points"]:
                sums[(entity, datetime.fromisoformat(point["t"]))] = int(point["sum"])
    return sums


async def test_api_returns_exact_per_minute_vehicle_sums(
    namespace: Namespace, worker: Process, api: str
) -> None:
    batch = random_flow(events=10_000, entities=50, minutes=5, seed=7)
    sent = await produce(
        namespace.settings, raw_topic(namespace.settings, "traffic"), batch.records
    )
    assert sent == 10_000
    assert len(batch.entities) == 50
    assert len(batch.vehicles) == 250

    eventually(
        lambda: api_vehicle_sums(api, batch.entities),
        until=lambda got: got == batch.vehicles,
        within_s=120,
        interval_s=1,
        what="the API to return the produced sums",
    )
    per_minute: dict[datetime, int] = defaultdict(int)
    for (_, minute), vehicles in batch.vehicles.items():
        per_minute[minute] += vehicles
    assert sorted(per_minute) == [T0 + timedelta(minutes=m) for m in range(5)]
    assert worker.alive()
