"""Event-time minutes folded into entity records: exact, idempotent, late-aware."""

from __future__ import annotations

import base64
import copy
import hashlib
import random

import orjson

from streams.entity_record import (
    BUCKET_MS,
    Aggregate,
    EntityRecord,
    bucket_of,
    decode_record,
    encode_record,
    event_hash,
    fold,
    identity_token,
    is_final,
    new_record,
)

T = 1_725_696_000_000  # 2024-09-07T08:00:00Z, a minute boundary
LATENESS = 120_000


def _apply(
    record: EntityRecord, *, offset: int, time_ms: int, vehicles: float, watermark: int | None
) -> tuple[EntityRecord, str]:
    """Fold into a copy of the record; return the copy and the outcome."""
    record = copy.deepcopy(record)
    outcome = fold(
        record,
        offset=offset,
        time_ms=time_ms,
        event=identity_token(offset),
        event_type="city.traffic.flow.v1",
        state={"vehicles": vehicles},
        metrics={"vehicles": vehicles},
        watermark_ms=watermark,
        lateness_ms=LATENESS,
    )
    return record, outcome


def test_bucket_boundaries() -> None:
    assert bucket_of(T) == T
    assert bucket_of(T + BUCKET_MS - 1) == T
    assert bucket_of(T + BUCKET_MS) == T + BUCKET_MS
    assert not is_final(T, watermark_ms=T + BUCKET_MS + LATENESS - 1, lateness_ms=LATENESS)
    assert is_final(T, watermark_ms=T + BUCKET_MS + LATENESS, lateness_ms=LATENESS)


def test_events_aggregate_count_sum_min_max_and_last_by_event_time() -> None:
    record = new_record(entity_id="ix", domain="traffic", partition=0)
    record, _ = _apply(record, offset=0, time_ms=T + 30_000, vehicles=5, watermark=None)
    record, _ = _apply(record, offset=1, time_ms=T + 10_000, vehicles=9, watermark=T + 30_000)
    assert record.buckets[str(T)]["vehicles"] == Aggregate(2, 14, 5, 9, 5, T + 30_000)
    assert record.state == {"vehicles": 5}  # state follows the newest event time
    assert record.changed == [str(T)]
    assert record.offset == 1


def test_an_offset_seen_before_is_a_duplicate_and_changes_nothing() -> None:
    record = new_record(entity_id="ix", domain="traffic", partition=0)
    record, _ = _apply(record, offset=5, time_ms=T, vehicles=5, watermark=None)
    again, outcome = _apply(record, offset=5, time_ms=T, vehicles=5, watermark=T)
    assert outcome == "duplicate"
    assert again == record
    assert record.buckets[str(T)]["vehicles"].count == 1


def test_late_events_are_refused_and_in_time_ones_land_in_their_own_minute() -> None:
    record = new_record(entity_id="ix", domain="traffic", partition=0)
    watermark = T + BUCKET_MS + LATENESS - 1  # minute T is not final yet
    record, outcome = _apply(record, offset=0, time_ms=T + 5, vehicles=1, watermark=watermark)
    assert outcome == "applied"
    assert str(T) in record.buckets
    _, outcome = _apply(record, offset=1, time_ms=T + 5, vehicles=1, watermark=watermark + 1)
    assert outcome == "late"


def test_final_minutes_are_dropped_from_the_record_when_it_is_next_written() -> None:
    record = new_record(entity_id="ix", domain="traffic", partition=0)
    record, _ = _apply(record, offset=0, time_ms=T, vehicles=1, watermark=None)
    later = T + 10 * BUCKET_MS
    record, _ = _apply(record, offset=1, time_ms=later, vehicles=2, watermark=T)
    assert list(record.buckets) == [str(later)]


