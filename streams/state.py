"""Applying one raw record to the entity table: validate, deduplicate, window, or dead-letter.

Every domain's agent hands its records to :func:`apply_record`. The outcome of each
record is exactly one of: applied, duplicate (already applied before a restart), or
dead-lettered with a reason; the counters add up to what was consumed.
"""

from __future__ import annotations

from typing import Any

import faust

from ioc.settings import get_settings
from streams.app import app, entity_table
from streams.counters import CONSUMED, DUPLICATES, PROCESSED
from streams.deadletter import dead_letter, header_pairs
from streams.envelope import Rejection, decode
from streams.windows import fold, new_record


class Watermarks:
    """Greatest event time applied per partition, rebuilt from the table after recovery."""

    def __init__(self) -> None:
        self._by_partition: dict[int, int | None] = {}

    def get(self, partition: int) -> int | None:
        if partition not in self._by_partition:
            times = [
                record["t"]
                for record in entity_table.values()
                if record is not None and record["p"] == partition and record["t"] is not None
            ]
            self._by_partition[partition] = max(times) if times else None
        return self._by_partition[partition]

    def advance(self, partition: int, time_ms: int) -> None:
        current = self._by_partition.get(partition)
        self._by_partition[partition] = time_ms if current is None else max(current, time_ms)

    def forget(self) -> None:
        """Drop everything; called when partitions move, since the table changes then."""
        self._by_partition.clear()


watermarks = Watermarks()
LATENESS_MS = get_settings().streams.allowed_lateness_s * 1000


def _forget_watermarks(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
    watermarks.forget()


app.on_partitions_revoked.connect(_forget_watermarks)
app.on_partitions_assigned.connect(_forget_watermarks)


async def apply_record(event: faust.EventT[bytes], *, domain: str) -> str:
    """Apply one raw record of ``domain``; return its outcome."""
    message = event.message
    CONSUMED.labels(domain).inc()
    try:
        decoded = decode(
            message.value,
            headers=header_pairs(message.headers),
            key=message.key or b"",
            domain=domain,
        )
    except Rejection as rejection:
        await dead_letter(message, rejection)
        return rejection.reason
    key = message.key  # equal to the subject's bytes: decode() checked it
    partition = message.partition
    record = entity_table.get(key) or new_record(
        entity_id=decoded.entity_id, domain=domain, partition=partition
    )
    watermark = watermarks.get(partition)
    time_ms = decoded.time_ms
    result = fold(
        record,
        offset=message.offset,
        time_ms=time_ms,
        event_type=decoded.envelope.type,
        state=decoded.envelope.data,
        metrics=decoded.payload.metrics(),
        watermark_ms=watermark,
        lateness_ms=LATENESS_MS,
    )
    if result.outcome == "duplicate":
        DUPLICATES.labels(domain).inc()
        return "duplicate"
    if result.record is None:
        late = Rejection(
            "late",
            f"event time {decoded.envelope.time.isoformat()} is in a final minute "
            f"(watermark {watermark} ms, allowed lateness {LATENESS_MS} ms)",
            field="time",
        )
        await dead_letter(message, late)
        return "late"
    entity_table[key] = result.record
    watermarks.advance(partition, time_ms)
    PROCESSED.labels(domain).inc()
    return "applied"
