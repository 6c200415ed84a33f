"""The alert rule engine: pure, event-time driven, deterministic. No Kafka, no database.

What "N consecutive minutes" means
----------------------------------
A minute ``[b, b + 60 s)`` gets a verdict only once it is **final**: when the partition's
watermark reaches ``b + 60 s + lateness`` (``streams.entity_record.is_final``), after which no
event can change its aggregates. Final minutes are walked in order, one calendar minute
after the other, including minutes in which the entity reported nothing. Each final
minute's verdict is true, false or unknown (``streams.alerts.conditions``):

- while no alert is open, ``for_minutes`` consecutive true verdicts open one; a false
  verdict restarts the streak;
- while an alert is open, ``clear_minutes`` consecutive verdicts in which the condition
  with the clear thresholds is false resolve it; a minute in which it holds restarts
  that streak; a minute in which the open condition holds emits an ``update`` when at
  least ``update_minutes`` have passed since the last ``open`` or ``update``;
- an unknown minute (no samples for a clause without a ``missing`` value) is skipped
  by either streak, but more than ``max_gap_minutes`` of them in a row restart it.

So congestion with ``for_minutes`` 3 opens on the third of three consecutive final
minutes with a true verdict; its ``opened_at`` is the end of that minute, and it is
emitted once the watermark passes that end plus the allowed lateness.

Because verdicts are taken on final minutes only, and the values of minutes that are
not final yet are remembered (overwritten by each newer version) in the state, the
transitions are a function of the final minutes alone: the same whether minutes are
fed one by one or in batches, once or updated many times, or the watermark advances in
small or large steps. Only *when* a transition is emitted depends on the feed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

from streams.alerts import health, instant
from streams.alerts.conditions import (
    Values,
    clause_values,
    labelled,
    missing_values,
    next_window_edge,
    verdict,
)
from streams.alerts.rules import AnyRuleModel, InstantRule, Rule, SilentRule, StuckRule
from streams.alerts.track import OpenAlert, Track, TrackJson
from streams.alerts.transitions import (
    AlertState,
    AlertTransition,
    alert_id,
    transition,
)
from streams.entity_record import BUCKET_MS, Aggregate, bucket_of
from streams.registry import Registered

#: Minute start -> metric -> aggregate: an entity record's buckets (or, in tests, the
#: aggregates as their wire lists).
Buckets = Mapping[str, Mapping[str, Aggregate | Sequence[float]]]


#: What streams.alerts.conditions and health take: they index an aggregate as its wire
#: list, which :class:`Aggregate` supports (``Aggregate.__getitem__``), so no copy is made.
AsLists = Mapping[str, Mapping[str, Sequence[float]]]


def last_final_minute(watermark_ms: int | None, *, lateness_ms: int) -> int | None:
    """Start of the latest minute that is final at this watermark, or None."""
    if watermark_ms is None:
        return None
    return bucket_of(watermark_ms - lateness_ms - BUCKET_MS)


def _transition(
    rule: Rule, alert: OpenAlert, *, entity_id: str, state: AlertState, minute: int, values: Values
) -> AlertTransition:
    return transition(
        rule,
        alert_id=alert.id,
        entity_id=entity_id,
        state=state,
        opened_ms=alert.opened_ms + BUCKET_MS,
        since_ms=alert.since_ms,
        at_ms=minute + BUCKET_MS,
        values=labelled(rule, values),
    )


def _unknown(rule: Rule, track: Track) -> None:
    track.gap = min(track.gap + 1, rule.max_gap_minutes + 1)
    if track.gap > rule.max_gap_minutes:
        track.run, track.since_ms, track.clear = 0, None, 0


def _step(
    rule: Rule, track: Track, *, entity_id: str, minute: int, values: Values
) -> AlertTransition | None:
    """Apply one final minute's values to the track; return the transition it causes."""
    alert = track.alert
    if alert is None:
        firing = verdict(rule, values, minute_ms=minute, clearing=False)
        if firing is None:
            _unknown(rule, track)
            return None
        track.gap = 0
        if not firing:
            track.run, track.since_ms = 0, None
            return None
        if track.run == 0:
            track.since_ms = minute
        track.run += 1
        if track.run < rule.for_minutes:
            return None
        since = minute if track.since_ms is None else track.since_ms
        opened = OpenAlert(
            id=alert_id(rule_id=rule.id, entity_id=entity_id, opened_minute_ms=minute),
            opened_ms=minute,
            since_ms=since,
            last_ms=minute,
        )
        track.alert, track.run, track.since_ms, track.clear = opened, 0, None, 0
        return _transition(
            rule, opened, entity_id=entity_id, state="open", minute=minute, values=values
        )
    holding = verdict(rule, values, minute_ms=minute, clearing=True)
    if holding is None:
        _unknown(rule, track)
        return None
    track.gap = 0
    if holding:
        track.clear = 0
        due = minute - alert.last_ms >= rule.update_minutes * BUCKET_MS
        if due and verdict(rule, values, minute_ms=minute, clearing=False):
            track.alert = replace(alert, last_ms=minute)
            return _transition(
                rule, track.alert, entity_id=entity_id, state="update", minute=minute, values=values
            )
        return None
    track.clear += 1
    if track.clear < rule.clear_minutes:
        return None
    track.alert, track.clear = None, 0
    return _transition(
        rule, alert, entity_id=entity_id, state="resolve", minute=minute, values=values
    )


