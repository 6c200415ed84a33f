"""Alerts and incidents per place and hour (``streams.incidents.activity``): the counts
are a function of the alerts whatever the arrival order and the repeats, forecasts count
once confirmed and retracted ones never, incidents count where and while the correlation
holds them, versions grow with each change only, old hours are dropped and never
published again; and the sink's reading of the records (``read_count``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.alerts import load_rules
from streams.alerts.transitions import AlertState, transition
from streams.incidents.activity import (
    HOUR_MS,
    RETAIN_MS,
    HourCount,
    PlaceActivity,
    hour_key,
    hour_of,
    place_key,
)
from streams.incidents.activity_store import read_count
from streams.incidents.correlate import MINUTE_MS, Place, fact_of
from streams.incidents.rules import load_correlation_rules
from streams.incidents.store import Malformed

T0 = int(datetime(2024, 9, 7, tzinfo=UTC).timestamp() * 1000)
ALERT_RULES = {rule.id: rule for rule in load_rules()}
BY_LEVEL = {
    level: [r for r in load_correlation_rules() if r.level == level]
    for level in ("commune", "zone")
}
COMMUNES = {"c1": "z1", "c2": "z1", "c3": "z2"}

Table = dict[bytes, Any]
#: (area, hour ms) -> (alerts, incidents)
Rows = dict[tuple[str, int], tuple[int, int]]


def at(minute: float) -> int:
    return T0 + round(minute * MINUTE_MS)


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def nothing(key: bytes) -> Mapping[str, Any] | None:
    """An empty table."""
    return None


def alert(
    alert_id: str,
    state: AlertState,
    *,
    opened: float,
    minute: float | None = None,
    rule_id: str = "traffic-breakdown",
    commune: str = "c1",
) -> dict[str, Any]:
    """The data of an ``ioc.alerts`` transition: alert ``alert_id`` of ``rule_id`` (by
    default one no incident rule names) opened at minute ``opened`` (after T0), made at
    ``minute`` (default ``opened``), in ``commune``."""
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
    placed = made.model_copy(update={"commune_id": commune, "zone_id": COMMUNES[commune]})
    return placed.model_dump(mode="json")


class Agents:
    """The commune and zone agents as ``streams.incidents.app`` runs them, over tables
    kept as their changelogs carry them (JSON), publishing into :attr:`published`."""

    def __init__(self) -> None:
        self.places: Table = {}
        self.hours: Table = {}
        self.published: list[HourCount] = []

    def feed(self, data: Mapping[str, Any]) -> None:
        for level in ("commune", "zone"):
            area = str(data[f"{level}_id"])
            counting = PlaceActivity(area, level, self.hours.get)
            counting.take_alert(data)
            fact = fact_of(data)
            if fact is not None:
                place = Place(area, level, self.places.get(place_key(area)))
                place.take(fact, at_ms=ms(data["updated_at"]))
                out = place.step(BY_LEVEL[level])
                counting.take_step(place.emitted, out)
                self.places[place_key(area)] = orjson.loads(orjson.dumps(place.to_value()))
            self._settle(counting)

    def _settle(self, counting: PlaceActivity) -> None:
        counts, writes = counting.settle()
        self.published += counts
        for key, value in writes.items():
            if value is None:
                del self.hours[key]
            else:
                self.hours[key] = orjson.loads(orjson.dumps(value))

    def rows(self) -> Rows:
        """What the sink keeps: each row's record of the highest version."""
        best: dict[tuple[str, int], HourCount] = {}
        for count in self.published:
            row = (count.area_id, count.hour_ms)
            if row not in best or best[row].version <= count.version:
                best[row] = count
        return {row: (c.alerts, c.incidents) for row, c in best.items() if c.alerts or c.incidents}

    def held(self) -> Rows:
        """The counts the tables' ids make."""
        out: Rows = {}
        for key, value in self.hours.items():
            if b"|" in key:
                area, hour = key.decode().split("|")
                n = (len(set(value["alerts"]) - set(value["retracted"])), len(value["incidents"]))
                if any(n):
                    out[(area, int(hour))] = n
        return out


def run(transitions: Iterable[Mapping[str, Any]]) -> Agents:
    agents = Agents()
    for data in transitions:
        agents.feed(data)
    return agents


# Forecasts, confirmations, retractions.


def test_a_confirmed_alert_counts_once_in_its_commune_and_zone_by_opening_hour() -> None:
    # Opened at 00:59, resolved at 02:10: it counts in hour 00 only, however many
    # transitions it has.
    agents = run(
        [
            alert("a", "open", opened=59),
            alert("a", "update", opened=59, minute=70),
            alert("a", "resolve", opened=59, minute=130),
            alert("a", "open", opened=59),
        ]
    )
    assert agents.rows() == {("c1", T0): (1, 0), ("z1", T0): (1, 0)}
    assert [(c.area_id, c.version) for c in agents.published] == [("c1", 1), ("z1", 1)]


