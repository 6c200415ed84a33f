"""Correlation of alerts into incidents (``streams.incidents.correlate``): the incidents
a rule derives from a place's alert facts, what a place publishes as transitions arrive
(in order, late, twice, or in any order), and which alert transitions are facts."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from streams.alerts import load_rules
from streams.alerts.transitions import AlertState, transition
from streams.incidents.correlate import (
    KEEP_MS,
    MINUTE_MS,
    AlertFact,
    Incident,
    Place,
    derive,
    fact_of,
)
from streams.incidents.events import INCIDENT_NAMESPACE, IncidentTransition, incident_id
from streams.incidents.rules import CorrelationRule, load_correlation_rules

T0 = int(datetime(2024, 9, 7, tzinfo=UTC).timestamp() * 1000)
HOUR = 60
RULES = {rule.id: rule for rule in load_correlation_rules()}
ALERT_RULES = {rule.id: rule for rule in load_rules()}
BY_LEVEL = {
    level: [rule for rule in RULES.values() if rule.level == level] for level in ("commune", "zone")
}

#: What an incident is, whatever transitions made it: rule, area, severity, opening time,
#: closing time (None while open) and member alerts.
What = tuple[str, str, str, int, int | None, tuple[str, ...]]


def at(minute: float) -> int:
    """Event time ``minute`` minutes after T0, in ms."""
    return T0 + round(minute * MINUTE_MS)


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def fact(
    alert_id: str,
    rule_id: str,
    opened: float,
    resolved: float | None = None,
    *,
    severity: str | None = None,
) -> AlertFact:
    """The fact of alert ``alert_id`` of the shipped alert rule ``rule_id``, opened (and
    resolved) that many minutes after T0."""
    rule = ALERT_RULES[rule_id]
    return AlertFact(
        alert_id=alert_id,
        rule_id=rule_id,
        domain=rule.domain,
        severity=severity or rule.severity,
        opened_ms=at(opened),
        resolved_ms=None if resolved is None else at(resolved),
    )


def alert(
    alert_id: str,
    rule_id: str,
    state: AlertState,
    *,
    opened: float,
    minute: float | None = None,
    commune: str = "c1",
    zone: str = "z1",
) -> dict[str, Any]:
    """The data of an ``ioc.alerts`` transition of alert ``alert_id`` (shipped rule
    ``rule_id``) opened at minute ``opened``, made at ``minute`` (default: ``opened``; the
    resolution time of a resolve), of an entity in ``commune`` and ``zone``."""
    made = transition(
        ALERT_RULES[rule_id],
        alert_id=alert_id,
        entity_id=f"entity-{alert_id}",
        state=state,
        opened_ms=at(opened),
        since_ms=at(opened) - MINUTE_MS,
        at_ms=at(opened if minute is None else minute),
        values={},
    )
    placed = made.model_copy(update={"commune_id": commune, "zone_id": zone})
    return placed.model_dump(mode="json")


def feed(
    place: Place, data: Mapping[str, Any], rules: Sequence[CorrelationRule]
) -> list[IncidentTransition]:
    """What the incident agent does with an alert transition: take its fact, if it is
    one, at the transition's time, then step."""
    taken = fact_of(data)
    if taken is not None:
        place.take(taken, at_ms=ms(data["updated_at"]))
    return place.step(rules)


def what(incidents: Iterable[Incident]) -> dict[str, What]:
    return {
        i.incident_id: (i.rule.id, i.area_id, i.severity, i.opened_ms, i.closed_ms, i.alerts)
        for i in incidents
    }


def published(transitions: Iterable[IncidentTransition]) -> dict[str, What]:
    """Each incident as its last transition leaves it; retracted ones left out."""
    last: dict[str, IncidentTransition] = {}
    for t in transitions:
        last[t.incident_id] = t
    return {
        i: (
            t.rule_id,
            t.area_id,
            t.severity,
            ms(t.opened_at),
            ms(t.closed_at) if t.state == "close" and t.closed_at else None,
            tuple(t.alerts),
        )
        for i, t in last.items()
        if t.state != "retract"
    }


def states(transitions: Iterable[IncidentTransition]) -> list[tuple[str, str]]:
    return [(t.state, t.incident_id) for t in transitions]