def _walk(rule: Rule, track: Track, *, entity_id: str, last_final: int) -> list[AlertTransition]:
    """Step through every final minute not walked yet, in order, up to ``last_final``."""
    if track.final_ms is not None:
        minute = track.final_ms + BUCKET_MS
    elif track.pending:
        minute = min(track.pending)
    else:
        return []
    quiet = missing_values(rule)
    out: list[AlertTransition] = []
    while minute <= last_final:
        values = track.pending.pop(minute, None)
        before = track.snapshot()
        transition = _step(
            rule,
            track,
            entity_id=entity_id,
            minute=minute,
            values=quiet if values is None else values,
        )
        if transition is not None:
            out.append(transition)
        track.final_ms = minute
        minute += BUCKET_MS
        if values is None and transition is None and track.snapshot() == before:
            # A quiet minute that changed nothing: the following quiet minutes change
            # nothing either until data comes, a window opens or closes, or updates fall due.
            firing = track.alert is not None and verdict(
                rule, quiet, minute_ms=minute, clearing=False
            )
            if not firing:
                stops = [
                    min(track.pending, default=None),
                    next_window_edge(rule, minute - BUCKET_MS),
                ]
                minute = min([s for s in stops if s is not None] + [last_final + BUCKET_MS])
    if track.final_ms is not None:
        track.final_ms = max(track.final_ms, last_final)
    return out


def _walk_due(
    state: TrackJson | None,
    seen: dict[int, Values],
    *,
    walked: int | None,
    last_final_ms: int | None,
) -> bool:
    """Whether :func:`_walk` would step through any minute, given the state (``walked``:
    its ``f``) and the values ``seen`` that are about to join its pending ones."""
    if last_final_ms is None:
        return False
    if walked is not None:
        return walked < last_final_ms
    pending: dict[str, Values] = (state or {}).get("p") or {}
    first = min([*(int(minute) for minute in pending), *seen], default=None)
    return first is not None and first <= last_final_ms


def _with_pending(state: TrackJson | None, values: dict[int, Values]) -> TrackJson:
    """The state (as :meth:`Track.to_json` writes it) with ``values`` of open minutes added
    to its pending ones, without building the track: what most writes need."""
    state = state or {}
    pending = {int(minute): v for minute, v in state.get("p", {}).items()}
    pending.update(values)
    out: TrackJson = {"f": state["f"]} if "f" in state else {}
    out["p"] = {str(minute): v for minute, v in sorted(pending.items())}
    out.update((key, value) for key, value in state.items() if key not in ("f", "p"))
    return out


