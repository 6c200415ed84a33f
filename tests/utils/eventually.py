"""The one way tests wait: ``eventually()`` polls a probe until its value is what the test
awaits, and fails saying what it awaited, the last value it saw and the last error.

A plain probe is polled in place (``time.sleep`` between tries): for processes and HTTP
answers, from synchronous code or a fixture. A probe that returns an awaitable makes
``eventually()`` a coroutine to await (``asyncio.sleep`` between tries), so the event loop
goes on while it waits: a query of the database, or what a live-feed client has received
(``Received.so_far``)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar, overload

import httpx

T = TypeVar("T")

#: Errors that mean "not yet": a service still starting, a check that does not hold yet.
NOT_YET: tuple[type[BaseException], ...] = (AssertionError, OSError, httpx.HTTPError)
#: The longest ``repr`` of the last value a failure shows.
SHOWN_CHARS = 2000


def _truthy(value: object) -> bool:
    return bool(value)


class _Tries:
    """The deadline, the last value and the last error of one wait."""

    def __init__(self, *, within_s: float, what: str, until: Callable[[Any], object]) -> None:
        self.within_s, self.what, self.until = within_s, what, until
        self.deadline = time.monotonic() + within_s
        self.tries = 0
        self.value: object = None
        self.error: BaseException | None = None

    def done(self, value: object) -> bool:
        self.tries += 1
        self.value, self.error = value, None
        return bool(self.until(value))

    def failed(self, error: BaseException) -> None:
        self.tries += 1
        self.error = error

    def over(self) -> bool:
        return time.monotonic() >= self.deadline

    def timed_out(self) -> AssertionError:
        shown = repr(self.value)
        if len(shown) > SHOWN_CHARS:
            shown = shown[:SHOWN_CHARS] + f"... ({len(shown):,} characters)"
        error = "none" if self.error is None else f"{type(self.error).__name__}: {self.error}"
        return AssertionError(
            f"timed out after {self.within_s:g} s ({self.tries} tries) waiting for "
            f"{self.what}; last value: {shown}; last error: {error}"
        )


# A probe's None counts as "not yet" unless ``until`` says otherwise; either way the value
# returned is the one ``until`` accepted, typed without the None.
@overload
def eventually(
    probe: Callable[[], Awaitable[T | None]],
    *,
    within_s: float,
    what: str,
    until: Callable[[T], object] = ...,
    interval_s: float = ...,
    retry_on: tuple[type[BaseException], ...] = ...,
) -> Coroutine[Any, Any, T]: ...


@overload
def eventually(
    probe: Callable[[], T | None],
    *,
    within_s: float,
    what: str,
    until: Callable[[T], object] = ...,
    interval_s: float = ...,
    retry_on: tuple[type[BaseException], ...] = ...,
) -> T: ...


def eventually(
    probe: Callable[[], Any],
    *,
    within_s: float,
    what: str,
    until: Callable[[Any], object] = _truthy,
    interval_s: float = 0.1,
    retry_on: tuple[type[BaseException], ...] = NOT_YET,
) -> Any:
    """Call ``probe`` until ``until(value)`` holds (by default: the value is truthy) and
    return that value; errors in ``retry_on`` count as "not yet". After ``within_s`` fail
    with ``what``, the last value and the last error. Awaitable probes make this a
    coroutine (see the module's docstring)."""
    tries = _Tries(within_s=within_s, what=what, until=until)
    try:
        first = probe()
    except retry_on as exc:
        tries.failed(exc)
    else:
        if inspect.isawaitable(first):
            return _poll_async(probe, tries, first, interval_s=interval_s, retry_on=retry_on)
        if tries.done(first):
            return first
    while not tries.over():
        time.sleep(interval_s)
        try:
            value = probe()
        except retry_on as exc:
            tries.failed(exc)
            continue
        if tries.done(value):
            return value
    raise tries.timed_out()


async def _poll_async(
    probe: Callable[[], Awaitable[Any]],
    tries: _Tries,
    first: Awaitable[Any],
    *,
    interval_s: float,
    retry_on: tuple[type[BaseException], ...],
) -> Any:
    pending: Awaitable[Any] | None = first
    while True:
        try:
            value = await (pending if pending is not None else probe())
        except retry_on as exc:
            tries.failed(exc)
        else:
            if tries.done(value):
                return value
        pending = None
        if tries.over():
            raise tries.timed_out()
        await asyncio.sleep(interval_s)


def _itself(value: object) -> object:
    return value


class Steady:
    """An ``until`` for values that settle: true once ``of(value)`` (by default the whole
    value) has stood still for ``for_s`` seconds and ``holds`` is true of the value (by
    default: it is truthy). One instance per wait: it remembers since when."""

    def __init__(
        self,
        for_s: float,
        *,
        holds: Callable[[Any], object] = _truthy,
        of: Callable[[Any], object] = _itself,
    ) -> None:
        self.for_s, self.holds, self.of = for_s, holds, of
        self.last: object = None
        self.since: float | None = None

    def __call__(self, value: object) -> bool:
        now, seen = time.monotonic(), self.of(value)
        if self.since is None or seen != self.last:
            self.last, self.since = seen, now
        return now - self.since >= self.for_s and bool(self.holds(value))