def iid(rule_id: str, first_alert: str, area: str = "c1") -> str:
    return incident_id(rule_id=rule_id, area_id=area, first_alert_id=first_alert)


# derive(): the incidents of one rule in one place.

STORM = [
    fact("f", "traffic-flooding", 0),
    fact("c", "traffic-closure", 60),
    fact("p", "security-alarm-power-loss", 120),
]


def test_a_rule_opens_when_every_requirement_is_met_within_its_window() -> None:
    [incident] = derive(RULES["storm"], "z1", STORM, now_ms=at(600))
    assert incident.incident_id == iid("storm", "f", "z1")
    assert incident.area_id == "z1"
    assert incident.opened_ms == at(120)  # the alert that completed it
    assert incident.alerts == ("c", "f", "p")
    assert incident.closed_ms is None
    assert incident.severity == "critical"
    assert incident.last_joined_ms == at(120)


@pytest.mark.parametrize("missing", ["f", "c", "p"])
def test_a_missing_requirement_opens_nothing(missing: str) -> None:
    facts = [f for f in STORM if f.alert_id != missing]
    assert derive(RULES["storm"], "z1", facts, now_ms=at(600)) == []


def test_requirements_spread_wider_than_the_window_open_nothing() -> None:
    # Storm's window is 300 minutes: the flooding at 0 and the power loss at 301 are not
    # within it of each other, whatever the order they are given in.
    late = [*STORM[:2], fact("p", "security-alarm-power-loss", 301)]
    assert derive(RULES["storm"], "z1", late, now_ms=at(600)) == []
    assert derive(RULES["storm"], "z1", late[::-1], now_ms=at(600)) == []
    edge = [*STORM[:2], fact("p", "security-alarm-power-loss", 300)]
    [incident] = derive(RULES["storm"], "z1", edge, now_ms=at(600))
    assert incident.opened_ms == at(300)


def test_a_requirement_needs_its_count_of_distinct_alerts() -> None:
    rule = RULES["mass-admissions"]  # two resuscitation cases within 30 minutes
    one = [fact("h1", "hospital-triage-1", 0)]
    assert derive(rule, "z1", one, now_ms=at(600)) == []
    [both] = derive(rule, "z1", [*one, fact("h2", "hospital-triage-1", 30)], now_ms=at(600))
    assert (both.opened_ms, both.alerts) == (at(30), ("h1", "h2"))
    too_far = [*one, fact("h2", "hospital-triage-1", 31)]
    assert derive(rule, "z1", too_far, now_ms=at(600)) == []
    [incident] = derive(rule, "z1", [*too_far, fact("h3", "hospital-triage-1", 40)], now_ms=at(600))
    # h1 is related but opened before the window of h3: not a member.
    assert (incident.opened_ms, incident.alerts) == (at(40), ("h2", "h3"))


def test_the_same_alert_twice_counts_once() -> None:
    place = Place("z1", "zone")
    for data in (
        alert("h1", "hospital-triage-1", "open", opened=0),
        alert("h1", "hospital-triage-1", "update", opened=0, minute=5),
        alert("h1", "hospital-triage-1", "open", opened=0),
    ):
        assert feed(place, data, BY_LEVEL["zone"]) == []
    assert len(place.alerts) == 1


def test_related_alerts_of_the_window_before_the_completing_one_are_members() -> None:
    facts = [
        fact("old", "traffic-closure", -2),  # 61 minutes before the flooding
        fact("closure", "traffic-closure", 0),  # joins flooding
        fact("crowd", "security-crowd", 10),  # unrelated to flooding
        fact("slide", "traffic-landslide", 20),  # joins flooding
        fact("flood", "traffic-flooding", 59),  # completes flooding
    ]
    [incident] = derive(RULES["flooding"], "c1", facts, now_ms=at(600))
    assert incident.opened_ms == at(59)
    assert incident.alerts == ("closure", "flood", "slide")
    # Its first alert is the earliest member, not the one that completed it.
    assert incident.incident_id == iid("flooding", "closure")


