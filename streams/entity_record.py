"""Event-time minutes folded into an entity's record: pure logic, no Kafka.

An entity record is what the entity table keeps per entity and what its changelog,
the compacted ``ioc.state`` topic, carries. It holds everything needed to make
processing exact under at-least-once delivery:

- ``o``: the source offset of the last event applied, so an event seen again after a
  crash or rebalance (offset <= ``o``) is recognised and skipped;
- ``t``: the greatest event time applied, the time of the state in ``s`` (event type
  ``k``);
- ``b``: the open one-minute buckets, each metric as ``[count, sum, min, max, last,
  last_time]``, absolute values, so whoever reads them can upsert without counting twice;
- ``c``: the buckets changed since the record was last written, so the sink writes only
  those;
- ``i``: per open bucket, 64-bit hashes of the (source, id) of the events applied to it
  (as 12-character tokens one after the other, :func:`identity_token`), so the same event
  delivered twice (a producer's retry, a sensor's resend) counts once;
- ``a``: the alert engine's state per rule (``streams.alerts``), carried along here so
  it survives crashes with the rest of the record;
- ``x``: the alert transitions the last write produced, ``r``: the events of kept
  types it applied (both set by ``streams.state``, for the sink), and ``j``: the last
  final minute the alert rules have seen.

A minute ``[b, b + 60 s)`` is final once the watermark reaches ``b + 60 s + lateness``;
an event for a final minute is late. Buckets of final minutes are dropped from the record
by the next event that is not late. Folding changes the record in place: the store keeps
one record per entity and writes a serialised copy of it after each batch. Nothing here
reads a wall clock, so the same events in the same order give the same records whether
they arrive paced or all at once.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any, Literal

BUCKET_MS = 60_000

Aggregate = list[float]  # [count, sum, min, max, last, last_time_ms]
EntityRecord = dict[str, Any]


def bucket_of(time_ms: int) -> int:
    """Start of the one-minute bucket holding ``time_ms``."""
    return time_ms - time_ms % BUCKET_MS


def is_final(bucket_ms: int, *, watermark_ms: int, lateness_ms: int) -> bool:
    """True when no more events may change this bucket."""
    return bucket_ms + BUCKET_MS + lateness_ms <= watermark_ms


Outcome = Literal["applied", "duplicate", "late"]


def new_record(*, entity_id: str, domain: str, partition: int) -> EntityRecord:
    """An empty record for an entity seen for the first time."""
    return {
        "e": entity_id,
        "d": domain,
        "p": partition,
        "o": -1,
        "t": None,
        "b": {},
        "c": [],
        "i": {},
    }


def event_hash(source: str, event_id: str) -> str:
    """A stable 64-bit hash of an event's identity (CloudEvents: source + id), as its
    :func:`identity_token`."""
    digest = hashlib.blake2b(f"{source}\x00{event_id}".encode(), digest_size=8).digest()
    return base64.b64encode(digest).decode()


def identity_token(event_hash: int) -> str:
    """A 64-bit event hash as 12 characters: base64 of its 8 bytes, which always ends in
    a single ``=``. A minute's identities are their tokens one after the other, so a
    token is found in them only where one starts (its ``=`` falls on a token's last
    character): ``token in identities`` is exact."""
    return base64.b64encode(event_hash.to_bytes(8, "big")).decode()


def compact_identities(record: EntityRecord) -> EntityRecord:
    """Convert a record written when identities were lists of integers; same hashes."""
    seen = record.get("i") or {}
    for minute, hashes in seen.items():
        if isinstance(hashes, list):
            seen[minute] = "".join(identity_token(h) for h in hashes)
    return record


def fold(
    record: EntityRecord,
    *,
    offset: int,
    time_ms: int,
    event: str,
    event_type: str,
    state: dict[str, Any],
    metrics: dict[str, float],
    watermark_ms: int | None,
    lateness_ms: int,
    pinned: frozenset[str] | set[str] = frozenset(),
) -> Outcome:
    """Apply one event (``event``: its :func:`event_hash`) to an entity record in place;
    say whether it was applied.

    A duplicate (an offset already applied, or an event already counted in its minute)
    or a late event leaves the record as it was. Buckets in ``pinned`` are kept even when
    final: a batch that changed them has not written them out yet.
    """
    if offset <= record["o"]:
        return "duplicate"
    bucket = bucket_of(time_ms)
    if watermark_ms is not None and is_final(
        bucket, watermark_ms=watermark_ms, lateness_ms=lateness_ms
    ):
        return "late"
    key = str(bucket)
    seen: dict[str, str] = record.setdefault("i", {})
    identities = seen.get(key, "")
    if event in identities:
        return "duplicate"
    watermark = time_ms if watermark_ms is None else max(watermark_ms, time_ms)
    buckets: dict[str, dict[str, Aggregate]] = record["b"]
    final_up_to = watermark - lateness_ms - BUCKET_MS  # is_final() for every minute up to it
    stale = [k for k in seen if k not in pinned and int(k) <= final_up_to]
    stale += [k for k in buckets if k not in seen and k not in pinned and int(k) <= final_up_to]
    for old in stale:
        buckets.pop(old, None)
        seen.pop(old, None)
    seen[key] = identities + event
    if metrics:
        current = buckets.setdefault(key, {})
        for name, value in metrics.items():
            agg = current.get(name)
            if agg is None:
                current[name] = [1, value, value, value, value, time_ms]
                continue
            agg[0] += 1
            agg[1] += value
            if value < agg[2]:
                agg[2] = value
            if value > agg[3]:
                agg[3] = value
            if time_ms >= agg[5]:
                agg[4], agg[5] = value, time_ms
    record["o"] = offset
    if record["t"] is None or time_ms >= record["t"]:
        record["t"], record["k"], record["s"] = time_ms, event_type, state
    record["c"] = [key] if metrics else []
    return "applied"
