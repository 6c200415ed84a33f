"""The entity record: its typed fields, its wire format on ``ioc.state``, and event-time
minutes folded into it. Pure logic, no Kafka.

An entity record is what the entity store keeps per entity and what its changelog, the
compacted ``ioc.state`` topic, carries. It holds everything needed to make processing
exact under at-least-once delivery. On the wire it is one JSON object with one-letter
keys (records already in Kafka are read as they are); in code, :class:`EntityRecord`:

- ``offset`` (``o``): the source offset of the last event applied, so an event seen again
  after a crash or rebalance (offset <= ``offset``) is recognised and skipped;
- ``time_ms`` (``t``): the greatest event time applied, the time of ``state`` (``s``,
  of event type ``event_type``, ``k``);
- ``buckets`` (``b``): the open one-minute buckets, each metric an :class:`Aggregate`
  (``[count, sum, min, max, last, last_time]``), absolute values, so whoever reads them
  can upsert without counting twice;
- ``changed`` (``c``): the buckets changed since the record was last written, so the sink
  writes only those;
- ``identities`` (``i``): per open bucket, 64-bit hashes of the (source, id) of the
  events applied to it (12-character tokens one after the other, :func:`identity_token`),
  so the same event delivered twice (a producer's retry, a sensor's resend) counts once;
- ``rules`` (``a``): the alert engine's state per rule (``streams.alerts``), carried along
  here so it survives crashes with the rest of the record;
- ``transitions`` (``x``): the alert transitions the last write produced, ``raw``
  (``r``): the events of kept types it applied (both set by ``streams.state``, for the
  sink), and ``judged`` (``j``): the last final minute the alert rules have seen.

A minute ``[b, b + 60 s)`` is final once the watermark reaches ``b + 60 s + lateness``;
an event for a final minute is late. Buckets of final minutes are dropped from the record
by the next event that is not late. Folding changes the record in place: the store keeps
one record per entity and writes an encoded copy of it after each batch. Nothing here
reads a wall clock, so the same events in the same order give the same records whether
they arrive paced or all at once.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any, Literal

import msgspec

Minute = str  # a bucket's start, ms since the epoch, as the decimal string the wire keys by
#: One rule's state, as the rule's module writes it (``streams.alerts.track``, ``instant``,
#: ``health``): the rules' own business, kept here so it survives with the minutes.
RuleState = dict[str, Any]


class Aggregate(msgspec.Struct, array_like=True, gc=False):
    """One metric over one minute; on the wire ``[count, sum, min, max, last, last_time]``.

    Values stay integers where the events' were (``int | float``), so a record read back
    is written byte for byte as it was."""

    count: int
    sum: int | float
    min: int | float
    max: int | float
    last: int | float
    last_ms: int

    def __getitem__(self, index: Any) -> Any:
        # The rules' conditions (streams.alerts.conditions, health) read an aggregate as
        # its wire list; only when a record is judged, never per event.
        return (self.count, self.sum, self.min, self.max, self.last, self.last_ms)[index]

    def __len__(self) -> int:
        return 6


class KeptEvent(msgspec.Struct):
    """An applied event of a type kept one by one (``Payload.keep_raw``), for ``raw_event``."""

    id: str
    source: str
    type: str
    time: int
    data: dict[str, Any]


class EntityRecord(msgspec.Struct):
    """One entity's record (see the module docstring); fields in the order written."""

    entity_id: str = msgspec.field(name="e")
    domain: str = msgspec.field(name="d")
    #: The raw-topic (and changelog) partition the entity's events come from.
    partition: int = msgspec.field(name="p")
    offset: int = msgspec.field(default=-1, name="o")
    time_ms: int | None = msgspec.field(default=None, name="t")
    buckets: dict[Minute, dict[str, Aggregate]] = msgspec.field(default_factory=dict, name="b")
    changed: list[Minute] = msgspec.field(default_factory=list, name="c")
    identities: dict[Minute, str] = msgspec.field(default_factory=dict, name="i")
    event_type: str | None = msgspec.field(default=None, name="k")
    state: dict[str, Any] = msgspec.field(default_factory=dict, name="s")
    rules: dict[str, RuleState] = msgspec.field(default_factory=dict, name="a")
    judged: int | None = msgspec.field(default=None, name="j")
    transitions: list[dict[str, Any]] = msgspec.field(default_factory=list, name="x")
    raw: list[KeptEvent] = msgspec.field(default_factory=list, name="r")

    def open_alerts(self) -> list[tuple[str, str]]:
        """(rule id, alert id) of every alert open on this entity, by rule id."""
        return open_alerts(self.rules)


