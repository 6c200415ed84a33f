"""Health rules: silent and stuck sensors, on hand-made cases and on the simulated city
with and without the simulator's own faults."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import orjson
import pytest
from aiokafka.structs import ConsumerRecord

from city.model import REPORT_INTERVAL_S, City
from simulators.engine import SimConfig, Simulation
from simulators.faults import Faults
from streams.alerts import RuleEngine, SilentRule, StuckRule, load_rules
from streams.alerts.health import silent_advance, silent_on_event, stuck_evaluate
from streams.entity_record import BUCKET_MS
from streams.registry import Registered, Registry
from streams.state import EntityStore
from tests.utils.events import T0, flow_value

LATENESS_MS = 120_000
MINUTE = BUCKET_MS
SHIPPED = {rule.id: rule for rule in load_rules()}
SILENT = cast(SilentRule, SHIPPED["traffic-sensor-silent"])
STUCK = cast(StuckRule, SHIPPED["traffic-sensor-stuck"])
SENSOR = Registered(domain="traffic", kind="intersection", commune="c", zone="z", interval_s=10)
T0_MS = int(T0.timestamp() * 1000)


def test_the_shipped_health_rules_are_silent_and_stuck_rules() -> None:
    assert isinstance(SILENT, SilentRule)
    assert isinstance(STUCK, StuckRule)
    # 30 intervals of 10 s, at least 5 minutes.
    assert SILENT.silent_after_ms(10) == 5 * MINUTE
    assert SHIPPED["hospital-feed-silent"].silent_after_ms(60) == 10 * MINUTE  # type: ignore[union-attr]


# -- silent -----------------------------------------------------------------------------


def test_silence_opens_at_the_deadline_once_no_earlier_event_can_come() -> None:
    last = T0_MS
    deadline = last + 5 * MINUTE
    args: dict[str, Any] = {"entity_id": "ix-1", "registered": SENSOR, "last_event_ms": last}
    # The watermark at the deadline: an event before it may still come (allowed lateness).
    state, found = silent_advance(
        SILENT, None, watermark_ms=deadline, lateness_ms=LATENESS_MS, **args
    )
    assert (state, found) == (None, [])
    state, found = silent_advance(
        SILENT, None, watermark_ms=deadline + LATENESS_MS, lateness_ms=LATENESS_MS, **args
    )
    assert [t.state for t in found] == ["open"]
    assert found[0].opened_at == datetime.fromtimestamp(deadline / 1000, tz=UTC)
    assert found[0].since == datetime.fromtimestamp(last / 1000, tz=UTC)
    assert found[0].values == {"silent_s": 300.0, "interval_s": 10}
    # Judged again (the sweep, its own record): nothing more until it reports.
    again, more = silent_advance(
        SILENT, state, watermark_ms=deadline + 10 * MINUTE, lateness_ms=LATENESS_MS, **args
    )
    assert (again, more) == (state, [])
    # Its next event resolves it at that event's time.
    back = deadline + 7 * MINUTE
    state, found = silent_on_event(
        SILENT,
        state,
        entity_id="ix-1",
        registered=SENSOR,
        previous_ms=last,
        time_ms=back,
        watermark_ms=back,
        lateness_ms=LATENESS_MS,
    )
    assert state is None
    assert [(t.state, t.updated_at) for t in found] == [
        ("resolve", datetime.fromtimestamp(back / 1000, tz=UTC))
    ]
    assert found[0].alert_id == again["a"]["id"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("gap_s", "expected"),
    [(290, []), (300, []), (301, ["open", "resolve"]), (900, ["open", "resolve"])],
)
def test_a_gap_seen_only_when_the_next_event_comes_opens_and_resolves_at_once(
    gap_s: int, expected: list[str]
) -> None:
    # The watermark never got past the deadline plus lateness (a partition of one sensor).
    found = silent_on_event(
        SILENT,
        None,
        entity_id="ix-1",
        registered=SENSOR,
        previous_ms=T0_MS,
        time_ms=T0_MS + gap_s * 1000,
        watermark_ms=T0_MS,
        lateness_ms=LATENESS_MS,
    )[1]
    assert [t.state for t in found] == expected


@pytest.mark.parametrize(
    "registered",
    [
        None,
        Registered(domain="traffic", kind="intersection", commune="c", zone="z", interval_s=None),
        Registered(domain="traffic", kind="bridge", commune="c", zone="z", interval_s=10),
    ],
)
def test_silence_is_judged_only_for_registered_kinds_with_an_interval(
    registered: Registered | None,
) -> None:
    state, found = silent_advance(
        SILENT,
        None,
        entity_id="ix-1",
        registered=registered,
        last_event_ms=T0_MS,
        watermark_ms=T0_MS + 60 * MINUTE,
        lateness_ms=LATENESS_MS,
    )
    assert (state, found) == (None, [])


def test_an_operator_resolve_ends_the_silence_until_the_sensor_reports_again() -> None:
    engine = RuleEngine([SILENT])
    states, found = _evaluate(engine, {}, last=T0_MS, watermark=T0_MS + 10 * MINUTE)
    assert [t.state for t in found] == ["open"]
    assert engine.close(states, found[0].alert_id)
    # Judged again at a later watermark: the same silence does not open again.
    states, found = _evaluate(engine, states, last=T0_MS, watermark=T0_MS + 30 * MINUTE)
    assert found == []
    # The next event ends it without a transition; a new silence opens a new alert.
    found = engine.on_report(
        states,
        entity_id="ix-1",
        domain="traffic",
        registered=SENSOR,
        previous_ms=T0_MS,
        time_ms=T0_MS + 31 * MINUTE,
        watermark_ms=T0_MS + 31 * MINUTE,
        lateness_ms=LATENESS_MS,
    )
    assert found == []
    assert states == {}
    later, found = _evaluate(
        engine, states, last=T0_MS + 31 * MINUTE, watermark=T0_MS + 40 * MINUTE
    )
    assert [t.state for t in found] == ["open"]
    assert later


def _evaluate(
    engine: RuleEngine, states: dict[str, Any], *, last: int, watermark: int
) -> tuple[dict[str, Any], list[Any]]:
    evaluation = engine.evaluate(
        states,
        entity_id="ix-1",
        domain="traffic",
        buckets={},
        watermark_ms=watermark,
        lateness_ms=LATENESS_MS,
        registered=SENSOR,
        last_event_ms=last,
    )
    return evaluation.states, evaluation.transitions


# -- stuck ------------------------------------------------------------------------------


def _minute(speeds: list[float], vehicles: list[float]) -> dict[str, list[float]]:
    def aggregate(values: list[float]) -> list[float]:
        return [len(values), sum(values), min(values), max(values), values[-1], 0]

    return {"avg_speed_kmh": aggregate(speeds), "vehicles": aggregate(vehicles)}


def _stuck_run(minutes: Sequence[dict[str, list[float]] | None]) -> list[tuple[str, int]]:
    """Each minute given and made final at once; (state, minute index of its time)."""
    state = None
    out: list[tuple[str, int]] = []
    for i, metrics in enumerate(minutes):
        minute = T0_MS + i * MINUTE
        buckets = {} if metrics is None else {str(minute): metrics}
        state, found = stuck_evaluate(
            STUCK, state, entity_id="ix-1", registered=SENSOR, buckets=buckets, last_final_ms=minute
        )
        out += [(t.state, int(t.updated_at.timestamp() * 1000 - T0_MS) // MINUTE) for t in found]
    return out


def test_ten_unchanged_minutes_open_a_stuck_alert_and_the_first_change_resolves_it() -> None:
    moving = [_minute([40.0 + i, 41.5], [3, 4]) for i in range(3)]
    frozen = [_minute([41.5] * 6, [4] * 6) for _ in range(12)]
    # Minutes 3..14 repeat minute 2's last readings: the 10th of them (minute 12) opens.
    assert _stuck_run([*moving, *frozen]) == [("open", 13)]
    thawed = [*moving, *frozen, _minute([41.5, 38.0], [4, 6])]
    assert _stuck_run(thawed) == [("open", 13), ("resolve", 16)]


def test_a_value_that_varies_inside_its_minutes_or_between_them_is_not_stuck() -> None:
    # The same readings inside each minute, but another value every minute.
    stepping = [_minute([30.0 + i] * 6, [5] * 6) for i in range(20)]
    assert _stuck_run(stepping) == []
    # A road empty all night: vehicles stay at 0, the speed still varies.
    night = [_minute([50.0 + (i % 3), 50.0], [0] * 6) for i in range(30)]
    assert _stuck_run(night) == []


def test_quiet_minutes_neither_continue_nor_break_a_stuck_run() -> None:
    frozen = _minute([20.0] * 6, [2] * 6)
    minutes: list[dict[str, list[float]] | None] = [frozen]
    for _ in range(10):
        minutes += [frozen, None]
    # 10 unchanged minutes with data, each followed by a minute without any.
    assert _stuck_run(minutes) == [("open", 20)]


# -- the simulated city -----------------------------------------------------------------

START = datetime(2024, 9, 9, 1, 0, tzinfo=UTC)  # 08:00 in Quang Ninh, a Monday


def registry_of(city: City) -> Registry:
    return Registry(
        (e.id, Registered(e.domain, e.kind, e.commune, e.zone, REPORT_INTERVAL_S[e.kind]))
        for e in city.entities
    )


def run_city(
    faults: Faults, *, hours: float, entities: int = 300
) -> tuple[list[dict[str, Any]], City]:
    """The simulated city through an entity store with the shipped health rules: every
    alert transition, in order."""
    simulation = Simulation(
        SimConfig(start=START, entities=entities, seed=4, duration_s=hours * 3600, faults=faults)
    )
    rules = [r for r in SHIPPED.values() if isinstance(r, SilentRule | StuckRule)]
    store = EntityStore(
        rules=RuleEngine(rules), lateness_ms=LATENESS_MS, registry=registry_of(simulation.city)
    )
    offsets: dict[str, int] = defaultdict(int)
    out: list[dict[str, Any]] = []
    for batch in simulation.batches():
        if batch.mark or not batch.keys:
            continue
        first = offsets[batch.domain]
        records = [
            ConsumerRecord(batch.domain, 0, first + n, 0, 0, key, value, None, 0, 0, [])
            for n, (key, value) in enumerate(zip(batch.keys, batch.values, strict=True))
        ]
        offsets[batch.domain] += len(records)
        applied = store.apply(records, domain=batch.domain, partition=0)
        assert not applied.deadletters
        swept = store.sweep()
        out += [orjson.loads(value)["data"] for _, _, value in (*applied.alerts, *swept.alerts)]
    return out, simulation.city


def test_the_city_without_faults_raises_no_health_alert() -> None:
    transitions, _ = run_city(Faults(), hours=2)
    assert transitions == []


def test_gaps_and_stuck_sensors_are_reported_and_only_they() -> None:
    faults = Faults(stuck=0.05, gaps=0.05)
    transitions, city = run_city(faults, hours=2)
    start_s = int(START.timestamp())

    def faulted(kind: str, entity: str, at: str) -> bool:
        t_s = int(datetime.fromisoformat(at).timestamp())  # the faults' clock: epoch seconds
        check = faults.silent_at if kind == "silent" else faults.stuck_at
        # The episode that holds the moment the alert opened, or one just before.
        return any(check(entity.encode(), max(start_s, t_s - back)) for back in (0, 300, 600))

    opened = [t for t in transitions if t["state"] == "open"]
    by_rule = defaultdict(set)
    for t in opened:
        kind = "silent" if t["rule_id"].endswith("silent") else "stuck"
        assert faulted(kind, t["entity_id"], t["opened_at"]), t
        by_rule[t["rule_id"]].add(t["entity_id"])
    # Every traffic sensor silent or stuck for a whole episode inside the run is caught.
    sensors = [e for e in city.entities if e.domain == "traffic"]
    # Whole gap episodes after the first, with time left to judge them.
    episodes = range(start_s + 600, start_s + 2 * 3600 - 1800, 600)
    gapped = {e.id for e in sensors if any(faults.silent_at(e.id.encode(), t) for t in episodes)}
    # Stuck for the whole second episode (08:30-09:00 local).
    stuck = {e.id for e in sensors if faults.stuck_at(e.id.encode(), start_s + 1800)}
    assert gapped
    assert stuck
    assert gapped <= by_rule["traffic-sensor-silent"]
    assert stuck <= by_rule["traffic-sensor-stuck"]
    # A silence resolves when its sensor reports again (a gap lasts one 10-minute episode).
    resolved = {t["alert_id"] for t in transitions if t["state"] == "resolve"}
    end = START + timedelta(hours=2)
    for t in opened:
        if t["rule_id"].endswith("silent") and datetime.fromisoformat(
            t["opened_at"]
        ) < end - timedelta(minutes=25):
            assert t["alert_id"] in resolved, t


def test_an_entity_registered_after_it_went_quiet_is_found_silent() -> None:
    """The registry may be read after an entity's last event (the database was down when
    the worker started): its silence is judged once the entry comes."""
    store = EntityStore(rules=RuleEngine([SILENT]), lateness_ms=LATENESS_MS)

    def record(entity: str, minutes: float, offset: int) -> ConsumerRecord:
        at = T0 + timedelta(minutes=minutes)
        value = flow_value(entity, at, event_id=f"{entity}-{offset}")
        return ConsumerRecord("t", 0, offset, 0, 0, entity.encode(), value, None, 0, 0, [])

    store.apply([record("ix-quiet", 0, 0)], domain="traffic", partition=0)
    # Another sensor of the partition reports every minute, past ix-quiet's deadline.
    busy = [record("ix-busy", minute, minute) for minute in range(1, 21)]
    store.apply(busy, domain="traffic", partition=0)
    assert store.sweep().alerts == []  # unknown to the registry: not judged
    store.register([("ix-quiet", SENSOR)])
    [opened] = [orjson.loads(v)["data"] for _, _, v in store.sweep().alerts]
    assert (opened["entity_id"], opened["state"]) == ("ix-quiet", "open")


def test_a_partition_that_was_not_observed_makes_nobody_silent() -> None:
    """The whole partition quiet for an hour (the platform down): when it comes back, its
    sensors' silences count from then, not from their last event an hour ago."""
    registry = Registry([("ix-a", SENSOR), ("ix-b", SENSOR)])
    store = EntityStore(rules=RuleEngine([SILENT]), lateness_ms=LATENESS_MS, registry=registry)
    offset = 0

    def send(entity: str, minutes: float) -> list[dict[str, Any]]:
        nonlocal offset
        at = T0 + timedelta(minutes=minutes)
        value = flow_value(entity, at, event_id=f"{entity}-{offset}")
        record = ConsumerRecord("t", 0, offset, 0, 0, entity.encode(), value, None, 0, 0, [])
        offset += 1
        batch = store.apply([record], domain="traffic", partition=0)
        swept = store.sweep()
        return [orjson.loads(v)["data"] for _, _, v in (*batch.alerts, *swept.alerts)]

    assert send("ix-a", 0) + send("ix-b", 0) == []
    # An hour later the partition comes back: ix-a reports, ix-b not yet.
    assert send("ix-a", 60) == []
    assert send("ix-b", 60.5) == []  # no silence over the hour nobody observed
    # ix-a goes on; ix-b stops: its silence counts from its report at 60.5 minutes.
    found = [t for m in range(61, 70) for t in send("ix-a", m)]
    assert [(t["entity_id"], t["state"]) for t in found] == [("ix-b", "open")]
    assert found[0]["since"].startswith("2024-09-07T09:00:30")