def test_a_forecast_counts_once_it_opens_and_a_retracted_one_never() -> None:
    agents = run([alert("p", "provisional", opened=10), alert("q", "provisional", opened=12)])
    assert agents.rows() == {}
    assert agents.published == []
    agents.feed(alert("p", "open", opened=10))
    agents.feed(alert("q", "retract", opened=12, minute=13))
    assert agents.rows() == {("c1", T0): (1, 0), ("z1", T0): (1, 0)}
    # A retraction vetoes the id whatever came before it (an operator may have resolved
    # the forecast) or comes after it.
    agents.feed(alert("r", "resolve", opened=20, minute=25))
    assert agents.rows()[("c1", T0)] == (2, 0)
    agents.feed(alert("r", "retract", opened=20, minute=21))
    agents.feed(alert("r", "resolve", opened=20, minute=25))
    assert agents.rows()[("c1", T0)] == (1, 0)


def test_acknowledgements_and_unplaced_states_change_nothing() -> None:
    agents = run([alert("a", "open", opened=5)])
    before = list(agents.published)
    acknowledged = {**alert("a", "open", opened=5), "state": "acknowledge"}
    agents.feed(acknowledged)
    assert agents.published == before


# Incidents.


def test_an_incident_counts_in_the_hour_it_opened_at_its_level_only() -> None:
    # Two floodings in c1 (commune rule "flooding"): one commune incident at 00:30.
    flooding = "traffic-flooding"
    agents = run(
        [
            alert("a", "open", opened=30, rule_id=flooding),
            alert("b", "open", opened=40, rule_id=flooding),
        ]
    )
    assert agents.rows() == {("c1", T0): (2, 1), ("z1", T0): (2, 0)}


def test_a_withdrawn_incident_stops_counting_and_its_successor_counts() -> None:
    # Flooding opens at 01:10 with b; a late earlier flooding a at 00:50 makes the
    # incident that supersedes it: one incident, in hour 00.
    flooding = "traffic-flooding"
    agents = run(
        [
            alert("b", "open", opened=70, rule_id=flooding),
            alert("a", "open", opened=50, rule_id=flooding),
        ]
    )
    assert agents.rows()[("c1", T0)] == (1, 1)
    assert agents.rows()[("c1", T0 + HOUR_MS)] == (1, 0)
    # What the sink was sent for c1's hour 01: the incident, then none.
    sent = [(c.incidents, c.version) for c in agents.published if c.area_id == "c1"]
    assert sent == [(1, 1), (1, 1), (0, 2)]
    assert [c.hour_ms for c in agents.published if c.area_id == "c1"] == [
        T0 + HOUR_MS,
        T0,
        T0 + HOUR_MS,
    ]


def test_incidents_move_with_their_opening_hour_and_forgotten_ones_stay() -> None:
    counting = PlaceActivity("c1", "commune", nothing)
    counting.clock_ms = at(200)
    counting.take_incidents({"i1": at(10), "i2": at(70)}, [])
    counting.take_incidents({"i1": at(65), "i2": at(70)}, [])
    assert counting.counts(T0) == (0, 0)
    assert counting.counts(T0 + HOUR_MS) == (0, 2)
    # No longer held by the correlation (forgotten), not withdrawn: still counted.
    counting.take_incidents({}, [])
    assert counting.counts(T0 + HOUR_MS) == (0, 2)
    counting.take_incidents({}, ["i2"])
    assert counting.counts(T0 + HOUR_MS) == (0, 1)


# Order and repeats.

Spec = tuple[str, int, int | None, bool]


@st.composite
def arrivals(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[int]]:
    """Alerts (rule, commune, opened within 5 h, lasting or not; some forecast first,
    some forecasts retracted), and an arrival order with repeats."""
    rules = ["traffic-flooding", "school-flooding", "traffic-landslide", "traffic-closure"]
    drawn = draw(
        st.lists(
            st.tuples(
                st.sampled_from(rules),
                st.sampled_from(sorted(COMMUNES)),
                st.integers(min_value=0, max_value=300),
                st.none() | st.integers(min_value=1, max_value=120),
                st.sampled_from(["final", "forecast", "retracted"]),
            ),
            min_size=1,
            max_size=12,
        )
    )
    out: list[dict[str, Any]] = []
    for n, (rule_id, commune, opened, lasts, kind) in enumerate(drawn):
        steps: list[tuple[AlertState, int]] = []
        if kind != "final":
            steps.append(("provisional", opened - 1))
        if kind == "retracted":
            steps.append(("retract", opened + 1))
        else:
            steps.append(("open", opened))
            if lasts is not None:
                steps.append(("resolve", opened + lasts))
        out += [
            alert(f"a{n}", state, opened=opened, minute=m, rule_id=rule_id, commune=commune)
            for state, m in steps
        ]
    repeats = draw(st.lists(st.integers(min_value=0, max_value=len(out) - 1), max_size=4))
    return out, draw(st.permutations([*range(len(out)), *repeats]))