def evaluate_rule(
    rule: Rule,
    state: TrackJson | None,
    *,
    entity_id: str,
    buckets: Buckets,
    last_final_ms: int | None,
) -> tuple[TrackJson | None, list[AlertTransition]]:
    """Fold an entity's minute aggregates (any versions, any order) into one rule's state,
    then walk the minutes final up to ``last_final_ms``; return the new state (None when
    there is nothing to remember) and the transitions, oldest first: the final ones, and
    a ``provisional`` or ``retract`` (:func:`_look_ahead`, :func:`_settle_provisional`).

    A minute whose latest version the state has already taken in need not be given again:
    callers that know which minutes changed since the last call pass only those."""
    walked = state.get("f") if state else None
    seen: dict[int, Values] = {}
    for key, metrics in buckets.items():
        minute = int(key)
        if walked is not None and minute <= walked:
            continue  # final and walked already: it cannot have changed
        values = clause_values(rule, cast(Mapping[str, Sequence[float]], metrics))
        if values is not None:
            seen[minute] = values
    due = _walk_due(state, seen, walked=walked, last_final_ms=last_final_ms)
    if not due and not _may_provision(rule, state, seen):
        # No final minute left to walk, nothing to foresee: at most new values of open
        # minutes to remember (most writes).
        return (_with_pending(state, seen) if seen else state or None), []
    track = Track.from_json(state)
    track.pending.update(seen)
    transitions: list[AlertTransition] = []
    if due and last_final_ms is not None:
        transitions = _walk(rule, track, entity_id=entity_id, last_final=last_final_ms)
    transitions += _settle_provisional(rule, track, entity_id=entity_id, final=transitions)
    transitions += _look_ahead(rule, track, entity_id=entity_id)
    return (None if track.is_empty() else track.to_json()), transitions


def _may_provision(rule: Rule, state: TrackJson | None, seen: Mapping[int, Values]) -> bool:
    """Whether an open minute just seen holds the condition while no alert is open: only
    then can a look ahead foresee an alert (cheap; most entities are calm)."""
    if state and ("a" in state or "q" in state):
        return False  # an alert open, or one foreseen already (it stands until settled)
    return any(verdict(rule, values, minute_ms=m, clearing=False) for m, values in seen.items())


def _look_ahead(rule: Rule, track: Track, *, entity_id: str) -> list[AlertTransition]:
    """Walk a copy of the track through the minutes seen but not final, as if they were:
    if that opens an alert, announce it as ``provisional`` (same id as the ``open`` that
    would confirm it). Judged on the data so far, partial minutes too; once one is
    announced, none other is until the final minutes have settled it."""
    if track.alert is not None or track.provisional is not None:
        return []
    ahead = [m for m in track.pending if track.final_ms is None or m > track.final_ms]
    if not any(verdict(rule, track.pending[m], minute_ms=m, clearing=False) for m in ahead):
        return []
    trial = replace(track, pending=dict(track.pending))
    found = _walk(rule, trial, entity_id=entity_id, last_final=max(ahead))
    opened = next((t for t in found if t.state == "open"), None)
    if opened is None:
        return []
    minute = int(opened.opened_at.timestamp() * 1000) - BUCKET_MS
    track.provisional = (opened.alert_id, minute, int(opened.since.timestamp() * 1000))
    return [opened.model_copy(update={"state": "provisional"})]


def _settle_provisional(
    rule: Rule,
    track: Track,
    *,
    entity_id: str,
    final: Sequence[AlertTransition],
) -> list[AlertTransition]:
    """Confirm or retract the provisional alert: an ``open`` with its id confirms it
    (nothing more to say); once its minute is final without that, or another alert of the
    rule is open, it is retracted. Until then it stands: no other is foreseen."""
    if track.provisional is None:
        return []
    alert, minute, since = track.provisional
    if any(t.state == "open" and t.alert_id == alert for t in final):
        track.provisional = None
        return []
    final_past = track.final_ms is not None and track.final_ms >= minute
    if not (final_past or track.alert is not None):
        return []
    track.provisional = None
    return [
        transition(
            rule,
            alert_id=alert,
            entity_id=entity_id,
            state="retract",
            opened_ms=minute + BUCKET_MS,
            since_ms=since,
            at_ms=max(minute, track.final_ms or minute) + BUCKET_MS,
            values={},
        )
    ]


@dataclass(frozen=True, slots=True)
class Evaluation:
    """An entity's new alert states (by rule id) and the transitions to publish."""

    states: dict[str, TrackJson]
    transitions: list[AlertTransition]


