"""Control records on the raw topics: clock marks and operators' actions.

Besides events, a raw topic carries two kinds of record that are not events. Both have an
empty value and say what they are in a header, so they travel with the events: recorded
into MCAP files, replayed into sandboxes, in the same order relative to the events.

- A **clock mark** (header ``ioc_mark``: an event time in ms, ASCII digits; no key) says
  "the producer's clock has reached this time". It moves the partition's watermark like
  an event of that time, so a partition that receives nothing still sees its minutes
  become final, its instant alerts resolve and its quiet sensors judged. In the live
  namespace the worker writes one to each partition it owns that has been quiet for a
  second (``IOC_STREAMS__CLOCK_MARKS``); the simulator writes them into sandboxes at its
  simulated time; a replay carries the recorded ones (moved with ``shift_to_now``). The
  worker never stamps a sandbox with the present time, so a replay of 2024 is never made
  late by the wall clock. A mark ahead of the clock by more than
  ``IOC_STREAMS__MAX_AHEAD_S`` is refused like such an event (dead-lettered
  ``invalid_field``).
- An **operator's action** (header ``ioc_action: resolve``, ``ioc_alert``: the alert's
  id; keyed by the entity) tells the rules that an operator resolved an alert, so the
  next match or streak opens a new one. The API writes it when an operator resolves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MARK_HEADER = "ioc_mark"
ACTION_HEADER = "ioc_action"
ALERT_HEADER = "ioc_alert"
#: The actions the worker understands.
ACTIONS = frozenset({"resolve"})


@dataclass(frozen=True, slots=True)
class Mark:
    """A clock mark: the producer's clock reached ``time_ms``."""

    time_ms: int


@dataclass(frozen=True, slots=True)
class Action:
    """An operator's action on an alert."""

    verb: str
    alert_id: str


class ControlError(ValueError):
    """A record that says it is a control record but cannot be read as one."""


def mark_headers(time_ms: int) -> list[tuple[str, bytes]]:
    """The headers of a clock mark at ``time_ms``."""
    return [(MARK_HEADER, str(time_ms).encode())]


def action_headers(verb: str, alert_id: str) -> list[tuple[str, bytes]]:
    """The headers of an operator's action on an alert."""
    return [(ACTION_HEADER, verb.encode()), (ALERT_HEADER, alert_id.encode())]


def control_of(
    value: bytes | None, headers: Sequence[tuple[str, bytes]] | None
) -> Mark | Action | None:
    """The control record a Kafka record is, or None for anything else (an event, or
    garbage for the contract to refuse). Raises :class:`ControlError` for a control
    header that cannot be read."""
    if value or not headers:
        return None  # control records have an empty value: events never do
    found = {
        name: raw for name, raw in headers if name in (MARK_HEADER, ACTION_HEADER, ALERT_HEADER)
    }
    if MARK_HEADER in found:
        text = (found[MARK_HEADER] or b"").decode("ascii", "replace")
        if not text.isdigit() or len(text) > 15:
            raise ControlError(f"{MARK_HEADER} must be an event time in ms, not {text[:40]!r}")
        return Mark(int(text))
    if ACTION_HEADER in found:
        verb = (found[ACTION_HEADER] or b"").decode("utf-8", "replace")
        alert = (found.get(ALERT_HEADER) or b"").decode("utf-8", "replace")
        if verb not in ACTIONS:
            raise ControlError(f"{ACTION_HEADER} {verb[:40]!r} is not one of {sorted(ACTIONS)}")
        if not 1 <= len(alert) <= 64:
            raise ControlError(f"{ACTION_HEADER} needs the alert's id in {ALERT_HEADER}")
        return Action(verb, alert)
    return None


def is_control(value: bytes | None, headers: Sequence[tuple[str, bytes | None]] | None) -> bool:
    """Whether a record is a control record (readable or not): never an entity's event."""
    if value or not headers:
        return False
    return any(name in (MARK_HEADER, ACTION_HEADER) for name, _ in headers)