def test_alerts_opened_while_it_is_open_join_and_unrelated_ones_do_not() -> None:
    facts = [
        fact("flood", "traffic-flooding", 0),
        fact("closed", "school-closure", 100),  # joins
        fact("crowd", "security-crowd", 150),  # unrelated
        fact("crash", "traffic-crash", 160),  # landslide's, not flooding's
        fact("school", "school-flooding", 200),  # a requirement
    ]
    [incident] = derive(RULES["flooding"], "c1", facts, now_ms=at(600))
    assert incident.alerts == ("closed", "flood", "school")
    assert incident.opened_ms == at(0)
    assert incident.last_joined_ms == at(200)


def test_with_joins_any_every_alert_of_the_place_joins() -> None:
    facts = [
        fact("fire", "security-alarm-fire", 0),
        fact("silent", "hospital-feed-silent", 100),
        fact("jam", "traffic-congestion", 200),
    ]
    [shipped] = derive(RULES["fire"], "c1", facts, now_ms=at(600))
    assert shipped.alerts == ("fire",)
    anything = CorrelationRule.model_validate({**RULES["fire"].model_dump(), "joins": "any"})
    [incident] = derive(anything, "c1", facts, now_ms=at(600))
    assert incident.alerts == ("fire", "jam", "silent")
    # Joining alerts do not open one by themselves.
    assert derive(anything, "c1", facts[1:], now_ms=at(600)) == []


def test_it_closes_quiet_minutes_after_the_last_resolution_once_now_has_passed() -> None:
    facts = [
        fact("flood", "traffic-flooding", 0, 40),
        fact("closed", "school-closure", 20, 10),  # resolved first, joined later
    ]
    rule = RULES["flooding"]  # quiet for 60 minutes
    [still] = derive(rule, "c1", facts, now_ms=at(100) - 1)
    assert still.closed_ms is None
    [closed] = derive(rule, "c1", facts, now_ms=at(100))
    assert closed.closed_ms == at(100)
    assert closed.alerts == ("closed", "flood")


def test_an_unresolved_member_keeps_it_open() -> None:
    facts = [fact("flood", "traffic-flooding", 0, 10), fact("closed", "school-closure", 20)]
    [incident] = derive(RULES["flooding"], "c1", facts, now_ms=at(100 * HOUR))
    assert incident.closed_ms is None


def test_an_alert_opened_after_the_close_does_not_join() -> None:
    first = fact("flood", "traffic-flooding", 0, 10)  # closes at 70 unless one joins
    rule = RULES["flooding"]
    [before] = derive(rule, "c1", [first, fact("x", "traffic-closure", 69)], now_ms=at(600))
    assert (before.alerts, before.closed_ms) == (("flood", "x"), None)
    [after] = derive(rule, "c1", [first, fact("x", "traffic-closure", 70)], now_ms=at(600))
    assert (after.alerts, after.closed_ms) == (("flood",), at(70))


def test_an_alert_after_the_close_that_meets_the_rule_again_starts_a_new_incident() -> None:
    facts = [
        fact("flood", "traffic-flooding", 0, 10),
        fact("x", "traffic-closure", 80),
        fact("again", "traffic-flooding", 100),
    ]
    old, new = derive(RULES["flooding"], "c1", facts, now_ms=at(600))
    assert (old.alerts, old.closed_ms) == (("flood",), at(70))
    assert (new.alerts, new.opened_ms, new.closed_ms) == (("again", "x"), at(100), None)
    assert new.incident_id == iid("flooding", "x") != old.incident_id


def test_alerts_of_a_closed_incident_do_not_count_toward_the_next() -> None:
    # Storm's window (300) is longer than its quiet time (120): the first incident's
    # alerts are still within the window of the second one's.
    first = [
        fact("f", "traffic-flooding", 0, 121),
        fact("c", "traffic-closure", 60, 121),
        fact("p", "security-alarm-power-loss", 120, 121),
    ]
    second = [fact("f2", "traffic-flooding", 250), fact("c2", "traffic-closure", 260)]
    [only] = derive(RULES["storm"], "z1", [*first, *second], now_ms=at(600))
    assert (only.alerts, only.closed_ms) == (("c", "f", "p"), at(241))
    third = fact("p2", "security-alarm-power-loss", 270)
    old, new = derive(RULES["storm"], "z1", [*first, *second, third], now_ms=at(600))
    assert old.alerts == ("c", "f", "p")
    assert new.alerts == ("c2", "f2", "p2")


