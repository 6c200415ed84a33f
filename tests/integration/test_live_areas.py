"""Area tiles on the live feeds end to end: raw events -> worker -> ioc.state / ioc.alerts
-> API hub -> WebSocket and SSE clients. The registry (``tests.utils.live_env``) has
province p, zone z1 and its communes c1 (traffic lv-c1-a, hospital lv-h-c1) and c2
(traffic lv-c2-b); each area's tile must equal what the test computes from the events it
sent."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema  # type: ignore[import-untyped]
import orjson
import pytest

from streams.topics import raw_topic
from tests.utils.apikeys import auth
from tests.utils.events import Record
from tests.utils.eventually import eventually
from tests.utils.kafka import produce
from tests.utils.live_clients import Received, SseClient, WsClient, open_sse, open_ws
from tests.utils.live_env import (
    Live,
    db_value,
    hospital_record,
    ids_increase,
    live_env,  # noqa: F401 (the "live" fixture)
    minutes_of,
    snapshot_of,
)

pytestmark = pytest.mark.timeout(180)

#: Where the registry places each entity: its commune, zone and province.
PLACED = {"lv-c1-a": "c1", "lv-c2-b": "c2", "lv-h-c1": "c1"}
HOLDS = {"p": {"c1", "c2"}, "z1": {"c1", "c2"}, "c1": {"c1"}, "c2": {"c2"}}
TRAFFIC_IN = {"p": 2, "z1": 2, "c1": 1, "c2": 1}


def latest_data(records: list[Record]) -> dict[str, dict[str, Any]]:
    """Each entity's data in its latest event, from the CloudEvents sent."""
    latest: dict[str, tuple[int, dict[str, Any]]] = {}
    for record in records:
        event = orjson.loads(record.value)
        if event["subject"] not in latest or record.time_ms >= latest[event["subject"]][0]:
            latest[event["subject"]] = (record.time_ms, event["data"])
    return {entity: data for entity, (_, data) in latest.items()}


