"""The aggregation agents: one per domain's raw topic, all folding into the entity table.

Domains differ in their payload models (``streams/<domain>/models.py``), not in how
events are applied, so one agent body serves every raw topic.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import cast

import faust

from ioc.settings import get_settings
from streams.app import app, raw_topics
from streams.state import apply_batch

batch = get_settings().streams
Agent = Callable[[faust.StreamT[bytes]], Awaitable[None]]


def _aggregator(domain: str) -> Agent:
    async def aggregate(stream: faust.StreamT[bytes]) -> None:
        # Events are acknowledged only after their batch is applied and written.
        # take_events is on faust.Stream, the class every agent receives, not on StreamT.
        batches = cast(faust.Stream[bytes], stream).take_events(
            batch.max_events, within=batch.max_wait_s
        )
        async for events in batches:
            await apply_batch(events, domain=domain)

    aggregate.__doc__ = f"Fold {domain} events into entity state and event-time minutes."
    return aggregate


#: aggregate_traffic, aggregate_hospital, ... by domain.
aggregators = {
    domain: app.agent(topic, name=f"aggregate_{domain}")(_aggregator(domain))
    for domain, topic in raw_topics.items()
}