def test_severity_is_the_highest_of_the_rule_and_its_members() -> None:
    mild = [
        fact("flood", "traffic-flooding", 0, severity="info"),
        fact("x", "traffic-closure", 5, severity="info"),
    ]
    [warning] = derive(RULES["flooding"], "c1", mild, now_ms=at(60))
    assert warning.severity == "warning"  # the rule's
    grave = [*mild, fact("slide", "traffic-landslide", 10, severity="critical")]
    [critical] = derive(RULES["flooding"], "c1", grave, now_ms=at(60))
    assert critical.severity == "critical"
    [landslide] = derive(RULES["landslide"], "c1", grave, now_ms=at(60))
    assert landslide.severity == "critical"


def test_ids_are_uuid5_of_rule_area_and_first_alert_whatever_the_input_order() -> None:
    facts = [
        *STORM,
        fact("b", "traffic-flooding", 0),  # same opening time as f: ids break the tie
        fact("slide", "traffic-landslide", 130),
        fact("noise", "traffic-congestion", 140),
    ]
    results = {
        tuple(derive(RULES["storm"], "z1", order, now_ms=at(600)))
        for order in itertools.permutations(facts)
    }
    [[incident]] = results
    assert incident.incident_id == str(uuid.uuid5(INCIDENT_NAMESPACE, "storm/z1/b"))
    assert incident.alerts == ("b", "c", "f", "p", "slide")


# Place: a place's table value as transitions arrive.


def test_take_is_idempotent_and_never_undoes_a_resolution() -> None:
    place = Place("c1", "commune")
    opened = fact_of(alert("a", "traffic-flooding", "open", opened=0))
    resolved = fact_of(alert("a", "traffic-flooding", "resolve", opened=0, minute=30))
    assert opened is not None
    assert resolved is not None
    place.take(opened, at_ms=at(0))
    once = orjson.dumps(place.to_value())
    place.take(opened, at_ms=at(0))
    assert orjson.dumps(place.to_value()) == once
    place.take(resolved, at_ms=at(30))
    after = orjson.dumps(place.to_value())
    # The same again, and an older transition after a newer one, change nothing.
    place.take(resolved, at_ms=at(30))
    place.take(opened, at_ms=at(0))
    assert orjson.dumps(place.to_value()) == after
    assert place.alerts["a"][4] == at(30)
    assert place.now_ms == at(30)


def test_take_keeps_the_highest_severity_seen() -> None:
    place = Place("c1", "commune")
    place.take(fact("a", "traffic-flooding", 0, severity="critical"), at_ms=at(0))
    place.take(fact("a", "traffic-flooding", 0, severity="warning"), at_ms=at(5))
    assert place.alerts["a"][2] == "critical"
    place.take(fact("b", "traffic-flooding", 0, severity="info"), at_ms=at(6))
    place.take(fact("b", "traffic-flooding", 0, severity="warning"), at_ms=at(7))
    assert place.alerts["b"][2] == "warning"


def test_step_publishes_open_update_escalation_and_close_once_each() -> None:
    rules = [RULES["flooding"]]
    place = Place("c1", "commune")
    [opened] = feed(place, alert("flood", "traffic-flooding", "open", opened=0), rules)
    flooding = iid("flooding", "flood")
    assert opened.model_dump() == {
        "incident_id": flooding,
        "rule_id": "flooding",
        "sop": "flooding",
        "state": "open",
        "area_id": "c1",
        "level": "commune",
        "severity": "warning",
        "opened_at": opened.opened_at,
        "updated_at": opened.opened_at,
        "closed_at": None,
        "alerts": ["flood"],
        "escalated": False,
        "title_en": "Flooding",
        "title_vi": "Ngập lụt",
    }
    assert ms(opened.opened_at) == at(0)
    assert place.step(rules) == []  # nothing changed
    assert (
        feed(place, alert("flood", "traffic-flooding", "update", opened=0, minute=3), rules) == []
    )

    [joined] = feed(place, alert("shut", "school-closure", "open", opened=5), rules)  # info
    assert (joined.state, joined.escalated, joined.severity) == ("update", False, "warning")
    assert (joined.alerts, ms(joined.updated_at)) == (["flood", "shut"], at(5))

    [graver] = feed(place, alert("slide", "traffic-landslide", "open", opened=10), rules)
    assert (graver.state, graver.escalated, graver.severity) == ("update", True, "critical")
    assert graver.alerts == ["flood", "shut", "slide"]

    for alert_id, rule_id, opened_min, resolved in (
        ("flood", "traffic-flooding", 0, 20),
        ("shut", "school-closure", 5, 30),
        ("slide", "traffic-landslide", 10, 40),
    ):
        data = alert(alert_id, rule_id, "resolve", opened=opened_min, minute=resolved)
        assert feed(place, data, rules) == []
    assert place.step(rules, clock_ms=at(100) - 1) == []  # quiet until 100
    [closed] = place.step(rules, clock_ms=at(100))
    assert (closed.state, closed.incident_id, closed.severity) == ("close", flooding, "critical")
    assert closed.closed_at is not None
    assert ms(closed.closed_at) == ms(closed.updated_at) == at(100)
    assert closed.alerts == ["flood", "shut", "slide"]
    assert place.step(rules, clock_ms=at(200)) == []


