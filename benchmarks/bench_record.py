"""The entity record's cost on the worker's path: fold + encode, and decode, typed against
the dict record it replaced, in one process, alternately.

    .venv/bin/python -m benchmarks.bench_record [--events 200000] [--entities 2000]
        [--rounds 5] [--baseline fe1ab7e]

The baseline is ``streams/windows.py`` as of ``--baseline`` (the last commit before the
record was typed), loaded from git: dict records folded in place and written with
``orjson.dumps``. The typed one is :mod:`streams.entity_record`: msgspec structs written
with :func:`encode_record`. Both fold the same traffic events (three metrics each, in
time order, 2,000 entities) and write every record touched once per batch of 2,000
events, as the store does; then both read every written record back (``orjson.loads``
against :func:`decode_record`, what recovery and the sink do). Rounds alternate
baseline and typed, so drift of the machine hits both; prints the median per-event cost
of each and one Markdown row for ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from typing import Any

import orjson

from streams import entity_record

T0_MS = 1_725_696_000_000
BATCH = 2_000


def _baseline(commit: str) -> types.ModuleType:
    """``streams/windows.py`` as of ``commit``, as a module."""
    source = subprocess.run(
        ["git", "show", f"{commit}:streams/windows.py"], check=True, capture_output=True
    ).stdout
    module = types.ModuleType("windows_baseline")
    exec(compile(source, "windows_baseline", "exec"), module.__dict__)
    return module


def _events(count: int, entities: int) -> list[tuple[int, str, int, dict[str, Any]]]:
    """(entity number, identity token, event time, data) of ``count`` flow events."""
    out = []
    for n in range(count):
        data = {"vehicles": n % 40, "avg_speed_kmh": 30.0 + n % 17, "occupancy_pct": 12.5}
        out.append((n % entities, entity_record.identity_token(n), T0_MS + n * 20, data))
    return out


def _run(
    events: list[tuple[int, str, int, dict[str, Any]]],
    *,
    entities: int,
    new: Callable[[str], Any],
    fold: Callable[..., str],
    encode: Callable[[Any], bytes],
    decode: Callable[[bytes], Any],
) -> tuple[float, float]:
    """Seconds to fold and write every event, and to read back what was written."""
    records = [new(f"ix-{n}") for n in range(entities)]
    written: list[bytes] = []
    start = time.perf_counter()
    for first in range(0, len(events), BATCH):
        touched = {}
        watermark: int | None = None
        for offset, (entity, token, time_ms, data) in enumerate(
            events[first : first + BATCH], start=first
        ):
            record = records[entity]
            fold(
                record,
                offset=offset,
                time_ms=time_ms,
                event=token,
                event_type="city.traffic.flow.v1",
                state=data,
                metrics=data,
                watermark_ms=watermark,
                lateness_ms=120_000,
            )
            watermark = time_ms
            touched[entity] = record
        written += [encode(record) for record in touched.values()]
    folded = time.perf_counter() - start
    start = time.perf_counter()
    for value in written:
        decode(value)
    return folded, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--entities", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline", default="fe1ab7e")
    args = parser.parse_args()
    old = _baseline(args.baseline)
    events = _events(args.events, args.entities)
    kinds: dict[str, dict[str, Any]] = {
        "dict + orjson": {
            "new": lambda e: old.new_record(entity_id=e, domain="traffic", partition=0),
            "fold": old.fold,
            "encode": orjson.dumps,
            "decode": orjson.loads,
        },
        "typed (msgspec)": {
            "new": lambda e: entity_record.new_record(entity_id=e, domain="traffic", partition=0),
            "fold": entity_record.fold,
            "encode": entity_record.encode_record,
            "decode": entity_record.decode_record,
        },
    }
    times: dict[str, list[tuple[float, float]]] = {kind: [] for kind in kinds}
    for _ in range(args.rounds):
        for kind, calls in kinds.items():
            times[kind].append(_run(events, entities=args.entities, **calls))
    per_event: dict[str, tuple[float, float]] = {}
    for kind, runs in times.items():
        fold_us = statistics.median(f for f, _ in runs) / args.events * 1e6
        read_us = statistics.median(r for _, r in runs) / args.events * 1e6
        spread = (max(f for f, _ in runs) - min(f for f, _ in runs)) / args.events * 1e6
        per_event[kind] = (fold_us, read_us)
        print(
            f"{kind:16} fold+encode {fold_us:.2f} µs/event (spread {spread:.2f}), "
            f"decode {read_us:.2f} µs/event",
            file=sys.stderr,
        )
    (old_fold, old_read), (new_fold, new_read) = per_event.values()
    print(
        f"| bench_record | {args.events:,} events, {args.entities:,} entities, "
        f"{args.rounds} rounds alternating | fold+encode {old_fold:.2f} -> {new_fold:.2f} "
        f"µs/event | decode {old_read:.2f} -> {new_read:.2f} µs/event |"
    )


if __name__ == "__main__":
    main()
