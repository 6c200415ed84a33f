"""Which written minutes the sink rolls up now: final hours only, everything when idle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from streams.sink import rollup_window

LATENESS_MS = 120_000
H = datetime(2026, 11, 26, 8, tzinfo=UTC)


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def minute(hours: float = 0, minutes: int = 0) -> int:
    return ms(H + timedelta(hours=hours, minutes=minutes))


def test_the_open_hour_waits() -> None:
    dirty = (minute(minutes=10), minute(minutes=41))
    assert rollup_window(dirty, newest=dirty[1], lateness_ms=LATENESS_MS, idle=False) == (
        None,
        dirty,
    )


def test_an_hour_is_rolled_up_once_its_minutes_are_final() -> None:
    dirty = (minute(minutes=57), minute(1, 1))
    # 09:01: minutes of 08:xx may still come for another minute (lateness 2 min).
    assert rollup_window(dirty, newest=dirty[1], lateness_ms=LATENESS_MS, idle=False) == (
        None,
        dirty,
    )
    dirty = (minute(minutes=58), minute(1, 2))
    # 09:02: 08:xx is final; its minutes are rolled up, 09:xx waits.
    assert rollup_window(dirty, newest=dirty[1], lateness_ms=LATENESS_MS, idle=False) == (
        (minute(minutes=58), minute(minutes=59)),
        (minute(1), minute(1, 2)),
    )


def test_minutes_written_behind_the_final_horizon_are_rolled_up_whole() -> None:
    # A partition that lags writes minutes of an hour already final elsewhere.
    dirty = (minute(minutes=30), minute(minutes=31))
    assert rollup_window(dirty, newest=minute(3), lateness_ms=LATENESS_MS, idle=False) == (
        dirty,
        None,
    )


def test_when_nothing_is_written_everything_is_rolled_up() -> None:
    dirty = (minute(minutes=10), minute(minutes=41))
    assert rollup_window(dirty, newest=dirty[1], lateness_ms=LATENESS_MS, idle=True) == (
        dirty,
        None,
    )
