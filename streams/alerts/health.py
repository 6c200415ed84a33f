"""Health rules: a sensor gone silent, or stuck on one reading. Pure, event-time driven.

The commonest alarm of an operations centre is "device offline". Both rules here are
judged in event time, from the partition's records alone (with the registry's reporting
interval for silence), so a replay at any speed gives the same transitions.

Silent (``kind: silent``)
-------------------------
An entity registered with a reporting interval is silent once ``silent_after`` (the
rule's intervals times its interval, at least ``min_minutes``) has passed since its
latest event time ``t``: the silence began at the *deadline* ``t + silent_after``. It
is known for certain once no event before the deadline can still come, that is when the
partition's watermark reaches the deadline plus the allowed lateness (clock marks move
the watermark of a partition that receives nothing else, ``streams.marks``). Then:

- the alert opens at the deadline (``since``: the last event time), judged when the
  entity's record is written, by the sweep or by its own next event;
- the entity's next applied event resolves it at that event's time;
- a next event later than the deadline shows a silence that was over before anyone
  could judge it: its alert opens at the deadline and resolves at the event, both at once.

So the transitions are a function of the partition's records: the sweep may only emit
the ``open`` earlier than the next event would have.

Its memory, only while an alert is open: ``{"a": {"id", "o": deadline, "t": last}}``;
after an operator resolved it, ``{"c": <alert id>}`` until the next event (the silence is
dealt with: it does not open again).

Stuck (``kind: stuck``)
-----------------------
A final minute is *unchanged* when the entity reported every metric of the rule in it,
and each metric's minimum and maximum in the minute equal its last value of the
previous minute in which it reported them. ``minutes`` unchanged minutes in a row open
the alert (``opened_at``: the end of the last of them, ``since``: the start of the
first); the first final minute with a change resolves it at its end. Minutes in which
the entity reported nothing of the metrics neither continue nor break the run (silence
is the other rule's business).

Its memory: ``f`` the last final minute walked, ``p`` the readings ``[[min, max, last],
...]`` of minutes not final yet, ``v`` the last readings walked, ``r`` and ``s`` the run
and its first minute, ``a`` the open alert ``{"id", "o", "s"}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from streams.alerts.rules import SilentRule, StuckRule
from streams.alerts.track import TrackJson
from streams.alerts.transitions import AlertState, AlertTransition, alert_id, transition
from streams.entity_record import BUCKET_MS
from streams.registry import Registered

Readings = list[list[float]]  # [min, max, last] per metric of the rule


def judges(rule: SilentRule | StuckRule, registered: Registered | None) -> bool:
    """Whether the rule applies to an entity with this registry entry (None: unknown)."""
    if isinstance(rule, SilentRule) and (registered is None or registered.interval_s is None):
        return False
    if not rule.kinds:
        return True
    return registered is not None and registered.kind in rule.kinds


def _transition(
    rule: SilentRule | StuckRule,
    *,
    alert: Mapping[str, Any],
    entity_id: str,
    state: AlertState,
    at_ms: int,
    since_ms: int,
    values: dict[str, float | str | None],
) -> AlertTransition:
    return transition(
        rule,
        alert_id=alert["id"],
        entity_id=entity_id,
        state=state,
        opened_ms=int(alert["o"]),
        since_ms=since_ms,
        at_ms=at_ms,
        values=values,
    )


# -- silent ---------------------------------------------------------------------------


def silence_deadline(rule: SilentRule, registered: Registered, last_event_ms: int) -> int:
    """When an entity last heard at ``last_event_ms`` becomes silent."""
    assert registered.interval_s is not None
    return last_event_ms + rule.silent_after_ms(registered.interval_s)


def _silent_values(
    registered: Registered, *, last_ms: int, at_ms: int
) -> dict[str, float | str | None]:
    return {"silent_s": (at_ms - last_ms) / 1000, "interval_s": registered.interval_s}


def _open_silence(
    rule: SilentRule, *, entity_id: str, registered: Registered, last_ms: int, deadline: int
) -> tuple[dict[str, Any], AlertTransition]:
    alert = {
        "id": alert_id(rule_id=rule.id, entity_id=entity_id, opened_minute_ms=deadline),
        "o": deadline,
        "t": last_ms,
    }
    opened = _transition(
        rule,
        alert=alert,
        entity_id=entity_id,
        state="open",
        at_ms=deadline,
        since_ms=last_ms,
        values=_silent_values(registered, last_ms=last_ms, at_ms=deadline),
    )
    return alert, opened


def silent_due(
    rule: SilentRule,
    state: TrackJson | None,
    *,
    registered: Registered | None,
    last_event_ms: int | None,
    watermark_ms: int | None,
    lateness_ms: int,
) -> bool:
    """Whether :func:`silent_advance` would open an alert now."""
    if state or last_event_ms is None or watermark_ms is None or registered is None:
        return False
    if not judges(rule, registered):
        return False
    return watermark_ms - lateness_ms >= silence_deadline(rule, registered, last_event_ms)


def silent_advance(
    rule: SilentRule,
    state: TrackJson | None,
    *,
    entity_id: str,
    registered: Registered | None,
    last_event_ms: int | None,
    watermark_ms: int | None,
    lateness_ms: int,
) -> tuple[TrackJson | None, list[AlertTransition]]:
    """Open the alert of an entity whose silence is certain at this watermark."""
    if not judges(rule, registered):
        return None, []  # not (or no longer) judged: an open alert is forgotten
    if not silent_due(
        rule,
        state,
        registered=registered,
        last_event_ms=last_event_ms,
        watermark_ms=watermark_ms,
        lateness_ms=lateness_ms,
    ):
        return state, []
    assert registered is not None
    assert last_event_ms is not None
    deadline = silence_deadline(rule, registered, last_event_ms)
    alert, opened = _open_silence(
        rule, entity_id=entity_id, registered=registered, last_ms=last_event_ms, deadline=deadline
    )
    return {"a": alert}, [opened]


def silent_on_event(
    rule: SilentRule,
    state: TrackJson | None,
    *,
    entity_id: str,
    registered: Registered | None,
    previous_ms: int | None,
    time_ms: int,
    watermark_ms: int | None,
    lateness_ms: int,
) -> tuple[TrackJson | None, list[AlertTransition]]:
    """One applied event of the entity (``previous_ms``: its latest event time before
    this one, ``watermark_ms``: the partition's before it): the silence it ends, if any."""
    if not judges(rule, registered):
        return None, []
    assert registered is not None
    out: list[AlertTransition] = []
    if state and "c" in state:
        return None, []  # an operator resolved this silence; the event ends it
    alert = (state or {}).get("a")
    if alert is None:
        if previous_ms is None:
            return None, []
        deadline = silence_deadline(rule, registered, previous_ms)
        certain = watermark_ms is not None and watermark_ms - lateness_ms >= deadline
        if time_ms <= deadline and not certain:
            return None, []
        alert, opened = _open_silence(
            rule, entity_id=entity_id, registered=registered, last_ms=previous_ms, deadline=deadline
        )
        out.append(opened)
    at = max(time_ms, int(alert["o"]))
    out.append(
        _transition(
            rule,
            alert=alert,
            entity_id=entity_id,
            state="resolve",
            at_ms=at,
            since_ms=int(alert["t"]),
            values=_silent_values(registered, last_ms=int(alert["t"]), at_ms=at),
        )
    )
    return None, out


# -- stuck ----------------------------------------------------------------------------


def _readings(rule: StuckRule, metrics: Mapping[str, Sequence[float]]) -> Readings | None:
    """``[min, max, last]`` of each of the rule's metrics in a minute, or None when the
    entity did not report them all."""
    out: Readings = []
    for name in rule.metrics:
        aggregate = metrics.get(name)
        if aggregate is None:
            return None
        out.append([aggregate[2], aggregate[3], aggregate[4]])
    return out


def _unchanged(readings: Readings, previous: Sequence[float] | None) -> bool:
    if previous is None:
        return False
    return all(
        low == high == before for (low, high, _), before in zip(readings, previous, strict=True)
    )


def stuck_values(rule: StuckRule, readings: Readings) -> dict[str, float | str | None]:
    return {f"last({name})": r[2] for name, r in zip(rule.metrics, readings, strict=True)}


def stuck_evaluate(
    rule: StuckRule,
    state: TrackJson | None,
    *,
    entity_id: str,
    registered: Registered | None,
    buckets: Mapping[str, Mapping[str, Sequence[float]]],
    last_final_ms: int | None,
) -> tuple[TrackJson | None, list[AlertTransition]]:
    """Take in the minutes ``buckets`` holds (any versions: the latest is kept until the
    minute is final), then walk the final ones in order."""
    if not judges(rule, registered):
        return None, []
    track: TrackJson = dict(state or {})
    walked: int | None = track.get("f")
    pending: dict[str, Readings] = dict(track.get("p") or {})
    for key, metrics in buckets.items():
        if walked is not None and int(key) <= walked:
            continue
        readings = _readings(rule, metrics)
        if readings is not None:
            pending[key] = readings
    out: list[AlertTransition] = []
    if last_final_ms is not None:
        for key in sorted((k for k in pending if int(k) <= last_final_ms), key=int):
            readings = pending.pop(key)
            step = _stuck_step(rule, track, entity_id=entity_id, minute=int(key), readings=readings)
            if step is not None:
                out.append(step)
        track["f"] = last_final_ms if walked is None else max(walked, last_final_ms)
    if pending:
        track["p"] = dict(sorted(pending.items(), key=lambda item: int(item[0])))
    else:
        track.pop("p", None)
    return track or None, out


def _stuck_step(
    rule: StuckRule, track: TrackJson, *, entity_id: str, minute: int, readings: Readings
) -> AlertTransition | None:
    unchanged = _unchanged(readings, track.get("v"))
    track["v"] = [r[2] for r in readings]
    alert = track.get("a")
    end = minute + BUCKET_MS
    if not unchanged:
        track.pop("r", None)
        track.pop("s", None)
        if alert is None:
            return None
        del track["a"]
        return _transition(
            rule,
            alert=alert,
            entity_id=entity_id,
            state="resolve",
            at_ms=end,
            since_ms=int(alert["s"]),
            values=stuck_values(rule, readings),
        )
    if alert is not None:
        return None
    run = int(track.get("r", 0)) + 1
    since = int(track.get("s", minute))
    if run < rule.minutes:
        track["r"], track["s"] = run, since
        return None
    track.pop("r", None)
    track.pop("s", None)
    alert = {
        "id": alert_id(rule_id=rule.id, entity_id=entity_id, opened_minute_ms=minute),
        "o": end,
        "s": since,
    }
    track["a"] = alert
    return _transition(
        rule,
        alert=alert,
        entity_id=entity_id,
        state="open",
        at_ms=end,
        since_ms=since,
        values=stuck_values(rule, readings),
    )