def test_an_incident_first_seen_closed_is_published_open_then_closed() -> None:
    place = Place("c1", "commune")
    place.take(fact("fire", "security-alarm-fire", 0, 5), at_ms=at(5))
    out = place.step(BY_LEVEL["commune"], clock_ms=at(60))
    assert [t.state for t in out] == ["open", "close"]
    assert ms(out[1].updated_at) == at(35)


def test_a_late_earlier_alert_supersedes_a_published_incident() -> None:
    rules = BY_LEVEL["commune"]
    place = Place("c1", "commune")
    [first] = feed(place, alert("b", "traffic-flooding", "open", opened=30), rules)
    assert first.incident_id == iid("flooding", "b")
    # Alert a opened earlier, through a partition that lagged: the flooding incident of
    # c1 begins with it, and the one published is withdrawn in its favour.
    out = feed(place, alert("a", "school-flooding", "open", opened=10), rules)
    assert sorted(states(out)) == [("open", iid("flooding", "a")), ("retract", first.incident_id)]
    by_state = {t.state: t for t in out}
    assert by_state["open"].alerts == ["a", "b"]
    assert ms(by_state["open"].opened_at) == at(10)
    retract = by_state["retract"]
    assert (retract.alerts, retract.rule_id, retract.severity) == (["b"], "flooding", "warning")
    assert ms(retract.opened_at) == at(30)
    assert ms(retract.updated_at) == at(30)  # the place's clock
    assert place.step(rules) == []
    assert list(place.emitted) == [iid("flooding", "a")]


def test_a_round_trip_through_the_table_value_keeps_behaviour() -> None:
    rules = BY_LEVEL["commune"]
    place = Place("c1", "commune")
    for data in (
        alert("flood", "traffic-flooding", "open", opened=0),
        alert("shut", "school-closure", "open", opened=5),
        alert("flood", "traffic-flooding", "resolve", opened=0, minute=20),
    ):
        feed(place, data, rules)
    place.step(rules, clock_ms=at(25))
    value = orjson.loads(orjson.dumps(place.to_value()))
    copy = Place("c1", "commune", value)
    assert copy.to_value() == value == place.to_value()
    assert copy.step(rules) == []
    later = [
        alert("fire", "security-alarm-fire", "open", opened=30),
        alert("a", "school-flooding", "open", opened=-10),  # late: supersedes
        alert("shut", "school-closure", "resolve", opened=5, minute=40),
        alert("fire", "security-alarm-fire", "resolve", opened=30, minute=45),
    ]
    seen: list[str] = []
    for data in later:
        out = feed(copy, data, rules)
        assert out == feed(place, data, rules)
        seen += [t.state for t in out]
    assert seen == ["open", "open", "retract"]  # fire, then flooding superseded
    assert copy.step(rules, clock_ms=at(600)) == place.step(rules, clock_ms=at(600))
    assert copy.to_value() == place.to_value()


def test_an_empty_value_is_an_empty_place() -> None:
    place = Place("z1", "zone", None)
    assert place.to_value() == {"alerts": {}, "now": 0, "ended": {}, "emitted": {}}
    assert place.step(BY_LEVEL["zone"]) == []


