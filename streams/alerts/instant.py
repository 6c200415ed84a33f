"""Instant rules: one matching event opens an alert at once. Pure, event-time driven.

A rule's memory of one entity lives in the entity record beside the window rules'
tracks (``streams.alerts.track``), under the rule's id, and only while an alert is open:
``{"a": {"id", "o", "l", "u", "n"}}``: the alert's id, the event times (ms) of the match
that opened it, of the latest match and of the last ``open``/``update`` transition, and
the matches seen while it is open.

All in event time:

- a match while no alert is open opens one; its id is a function of the rule, the entity
  and the opening event's time, so a replay opens the same alert;
- a match while one is open counts and moves the latest match; it emits an ``update``
  once ``update_minutes`` have passed since the last open or update;
- a match at or after the latest match + ``clear_minutes``: the quiet minutes had passed
  in event time, so the open alert resolves at their end and the match opens a new one;
- a ``clear`` event resolves the open alert at its time;
- once the watermark is past the latest match + ``clear_minutes`` + the allowed
  lateness, no match can come for those quiet minutes any more (it would be late): the
  alert resolves at their end. This is judged whenever the entity's record is written,
  by its own events or by the sweep, with the same outcome either way;
- an operator's resolve in the log (``streams.marks``) closes it without a transition
  (the API has announced the resolve), and the next match opens a new one.

Everything is decided by the order of the partition's records and their event times,
never by the wall clock, so a recording replayed at any speed gives the same transitions.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

from streams.alerts.rules import InstantRule, Match, Predicate
from streams.alerts.track import TrackJson
from streams.alerts.transitions import AlertState, AlertTransition, alert_id, transition
from streams.entity_record import BUCKET_MS

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _holds(predicate: Predicate, data: Mapping[str, Any]) -> bool:
    if predicate.field not in data:
        return False  # an optional field left out matches nothing
    value = data[predicate.field]
    if predicate.op == "in":
        return value in predicate.values
    if predicate.op == "not_in":
        return value not in predicate.values
    try:
        return bool(_COMPARE[predicate.op](value, predicate.value))
    except TypeError:
        return False


def matches(match: Match, event_type: str, data: Mapping[str, Any]) -> bool:
    """Whether an event of ``event_type`` with payload ``data`` satisfies ``match``."""
    return event_type == match.type and all(_holds(p, data) for p in match.where)


def _transition(
    rule: InstantRule,
    alert: Mapping[str, Any],
    *,
    entity_id: str,
    state: AlertState,
    at_ms: int,
    data: Mapping[str, Any] | None,
) -> AlertTransition:
    values: dict[str, float | str | None] = {}
    if data is not None:
        values = {name: data.get(name) for name in rule.reported}
    values["matches"] = alert["n"]
    opened = int(alert["o"])
    return transition(
        rule,
        alert_id=alert["id"],
        entity_id=entity_id,
        state=state,
        opened_ms=opened,
        since_ms=opened,
        at_ms=at_ms,
        values=values,
    )


def quiet_end(rule: InstantRule, alert: Mapping[str, Any]) -> int:
    """When the open alert's quiet minutes end: its latest match + ``clear_minutes``."""
    return int(alert["l"]) + rule.clear_minutes * BUCKET_MS


def advance(
    rule: InstantRule,
    state: TrackJson | None,
    *,
    entity_id: str,
    watermark_ms: int | None,
    lateness_ms: int,
) -> tuple[TrackJson | None, list[AlertTransition]]:
    """Resolve the open alert if its quiet minutes are over and final at this watermark."""
    alert = (state or {}).get("a")
    if alert is None or watermark_ms is None:
        return state, []
    end = quiet_end(rule, alert)
    if watermark_ms - lateness_ms < end:
        return state, []
    resolve = _transition(rule, alert, entity_id=entity_id, state="resolve", at_ms=end, data=None)
    return None, [resolve]


def on_event(
    rule: InstantRule,
    state: TrackJson | None,
    *,
    entity_id: str,
    event_type: str,
    data: Mapping[str, Any],
    time_ms: int,
    watermark_ms: int | None,
    lateness_ms: int,
) -> tuple[TrackJson | None, list[AlertTransition]]:
    """Apply one applied event to the rule's state (``watermark_ms``: the partition's
    watermark before this event); return the new state and the transitions, oldest first."""
    state, out = advance(
        rule, state, entity_id=entity_id, watermark_ms=watermark_ms, lateness_ms=lateness_ms
    )
    alert = dict(state["a"]) if state and "a" in state else None
    if alert is not None and rule.clear is not None and matches(rule.clear, event_type, data):
        at = max(time_ms, int(alert["u"]))
        out.append(
            _transition(rule, alert, entity_id=entity_id, state="resolve", at_ms=at, data=data)
        )
        return None, out
    if not matches(rule.match, event_type, data):
        return state, out
    if alert is not None and time_ms >= quiet_end(rule, alert):
        # The quiet minutes had passed in event time: that alert ended with them.
        out.append(
            _transition(
                rule,
                alert,
                entity_id=entity_id,
                state="resolve",
                at_ms=quiet_end(rule, alert),
                data=None,
            )
        )
        alert = None
    if alert is None:
        opened = {
            "id": alert_id(rule_id=rule.id, entity_id=entity_id, opened_minute_ms=time_ms),
            "o": time_ms,
            "l": time_ms,
            "u": time_ms,
            "n": 1,
        }
        out.append(
            _transition(rule, opened, entity_id=entity_id, state="open", at_ms=time_ms, data=data)
        )
        return {"a": opened}, out
    alert["n"] += 1
    alert["l"] = max(int(alert["l"]), time_ms)
    if time_ms - int(alert["u"]) >= rule.update_minutes * BUCKET_MS:
        alert["u"] = time_ms
        out.append(
            _transition(rule, alert, entity_id=entity_id, state="update", at_ms=time_ms, data=data)
        )
    return {"a": alert}, out
