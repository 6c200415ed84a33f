"""What a replay does, as data: pacing, range, topics, target. Pure, no I/O."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from datetime import datetime

from ioc.settings import LIVE_NAMESPACE, NAMESPACE_PATTERN

MIN_SPEED, MAX_SPEED = 0.1, 1000.0


class OptionsError(ValueError):
    """Replay options that cannot work, with the reason."""


@dataclass(frozen=True)
class ReplayOptions:
    """How to replay a recording.

    ``speed``: event seconds per wall-clock second (0.1 to 1000), None for as fast as
    possible. ``start_index``/``end_index`` count records in recorded order (end
    excluded); ``start_ms``/``end_ms`` are Kafka timestamps (a record belongs to the range
    by the newest timestamp seen up to it, so the recorded order is never broken).
    ``topics``: globs on the recorded base topic names (``ioc.*.events``); ``remap``: base
    name -> base name in the target. ``shift_to_now``: timestamps (and the CloudEvents'
    ``time``) move so that the start point is now.
    """

    namespace: str
    speed: float | None = None
    loop: bool = False
    start_index: int = 0
    end_index: int | None = None
    start_ms: int | None = None
    end_ms: int | None = None
    topics: tuple[str, ...] = ()
    remap: dict[str, str] = field(default_factory=dict)
    shift_to_now: bool = False
    partial: bool = False
    prime: bool = True

    def __post_init__(self) -> None:
        if not NAMESPACE_PATTERN.fullmatch(self.namespace):
            raise OptionsError(
                f"namespace {self.namespace!r} must match {NAMESPACE_PATTERN.pattern}"
            )
        if self.speed is not None and not MIN_SPEED <= self.speed <= MAX_SPEED:
            raise OptionsError(
                f"speed {self.speed:g} is out of range: x{MIN_SPEED:g} to x{MAX_SPEED:g}, "
                "or none for as fast as possible"
            )
        if self.start_index < 0:
            raise OptionsError(f"start index {self.start_index} is negative")
        if self.end_index is not None and self.end_index <= self.start_index:
            raise OptionsError(
                f"end index {self.end_index} is not after start index {self.start_index}"
            )
        if self.start_ms is not None and self.end_ms is not None and self.end_ms <= self.start_ms:
            raise OptionsError("end time is not after start time")
        for source, target in self.remap.items():
            if not source or not target:
                raise OptionsError(f"remap {source!r}={target!r}: both names are needed")

    def wants(self, base_topic: str) -> bool:
        """Whether records of ``base_topic`` are replayed."""
        return not self.topics or any(fnmatch.fnmatchcase(base_topic, p) for p in self.topics)

    def target_base(self, base_topic: str) -> str:
        """The base topic name records of ``base_topic`` go to."""
        return self.remap.get(base_topic, base_topic)

    def touches_live(self, home: str) -> bool:
        """True when the target is the live namespace or the caller's own (``home``)."""
        return self.namespace in (LIVE_NAMESPACE, home)


def parse_remap(items: list[str]) -> dict[str, str]:
    """``["a=b", ...]`` -> ``{"a": "b"}``; a clear error for anything else."""
    out: dict[str, str] = {}
    for item in items:
        source, sep, target = item.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise OptionsError(f"remap {item!r}: write it as SOURCE=TARGET")
        out[source.strip()] = target.strip()
    return out


def parse_time_ms(value: str) -> int:
    """An ISO 8601 time with a zone (or epoch milliseconds) -> epoch milliseconds."""
    if value.isdigit():
        return int(value)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise OptionsError(f"time {value!r}: use ISO 8601 with a zone, or epoch ms") from None
    if parsed.tzinfo is None:
        raise OptionsError(f"time {value!r} needs a time zone")
    return int(parsed.timestamp() * 1000)