# Forgetting: a closed incident's alerts and marks go once every alert of it resolved long
# before the place's clock (ticks included); alerts of no incident on their own.

FIRE = RULES["fire"]
LONG_AGO_MS = (FIRE.within_minutes + FIRE.quiet_minutes) * MINUTE_MS + KEEP_MS


def test_a_closed_incident_is_forgotten_once_the_clock_passes_its_cut(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past the bound (here 0 alerts), its alerts and published marks go once the
    place's clock (ticks included) is past the rule's window and quiet time and KEEP_MS
    after its last resolution; nothing is published for it, and a later alarm opens a
    new incident."""
    monkeypatch.setattr(Place, "max_facts", 0)
    place = Place("c1", "commune")
    place.take(fact("fire", "security-alarm-fire", 0, 5), at_ms=at(5))
    assert [t.state for t in place.step([FIRE], clock_ms=at(60))] == ["open", "close"]
    assert place.step([FIRE], clock_ms=at(5) + LONG_AGO_MS) == []
    assert list(place.alerts) == ["fire"]
    assert place.step([FIRE], clock_ms=at(5) + LONG_AGO_MS + 1) == []
    assert place.to_value()["alerts"] == place.to_value()["emitted"] == {}
    later = at(5) + 2 * LONG_AGO_MS
    place.take(fact("fire-2", "security-alarm-fire", later // MINUTE_MS), at_ms=later)
    (opened,) = place.step([FIRE])
    assert opened.state == "open"
    assert opened.incident_id == iid("fire", "fire-2")


@pytest.mark.parametrize(
    ("other", "kept"),
    [
        pytest.param(
            fact("open", "security-alarm-fire", 1), {"fire", "open"}, id="an open incident"
        ),
        pytest.param(fact("open", "traffic-congestion", 1), {"open"}, id="an unresolved alert"),
        pytest.param(
            fact("recent", "traffic-congestion", 1, 3 * HOUR), {"recent"}, id="a recent resolve"
        ),
    ],
)
def test_an_incident_is_kept_whole_while_any_of_it_is_open_or_recent(
    other: AlertFact, kept: set[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An alert that joined the old incident keeps it whole; alerts of no incident are
    kept or forgotten on their own."""
    monkeypatch.setattr(Place, "max_facts", 0)
    place = Place("c1", "commune")
    place.take(fact("fire", "security-alarm-fire", 0, 5), at_ms=at(5))
    place.take(other, at_ms=at(5))
    place.step([FIRE], clock_ms=at(60))
    place.step([FIRE], clock_ms=at(5) + LONG_AGO_MS + 1)
    assert set(place.alerts) == kept


def test_a_place_with_an_alert_now_and_then_does_not_keep_every_fact(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The table stays bounded (docs/architecture.md): a fire alarm every 8 hours for
    three days, each resolved within 5 minutes, fed as the agent does with ticks between,
    in a place bounded to 4 alerts; the alarms of days ago are forgotten."""
    monkeypatch.setattr(Place, "max_facts", 4)
    place = Place("c1", "commune")
    for k in range(9):
        opened = k * 8 * HOUR
        for data in (
            alert(f"fire-{k}", "security-alarm-fire", "open", opened=opened),
            alert(f"fire-{k}", "security-alarm-fire", "resolve", opened=opened, minute=opened + 5),
        ):
            feed(place, data, [FIRE])
        place.step([FIRE], clock_ms=at(opened + HOUR))
    assert "fire-0" not in place.alerts, f"{len(place.alerts)} alerts kept over 3 days"
    assert len(place.alerts) <= 5
    assert "fire-8" in place.alerts


def test_below_the_bound_nothing_is_forgotten() -> None:
    """A tick far ahead of the place (a worker catching up a backlog, its partitions
    months apart) forgets nothing while the place holds fewer than max_facts alerts."""
    place = Place("c1", "commune")
    place.take(fact("fire", "security-alarm-fire", 0, 5), at_ms=at(5))
    place.step([FIRE], clock_ms=at(60))
    assert place.step([FIRE], clock_ms=at(5) + 100 * LONG_AGO_MS) == []
    assert list(place.alerts) == ["fire"]
    assert list(place.emitted) == [iid("fire", "fire")]


# Late members of an incident that was already published closed.


def _closed_flooding() -> tuple[Place, list[IncidentTransition]]:
    """A flooding incident of c1 (one alert, 0 to 10) published closed at 70 by a tick."""
    place = Place("c1", "commune")
    rules = [RULES["flooding"]]
    out = feed(place, alert("flood", "traffic-flooding", "open", opened=0), rules)
    out += feed(place, alert("flood", "traffic-flooding", "resolve", opened=0, minute=10), rules)
    out += place.step(rules, clock_ms=at(200))
    assert [(t.state, ms(t.updated_at)) for t in out] == [("open", at(0)), ("close", at(70))]
    return place, out


def test_a_late_member_of_a_closed_incident_republishes_its_close() -> None:
    place, out = _closed_flooding()
    # A closure of the commune (30 to 40) arrives late, through another partition, its
    # resolution first: it belonged to the incident, which closed at 40 + 60 = 100.
    rules = [RULES["flooding"]]
    out += feed(place, alert("shut", "traffic-closure", "resolve", opened=30, minute=40), rules)
    out += feed(place, alert("shut", "traffic-closure", "open", opened=30), rules)
    [incident] = derive(RULES["flooding"], "c1", place.facts(), now_ms=place.now_ms)
    assert (incident.alerts, incident.closed_ms) == (("flood", "shut"), at(100))
    assert published(out) == what([incident])


def test_a_late_alert_that_reopens_a_closed_incident_is_not_dated_before_its_close() -> None:
    place, out = _closed_flooding()
    [update] = feed(place, alert("shut", "traffic-closure", "open", opened=50), [RULES["flooding"]])
    assert (update.state, update.closed_at, update.alerts) == ("update", None, ["flood", "shut"])
    # The sink (streams/incidents/store.py) applies a transition's fields only when it is
    # not older than the stored one: dated before the close, the reopening never shows.
    assert ms(update.updated_at) >= ms(out[-1].updated_at)


# fact_of(): which alert transitions are facts.


@pytest.mark.parametrize("state", ["provisional", "retract"])
def test_provisional_alerts_and_their_retraction_are_no_facts(state: AlertState) -> None:
    assert fact_of(alert("a", "traffic-congestion", state, opened=0, minute=3)) is None


def test_an_acknowledgement_is_no_fact() -> None:
    data = {**alert("a", "traffic-flooding", "open", opened=0), "state": "acknowledge"}
    assert fact_of(data) is None


def test_open_update_and_resolve_state_their_times() -> None:
    expected = AlertFact("a", "traffic-flooding", "traffic", "warning", at(0), None)
    assert fact_of(alert("a", "traffic-flooding", "open", opened=0)) == expected
    assert fact_of(alert("a", "traffic-flooding", "update", opened=0, minute=7)) == expected
    resolved = fact_of(alert("a", "traffic-flooding", "resolve", opened=0, minute=42.5))
    assert resolved == AlertFact("a", "traffic-flooding", "traffic", "warning", at(0), at(42.5))


def test_times_with_an_offset_are_read_as_instants() -> None:
    data = {
        **alert("a", "hospital-triage-1", "resolve", opened=0, minute=1),
        "opened_at": "2024-09-07T07:00:00.250+07:00",
        "resolved_at": "2024-09-07T00:01:00Z",
    }
    taken = fact_of(data)
    assert taken is not None
    assert (taken.opened_ms, taken.resolved_ms) == (at(0) + 250, at(1))
    assert (taken.rule_id, taken.domain, taken.severity) == (
        "hospital-triage-1",
        "hospital",
        "warning",
    )


# Order independence: the same transitions in any order publish the same incidents.

COMMUNES = {"c1": "z1", "c2": "z1", "c3": "z2"}
NAMED = sorted(
    {
        alert_rule
        for rule in RULES.values()
        for match in (*rule.requires, *(() if rule.joins == "any" else rule.joins))
        for pattern in match.rules
        for alert_rule in ALERT_RULES
        if fnmatchcase(alert_rule, pattern)
    }
    | {"traffic-breakdown", "school-low-attendance"}  # related to no rule
)
STATE_ORDER = {"open": 0, "update": 1, "resolve": 2}

Spec = tuple[str, str, int, int | None, bool]
#: Alerts (rule, commune, opened, minutes open or None, updated once), the final clock
#: (minutes), and the arrival order: indices into their transitions and some repeats.
Case = tuple[list[Spec], int, list[int]]


@st.composite
def cases(draw: st.DrawFn) -> Case:
    drawn = draw(
        st.lists(
            st.tuples(
                st.sampled_from(NAMED),
                st.sampled_from(sorted(COMMUNES)),
                st.integers(min_value=0, max_value=4 * HOUR),
                st.none() | st.integers(min_value=1, max_value=3 * HOUR),
                st.booleans(),
            ),
            min_size=1,
            max_size=10,
        )
    )
    count = len(_transitions(drawn))
    repeats = draw(st.lists(st.integers(min_value=0, max_value=count - 1), max_size=3))
    order = draw(st.permutations([*range(count), *repeats]))
    return drawn, draw(st.integers(min_value=0, max_value=10 * HOUR)), order


def _transitions(drawn: list[Spec]) -> list[dict[str, Any]]:
    """Each alert's open, maybe an update a minute later, and its resolve unless it lasts."""
    out: list[dict[str, Any]] = []
    for n, (rule_id, commune, opened, lasts, updated) in enumerate(drawn):
        alert_id, zone = f"a{n:02d}", COMMUNES[commune]
        minutes: list[tuple[AlertState, int]] = [("open", opened)]
        if updated and (lasts is None or lasts > 1):
            minutes.append(("update", opened + 1))
        if lasts is not None:
            minutes.append(("resolve", opened + lasts))
        out += [
            alert(alert_id, rule_id, state, opened=opened, minute=m, commune=commune, zone=zone)
            for state, m in minutes
        ]
    return out


def _run(
    transitions: Iterable[Mapping[str, Any]], *, clock_ms: int, round_trip: bool
) -> tuple[dict[str, What], dict[str, What], dict[str, Any]]:
    """Feed the transitions to the commune and zone places as the agents do (through the
    table's JSON if ``round_trip``), then step every place with ``clock_ms``: what was
    published, what the places' facts make, and the places' facts."""
    places: dict[tuple[str, str], Place] = {}
    out: list[IncidentTransition] = []
    for data in transitions:
        for level in ("commune", "zone"):
            key = (level, str(data[f"{level}_id"]))
            place = places.get(key) or Place(key[1], level)
            if round_trip:
                place = Place(key[1], level, orjson.loads(orjson.dumps(place.to_value())))
            out += feed(place, data, BY_LEVEL[level])
            places[key] = place
    derived: list[Incident] = []
    facts: dict[str, Any] = {}
    for (level, area), place in sorted(places.items()):
        out += place.step(BY_LEVEL[level], clock_ms=clock_ms)
        derived += [
            i
            for rule in BY_LEVEL[level]
            for i in derive(rule, area, place.facts(), now_ms=place.now_ms)
        ]
        facts[f"{level}/{area}"] = place.to_value()["alerts"]
    return published(out), what(derived), facts


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
@example(
    # A fire incident of c1 (alarm 0 to 5) is published closed at 35 once a later alert
    # moved the clock; then an evacuation of 10 to 20 arrives, its resolution first.
    (
        [
            ("security-alarm-fire", "c1", 0, 5, False),
            ("school-evacuation", "c1", 10, 10, False),
            ("traffic-breakdown", "c1", 100, None, False),
        ],
        0,
        [0, 1, 4, 3, 2],
    )
)
def test_any_arrival_order_publishes_the_same_incidents(case: Case) -> None:
    drawn, clock, order = case
    transitions = _transitions(drawn)
    in_order = sorted(
        transitions,
        key=lambda d: (ms(d["updated_at"]), STATE_ORDER[d["state"]], d["alert_id"]),
    )
    expected, derived, facts = _run(in_order, clock_ms=at(clock), round_trip=False)
    assert expected == derived
    arrivals = [transitions[i] for i in order]
    got, got_derived, got_facts = _run(arrivals, clock_ms=at(clock), round_trip=True)
    assert got_facts == facts
    assert got_derived == derived
    assert got == expected