class LiveView(msgspec.Struct):
    """What the live feed reads of a record (``api.live.messages.entity_view``): decoding
    only these fields skips the minutes, identities and transitions."""

    entity_id: str = msgspec.field(name="e")
    domain: str = msgspec.field(name="d")
    time_ms: int | None = msgspec.field(default=None, name="t")
    event_type: str | None = msgspec.field(default=None, name="k")
    state: dict[str, Any] = msgspec.field(default_factory=dict, name="s")
    rules: dict[str, RuleState] = msgspec.field(default_factory=dict, name="a")

    def open_alerts(self) -> list[tuple[str, str]]:
        """(rule id, alert id) of every alert open on this entity, by rule id."""
        return open_alerts(self.rules)


def open_alerts(rules: dict[str, RuleState]) -> list[tuple[str, str]]:
    """(rule id, alert id) of the alerts open in a record's rule states: every rule kind
    keeps its open alert under ``a`` with its ``id`` (``streams.alerts.track``)."""
    return [
        (rule_id, track["a"]["id"])
        for rule_id, track in sorted(rules.items())
        if isinstance(track, dict) and isinstance(track.get("a"), dict)
    ]


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(EntityRecord)


def encode_record(record: EntityRecord) -> bytes:
    """The record as ``ioc.state`` carries it."""
    return _encoder.encode(record)


def decode_record(value: bytes) -> EntityRecord:
    """A record as read from ``ioc.state``, today's or an older shape (keys missing, or
    identities as lists of integer hashes); ``msgspec.ValidationError`` otherwise."""
    try:
        return _decoder.decode(value)
    except msgspec.ValidationError:
        older = msgspec.json.decode(value)
        if not isinstance(older, dict) or not isinstance(older.get("i"), dict):
            raise
        older["i"] = {
            minute: hashes
            if isinstance(hashes, str)
            else "".join(identity_token(h) for h in hashes)
            for minute, hashes in older["i"].items()
        }
        return msgspec.convert(older, EntityRecord)


BUCKET_MS = 60_000


def bucket_of(time_ms: int) -> int:
    """Start of the one-minute bucket holding ``time_ms``."""
    return time_ms - time_ms % BUCKET_MS


def is_final(bucket_ms: int, *, watermark_ms: int, lateness_ms: int) -> bool:
    """True when no more events may change this bucket."""
    return bucket_ms + BUCKET_MS + lateness_ms <= watermark_ms


Outcome = Literal["applied", "duplicate", "late"]


def new_record(*, entity_id: str, domain: str, partition: int) -> EntityRecord:
    """An empty record for an entity seen for the first time."""
    return EntityRecord(entity_id=entity_id, domain=domain, partition=partition)


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
    prune: bool = True,
) -> Outcome:
    """Apply one event (``event``: its :func:`event_hash`) to an entity record in place;
    say whether it was applied.

    A duplicate (an offset already applied, or an event already counted in its minute)
    or a late event leaves the record as it was. Buckets in ``pinned`` are kept even when
    final: a batch that changed them has not written them out yet. ``prune`` False skips
    looking for final minutes to drop: the caller knows none has become final since it
    last looked (the walk over the record's minutes was a fifth of the fold).
    """
    if offset <= record.offset:
        return "duplicate"
    bucket = bucket_of(time_ms)
    if watermark_ms is not None and is_final(
        bucket, watermark_ms=watermark_ms, lateness_ms=lateness_ms
    ):
        return "late"
    key = str(bucket)
    seen = record.identities
    identities = seen.get(key, "")
    if event in identities:
        return "duplicate"
    buckets = record.buckets
    if prune:
        watermark = time_ms if watermark_ms is None else max(watermark_ms, time_ms)
        final_up_to = watermark - lateness_ms - BUCKET_MS  # is_final() for every minute to it
        stale = [k for k in seen if k not in pinned and int(k) <= final_up_to]
        stale += [k for k in buckets if k not in seen and k not in pinned and int(k) <= final_up_to]
        for old in stale:
            buckets.pop(old, None)
            seen.pop(old, None)
    seen[key] = identities + event
    if metrics:
        current = buckets.get(key)
        if current is None:
            current = buckets[key] = {}
        for name, value in metrics.items():
            agg = current.get(name)
            if agg is None:
                current[name] = Aggregate(1, value, value, value, value, time_ms)
                continue
            agg.count += 1
            agg.sum += value
            if value < agg.min:
                agg.min = value
            if value > agg.max:
                agg.max = value
            if time_ms >= agg.last_ms:
                agg.last, agg.last_ms = value, time_ms
    record.offset = offset
    if record.time_ms is None or time_ms >= record.time_ms:
        record.time_ms, record.event_type, record.state = time_ms, event_type, state
    record.changed = [key] if metrics else []
    return "applied"
