"""Area tiles on the live feeds: aggregation over the registry, incremental updates,
throttling, filters, snapshots and resume (``api.live.areas`` through the hub)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from api.live.areas import AreaTiles, Place, Registry, readings_of
from api.live.filters import LiveFilter, parse_filter
from api.live.hub import Baseline, Hub
from api.live.messages import EventId
from api.live.outbox import Outbox
from api.live.schema import AreaMessage
from api.live.snapshot import snapshot_bodies
from tests.utils.incidents import alert_ids, incident_record
from tests.utils.incidents import transition as incident_transition
from tests.utils.live import (
    T0_MS,
    area_state_record,
    flow_state,
    hospital_state,
    incident_action,
    transition,
)

pytestmark = pytest.mark.timeout(10)

FLOW, INCIDENT = "city.traffic.flow.v1", "city.traffic.incident.v1"
STATUS, ADMISSION = "city.hospital.status.v1", "city.hospital.admission.v1"
#: Province p, zone z1 with communes c1 and c2, and zone z2 with commune c3.
PLACES = [
    Place("p", "province", "Province", "Tỉnh", None),
    Place("z1", "zone", "Zone 1", "Vùng 1", "p"),
    Place("z2", "zone", "Zone 2", "Vùng 2", "p"),
    Place("c1", "commune", "Commune 1", "Xã 1", "z1"),
    Place("c2", "commune", "Commune 2", "Xã 2", "z1"),
    Place("c3", "commune", "Commune 3", "Xã 3", "z2"),
]
ZONE = {"c1": "z1", "c2": "z1", "c3": "z2"}
ENTITIES = {"t1": "c1", "t2": "c1", "t3": "c2", "t4": "c3", "h1": "c1", "h2": "c2"}


def registry(entities: dict[str, str] = ENTITIES) -> Registry:
    rows = []
    for entity, commune in entities.items():
        domain = "hospital" if entity.startswith("h") else "traffic"
        rows += [(commune, entity, domain), (ZONE[commune], entity, domain), ("p", entity, domain)]
    return Registry.of(PLACES, rows)


def new_hub(interval_s: float = 2.0, replay: int = 1000) -> Hub:
    h = Hub(
        replay_messages=replay,
        max_entities=100,
        max_alerts=100,
        epoch="ep",
        area_interval_s=interval_s,
    )
    h.load_areas(registry())
    return h


def flow(h: Hub, entity: str, vehicles: int, speed: float, *, at: int = 0) -> None:
    record = area_state_record(
        entity,
        domain="traffic",
        event_type=FLOW,
        state=flow_state(vehicles, speed),
        time_ms=T0_MS + at * 1000,
    )
    h.publish_state(record)


def status(h: Hub, entity: str, waiting: int, occupied: int, *, at: int = 0) -> None:
    state = hospital_state(waiting=waiting, occupied=occupied)
    h.publish_state(
        area_state_record(
            entity, domain="hospital", event_type=STATUS, state=state, time_ms=T0_MS + at * 1000
        )
    )


def tiles(h: Hub, now: float) -> dict[str, dict[str, Any]]:
    """The area messages sent at ``now``, by area (their payloads, checked as encoded)."""
    out = {}
    for message in h.publish_areas(now):
        body = orjson.loads(message.body)
        AreaMessage.model_validate(body)  # what the AsyncAPI document says it is
        assert body["type"] == "area"
        assert body["id"] == f"ep-{message.seq}"
        out[body["area"]["area_id"]] = body["area"]
    return out


def metric(tile: dict[str, Any], domain: str, name: str) -> tuple[float, str, int]:
    m = tile["domains"][domain]["metrics"][name]
    return m["value"], m["reading"], m["entities"]


def test_each_area_reads_its_entities_latest_readings_as_the_area_series_do() -> None:
    h = new_hub()
    latest = {"t1": (10, 40.0), "t2": (30, 20.0), "t3": (5, 60.0), "t4": (7, 30.0)}
    flow(h, "t1", 99, 10.0)  # replaced by its next reading
    for n, (entity, (vehicles, speed)) in enumerate(latest.items()):
        flow(h, entity, vehicles, speed, at=n + 1)
    # Not in the registry: in the province only (as unplaced), in no zone or commune.
    flow(h, "stranger", 1000, 1.0, at=9)
    latest["stranger"] = (1000, 1.0)
    status(h, "h1", waiting=4, occupied=80)
    status(h, "h2", waiting=6, occupied=40, at=2)
    sent = tiles(h, 0.0)
    assert list(sent) == ["p", "z1", "z2", "c1", "c2", "c3"]  # province first

    def expect(area: str, members: list[str]) -> None:
        tile = sent[area]
        vehicles = sum(latest[e][0] for e in members)
        speed = sum(latest[e][1] for e in members) / len(members)
        assert metric(tile, "traffic", "vehicles") == (vehicles, "sum", len(members))
        value, reading, entities = metric(tile, "traffic", "avg_speed_kmh")
        assert value == pytest.approx(speed)
        assert (reading, entities) == ("mean", len(members))
        counts = tile["domains"]["traffic"]
        assert (counts["entities"], counts["reporting"]) == (len(members), len(members))
        assert counts["unplaced"] == members.count("stranger")

    expect("c1", ["t1", "t2"])
    expect("c2", ["t3"])
    expect("z1", ["t1", "t2", "t3"])
    expect("c3", ["t4"])
    expect("p", ["t1", "t2", "t3", "t4", "stranger"])
    # Gauges add up each hospital's last value; occupancy is the mean of the readings.
    assert metric(sent["z1"], "hospital", "er_waiting") == (10, "last_sum", 2)
    assert metric(sent["z1"], "hospital", "bed_occupancy_pct") == (60.0, "mean", 2)
    assert sent["z2"]["domains"]["hospital"] == {
        "entities": 0,
        "reporting": 0,
        "unplaced": 0,
        "alerts_open": {"info": 0, "warning": 0, "critical": 0},
        "metrics": {},
    }
    assert sent["c1"]["at"] == "2024-09-07T08:00:02Z"  # t2's reading, the newest in c1
    assert sent["p"]["at"] == "2024-09-07T08:00:09Z"  # the stranger's, the newest of all
    assert (sent["c1"]["kind"], sent["c1"]["name"], sent["c1"]["name_vi"]) == (
        "commune",
        "Commune 1",
        "Xã 1",
    )


def test_registered_entities_that_never_reported_count_as_registered_only() -> None:
    h = new_hub()
    flow(h, "t1", 10, 40.0)
    tile = tiles(h, 0.0)["c1"]
    counts = tile["domains"]["traffic"]
    assert (counts["entities"], counts["reporting"]) == (2, 1)
    assert metric(tile, "traffic", "vehicles") == (10, "sum", 1)


def test_an_update_changes_only_its_commune_zone_and_province() -> None:
    h = new_hub(interval_s=1.0)
    for entity in ("t1", "t3", "t4"):
        flow(h, entity, 10, 40.0)
    assert len(tiles(h, 0.0)) == 6
    flow(h, "t3", 11, 40.0, at=5)
    assert set(tiles(h, 5.0)) == {"c2", "z1", "p"}
    assert tiles(h, 10.0) == {}  # nothing changed since


def test_an_area_is_sent_at_most_once_per_interval_and_only_when_it_changed() -> None:
    h = new_hub(interval_s=2.0)
    flow(h, "t4", 10, 40.0)
    assert "c3" in tiles(h, 100.0)
    flow(h, "t4", 12, 40.0, at=1)
    assert tiles(h, 100.5) == {}  # too soon: it waits
    flow(h, "t4", 14, 40.0, at=2)
    sent = tiles(h, 102.0)  # the latest of the two changes, once
    assert set(sent) == {"c3", "z2", "p"}
    assert metric(sent["c3"], "traffic", "vehicles")[0] == 14
    # A change and its undoing between two sends: the tile is what was sent, nothing goes;
    # an older reading than the one counted (a database row read late) changes nothing.
    h.publish_alert(transition("t4"))
    h.publish_alert(transition("t4", state="resolve", minute=8))
    flow(h, "t4", 99, 40.0, at=1)
    assert tiles(h, 104.0) == {}
    flow(h, "t4", 15, 40.0, at=3)
    assert metric(tiles(h, 104.0)["c3"], "traffic", "vehicles")[0] == 15


def test_a_happening_counts_while_it_is_the_entitys_latest_event() -> None:
    h = new_hub()
    status(h, "h1", waiting=4, occupied=80)
    admission = area_state_record(
        "h1", domain="hospital", event_type=ADMISSION, state={"triage": 1}, time_ms=T0_MS + 1000
    )
    h.publish_state(admission)
    tile = h.areas.tile("c1")
    # The hospital's gauges hold until its next status; the admission counts meanwhile.
    assert metric(tile, "hospital", "er_waiting") == (4, "last_sum", 1)
    assert metric(tile, "hospital", "admissions") == (1, "sum", 1)
    assert metric(tile, "hospital", "admissions_urgent") == (1, "sum", 1)
    status(h, "h1", waiting=2, occupied=80, at=2)
    tile = h.areas.tile("c1")
    assert "admissions" not in tile["domains"]["hospital"]["metrics"]
    assert metric(tile, "hospital", "er_waiting") == (2, "last_sum", 1)


def test_readings_come_from_the_payload_model_and_bad_states_read_nothing() -> None:
    assert readings_of(FLOW, flow_state(3, 20.0)) == (
        {"vehicles": 3, "avg_speed_kmh": 20.0, "occupancy_pct": 20.0},
        False,
    )
    assert readings_of(INCIDENT, {"kind": "crash", "severity": 2, "lanes_blocked": 1})[1]
    assert readings_of(FLOW, {"vehicles": "many"}) == ({}, False)
    assert readings_of("city.unknown.v1", {}) == ({}, False)
    assert readings_of(None, {}) == ({}, False)


def test_open_alerts_count_by_severity_until_resolved() -> None:
    h = new_hub()
    h.publish_alert(transition("t1", severity="warning"))
    h.publish_alert(transition("t3", severity="critical", rule="other"))
    h.publish_alert(transition("h1", domain="hospital", severity="info", rule="er"))
    # An entity the registry places nowhere: its alert counts in the province only.
    h.publish_alert(transition("stranger", severity="critical"))
    z1 = h.areas.tile("z1")["domains"]
    assert z1["traffic"]["alerts_open"] == {"info": 0, "warning": 1, "critical": 1}
    assert z1["hospital"]["alerts_open"] == {"info": 1, "warning": 0, "critical": 0}
    assert h.areas.tile("c2")["domains"]["traffic"]["alerts_open"]["warning"] == 0
    ack = {**transition("t1", state="acknowledge", minute=5), "by": "duty-1"}
    h.publish_alert(ack)  # still open
    escalated = transition("t1", state="update", severity="critical", minute=6)
    h.publish_alert(escalated)
    assert h.areas.tile("c1")["domains"]["traffic"]["alerts_open"] == {
        "info": 0,
        "warning": 0,
        "critical": 1,
    }
    h.publish_alert(transition("t1", state="resolve", minute=9))
    h.publish_alert(transition("t3", state="retract", rule="other", minute=9))
    assert h.areas.tile("p")["domains"]["traffic"]["alerts_open"] == {
        "info": 0,
        "warning": 0,
        "critical": 1,  # the stranger's
    }
    h.publish_alert(transition("stranger", state="resolve", minute=9))
    assert h.areas.tile("p")["domains"]["traffic"]["alerts_open"] == dict.fromkeys(
        ("info", "warning", "critical"), 0
    )


def test_an_entity_the_registry_places_nowhere_counts_in_the_province_only() -> None:
    """An integrator's camera not yet registered: its readings, its reporting and its open
    alerts are the province's (as ``unplaced``), no zone's or commune's; once the registry
    places it, it counts where it is placed."""
    h = new_hub()
    flow(h, "t1", 10, 40.0)
    flow(h, "stranger", 5, 20.0)
    h.publish_alert(transition("stranger", severity="critical"))
    sent = tiles(h, 0.0)
    province = sent["p"]["domains"]["traffic"]
    # t1-t4 registered, one of them reporting, and the stranger.
    assert (province["entities"], province["reporting"], province["unplaced"]) == (5, 2, 1)
    assert metric(sent["p"], "traffic", "vehicles") == (15, "sum", 2)
    assert metric(sent["p"], "traffic", "avg_speed_kmh") == (30.0, "mean", 2)
    assert province["alerts_open"]["critical"] == 1
    for area in ("z1", "z2", "c1", "c2", "c3"):
        counts = h.areas.tile(area)["domains"]["traffic"]
        assert counts["unplaced"] == 0, area
        assert counts["alerts_open"]["critical"] == 0, area
    assert metric(h.areas.tile("z1"), "traffic", "vehicles") == (10, "sum", 1)
    # Another reading of it replaces its last, as for any entity.
    flow(h, "stranger", 7, 20.0, at=60)
    assert metric(h.areas.tile("p"), "traffic", "vehicles") == (17, "sum", 2)
    # Registered in c3: no longer unplaced, counted in c3, z2 and the province.
    h.load_areas(registry({**ENTITIES, "stranger": "c3"}))
    province = h.areas.tile("p")["domains"]["traffic"]
    assert (province["entities"], province["reporting"], province["unplaced"]) == (5, 2, 0)
    assert metric(h.areas.tile("c3"), "traffic", "vehicles") == (7, "sum", 1)
    assert h.areas.tile("z2")["domains"]["traffic"]["alerts_open"]["critical"] == 1
    assert metric(h.areas.tile("p"), "traffic", "vehicles") == (17, "sum", 2)


def test_incidents_count_in_their_area_and_every_area_above_until_they_leave_screens() -> None:
    h = new_hub()
    in_c1 = incident_transition(area="c1", alerts=alert_ids(2, seed="x"))
    in_z2 = incident_transition(area="z2", alerts=alert_ids(2, seed="y"), rule_id="storm")
    for t in (in_c1, in_z2):
        h.publish_incident(orjson.loads(incident_record(t).value))
    counts = {a: h.areas.tile(a)["incidents_open"] for a in ("p", "z1", "z2", "c1", "c2", "c3")}
    assert counts == {"p": 2, "z1": 1, "z2": 1, "c1": 1, "c2": 0, "c3": 0}
    h.publish_incident(orjson.loads(incident_action(in_c1, "acknowledge").value))
    assert h.areas.tile("c1")["incidents_open"] == 1  # acknowledged: still on screens
    h.publish_incident(orjson.loads(incident_action(in_c1, "resolve", minute=40).value))
    closed = in_z2.model_copy(update={"state": "close", "updated_at": "2024-09-07T09:00:00Z"})
    h.publish_incident(orjson.loads(incident_record(closed).value))
    assert [h.areas.tile(a)["incidents_open"] for a in ("p", "z1", "c1", "z2")] == [0, 0, 0, 0]


def test_filters_admit_areas_by_kind_and_area_and_narrow_domains() -> None:
    h = new_hub()
    flow(h, "t1", 10, 40.0)
    status(h, "h1", waiting=3, occupied=50)
    clients = {
        "all": h.subscribe(LiveFilter()),
        "areas": h.subscribe(parse_filter(kind=["area"])),
        "entities": h.subscribe(parse_filter(kind=["entity"])),
        "z1": h.subscribe(LiveFilter(areas=frozenset({"z1"}), area_ids=frozenset({"z1", "c1"}))),
        "province": h.subscribe(LiveFilter(areas=frozenset({"p"}), area_ids=frozenset(ENTITIES))),
        "hospital": h.subscribe(parse_filter(domain=["hospital"])),
        "critical": h.subscribe(parse_filter(severity=["critical"])),
        "drill": h.subscribe(parse_filter(entity=["t1"])),
    }
    h.subscribe(LiveFilter(areas=frozenset({"p"}), area_ids=frozenset({"p", "z1", "c1"})))
    h.publish_areas(0.0)

    def areas(name: str) -> list[dict[str, Any]]:
        out, outbox = [], clients[name].outbox
        while (m := outbox.pop()) is not None:
            if m.kind == "area":
                out.append(orjson.loads(m.body)["area"])
        return out

    assert [t["area_id"] for t in areas("all")] == ["p", "z1", "z2", "c1", "c2", "c3"]
    assert len(areas("areas")) == 6
    assert areas("entities") == []
    # The zone and what is inside it; the province only to those who name it.
    assert [t["area_id"] for t in areas("z1")] == ["z1", "c1"]
    hospital = areas("hospital")
    assert len(hospital) == 6
    assert all(list(t["domains"]) == ["hospital"] for t in hospital)
    assert hospital[0]["domains"]["hospital"]["reporting"] == 1
    assert len(areas("critical")) == 6  # tiles have no severity, like entity updates
    assert areas("drill") == []
    with pytest.raises(Exception, match="kind"):
        parse_filter(kind=["areas"])


def test_the_snapshot_carries_the_tiles_last_sent_that_the_filter_admits() -> None:
    h = new_hub()
    flow(h, "t1", 10, 40.0)
    before = h.subscribe(LiveFilter())
    assert before.areas == []  # nothing sent yet: the tiles come as messages
    h.publish_areas(0.0)
    flow(h, "t1", 50, 40.0, at=1)  # changed since, not sent yet: not in the snapshot
    sub = h.subscribe(LiveFilter(domains=frozenset({"traffic"}), area_ids=frozenset({"c1"})))
    assert [t["area_id"] for t in sub.areas] == ["c1"]
    assert list(sub.areas[0]["domains"]) == ["traffic"]
    assert metric(sub.areas[0], "traffic", "vehicles")[0] == 10
    bodies = [orjson.loads(b) for b, _ in snapshot_bodies(sub, [], [], chunk=1, areas=sub.areas)]
    assert bodies[0]["areas"] == sub.areas
    (sent,) = [orjson.loads(m.body)["area"] for m in h.publish_areas(5.0) if m.area_id == "c1"]
    assert metric(sent, "traffic", "vehicles")[0] == 50


def test_resume_replays_area_messages_narrowed_like_live_ones() -> None:
    h = new_hub()
    flow(h, "t1", 10, 40.0)
    status(h, "h1", waiting=3, occupied=50)
    h.publish_areas(0.0)
    sub = h.subscribe(parse_filter(domain=["traffic"], kind=["area"]), since=EventId("ep", 1))
    assert sub.snapshot_reason is None
    got = []
    while (m := sub.outbox.pop()) is not None:
        got.append(orjson.loads(m.body))
    assert [g["area"]["area_id"] for g in got] == ["p", "z1", "z2", "c1", "c2", "c3"]
    assert all(list(g["area"]["domains"]) == ["traffic"] for g in got)
    assert [g["id"] for g in got] == [f"ep-{n}" for n in range(3, 9)]


def test_a_waiting_tile_is_replaced_by_the_areas_newer_one() -> None:
    h = new_hub(interval_s=1.0)
    outbox = Outbox(max_entities=10, max_alerts=10)
    flow(h, "t4", 1, 40.0)
    for m in h.publish_areas(0.0):
        outbox.offer(m)
    flow(h, "t4", 2, 40.0, at=1)
    for m in h.publish_areas(1.0):
        outbox.offer(m)
    waiting = []
    while (item := outbox.pop()) is not None:
        waiting.append(item)
    assert [m.area_id for m in waiting] == ["z1", "c1", "c2", "p", "z2", "c3"]  # in id order
    assert [metric(m.payload, "traffic", "vehicles")[0] for m in waiting[3:]] == [2, 2, 2]
    assert outbox.merged == 3


def test_a_new_registry_moves_the_counts_and_the_baseline_yields_to_the_hub() -> None:
    h = Hub(replay_messages=10, max_entities=10, max_alerts=10, epoch="ep")
    flow(h, "t1", 10, 40.0, at=5)
    h.publish_alert(transition("t1", state="resolve", minute=9))  # the hub saw it resolved
    # Read from the database: an older state of t1, t3's state, and two open alerts.
    old_t1 = {
        "entity_id": "t1",
        "domain": "traffic",
        "event_type": FLOW,
        "event_time": "2024-09-07T08:00:00Z",
        "state": flow_state(99, 1.0),
    }
    t3 = {**old_t1, "entity_id": "t3", "state": flow_state(7, 30.0)}
    alerts = [transition("t1"), transition("t3", severity="critical", rule="x")]
    h.load_areas(registry(), Baseline([old_t1, t3], alerts, []))
    z1 = h.areas.tile("z1")["domains"]["traffic"]
    assert metric(h.areas.tile("z1"), "traffic", "vehicles") == (17, "sum", 2)
    assert z1["alerts_open"] == {"info": 0, "warning": 0, "critical": 1}
    moved = registry({**ENTITIES, "t1": "c3"})
    h.load_areas(moved)
    assert metric(h.areas.tile("c3"), "traffic", "vehicles") == (10, "sum", 1)
    assert metric(h.areas.tile("z1"), "traffic", "vehicles") == (7, "sum", 1)
    assert h.areas.tile("z1")["domains"]["traffic"]["entities"] == 2


def test_many_updates_leave_the_same_tile_as_counting_from_scratch() -> None:
    h = new_hub()
    for n in range(2000):
        entity = f"t{1 + n % 4}"
        flow(h, entity, n % 97, 10.0 + (n * 7.3) % 60, at=n)
    fresh = AreaTiles(interval_s=2.0)
    fresh.rebuild(registry())
    for m in h._entities.values():
        fresh.entity(m.payload)
    for area in ("p", "z1", "c1", "c2", "c3"):
        assert h.areas.tile(area) == fresh.tile(area)
