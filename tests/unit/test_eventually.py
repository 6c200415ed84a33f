"""The tests' one wait: what it returns, how it fails, and that awaiting it lets the loop on."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from tests.utils.eventually import Steady, eventually


def test_a_plain_probe_is_polled_until_its_value_holds() -> None:
    counter = itertools.count()
    got = eventually(lambda: next(counter), until=lambda n: n >= 3, within_s=5, what="3")
    assert got == 3


def test_a_timeout_says_what_was_awaited_the_last_value_and_the_last_error() -> None:
    values = iter([[1], [1, 2]])

    def probe() -> list[int]:
        value = next(values, None)
        if value is None:
            raise ConnectionRefusedError("nothing listens")
        return value

    with pytest.raises(AssertionError) as failed:
        eventually(probe, until=lambda v: len(v) > 2, within_s=0.5, interval_s=0.05, what="three")
    message = str(failed.value)
    assert "waiting for three" in message
    assert "last value: [1, 2]" in message
    assert "ConnectionRefusedError: nothing listens" in message


def test_an_error_outside_retry_on_is_raised_at_once() -> None:
    def probe() -> int:
        raise KeyError("bug in the test")

    with pytest.raises(KeyError):
        eventually(probe, within_s=5, what="never")


async def test_an_awaitable_probe_lets_the_loop_run_while_it_waits() -> None:
    seen: list[int] = []

    async def fill() -> None:
        for n in range(5):
            await asyncio.sleep(0.01)
            seen.append(n)

    async def probe() -> list[int]:
        return seen

    task = asyncio.create_task(fill())
    got = await eventually(probe, until=lambda s: len(s) == 5, within_s=5, what="five values")
    assert got == [0, 1, 2, 3, 4]
    await task


def test_steady_waits_until_the_value_stands_still_for_its_time() -> None:
    values = iter([1, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3])
    started = time.monotonic()
    got = eventually(
        lambda: next(values), until=Steady(0.2), within_s=5, interval_s=0.05, what="3 to stay"
    )
    assert got == 3
    assert time.monotonic() - started >= 0.2


def test_steady_holds_only_when_its_condition_does() -> None:
    with pytest.raises(AssertionError, match="last value: 0"):
        eventually(
            lambda: 0,
            until=Steady(0.05, holds=lambda n: n > 0),
            within_s=0.4,
            interval_s=0.05,
            what="a positive count",
        )