def expected_metrics(area: str, latest: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The traffic and hospital metrics of an area, computed from the events' data."""
    inside = [e for e, commune in PLACED.items() if commune in HOLDS[area] and e in latest]
    flows = [latest[e] for e in inside if e.startswith("lv-c")]
    hospitals = [latest[e] for e in inside if e.startswith("lv-h")]

    def reading(values: list[float], how: str) -> dict[str, Any]:
        value = sum(values) / len(values) if how == "mean" else sum(values)
        return {"value": pytest.approx(value), "reading": how, "entities": len(values)}

    out: dict[str, dict[str, Any]] = {"traffic": {}, "hospital": {}}
    if flows:
        out["traffic"] = {
            "vehicles": reading([d["vehicles"] for d in flows], "sum"),
            "avg_speed_kmh": reading([d["avg_speed_kmh"] for d in flows], "mean"),
            "occupancy_pct": reading([d["occupancy_pct"] for d in flows], "mean"),
        }
    if hospitals:
        out["hospital"] = {
            "bed_occupancy_pct": reading(
                [100 * d["beds_occupied"] / d["beds_total"] for d in hospitals], "mean"
            ),
            "icu_occupancy_pct": reading(
                [100 * d["icu_occupied"] / d["icu_total"] for d in hospitals], "mean"
            ),
            "er_waiting": reading([d["er_waiting"] for d in hospitals], "last_sum"),
            "ambulances_available": reading(
                [d["ambulances_available"] for d in hospitals], "last_sum"
            ),
        }
    return out


def current_tiles(received: Received) -> dict[str, dict[str, Any]]:
    """The latest tile of each area a client holds: its snapshot's, then the messages'."""
    tiles: dict[str, dict[str, Any]] = {}
    for message in received.messages:
        if message["type"] == "snapshot":
            tiles.update({t["area_id"]: t for t in message.get("areas", [])})
        elif message["type"] == "area":
            tiles[message["area"]["area_id"]] = message["area"]
    return tiles


def matches(
    tiles: dict[str, dict[str, Any]],
    latest: dict[str, dict[str, Any]],
    *,
    alerts: dict[str, int],
    areas: tuple[str, ...] = ("p", "z1", "c1", "c2"),
) -> bool:
    """Whether the tiles of ``areas`` carry the expected metrics, and the open traffic
    alerts of lv-c1-a (``alerts``) where it is."""
    for area in areas:
        tile = tiles.get(area)
        if tile is None:
            return False
        want = expected_metrics(area, latest)
        for domain, metrics in want.items():
            if domain in tile["domains"] and tile["domains"][domain]["metrics"] != metrics:
                return False
        traffic = tile["domains"].get("traffic")
        want_alerts = alerts if "c1" in HOLDS[area] else dict.fromkeys(alerts, 0)
        if traffic is not None and traffic["alerts_open"] != want_alerts:
            return False
    return True


async def test_area_tiles_equal_the_readings_of_the_events_sent_on_ws_and_sse(
    live: Live,
) -> None:
    everything_ws = await open_ws(live.base, kind="area")
    everything_sse = await open_sse(live.base, kind="area")
    commune = await open_sse(live.base, area="c1")
    zone_traffic = await open_ws(live.base, area="z1", domain="traffic")
    drill_down = await open_ws(live.base, entity="lv-c1-a")
    clients: list[WsClient | SseClient] = [
        everything_ws,
        everything_sse,
        commune,
        zone_traffic,
        drill_down,
    ]
    try:
        for c in clients:
            await eventually(
                c.received.so_far, until=lambda r: bool(r.messages), within_s=10, what="snapshot"
            )
        # The registry was read at start: every area has its tile in the first snapshot.
        first: list[dict[str, Any]] = snapshot_of(everything_ws.received)["areas"]  # type: ignore[assignment]
        assert [t["area_id"] for t in first] == ["p", "z1", "c1", "c2"]
        assert first[0]["kind"] == "province"
        assert first[0]["domains"]["traffic"]["entities"] == 2

        # Five congested minutes open an alert on lv-c1-a; then readings of both communes.
        jam = minutes_of(live, "lv-c1-a", "BBBBBGG")
        readings = [
            live.flow_record("lv-c1-a", vehicles=31, avg_speed_kmh=22.5, occupancy_pct=41.0),
            live.flow_record("lv-c2-b", vehicles=7, avg_speed_kmh=60.0, occupancy_pct=12.0),
            live.flow_record("lv-c1-a", vehicles=17, avg_speed_kmh=35.0, occupancy_pct=33.0),
            live.flow_record("lv-c2-b", vehicles=12, avg_speed_kmh=54.5, occupancy_pct=15.5),
        ]
        await live.flow([*jam, *readings])
        hospital = [hospital_record(live, "lv-h-c1")]
        await produce(live.settings, raw_topic(live.settings, "hospital"), hospital)
        holds = "SELECT count(*) = 1 FROM {s}.alert WHERE entity_id = 'lv-c1-a' AND state = 'open'"
        await eventually(lambda: db_value(live.settings, holds), within_s=30, what=holds)
        latest = latest_data([*jam, *readings, *hospital])
        alert_ws = await open_ws(live.base, kind="alert", entity="lv-c1-a")
        await eventually(
            alert_ws.received.so_far,
            until=lambda r: bool(r.messages) and bool(snapshot_of(r)["alerts"]),
            within_s=10,
            what="the alert in a snapshot",
        )
        severity = snapshot_of(alert_ws.received)["alerts"][0]["severity"]  # type: ignore[index]
        await alert_ws.close()
        alerts = {"info": 0, "warning": 0, "critical": 0, severity: 1}

        for client in (everything_ws, everything_sse):
            await eventually(
                client.received.so_far,
                until=lambda r: matches(current_tiles(r), latest, alerts=alerts),
                within_s=30,
                what="tiles with the readings sent",
            )

            tiles = current_tiles(client.received)
            assert ids_increase(client.received)
            for area in ("p", "z1", "c1", "c2"):
                assert tiles[area]["incidents_open"] == 0
                counts = tiles[area]["domains"]["traffic"]
                assert (counts["entities"], counts["reporting"]) == (TRAFFIC_IN[area],) * 2
            assert tiles["c1"]["at"] is not None
            assert {m["type"] for m in client.received.messages} == {"snapshot", "area"}
        assert "area" in everything_sse.event_names

        # The commune's client gets its commune only; the zone's its zone and communes,
        # narrowed to traffic; the drill-down none.
        await eventually(
            commune.received.so_far,
            until=lambda r: matches(current_tiles(r), latest, alerts=alerts, areas=("c1",)),
            within_s=10,
            what="the commune's tile",
        )
        assert set(current_tiles(commune.received)) == {"c1"}
        await eventually(
            zone_traffic.received.so_far,
            until=lambda r: matches(
                current_tiles(r), latest, alerts=alerts, areas=("z1", "c1", "c2")
            ),
            within_s=10,
            what="the zone's tiles",
        )
        zone_tiles = current_tiles(zone_traffic.received)
        assert set(zone_tiles) == {"z1", "c1", "c2"}
        assert all(list(t["domains"]) == ["traffic"] for t in zone_tiles.values())
        assert not drill_down.received.of("area")
        assert snapshot_of(drill_down.received)["areas"] == []

        # A screen that connects now has the same tiles in its snapshot.
        late = await open_ws(live.base, kind="area")
        try:
            await eventually(
                late.received.so_far, until=lambda r: bool(r.messages), within_s=10, what="start"
            )
            areas: list[dict[str, Any]] = snapshot_of(late.received)["areas"]  # type: ignore[assignment]
            snapshot_tiles = {t["area_id"]: t for t in areas}
            assert matches(snapshot_tiles, latest, alerts=alerts)
        finally:
            await late.close()

        # The tiles are what the AsyncAPI document says an area message is.
        async with httpx.AsyncClient(base_url=live.base, headers=auth("view")) as http:
            document = (await http.get("/v1/asyncapi")).json()
        schema = document["components"]["messages"]["liveArea"]["payload"]["schema"]
        for message in everything_ws.received.of("area"):
            jsonschema.validate(message, schema)
    finally:
        for c in clients:
            await c.close()
