"""Traffic agents."""

from __future__ import annotations

import faust

from streams.app import app, raw_topics
from streams.state import apply_record


@app.agent(raw_topics["traffic"])
async def aggregate_traffic(stream: faust.StreamT[bytes]) -> None:
    """Fold traffic events into entity state and event-time minutes."""
    async for event in stream.events():
        await apply_record(event, domain="traffic")
