"""Same final transitions however the minutes arrive: one by one, in batches, updated many
times; provisional alerts, which depend on the arrival, are always settled.

Events are folded into an entity record by ``streams.entity_record.fold`` exactly as the agents
do (watermark per event, late events refused, changed buckets pinned within a batch) and
the engine is called once per batch with the record's buckets and the watermark.
"""

from __future__ import annotations

import random
from typing import Any, cast

import orjson
import pytest

from streams.alerts.engine import RuleEngine, _with_pending, evaluate_rule
from streams.alerts.rules import Rule, load_rules
from streams.alerts.track import Track
from streams.alerts.transitions import FINAL_STATES, AlertTransition
from streams.entity_record import BUCKET_MS, fold, identity_token, new_record

T0 = 1_725_696_000_000  # 2024-09-07T08:00:00Z
LATENESS = 120_000
Event = tuple[int, dict[str, float]]  # event time, metrics


def _traffic_events(seed: int, minutes: int = 90) -> list[Event]:
    """Flow reports every 10 s through calm, congested and flapping stretches, some late."""
    rng = random.Random(seed)
    events: list[Event] = []
    for m in range(minutes):
        phase = (m // 7 + seed) % 4  # calm, jammed, flapping, jammed
        for s in range(0, 60, 10):
            jammed = phase in (1, 3) or (phase == 2 and rng.random() < 0.5)
            speed = rng.uniform(5, 14) if jammed else rng.uniform(12, 60)
            occupancy = rng.uniform(82, 99) if jammed else rng.uniform(20, 85)
            if rng.random() < 0.05:
                continue  # a dropped report
            time_ms = T0 + m * BUCKET_MS + s * 1000
            if rng.random() < 0.1:
                time_ms -= rng.randrange(0, 200_000)  # delivered late, maybe too late
            events.append((time_ms, {"avg_speed_kmh": speed, "occupancy_pct": occupancy}))
    return events


def _run(
    engine: RuleEngine,
    events: list[Event],
    *,
    batch: int,
    domain: str = "traffic",
    changed_only: bool = False,
    states_seen: list[bytes] | None = None,
    others_ms: int = 0,
) -> tuple[list[AlertTransition], int]:
    """Fold the events in order, evaluating once per batch with the record's minutes (or,
    ``changed_only``, with those the batch changed, as ``streams.state`` does); return
    transitions and the largest serialised state seen (each appended to ``states_seen``).
    With ``others_ms``, other entities move the watermark that far after each batch and
    the entity is evaluated again without a change of its own (the store's sweep)."""
    record = new_record(entity_id="ix-1", domain=domain, partition=0)
    watermark: int | None = None
    states: dict[str, Any] = {}
    out: list[AlertTransition] = []
    largest = 0
    for start in range(0, len(events), batch):
        changed: set[str] = set()
        for offset, (time_ms, metrics) in enumerate(events[start : start + batch], start):
            outcome = fold(
                record,
                offset=offset,
                time_ms=time_ms,
                event=identity_token(offset),
                event_type="city.traffic.flow.v1",
                state={},
                metrics=metrics,
                watermark_ms=watermark,
                lateness_ms=LATENESS,
                pinned=changed,
            )
            if outcome != "applied":
                continue  # late
            changed.update(record.changed)
            watermark = time_ms if watermark is None else max(watermark, time_ms)
        buckets = record.buckets
        if changed_only:
            buckets = {minute: buckets[minute] for minute in changed}
        sweeps = [buckets]
        if others_ms and watermark is not None:
            sweeps.append({} if changed_only else record.buckets)
        for n, given in enumerate(sweeps):
            if n and watermark is not None:  # a second sweep comes only with a watermark
                watermark += others_ms
            result = engine.evaluate(
                states,
                entity_id="ix-1",
                domain=domain,
                buckets=given,
                watermark_ms=watermark,
                lateness_ms=LATENESS,
            )
            encoded = orjson.dumps(result.states)
            if states_seen is not None:
                states_seen.append(encoded)
            largest = max(largest, len(encoded))
            states = orjson.loads(encoded)
            out += result.transitions
    return out, largest


def final(transitions: list[AlertTransition]) -> list[AlertTransition]:
    return [t for t in transitions if t.state in FINAL_STATES]


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_one_by_one_and_batched_input_give_the_same_transitions(seed: int) -> None:
    engine = RuleEngine(load_rules())
    events = _traffic_events(seed)
    everything, largest = _run(engine, events, batch=1)
    reference = final(everything)
    assert [t.state for t in reference].count("open") >= 2  # the feed does exercise the rule
    assert "resolve" in [t.state for t in reference]
    for batch in (2, 7, 50, 333, len(events)):
        transitions, _ = _run(engine, events, batch=batch)
        assert final(transitions) == reference, f"batch of {batch}"
    assert largest < 450  # a few minutes of pending values at most


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
@pytest.mark.parametrize("batch", [1, 7, 50])
def test_every_provisional_alert_is_confirmed_or_retracted_and_comes_first(
    seed: int, batch: int
) -> None:
    engine = RuleEngine(load_rules())
    transitions, _ = _run(engine, _traffic_events(seed), batch=batch)
    provisional = [n for n, t in enumerate(transitions) if t.state == "provisional"]
    assert provisional, "the feed foresees some alert"
    confirmed = 0
    for n in provisional:
        alert = transitions[n].alert_id
        settled = [
            t.state
            for t in transitions[n + 1 :]
            if t.alert_id == alert and t.state in ("open", "retract")
        ]
        # Settled once, later (the feed ends calm, so every forecast is judged).
        assert settled[:1] in (["open"], ["retract"]), (n, alert)
        confirmed += settled[0] == "open"
        # The provisional alert is the alert that opens: same id, same opening minute.
        if settled[0] == "open":
            opened = next(t for t in transitions if t.alert_id == alert and t.state == "open")
            assert opened.opened_at == transitions[n].opened_at
    if batch == 1:
        # Event by event, every alert that opens was foreseen before its minutes were final.
        opens = {t.alert_id for t in transitions if t.state == "open"}
        assert opens <= {transitions[n].alert_id for n in provisional}
        assert confirmed == len(opens)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_judging_only_the_minutes_a_batch_changed_is_the_same_as_judging_all(seed: int) -> None:
    """The state has taken in every minute it saw; the minutes a batch did not change need
    not be shown again: same states after every batch, byte for byte, same transitions."""
    engine = RuleEngine(load_rules())
    events = _traffic_events(seed)
    for batch, others_ms in [(1, 0), (3, 0), (50, 0), (len(events), 0), (1, 500), (4, 20_000)]:
        every: list[bytes] = []
        changed: list[bytes] = []
        reference, _ = _run(engine, events, batch=batch, others_ms=others_ms, states_seen=every)
        transitions, _ = _run(
            engine, events, batch=batch, others_ms=others_ms, changed_only=True, states_seen=changed
        )
        assert any(t.state == "resolve" for t in reference)
        assert transitions == reference, f"batch of {batch}, others {others_ms} ms"
        assert changed == every, f"batch of {batch}, others {others_ms} ms"


def test_an_alert_is_never_opened_twice_for_one_entity() -> None:
    transitions = final(
        _run(RuleEngine(load_rules()), _traffic_events(5, minutes=200), batch=13)[0]
    )
    open_now: str | None = None
    for t in transitions:
        if t.state == "open":
            assert open_now is None
            open_now = t.alert_id
        else:
            assert t.alert_id == open_now
            if t.state == "resolve":
                open_now = None


def _agg(values: list[float]) -> list[float]:
    return [len(values), sum(values), min(values), max(values), values[-1], 0]


def test_a_minute_updated_many_times_counts_as_its_last_version() -> None:
    rule = cast(Rule, next(r for r in load_rules() if r.id == "traffic-congestion"))
    speeds = {m: [30.0, 25.0, 8.0, 6.0, 5.0] for m in range(6)}  # ends congested
    occupancy = [50.0, 70.0, 90.0, 95.0, 99.0]

    def bucket(m: int, upto: int) -> dict[str, dict[str, list[float]]]:
        return {
            str(T0 + m * BUCKET_MS): {
                "avg_speed_kmh": _agg(speeds[m][:upto]),
                "occupancy_pct": _agg(occupancy[:upto]),
            }
        }

    def once() -> list[AlertTransition]:
        state, out = None, []
        for m in range(6):
            state, found = evaluate_rule(
                rule, state, entity_id="e", buckets=bucket(m, 5), last_final_ms=T0 + m * BUCKET_MS
            )
            out += found
        return out

    def repeatedly() -> list[AlertTransition]:
        state, out = None, []
        for m in range(6):
            for upto in (1, 2, 3, 4, 5, 5):  # early versions look calm, then the final one
                state, found = evaluate_rule(
                    rule, state, entity_id="e", buckets=bucket(m, upto), last_final_ms=None
                )
                out += found
            state, found = evaluate_rule(
                rule, state, entity_id="e", buckets={}, last_final_ms=T0 + m * BUCKET_MS
            )
            out += found
        return out

    reference = once()
    assert [t.state for t in reference] == ["open"]
    assert final(repeatedly()) == reference


def test_walking_minute_by_minute_or_in_one_jump_is_the_same() -> None:
    """Quiet minutes are skipped in stretches: the result must equal a minute-by-minute walk."""
    rules = [rule for rule in load_rules() if isinstance(rule, Rule)]  # window rules
    heartbeat = Rule.model_validate(
        {
            "id": "camera-silent",
            "domain": "security",
            "title": {"en": "Camera silent", "vi": "Camera im lặng"},
            "severity": "info",
            "condition": {
                "clauses": [
                    {
                        "metric": "detections",
                        "statistic": "count",
                        "comparison": "<",
                        "threshold": 1,
                    }
                ]
            },
            "for_minutes": 4,
            "clear_minutes": 2,
            "update_minutes": 7,
            "windows": [{"start": "22:00", "end": "05:00"}, {"start": "12:00", "end": "12:30"}],
        }
    )
    metrics: dict[str, dict[str, list[float]]] = {
        "traffic-congestion": {
            "avg_speed_kmh": [1, 5, 5, 5, 5, 0],
            "occupancy_pct": [1, 95, 95, 95, 95, 0],
        },
        "hospital-er-saturation": {"bed_occupancy_pct": [1, 95, 95, 95, 95, 0]},
        "hospital-icu-saturation": {"icu_occupancy_pct": [1, 100, 100, 100, 100, 0]},
        "hospital-ambulance-shortage": {"ambulances_available": [1, 0, 0, 0, 0, 0]},
        "hospital-er-waiting-surge": {"er_waiting": [1, 20, 20, 20, 20, 0]},
        "hospital-admission-surge": {"admissions_urgent": [3, 3, 1, 1, 1, 0]},
        "school-low-attendance": {"attendance_pct": [1, 50, 50, 50, 50, 0]},
        "security-intrusion": {"intrusion_confidence": [1, 0.9, 0.9, 0.9, 0.9, 0]},
        "camera-silent": {"detections": [1, 1, 1, 1, 1, 0]},
    }
    start = T0 - 6 * 3_600_000  # 09:00 local: inside the school window
    for rule in [*rules, heartbeat]:
        minutes = max(4, rule.for_minutes)
        buckets = {str(start + i * BUCKET_MS): metrics[rule.id] for i in range(minutes)}
        end = start + 3 * 24 * 60 * BUCKET_MS
        state, jumped = evaluate_rule(rule, None, entity_id="e", buckets=buckets, last_final_ms=end)
        stepped: list[AlertTransition] = []
        state = None
        minute = start
        while minute <= end:
            state, found = evaluate_rule(
                rule, state, entity_id="e", buckets=buckets, last_final_ms=minute
            )
            stepped += found
            minute += BUCKET_MS
        assert final(jumped) == final(stepped), rule.id
        assert jumped, rule.id


def test_adding_values_of_open_minutes_to_a_state_is_what_the_track_writes() -> None:
    """A write with nothing final to walk updates the state's pending values directly;
    it must be what the track would have written, byte for byte, for every state a long
    feed goes through (streaks, open alerts, gaps)."""
    rule = next(r for r in load_rules() if r.id == "traffic-congestion")
    seen: list[bytes] = []
    _run(RuleEngine([rule]), _traffic_events(6, minutes=200), batch=5, states_seen=seen)
    rng = random.Random(6)
    states = [orjson.loads(s).get(rule.id) for s in seen]
    assert any(s and "a" in s for s in states)
    assert any(s and "r" in s for s in states)
    for state in states:
        walked = (state or {}).get("f", T0)
        values: dict[int, list[float | None]] = {
            walked + n * BUCKET_MS: [rng.uniform(0, 60), rng.uniform(0, 100)]
            for n in rng.sample(range(-1, 5), 3)
        }
        track = Track.from_json(state)
        track.pending.update(values)
        assert orjson.dumps(_with_pending(state, values)) == orjson.dumps(track.to_json())