class RuleEngine:
    """The rules of every domain, applied to one entity at a time: window and stuck rules
    when its record is written (:meth:`evaluate`), instant rules on each event
    (:meth:`on_event`), silent rules on each event and when the record is written."""

    def __init__(self, rules: Sequence[AnyRuleModel]) -> None:
        self._by_domain: dict[str, list[Rule]] = {}
        self._instant_by_domain: dict[str, list[InstantRule]] = {}
        self._silent_by_domain: dict[str, list[SilentRule]] = {}
        self._stuck_by_domain: dict[str, list[StuckRule]] = {}
        #: Instant rules by the event types that can change them (match or clear).
        self._instant_by_type: dict[str, list[InstantRule]] = {}
        self._silent_ids = {rule.id for rule in rules if isinstance(rule, SilentRule)}
        self._instant_by_id = {rule.id: rule for rule in rules if isinstance(rule, InstantRule)}
        for rule in rules:
            if isinstance(rule, SilentRule):
                self._silent_by_domain.setdefault(rule.domain, []).append(rule)
            elif isinstance(rule, StuckRule):
                self._stuck_by_domain.setdefault(rule.domain, []).append(rule)
            elif isinstance(rule, InstantRule):
                self._instant_by_domain.setdefault(rule.domain, []).append(rule)
                types = {rule.match.type} | ({rule.clear.type} if rule.clear else set())
                for event_type in types:
                    self._instant_by_type.setdefault(event_type, []).append(rule)
            else:
                self._by_domain.setdefault(rule.domain, []).append(rule)

    def rules_for(self, domain: str) -> list[AnyRuleModel]:
        """Every rule of ``domain``, of every kind."""
        return [
            *self._by_domain.get(domain, []),
            *self._instant_by_domain.get(domain, []),
            *self._silent_by_domain.get(domain, []),
            *self._stuck_by_domain.get(domain, []),
        ]

    def hears(self, domain: str) -> bool:
        """Whether some silent rule wants every applied event of ``domain``."""
        return domain in self._silent_by_domain

    def on_report(
        self,
        states: dict[str, TrackJson],
        *,
        entity_id: str,
        domain: str,
        registered: Registered | None,
        previous_ms: int | None,
        time_ms: int,
        watermark_ms: int | None,
        lateness_ms: int,
    ) -> list[AlertTransition]:
        """An applied event of the entity ends its silence, if it was silent
        (``streams.alerts.health``); ``states`` is updated in place."""
        out: list[AlertTransition] = []
        for rule in self._silent_by_domain.get(domain, ()):
            state, found = health.silent_on_event(
                rule,
                states.get(rule.id),
                entity_id=entity_id,
                registered=registered,
                previous_ms=previous_ms,
                time_ms=time_ms,
                watermark_ms=watermark_ms,
                lateness_ms=lateness_ms,
            )
            _keep(states, rule.id, state)
            out.extend(found)
        return out

    def unsettled(self, states: Mapping[str, TrackJson] | None) -> bool:
        """Whether some rule other than a silent one has minutes to walk or an open alert
        that the next final minute may change (instant and silent rules by time:
        :meth:`due_at`)."""
        return any(
            track.keys() & {"p", "r", "k", "a"}
            for rule_id, track in (states or {}).items()
            if rule_id not in self._silent_ids
        )

    def due_at(
        self,
        states: Mapping[str, TrackJson] | None,
        *,
        domain: str,
        registered: Registered | None,
        last_event_ms: int | None,
        lateness_ms: int,
    ) -> int | None:
        """The watermark at which an instant or silent rule of this entity has something to
        judge (an open alert's quiet minutes over, a silence certain), or None. Times to
        the millisecond: unlike window rules, these do not wait for a minute's end."""
        # Called for every record the sweep walks and every record written: only the
        # record's own states are looked at, most of them window rules'.
        times: list[int] = []
        for rule_id, state in (states or {}).items():
            rule = self._instant_by_id.get(rule_id)
            if rule is not None and "a" in state:
                times.append(instant.quiet_end(rule, state["a"]) + lateness_ms)
        if last_event_ms is not None and registered is not None and registered.interval_s:
            for silent in self._silent_by_domain.get(domain, ()):
                if not (states and states.get(silent.id)) and health.judges(silent, registered):
                    deadline = health.silence_deadline(silent, registered, last_event_ms)
                    times.append(deadline + lateness_ms)
        return min(times, default=None)

    def watches(self, event_type: str) -> bool:
        """Whether some instant rule looks at events of this type."""
        return event_type in self._instant_by_type

    def on_event(
        self,
        states: dict[str, TrackJson],
        *,
        entity_id: str,
        event_type: str,
        data: Mapping[str, Any],
        time_ms: int,
        watermark_ms: int | None,
        lateness_ms: int,
    ) -> list[AlertTransition]:
        """Apply one applied event to the instant rules that watch its type; ``states``
        (the record's, by rule id) is updated in place. ``watermark_ms`` is the
        partition's watermark before this event."""
        out: list[AlertTransition] = []
        for rule in self._instant_by_type.get(event_type, ()):
            state, found = instant.on_event(
                rule,
                states.get(rule.id),
                entity_id=entity_id,
                event_type=event_type,
                data=data,
                time_ms=time_ms,
                watermark_ms=watermark_ms,
                lateness_ms=lateness_ms,
            )
            _keep(states, rule.id, state)
            out.extend(found)
        return out

    def evaluate(
        self,
        states: Mapping[str, Any] | None,
        *,
        entity_id: str,
        domain: str,
        buckets: Buckets,
        watermark_ms: int | None,
        lateness_ms: int,
        registered: Registered | None = None,
        last_event_ms: int | None = None,
    ) -> Evaluation:
        """Evaluate every rule of ``domain`` for one entity. ``states`` is what the last
        call returned (kept in the entity record); ``buckets`` are the record's minutes,
        or only those changed since that call if it was made by this engine (its rules may
        differ from those of a process that wrote ``states`` before a restart). Instant
        rules resolve the alerts whose quiet minutes are over; silent rules open those of
        an entity silent since ``last_event_ms`` (its registry entry: ``registered``)."""
        last_final = last_final_minute(watermark_ms, lateness_ms=lateness_ms)
        new_states: dict[str, TrackJson] = {}
        transitions: list[AlertTransition] = []
        for rule in self._by_domain.get(domain, []):
            state, found = evaluate_rule(
                rule,
                (states or {}).get(rule.id),
                entity_id=entity_id,
                buckets=buckets,
                last_final_ms=last_final,
            )
            _keep(new_states, rule.id, state)
            transitions.extend(found)
        for instant_rule in self._instant_by_domain.get(domain, []):
            state, found = instant.advance(
                instant_rule,
                (states or {}).get(instant_rule.id),
                entity_id=entity_id,
                watermark_ms=watermark_ms,
                lateness_ms=lateness_ms,
            )
            _keep(new_states, instant_rule.id, state)
            transitions.extend(found)
        for stuck_rule in self._stuck_by_domain.get(domain, []):
            state, found = health.stuck_evaluate(
                stuck_rule,
                (states or {}).get(stuck_rule.id),
                entity_id=entity_id,
                registered=registered,
                buckets=cast(AsLists, buckets),
                last_final_ms=last_final,
            )
            _keep(new_states, stuck_rule.id, state)
            transitions.extend(found)
        for silent_rule in self._silent_by_domain.get(domain, []):
            state, found = health.silent_advance(
                silent_rule,
                (states or {}).get(silent_rule.id),
                entity_id=entity_id,
                registered=registered,
                last_event_ms=last_event_ms,
                watermark_ms=watermark_ms,
                lateness_ms=lateness_ms,
            )
            _keep(new_states, silent_rule.id, state)
            transitions.extend(found)
        transitions.sort(key=lambda t: t.updated_at)
        return Evaluation(new_states, transitions)

    def close(self, states: dict[str, TrackJson], alert: str) -> bool:
        """Forget ``alert`` (resolved by an operator) in ``states``, in place: the rule
        that opened it starts afresh (a window or stuck rule needs its streak again, an
        instant rule its next match, a silent rule the entity's next event and a new
        silence). Returns whether it was open here."""
        for rule_id, state in list(states.items()):
            if state.get("q", [None])[0] == alert:
                # A provisional alert: its streak starts again, nothing will confirm it.
                rest = {k: v for k, v in state.items() if k not in ("q", "r", "s")}
                _keep(states, rule_id, rest or None)
                return True
            if state.get("a", {}).get("id") == alert:
                if rule_id in self._silent_ids:
                    states[rule_id] = {"c": alert}  # this silence is dealt with
                    return True
                rest = {k: v for k, v in state.items() if k not in ("a", "k", "r", "s")}
                _keep(states, rule_id, rest or None)
                return True
        return False


def _keep(states: dict[str, TrackJson], rule_id: str, state: TrackJson | None) -> None:
    if state:
        states[rule_id] = state
    else:
        states.pop(rule_id, None)