def counted(transitions: Iterable[Mapping[str, Any]]) -> Counter[tuple[str, int]]:
    """Alerts per (place, hour) counted straight from the transitions: the ids with a
    final transition and no retraction, by opening hour, in their commune and zone."""
    confirmed = {
        t["alert_id"]: t for t in transitions if t["state"] in ("open", "update", "resolve")
    }
    retracted = {t["alert_id"] for t in transitions if t["state"] == "retract"}
    out: Counter[tuple[str, int]] = Counter()
    for alert_id, t in confirmed.items():
        if alert_id not in retracted:
            hour = hour_of(ms(t["opened_at"]))
            out[(t["commune_id"], hour)] += 1
            out[(t["zone_id"], hour)] += 1
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arrivals())
def test_any_arrival_order_with_repeats_gives_the_same_counts(
    case: tuple[list[dict[str, Any]], list[int]],
) -> None:
    transitions, order = case
    in_order = run(sorted(transitions, key=lambda t: (t["updated_at"], t["alert_id"])))
    shuffled = run(transitions[i] for i in order)
    assert shuffled.rows() == in_order.rows() == in_order.held() == shuffled.held()
    alerts = {row: n[0] for row, n in in_order.rows().items() if n[0]}
    assert alerts == dict(counted(transitions))
    # Incidents: those the places' correlation holds at the end, by opening hour.
    incidents = {row: n[1] for row, n in shuffled.rows().items() if n[1]}
    held: Counter[tuple[str, int]] = Counter()
    for key, value in shuffled.places.items():
        for mark in value["emitted"].values():
            held[(key.decode(), hour_of(int(mark[4])))] += 1
    assert incidents == dict(held)
    # Versions grow by one with each change of a row, from 1.
    for agents in (in_order, shuffled):
        versions: dict[tuple[str, int], list[int]] = {}
        for c in agents.published:
            versions.setdefault((c.area_id, c.hour_ms), []).append(c.version)
        assert all(v == list(range(1, len(v) + 1)) for v in versions.values())


# Dropping old hours.


def test_an_hour_is_dropped_once_the_clock_is_48_hours_past_its_end() -> None:
    agents = run([alert("a", "open", opened=10)])
    assert hour_key("c1", T0) in agents.hours
    # 48 h after the end of hour 00, less a minute: still held; a late alert counts.
    agents.feed(alert("b", "open", opened=60 + 48 * 60 - 1, commune="c1"))
    agents.feed(alert("late", "open", opened=20, minute=60 + 48 * 60 - 1))
    assert agents.rows()[("c1", T0)] == (2, 0)
    # The clock reaches it: the hour goes from the table, its row stays as published.
    agents.feed(alert("c", "open", opened=60 + 48 * 60, commune="c1"))
    assert hour_key("c1", T0) not in agents.hours
    assert T0 not in agents.hours[place_key("c1")]["hours"]
    assert agents.rows()[("c1", T0)] == (2, 0)
    # A later alert for the dropped hour is ignored: nothing published from part of it.
    published = len(agents.published)
    agents.feed(alert("later", "open", opened=30, minute=60 + 48 * 60 + 5))
    assert len(agents.published) == published
    assert hour_key("c1", T0) not in agents.hours
    assert agents.rows()[("c1", T0)] == (2, 0)
    assert RETAIN_MS == 48 * HOUR_MS


def test_repeats_after_a_reload_publish_nothing_and_keep_versions() -> None:
    transitions = [alert("a", "open", opened=10), alert("b", "open", opened=20)]
    agents = run(transitions)
    before = list(agents.published)
    for data in transitions:
        agents.feed(data)
    assert agents.published == before
    assert [c.version for c in before if c.area_id == "c1"] == [1, 2]


# The records and the sink's reading of them.


def test_a_record_reads_back_as_published() -> None:
    count = HourCount(area_id="c1", level="commune", hour_ms=T0, alerts=3, incidents=1, version=4)
    stored = read_count(count.to_json())
    assert (stored.area_id, stored.alerts, stored.incidents, stored.version) == ("c1", 3, 1, 4)
    assert int(stored.hour.timestamp() * 1000) == T0


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"", "empty"),
        (b"{", "not_json"),
        (b"[]", "not_object"),
        (b'{"area_id": "", "hour": "2024-09-07T00:00:00+00:00"}', "invalid_field"),
        (b'{"area_id": "c1", "hour": "2024-09-07T00:30:00+00:00"}', "invalid_field"),
        (b'{"area_id": "c1", "hour": "2024-09-07T00:00:00"}', "invalid_field"),
        (b'{"area_id": "c1", "hour": "yesterday"}', "invalid_field"),
        (
            b'{"area_id": "c1", "hour": "2024-09-07T00:00:00+00:00", "alerts": -1,'
            b' "incidents": 0, "version": 1}',
            "invalid_field",
        ),
        (
            b'{"area_id": "c1", "hour": "2024-09-07T00:00:00+00:00", "alerts": 1,'
            b' "incidents": true, "version": 1}',
            "invalid_field",
        ),
    ],
)
def test_records_that_are_not_counts_are_refused(value: bytes, reason: str) -> None:
    with pytest.raises(Malformed) as info:
        read_count(value)
    assert info.value.reason == reason
