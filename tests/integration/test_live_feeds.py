"""Live feeds end to end: raw events -> worker -> ioc.state / ioc.alerts -> API hub ->
WebSocket and SSE clients: snapshot then updates, filters, resume, heartbeats. One worker
and one API serve the module; each test uses entities of its own and later event times."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import httpx
import pytest

from api.live.messages import iso_ms
from streams.topics import raw_topic
from tests.utils.apikeys import auth
from tests.utils.eventually import eventually
from tests.utils.kafka import produce
from tests.utils.live_clients import Received, SseClient, WsClient, open_sse, open_ws
from tests.utils.live_env import (
    ENTITIES,
    GOOD,
    HEARTBEAT_S,
    REPLAY,
    Live,
    db_value,
    hospital_record,
    ids_increase,
    live_env,  # noqa: F401 (the "live" fixture)
    minutes_of,
    snapshot_of,
)

pytestmark = pytest.mark.timeout(120)


async def test_snapshot_then_entity_updates_and_alert_transitions_on_ws_and_sse(
    live: Live,
) -> None:
    # Five congested minutes open an alert on lv-jam; lv-calm reports once.
    await live.flow([*minutes_of(live, "lv-jam", "BBBBBGG"), live.flow_record("lv-calm")])
    holds = "SELECT count(*) = 1 FROM {s}.alert WHERE entity_id = 'lv-jam' AND state = 'open'"
    await eventually(lambda: db_value(live.settings, holds), within_s=30, what=holds)
    holds = "SELECT count(*) = 2 FROM {s}.entity_state WHERE entity_id IN ('lv-jam', 'lv-calm')"
    await eventually(lambda: db_value(live.settings, holds), within_s=30, what=holds)
    mine = "lv-jam,lv-calm,lv-new"
    ws = await open_ws(live.base, entity=mine)
    sse = await open_sse(live.base, entity=mine)
    try:
        for client in (ws.received, sse.received):
            await eventually(
                client.so_far, until=lambda r: bool(r.messages), within_s=10, what="a snapshot"
            )
            snapshot = snapshot_of(client)
            assert snapshot["reason"] == "initial"
            entities = {e["entity_id"]: e for e in snapshot["entities"]}  # type: ignore[attr-defined]
            assert sorted(entities) == ["lv-calm", "lv-jam"]
            assert entities["lv-jam"]["domain"] == "traffic"
            assert entities["lv-jam"]["state"]["avg_speed_kmh"] == GOOD["avg_speed_kmh"]
            alert: dict[str, Any] = snapshot["alerts"][0]  # type: ignore[index]
            assert len(snapshot["alerts"]) == 1  # type: ignore[arg-type]
            assert (alert["entity_id"], alert["rule_id"], alert["state"]) == (
                "lv-jam",
                "traffic-congestion",
                "open",
            )
            assert entities["lv-jam"]["alerts"] == [
                {"rule_id": "traffic-congestion", "alert_id": alert["alert_id"]}
            ]
        assert sse.status == 200
        assert sse.event_names[0] == "snapshot"

        # Good minutes resolve the alert; a new entity appears.
        good = minutes_of(live, "lv-jam", "GGGGGG")
        newcomer = live.flow_record("lv-new")
        await live.flow([*good, newcomer])
        last_jam = good[-1].time_ms
        for client in (ws.received, sse.received):

            def done(r: Received) -> bool:
                resolved = any(a["alert"]["state"] == "resolve" for a in r.of("alert"))
                jam = [m["entity"] for m in r.of("entity") if m["entity"]["entity_id"] == "lv-jam"]
                latest = bool(jam) and jam[-1]["event_time"] == iso_ms(last_jam)
                return resolved and latest and "lv-new" in r.entity_ids()

            await eventually(
                client.so_far, until=done, within_s=30, what="updates after the snapshot"
            )
            assert ids_increase(client)
            jam = [m["entity"] for m in client.of("entity") if m["entity"]["entity_id"] == "lv-jam"]
            assert jam[-1]["alerts"] == []
            resolve = next(
                a["alert"] for a in client.of("alert") if a["alert"]["state"] == "resolve"
            )
            assert resolve["alert_id"] == alert["alert_id"]
        assert "alert" in sse.event_names
        assert "entity" in sse.event_names
    finally:
        await ws.close()
        await sse.close()


def holding(entities: set[str]) -> Callable[[Received], bool]:
    """Whether a client has received updates of all of ``entities``."""
    return lambda received: entities <= set(received.entity_ids())


async def test_filters_by_domain_area_entity_and_severity(live: Live) -> None:
    everything = ",".join(e for e, _, _ in ENTITIES)
    reference = await open_ws(live.base, entity=everything)
    hospitals = await open_ws(live.base, domain="hospital")
    commune = await open_sse(live.base, area="c1")
    zone_traffic = await open_ws(live.base, area="z1", domain="traffic")
    one = await open_sse(live.base, entity="lv-c2-b")
    critical_alerts = await open_ws(live.base, kind="alert", severity="critical")
    clients: list[WsClient | SseClient] = [
        reference,
        hospitals,
        commune,
        zone_traffic,
        one,
        critical_alerts,
    ]
    try:
        for c in clients:
            await eventually(
                c.received.so_far, until=lambda r: bool(r.messages), within_s=10, what="snapshot"
            )
        await live.flow([live.flow_record("lv-c1-a"), live.flow_record("lv-c2-b")])
        await produce(
            live.settings, raw_topic(live.settings, "hospital"), [hospital_record(live, "lv-h-c1")]
        )
        await eventually(
            reference.received.so_far,
            until=lambda r: len(set(r.entity_ids())) == 3,
            within_s=20,
            what="all three entities",
        )
        # The hub offered each update to every client at once: each client has its own.
        for client, own in (
            (hospitals, {"lv-h-c1"}),
            (commune, {"lv-c1-a", "lv-h-c1"}),
            (zone_traffic, {"lv-c1-a", "lv-c2-b"}),
            (one, {"lv-c2-b"}),
        ):
            await eventually(
                client.received.so_far,
                until=holding(own),
                within_s=10,
                what=f"the updates of {sorted(own)}",
            )
        assert set(hospitals.received.entity_ids()) == {"lv-h-c1"}
        assert set(commune.received.entity_ids()) == {"lv-c1-a", "lv-h-c1"}
        assert set(zone_traffic.received.entity_ids()) == {"lv-c1-a", "lv-c2-b"}
        assert set(one.received.entity_ids()) == {"lv-c2-b"}
        # Only alerts were asked for, and none is critical: the snapshot and nothing else.
        assert [m["type"] for m in critical_alerts.received.messages] == ["snapshot"]
        assert snapshot_of(critical_alerts.received)["entities"] == []
        # An area's snapshot holds only its entities, domain filter included.
        assert all(
            e["domain"] == "hospital"
            for e in snapshot_of(hospitals.received)["entities"]  # type: ignore[attr-defined]
        )
    finally:
        for c in clients:
            await c.close()


async def test_resume_from_the_last_event_id_on_ws_and_sse(live: Live) -> None:
    mine = "lv-r1,lv-r2"
    reference = await open_ws(live.base, entity=mine)
    first = await open_ws(live.base, entity=mine)
    try:
        await live.flow([live.flow_record("lv-r1")])
        await eventually(
            first.received.so_far, until=lambda r: "lv-r1" in r.entity_ids(), within_s=20, what="r1"
        )
        last_seen = first.received.last_id()
        await first.close()

        # Missed while away: two updates of r1 (merged to the latest) and one of r2.
        missed = [live.flow_record("lv-r1"), live.flow_record("lv-r1", vehicles=77)]
        await live.flow([*missed, live.flow_record("lv-r2")])
        await eventually(
            reference.received.so_far,
            until=lambda r: r.entity_ids().count("lv-r1") >= 2 and "lv-r2" in r.entity_ids(),
            within_s=20,
            what="the missed updates",
        )
        ws = await open_ws(live.base, entity=mine, since=last_seen)
        sse = await open_sse(live.base, entity=mine, last_event_id=last_seen)
        try:
            for client in (ws.received, sse.received):
                await eventually(
                    client.so_far,
                    until=lambda r: {"lv-r1", "lv-r2"} <= set(r.entity_ids()),
                    within_s=10,
                    what="the replay",
                )
                assert client.messages[0] == {"type": "resumed", "since": last_seen}
                assert not client.of("snapshot")
                r1 = [
                    m["entity"] for m in client.of("entity") if m["entity"]["entity_id"] == "lv-r1"
                ]
                assert r1[-1]["state"]["vehicles"] == 77
                assert all(
                    int(m["id"].split("-")[-1]) > int(last_seen.split("-")[-1])
                    for m in client.of("entity")
                )
        finally:
            await ws.close()
            await sse.close()

        # An id of another API process, and one older than the replay buffer: snapshots.
        unknown = await open_ws(live.base, entity=mine, since="1-1")
        await live.flow([live.flow_record(f"lv-bulk-{n}") for n in range(REPLAY + 50)])

        async def first_message() -> dict[str, Any]:
            probe = await open_ws(live.base, entity="lv-none", since=last_seen)
            try:
                await eventually(
                    probe.received.so_far,
                    until=lambda r: bool(r.messages),
                    within_s=10,
                    what="start",
                )
                return probe.received.messages[0]
            finally:
                await probe.close()

        too_old: dict[str, Any] | None = await eventually(
            first_message,
            until=lambda first: first["type"] == "snapshot",
            within_s=30,
            interval_s=0.3,
            what="the replay buffer to move past the old id (a snapshot, not a resume)",
        )
        assert too_old is not None, "the replay buffer never moved past the old id"
        assert too_old["reason"] == "too-old"
        await eventually(
            unknown.received.so_far, until=lambda r: bool(r.messages), within_s=10, what="start"
        )
        assert snapshot_of(unknown.received)["reason"] == "unknown-id"
        await unknown.close()
    finally:
        await reference.close()
        await first.close()


async def test_heartbeats_on_a_quiet_feed(live: Live) -> None:
    ws = await open_ws(live.base, entity="lv-quiet")
    sse = await open_sse(live.base, entity="lv-quiet")
    try:
        for client in (ws.received, sse.received):
            await eventually(
                client.so_far, until=lambda r: r.pings >= 2, within_s=HEARTBEAT_S * 10, what="pings"
            )
        for client in (ws.received, sse.received):
            assert client.pings >= 2
            assert [m["type"] for m in client.messages] == ["snapshot"]
    finally:
        await ws.close()
        await sse.close()


async def test_operator_actions_reach_every_screen_live(live: Live) -> None:
    await live.flow(minutes_of(live, "lv-ack", "BBBBBGG"))
    holds = "SELECT count(*) = 1 FROM {s}.alert WHERE entity_id = 'lv-ack' AND state = 'open'"
    await eventually(lambda: db_value(live.settings, holds), within_s=30, what=holds)
    watching = await open_ws(live.base, entity="lv-ack")
    try:
        await eventually(
            watching.received.so_far,
            until=lambda r: bool(r.messages),
            within_s=10,
            what="a snapshot",
        )
        alert_id = snapshot_of(watching.received)["alerts"][0]["alert_id"]  # type: ignore[index]
        async with httpx.AsyncClient(base_url=live.base, headers=auth("view")) as http:
            assert (await http.post(f"/v1/alerts/{alert_id}/ack")).status_code == 200

            def acknowledged(r: Received) -> bool:
                return any(a["alert"]["state"] == "acknowledge" for a in r.of("alert"))

            await eventually(
                watching.received.so_far, until=acknowledged, within_s=10, what="the ack"
            )
            ack = next(a["alert"] for a in watching.received.of("alert"))
            assert (ack["alert_id"], ack["by"]) == (alert_id, "view")
            # A screen that connects now sees it acknowledged in its snapshot.
            late = await open_ws(live.base, entity="lv-ack")
            try:
                await eventually(
                    late.received.so_far,
                    until=lambda r: bool(r.messages),
                    within_s=10,
                    what="a snapshot",
                )
                (seen,) = cast(list[dict[str, Any]], snapshot_of(late.received)["alerts"])
                assert (seen["state"], seen["acknowledged_by"]) == ("acknowledged", "view")
            finally:
                await late.close()
            assert (await http.post(f"/v1/alerts/{alert_id}/resolve")).status_code == 200

            def resolved(r: Received) -> bool:
                return any(a["alert"]["state"] == "resolve" for a in r.of("alert"))

            await eventually(
                watching.received.so_far, until=resolved, within_s=10, what="the resolve"
            )
    finally:
        await watching.close()
