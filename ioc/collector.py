"""The garbage collector's policy in processes that hold a large, long-lived state.

CPython's cyclic collector runs a full collection whenever the objects that survived the
younger generations since the last one reach a quarter of the long-lived ones. The stream
worker holds about a million container objects (20,000 entity records with their
minutes, identity hashes and rule tracks), and every batch's records, decoded events and
Kafka futures live long enough to be promoted. Measured in the worker at 4,700 events/s
(benchmarks/RESULTS.md, "Garbage collection"): a full collection every 2-3 s, each
250-1,460 ms with the event loop stopped, collecting nothing, since the state is made of
plain trees that reference counting frees. Those pauses were most of the lag's spikes.

The policy:

- young collections 70 times rarer (``THRESHOLDS``): most of a batch's temporaries die
  by reference counting before a collection could promote them;
- every ``FREEZE_S`` seconds, :func:`gc.freeze`: whatever is alive moves to the permanent
  generation, which collections do not scan (reference counting still frees it), so a
  full collection looks only at what survived since;
- every ``FULL_S`` seconds, :func:`gc.unfreeze` and a full collection: a reference cycle
  that was frozen and then dropped is reclaimed, at the price of one pause an hour.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

log = logging.getLogger(__name__)

THRESHOLDS = (50_000, 20, 100)
FREEZE_S = 10.0
FULL_S = 3600.0


async def manage_collector(*, freeze_s: float = FREEZE_S, full_s: float = FULL_S) -> None:
    """Apply the policy to this process until cancelled."""
    gc.set_threshold(*THRESHOLDS)
    last_full = time.monotonic()
    while True:
        await asyncio.sleep(freeze_s)
        if time.monotonic() - last_full >= full_s:
            started = time.perf_counter()
            gc.unfreeze()
            collected = gc.collect()
            last_full = time.monotonic()
            log.info(
                "full collection: %d objects in %.0f ms",
                collected,
                (time.perf_counter() - started) * 1000,
            )
        gc.freeze()
