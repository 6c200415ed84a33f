"""The engine's lifecycle on the congestion rule: streaks, hysteresis, one alert per key."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import cast

import orjson

from streams.alerts.engine import evaluate_rule, last_final_minute
from streams.alerts.rules import Rule, load_rules
from streams.alerts.track import TrackJson
from streams.alerts.transitions import AlertTransition, alert_id
from streams.entity_record import BUCKET_MS, is_final

T0 = 1_725_696_000_000  # 2024-09-07T08:00:00Z, a minute boundary
BAD = (10.0, 90.0)  # avg speed km/h, occupancy %: congested
GOOD = (45.0, 30.0)
SLUGGISH = (18.0, 75.0)  # between the open and the clear thresholds

Minute = tuple[float, float] | None


def congestion() -> Rule:
    return cast(Rule, next(rule for rule in load_rules() if rule.id == "traffic-congestion"))


def _bucket(speed: float, occupancy: float, minute: int) -> dict[str, list[float]]:
    return {
        "avg_speed_kmh": [1, speed, speed, speed, speed, minute],
        "occupancy_pct": [1, occupancy, occupancy, occupancy, occupancy, minute],
    }


def feed(
    minutes: Sequence[Minute], *, rule: Rule | None = None, state: TrackJson | None = None
) -> tuple[list[AlertTransition], TrackJson | None]:
    """Feed one minute per call (None: nothing reported), each final right after it."""
    rule = rule or congestion()
    out: list[AlertTransition] = []
    for i, values in enumerate(minutes):
        minute = T0 + i * BUCKET_MS
        buckets = {} if values is None else {str(minute): _bucket(*values, minute)}
        state, found = evaluate_rule(
            rule, state, entity_id="ix-1", buckets=buckets, last_final_ms=minute
        )
        state = orjson.loads(orjson.dumps(state))  # as the changelog would keep it
        out += found
    return out, state


def _at(i: int) -> datetime:
    return datetime.fromtimestamp((T0 + i * BUCKET_MS) / 1000, tz=UTC)


def _states(transitions: list[AlertTransition]) -> list[tuple[str, datetime]]:
    return [(t.state, t.updated_at) for t in transitions]


def test_congestion_does_not_open_after_two_bad_minutes() -> None:
    transitions, _ = feed([GOOD, BAD, BAD, GOOD, BAD, BAD, GOOD])
    assert transitions == []


def test_congestion_opens_on_the_third_consecutive_bad_minute() -> None:
    transitions, state = feed([GOOD, BAD, BAD, BAD])
    [opened] = transitions
    assert opened.state == "open"
    assert opened.opened_at == opened.updated_at == _at(4)  # end of the third bad minute
    assert opened.since == _at(1)
    assert opened.resolved_at is None
    assert opened.values == {"avg(avg_speed_kmh)": 10.0, "avg(occupancy_pct)": 90.0}
    assert opened.alert_id == alert_id(
        rule_id="traffic-congestion", entity_id="ix-1", opened_minute_ms=T0 + 3 * BUCKET_MS
    )
    assert (opened.severity, opened.domain, opened.title_vi) == (
        "warning",
        "traffic",
        "Ùn tắc giao thông",
    )
    assert state is not None
    assert state["a"]["id"] == opened.alert_id


def test_only_one_clause_bad_is_not_congestion() -> None:
    transitions, _ = feed([(10.0, 50.0)] * 5 + [(40.0, 95.0)] * 5)
    assert transitions == []


def test_a_minute_without_data_breaks_the_streak() -> None:
    transitions, _ = feed([BAD, BAD, None, BAD, BAD])
    assert transitions == []


def test_an_open_alert_updates_instead_of_opening_again() -> None:
    transitions, _ = feed([BAD] * 14)
    assert _states(transitions) == [("open", _at(3)), ("update", _at(8)), ("update", _at(13))]
    assert len({t.alert_id for t in transitions}) == 1
    assert {t.opened_at for t in transitions} == {_at(3)}


def test_a_new_bad_stretch_while_open_updates_the_same_alert() -> None:
    transitions, _ = feed([BAD] * 3 + [SLUGGISH] * 4 + [BAD] * 3)
    assert _states(transitions) == [("open", _at(3)), ("update", _at(8))]


def test_a_single_good_minute_inside_a_bad_stretch_does_not_resolve() -> None:
    transitions, _ = feed([BAD] * 3 + [GOOD, BAD, GOOD, GOOD, BAD, GOOD])
    assert _states(transitions) == [("open", _at(3)), ("update", _at(8))]  # no resolve
    assert len({t.alert_id for t in transitions}) == 1


def test_it_resolves_after_clear_minutes_good_minutes_in_a_row() -> None:
    transitions, state = feed([BAD] * 3 + [GOOD, BAD, GOOD, GOOD, GOOD])
    assert _states(transitions) == [("open", _at(3)), ("resolve", _at(8))]
    resolved = transitions[-1]
    assert resolved.resolved_at == _at(8)
    assert resolved.alert_id == transitions[0].alert_id
    assert resolved.values == {"avg(avg_speed_kmh)": 45.0, "avg(occupancy_pct)": 30.0}
    assert state == {"f": T0 + 7 * BUCKET_MS}  # nothing left but where the walk stands


def test_values_between_open_and_clear_thresholds_keep_it_open() -> None:
    transitions, _ = feed([BAD] * 3 + [SLUGGISH] * 30)
    assert [t.state for t in transitions] == ["open"]  # sluggish is not bad enough to update


def test_one_bad_minute_right_after_resolve_does_not_reopen() -> None:
    transitions, _ = feed([BAD] * 3 + [GOOD] * 3 + [BAD, GOOD, BAD, BAD, GOOD])
    assert [t.state for t in transitions] == ["open", "resolve"]


def test_a_fresh_bad_stretch_after_resolve_opens_a_new_alert() -> None:
    transitions, _ = feed([BAD] * 3 + [GOOD] * 3 + [BAD] * 3)
    assert _states(transitions) == [("open", _at(3)), ("resolve", _at(6)), ("open", _at(9))]
    assert transitions[0].alert_id != transitions[2].alert_id


def test_minutes_without_data_neither_clear_nor_reopen() -> None:
    transitions, _ = feed([BAD] * 3 + [None] * 20 + [GOOD, GOOD])
    assert [t.state for t in transitions] == ["open"]


def test_a_minute_not_final_yet_is_not_judged_but_foreseen() -> None:
    rule = congestion()
    buckets = {str(T0 + i * BUCKET_MS): _bucket(*BAD, T0 + i * BUCKET_MS) for i in range(3)}
    state, found = evaluate_rule(
        rule, None, entity_id="ix-1", buckets=buckets, last_final_ms=T0 + BUCKET_MS
    )
    # Not judged: the third bad minute is not final. Foreseen: a provisional alert.
    assert [t.state for t in found] == ["provisional"]
    [provisional] = found
    assert state is not None
    assert sorted(state["p"]) == [str(T0 + 2 * BUCKET_MS)]  # remembered, not judged
    state, found = evaluate_rule(
        rule, state, entity_id="ix-1", buckets={}, last_final_ms=T0 + 2 * BUCKET_MS
    )
    assert [t.state for t in found] == ["open"]
    # The open confirms the provisional alert: same id, same opening time.
    assert (found[0].alert_id, found[0].opened_at) == (provisional.alert_id, provisional.opened_at)
    assert state is not None
    assert "q" not in state


def test_a_provisional_alert_whose_minute_turns_calm_is_retracted() -> None:
    rule = congestion()
    first = {str(T0 + i * BUCKET_MS): _bucket(*BAD, T0 + i * BUCKET_MS) for i in range(3)}
    state, found = evaluate_rule(
        rule, None, entity_id="ix-1", buckets=first, last_final_ms=T0 + BUCKET_MS
    )
    assert [t.state for t in found] == ["provisional"]
    # The rest of the third minute is calm: its final average is not congested.
    calmer = {str(T0 + 2 * BUCKET_MS): _bucket(*GOOD, T0 + 2 * BUCKET_MS)}
    state, found = evaluate_rule(
        rule, state, entity_id="ix-1", buckets=calmer, last_final_ms=T0 + 2 * BUCKET_MS
    )
    assert [t.state for t in found] == ["retract"]
    assert found[0].updated_at == found[0].opened_at  # known when that minute was final
    assert state is not None
    assert "q" not in state


def test_minutes_already_walked_are_ignored_when_seen_again() -> None:
    rule = congestion()
    _, state = feed([BAD, BAD])
    stale = {str(T0 + i * BUCKET_MS): _bucket(*GOOD, T0) for i in range(2)}
    state, found = evaluate_rule(
        rule, state, entity_id="ix-1", buckets=stale, last_final_ms=T0 + BUCKET_MS
    )
    assert found == []
    _, found = evaluate_rule(
        rule,
        state,
        entity_id="ix-1",
        buckets={str(T0 + 2 * BUCKET_MS): _bucket(*BAD, T0)},
        last_final_ms=T0 + 2 * BUCKET_MS,
    )
    assert [t.state for t in found] == ["open"]


def test_the_last_final_minute_agrees_with_the_windows_module() -> None:
    lateness = 120_000
    for watermark in range(T0, T0 + 5 * BUCKET_MS, 7_000):
        last = last_final_minute(watermark, lateness_ms=lateness)
        assert last is not None
        assert is_final(last, watermark_ms=watermark, lateness_ms=lateness)
        assert not is_final(last + BUCKET_MS, watermark_ms=watermark, lateness_ms=lateness)
    assert last_final_minute(None, lateness_ms=lateness) is None


def test_a_transition_serialises_as_a_cloudevent_for_the_alerts_topic() -> None:
    [opened], _ = feed([BAD] * 3)
    event = orjson.loads(opened.to_json())
    assert (event["specversion"], event["type"], event["source"], event["subject"]) == (
        "1.0",
        "city.alert.opened.v1",
        "/ioc/rules",
        "ix-1",
    )
    assert event["time"] == "2024-09-07T08:03:00+00:00"
    assert orjson.loads(opened.to_json())["id"] == event["id"]  # the same for a repeat
    message = event["data"]
    assert message["state"] == "open"
    assert message["opened_at"] == "2024-09-07T08:03:00+00:00"
    assert message["resolved_at"] is None
    assert message["title_en"] == "Congestion"
    assert AlertTransition.model_validate(message) == opened
    assert opened.dedup_key == "traffic-congestion/ix-1"