def test_a_duplicate_or_late_event_leaves_the_record_as_it_was() -> None:
    record = new_record(entity_id="ix", domain="traffic", partition=0)
    outcome = fold(
        record,
        offset=0,
        time_ms=T,
        event=identity_token(0),
        event_type="city.traffic.flow.v1",
        state={"vehicles": 1},
        metrics={"vehicles": 1},
        watermark_ms=None,
        lateness_ms=LATENESS,
    )
    assert outcome == "applied"
    snapshot = copy.deepcopy(record)
    for offset, time_ms, watermark in ((0, T + 1, T), (1, T - 10 * BUCKET_MS, T)):
        outcome = fold(
            record,
            offset=offset,
            time_ms=time_ms,
            event=identity_token(offset),
            event_type="city.traffic.flow.v1",
            state={"vehicles": 9},
            metrics={"vehicles": 9},
            watermark_ms=watermark,
            lateness_ms=LATENESS,
        )
        assert outcome in ("duplicate", "late")
        assert record == snapshot


def test_the_same_event_at_another_offset_is_a_duplicate_within_its_open_minute() -> None:
    record = new_record(entity_id="ix", domain="traffic", partition=0)
    same = event_hash("/sensors/ix", "reading-1")
    assert same == event_hash("/sensors/ix", "reading-1")
    assert same != event_hash("/sensors/other", "reading-1")
    outcomes = [
        fold(
            record,
            offset=offset,
            time_ms=T + 1_000,
            event=event,
            event_type="city.traffic.flow.v1",
            state={},
            metrics={"vehicles": 4},
            watermark_ms=None if offset == 0 else T + 1_000,
            lateness_ms=LATENESS,
        )
        for offset, event in enumerate((same, same, event_hash("/sensors/ix", "reading-2")))
    ]
    assert outcomes == ["applied", "duplicate", "applied"]
    assert record.buckets[str(T)]["vehicles"][:2] == (2, 8)
    # Once the minute is final its identities are forgotten with its buckets.
    fold(
        record,
        offset=3,
        time_ms=T + 10 * BUCKET_MS,
        event=event_hash("/sensors/ix", "reading-3"),
        event_type="city.traffic.flow.v1",
        state={},
        metrics={"vehicles": 1},
        watermark_ms=T + 1_000,
        lateness_ms=LATENESS,
    )
    assert list(record.identities) == [str(T + 10 * BUCKET_MS)]


def test_an_identity_token_is_found_only_where_one_starts() -> None:
    """A minute's identities are 12-character tokens one after the other; a token that
    is not among them is never found straddling two of them."""
    rng = random.Random(7)
    for _ in range(2000):
        hashes = [rng.getrandbits(64) for _ in range(rng.randrange(0, 40))]
        tokens = [identity_token(h) for h in hashes]
        assert all(len(t) == 12 and t.index("=") == 11 for t in tokens)
        joined = "".join(tokens)
        for n in range(len(joined) - 11):  # every window, aligned or not
            window = joined[n : n + 12]
            assert (window in tokens) == (n % 12 == 0)
        outsider = identity_token(rng.getrandbits(64))
        assert (outsider in joined) == (outsider in tokens)
    # The same 64-bit hash as identities stored as integers held.
    digest = hashlib.blake2b(b"/sensors/ix\x00r-1", digest_size=8).digest()
    assert event_hash("/sensors/ix", "r-1") == identity_token(int.from_bytes(digest, "big"))


def test_a_record_with_identities_as_integers_keeps_its_duplicates() -> None:
    """Records written before identities were tokens hold lists of the same 64-bit
    hashes: converted, the events they name are still duplicates."""
    record = new_record(entity_id="ix", domain="traffic", partition=0)
    for offset, event_id in enumerate(("r-1", "r-2")):
        fold(
            record,
            offset=offset,
            time_ms=T + offset,
            event=event_hash("/sensors/ix", event_id),
            event_type="city.traffic.flow.v1",
            state={},
            metrics={"vehicles": 1},
            watermark_ms=T,
            lateness_ms=LATENESS,
        )
    tokens = record.identities[str(T)]
    old = orjson.loads(encode_record(record))
    old["i"][str(T)] = [
        int.from_bytes(base64.b64decode(tokens[n : n + 12]), "big") for n in (0, 12)
    ]
    old = decode_record(orjson.dumps(old))
    assert old == record
    outcome = fold(
        old,
        offset=5,
        time_ms=T + 5,
        event=event_hash("/sensors/ix", "r-2"),
        event_type="city.traffic.flow.v1",
        state={},
        metrics={"vehicles": 1},
        watermark_ms=T,
        lateness_ms=LATENESS,
    )
    assert outcome == "duplicate"
