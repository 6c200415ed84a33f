"""Applying raw records to the entity table: validate, deduplicate, window, or dead-letter.

Every domain's agent hands its batches to :func:`apply_batch`. Each record's outcome is
exactly one of: applied, duplicate (already applied before a restart), or dead-lettered
with a reason; the counters add up to what was consumed.

Records are folded one by one in the order they arrived, exactly as if each were
processed alone, so results never depend on where a batch happened to end. Only the
writing is batched: each entity touched by a batch gets one record in the changelog.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import faust

from ioc.settings import get_settings
from streams.alerts import RuleEngine, load_rules
from streams.app import alerts_topic, app, entity_table
from streams.counters import CONSUMED, DUPLICATES, PROCESSED
from streams.deadletter import dead_letter, header_pairs
from streams.envelope import Rejection, decode
from streams.windows import EntityRecord, fold, new_record

LATENESS_MS = get_settings().streams.allowed_lateness_s * 1000
rules = RuleEngine(load_rules())


class Watermarks:
    """Greatest event time applied per raw-topic partition (domain, partition number),
    rebuilt from the table after recovery.

    Domains share partition numbers (their raw topics are co-partitioned with the table),
    but each raw topic partition is its own ordered stream, so each has its own watermark:
    lateness never depends on how two topics happened to interleave.
    """

    def __init__(self) -> None:
        self._by_partition: dict[tuple[str, int], int | None] = {}

    def get(self, domain: str, partition: int) -> int | None:
        key = (domain, partition)
        if key not in self._by_partition:
            times = [
                record["t"]
                for record in entity_table.values()
                if record is not None
                and record["p"] == partition
                and record["d"] == domain
                and record["t"] is not None
            ]
            self._by_partition[key] = max(times) if times else None
        return self._by_partition[key]

    def advance(self, domain: str, partition: int, time_ms: int) -> None:
        current = self._by_partition.get((domain, partition))
        self._by_partition[(domain, partition)] = (
            time_ms if current is None else max(current, time_ms)
        )

    def forget(self) -> None:
        """Drop everything; called when partitions move, since the table changes then."""
        self._by_partition.clear()


watermarks = Watermarks()


def _forget_watermarks(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
    watermarks.forget()


app.on_partitions_revoked.connect(_forget_watermarks)
app.on_partitions_assigned.connect(_forget_watermarks)


@dataclass
class Pending:
    """An entity's record as folded so far in this batch, not yet written."""

    record: EntityRecord
    partition: int
    changed: set[str] = field(default_factory=set)
    raw: list[dict[str, Any]] = field(default_factory=list)


async def apply_batch(events: Sequence[faust.EventT[bytes]], *, domain: str) -> Counter[str]:
    """Apply a batch of raw records of ``domain`` in order; return outcomes by name."""
    outcomes: Counter[str] = Counter()
    pending: dict[bytes, Pending] = {}
    for event in events:
        message = event.message
        try:
            decoded = decode(
                message.value,
                headers=header_pairs(message.headers),
                key=message.key or b"",
                domain=domain,
            )
        except Rejection as rejection:
            await dead_letter(message, rejection)
            outcomes[rejection.reason] += 1
            continue
        key = decoded.entity_id.encode()  # the record's key: decode() checked they match
        partition = message.partition
        entry = pending.get(key)
        record = (
            entry.record
            if entry is not None
            else entity_table.get(key)
            or new_record(entity_id=decoded.entity_id, domain=domain, partition=partition)
        )
        watermark = watermarks.get(domain, partition)
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
            pinned=frozenset(entry.changed) if entry is not None else frozenset(),
        )
        if result.outcome == "duplicate":
            outcomes["duplicate"] += 1
            continue
        if result.record is None:
            late = Rejection(
                "late",
                f"event time {decoded.envelope.time.isoformat()} is in a final minute "
                f"(watermark {watermark} ms, allowed lateness {LATENESS_MS} ms)",
                field="time",
            )
            await dead_letter(message, late)
            outcomes["late"] += 1
            continue
        if entry is None:
            entry = pending[key] = Pending(result.record, partition)
        entry.record = result.record
        entry.changed.update(result.record["c"])
        if decoded.payload.keep_raw:
            envelope = decoded.envelope
            entry.raw.append(
                {
                    "id": envelope.id,
                    "source": envelope.source,
                    "type": envelope.type,
                    "time": time_ms,
                    "data": envelope.data,
                }
            )
        watermarks.advance(domain, partition, time_ms)
        outcomes["applied"] += 1
    _write(pending)
    CONSUMED.labels(domain).inc(len(events))
    PROCESSED.labels(domain).inc(outcomes["applied"])
    DUPLICATES.labels(domain).inc(outcomes["duplicate"])
    return outcomes


def _write(pending: dict[bytes, Pending]) -> None:
    """One changelog record per touched entity, in the partition its events came from,
    after the alert rules have judged the minutes the batch made final."""
    for key, entry in pending.items():
        record = entry.record
        evaluation = rules.evaluate(
            record.get("a"),
            entity_id=record["e"],
            domain=record["d"],
            buckets=record["b"],
            watermark_ms=watermarks.get(record["d"], entry.partition),
            lateness_ms=LATENESS_MS,
        )
        # The transitions travel in the record too ("x"): the changelog record is the one
        # write that is atomic with the state that produced them, so the sink takes them
        # from there and a crash between the two topics' flushes loses no alert.
        record = {
            **record,
            "c": sorted(entry.changed),
            "a": evaluation.states,
            "x": [t.model_dump(mode="json") for t in evaluation.transitions],
            # Events of the types kept one by one (Payload.keep_raw), for raw_event.
            "r": entry.raw,
        }
        entity_table.data[key] = record
        entity_table.send_changelog(entry.partition, key, record)
        for transition in evaluation.transitions:
            # The live feed for operators. Its ids and times are event-time facts, so a
            # repeat after a crash is the same message.
            alerts_topic.send_soon(key=key, value=transition.to_json(), partition=entry.partition)
