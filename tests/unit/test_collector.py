"""The collector policy: thresholds raised, the live heap frozen, and unfrozen for a full
collection now and then."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Iterator

import pytest

from ioc.collector import THRESHOLDS, manage_collector
from tests.utils.eventually import eventually


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


async def test_the_live_heap_is_frozen_and_a_full_collection_reclaims_frozen_cycles(
    restored_collector: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ioc.collector")

    async def collector() -> tuple[tuple[int, ...], int]:
        return gc.get_threshold(), gc.get_freeze_count()

    task = asyncio.create_task(manage_collector(freeze_s=0.05, full_s=3600))
    await eventually(
        collector,
        until=lambda seen: seen[0] == THRESHOLDS and seen[1] > 0,
        within_s=10,
        interval_s=0.05,
        what="the policy's thresholds and a first freeze (thresholds, frozen objects)",
    )
    assert gc.get_threshold() == THRESHOLDS
    assert gc.get_freeze_count() > 0
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    # A cycle frozen while alive and then dropped survives collections...
    class Node:
        other: object = None

    def nodes() -> int:
        return sum(type(o) is Node for o in gc.get_objects())

    gc.unfreeze()
    a, b = Node(), Node()
    a.other, b.other = b, a
    gc.freeze()
    del a, b
    gc.collect()
    gc.unfreeze()
    assert nodes() == 2
    # ...until the policy's full collection, which unfreezes the heap first.
    gc.freeze()

    async def full_collections() -> list[str]:
        return [r.getMessage() for r in caplog.records if "full collection" in r.getMessage()]

    task = asyncio.create_task(manage_collector(freeze_s=0.05, full_s=0))
    await eventually(
        full_collections, within_s=10, interval_s=0.05, what="the policy's full collection"
    )
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    gc.unfreeze()
    assert nodes() == 0
