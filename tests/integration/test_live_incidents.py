"""Incidents on the live feeds: CloudEvents produced to the namespace's ``ioc.incidents``
(the incident tier's transitions and operators' actions) reach WebSocket and SSE clients
as messages of kind ``incident``, filtered like the rest, and a client's snapshot holds
the incidents on screens, the database's with what the hub saw since laid over.

One namespace (a small registry: province p, zone z1, communes c1 and c2) and one API
for the module, no worker: what reaches the database is written by the sink's own code
(``store_transitions``), so the hub knows some incidents the database does not. The last
test has a namespace and an API of its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from ioc.settings import Settings
from streams.incidents.events import IncidentTransition
from streams.kafka import client_options
from streams.topics import ALERTS_TOPIC, INCIDENTS_TOPIC
from tests.utils.apikeys import auth
from tests.utils.events import Record
from tests.utils.eventually import eventually
from tests.utils.incidents import alert_ids, incident_record, store_transitions, transition
from tests.utils.kafka import produce
from tests.utils.live import T0_MS, incident_action
from tests.utils.live import transition as live_transition
from tests.utils.live_clients import Received, SseClient, WsClient, open_sse, open_ws
from tests.utils.live_env import ids_increase, seed_registry, snapshot_of
from tests.utils.namespaces import Namespace, drop_namespace, new_namespace
from tests.utils.services import start_api

pytestmark = pytest.mark.timeout(120)


@dataclass
class Env:
    namespace: Namespace
    base: str

    @property
    def settings(self) -> Settings:
        return self.namespace.settings

    async def publish(self, records: list[Record]) -> None:
        await produce(self.settings, self.settings.topic(INCIDENTS_TOPIC), records)


@pytest.fixture(scope="module")
async def env(infra: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    namespace = await new_namespace(infra, tmp_path_factory)
    await seed_registry(namespace.settings)
    process, base = start_api(namespace)
    try:
        yield Env(namespace, base)
    finally:
        process.stop()
        await drop_namespace(namespace.settings)


def opened(name: str, area: str, *, minute: int = 0, **fields: Any) -> IncidentTransition:
    """The open of an incident of its own (its alerts seeded by ``name``)."""
    return transition(
        area=area,
        alerts=alert_ids(2, seed=name),
        minute=minute,
        opened_minute=minute,
        rule_id=f"rule-{name}",
        sop="flooding",
        **fields,
    )


def later(t: IncidentTransition, state: str, minute: int, **fields: Any) -> IncidentTransition:
    at = f"2024-09-07T08:{minute:02d}:00Z"
    closed = at if state == "close" else None
    return t.model_copy(update={"state": state, "updated_at": at, "closed_at": closed, **fields})


def incidents_of(received: Received, *ids: str) -> list[dict[str, Any]]:
    """The payloads of the incident messages about these incidents, in arrival order."""
    return [m["incident"] for m in received.of("incident") if m["incident"]["incident_id"] in ids]


async def first_snapshot(*clients: WsClient | SseClient) -> None:
    for client in clients:
        await eventually(
            client.received.so_far, until=lambda r: bool(r.messages), within_s=10, what="snapshot"
        )


async def test_transitions_and_operators_actions_reach_ws_and_sse_once(env: Env) -> None:
    ws = await open_ws(env.base)
    sse = await open_sse(env.base)
    try:
        await first_snapshot(ws, sse)
        for client in (ws, sse):
            snapshot = snapshot_of(client.received)
            assert snapshot["incidents"] == []
        a = opened("a", "c1")
        escalated = later(
            a, "update", 2, severity="critical", escalated=True, alerts=alert_ids(3, seed="a")
        )
        ack = incident_action(a, "acknowledge", by="duty-1", minute=3)
        step = incident_action(a, "step", by="duty-2", minute=4, step_id="warn-public")
        # The open again (at-least-once delivery): the same CloudEvent id, not sent again.
        await env.publish(
            [incident_record(a), incident_record(escalated), ack, incident_record(a), step]
        )
        for client in (ws, sse):
            await eventually(
                client.received.so_far,
                until=lambda r: len(incidents_of(r, a.incident_id)) >= 4,
                within_s=15,
                what="four incident messages",
            )
            got = incidents_of(client.received, a.incident_id)
            assert got[:2] == [a.model_dump(), escalated.model_dump()]
            assert got[2] == {
                "incident_id": a.incident_id,
                "area_id": "c1",
                "state": "acknowledge",
                "updated_at": "2024-09-07T08:03:00Z",
                "by": "duty-1",
            }
            assert (got[3]["state"], got[3]["by"], got[3]["step_id"]) == (
                "step",
                "duty-2",
                "warn-public",
            )
            assert len(got) == 4
            assert ids_increase(client.received)
            message = client.received.of("incident")[0]
            assert set(message) == {"id", "type", "incident"}
        assert sse.event_names.count("incident") == 4
    finally:
        await ws.close()
        await sse.close()


async def test_filters_by_kind_area_severity_and_none_to_entity_clients(env: Env) -> None:
    everything = await open_ws(env.base)
    zone = await open_sse(env.base, area="z1")
    other_commune = await open_ws(env.base, area="c2")
    critical = await open_ws(env.base, severity="critical")
    alerts_only = await open_sse(env.base, kind="alert")
    incidents_only = await open_ws(env.base, kind="incident")
    drill_down = await open_ws(env.base, entity="lv-c1-a")
    traffic = await open_ws(env.base, domain="traffic")
    clients: list[WsClient | SseClient] = [everything, zone, other_commune, critical]
    clients += [alerts_only, incidents_only, drill_down, traffic]
    try:
        await first_snapshot(*clients)
        in_commune = opened("b-commune", "c1", minute=5)
        in_zone = opened("b-zone", "z1", minute=6, level="zone", severity="critical")
        ids = (in_commune.incident_id, in_zone.incident_id)
        # An action on an incident this API process never saw: its severity is unknown.
        unseen = opened("b-unseen", "c1", minute=7, severity="info")
        await env.publish(
            [
                incident_record(in_commune),
                incident_record(in_zone),
                incident_action(in_commune, "assign", minute=8, assignee="fire-team"),
                incident_action(unseen, "acknowledge", minute=9),
            ]
        )
        everyone = (*ids, unseen.incident_id)
        await eventually(
            everything.received.so_far,
            until=lambda r: len(incidents_of(r, *everyone)) == 4,
            within_s=15,
            what="the four incident messages",
        )
        await eventually(
            incidents_only.received.so_far,
            until=lambda r: len(incidents_of(r, *everyone)) == 4,
            within_s=5,
            what="the four incident messages",
        )

        def seen(client: WsClient | SseClient) -> list[tuple[str, str]]:
            return [
                (i["incident_id"], i["state"]) for i in incidents_of(client.received, *everyone)
            ]

        # A zone holds its communes' incidents and its own.
        assert seen(zone) == seen(everything)
        assert seen(other_commune) == []
        # The zone's incident is critical; the action on an unknown incident passes.
        assert seen(critical) == [
            (in_zone.incident_id, "open"),
            (unseen.incident_id, "acknowledge"),
        ]
        # Clients of alerts only, of some entities or of a domain get no incidents.
        for client in (alerts_only, drill_down, traffic):
            assert client.received.of("incident") == []
            assert snapshot_of(client.received)["incidents"] == []
    finally:
        for client in clients:
            await client.close()


async def test_snapshot_holds_incidents_on_screens_with_the_hubs_news(env: Env) -> None:
    stored = opened("c-stored", "c2", minute=10)
    acknowledged = opened("c-acked", "c2", minute=11)
    closing = opened("c-closing", "c2", minute=12)
    escalating = opened("c-escalating", "c2", minute=13)
    fresh = opened("c-fresh", "c2", minute=14, severity="critical")
    mine = {t.incident_id for t in (stored, acknowledged, closing, escalating, fresh)}
    # The database: four open incidents as the sink wrote them; an operator acknowledges
    # one through the API (written, then published).
    await store_transitions(env.settings, [stored, acknowledged, closing, escalating])
    async with httpx.AsyncClient(base_url=env.base, headers=auth("view")) as client:
        answer = await client.post(f"/v1/incidents/{acknowledged.incident_id}/acknowledge")
    assert answer.status_code == 200, answer.text
    # The hub's news the sink has not written: a close, an escalation, a new incident.
    escalated = later(
        escalating, "update", 15, severity="critical", alerts=alert_ids(4, seed="c-esc")
    )
    await env.publish(
        [
            incident_record(later(closing, "close", 16)),
            incident_record(escalated),
            incident_record(fresh),
        ]
    )
    # One partition (one area) keeps the order: once a snapshot shows the new incident,
    # the hub had seen the close and the escalation too.

    async def snapshot_incidents() -> list[dict[str, Any]]:
        ws = await open_ws(env.base, area="c2")
        await first_snapshot(ws)
        await ws.close()
        shown: list[dict[str, Any]] = snapshot_of(ws.received)["incidents"]  # type: ignore[assignment]
        return shown

    shown = await eventually(
        snapshot_incidents,
        until=lambda shown: fresh.incident_id in {i["incident_id"] for i in shown},
        within_s=15,
        what="a snapshot to show the incident the hub saw",
    )
    rows = [i for i in shown if i["incident_id"] in mine]
    # Newest opened first; the closed one is off the screens.
    assert [i["incident_id"] for i in rows] == [
        fresh.incident_id,
        escalating.incident_id,
        acknowledged.incident_id,
        stored.incident_id,
    ]
    by_id = {i["incident_id"]: i for i in rows}
    assert (by_id[stored.incident_id]["state"], by_id[stored.incident_id]["alert_count"]) == (
        "open",
        2,
    )
    assert by_id[acknowledged.incident_id]["state"] == "acknowledged"
    assert by_id[acknowledged.incident_id]["acknowledged_by"] == "view"
    assert {
        k: by_id[escalating.incident_id][k] for k in ("severity", "alert_count", "updated_at")
    } == {
        "severity": "critical",
        "alert_count": 4,
        "updated_at": "2024-09-07T08:15:00Z",
    }
    # Known only to the hub: the row the sink will write, field for field.
    assert by_id[fresh.incident_id] == {
        "incident_id": fresh.incident_id,
        "rule_id": "rule-c-fresh",
        "sop": "flooding",
        "area_id": "c2",
        "level": "commune",
        "severity": "critical",
        "state": "open",
        "opened_at": "2024-09-07T08:14:00Z",
        "updated_at": "2024-09-07T08:14:00Z",
        "closed_at": None,
        "title_en": "Incident in c2",
        "title_vi": "Sự cố tại c2",
        "acknowledged_by": None,
        "acknowledged_at": None,
        "assignee": None,
        "assigned_by": None,
        "assigned_at": None,
        "resolved_by": None,
        "resolved_at": None,
        "merged_into": None,
        "alert_count": 2,
    }
    # The same keys as the database's rows (and as GET /v1/incidents' items).
    assert set(by_id[fresh.incident_id]) == set(by_id[stored.incident_id])


async def test_a_namespace_without_the_incidents_topic_keeps_its_feed(
    namespace: Namespace,
) -> None:
    # A sandbox made before the incident tier: no ioc.incidents. The feed's consumer
    # used to wait for every topic it asks for, and aiokafka assigns none while one is
    # missing, so such a namespace got snapshots and nothing after them.
    settings = namespace.settings
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        await admin.delete_topics([settings.topic(INCIDENTS_TOPIC)])
    finally:
        await admin.close()
    process, base = start_api(namespace)
    ws = await open_ws(base)
    try:
        await first_snapshot(ws)
        assert snapshot_of(ws.received)["incidents"] == []
        alert = live_transition("lv-old-sandbox")
        event = {"specversion": "1.0", "id": "old-1", "source": "/ioc/rules", "data": alert}
        await produce(
            settings,
            settings.topic(ALERTS_TOPIC),
            [Record(b"lv-old-sandbox", orjson.dumps(event), T0_MS)],
        )
        await eventually(
            ws.received.so_far, until=lambda r: bool(r.of("alert")), within_s=15, what="alert"
        )
        assert ws.received.of("alert")[0]["alert"] == alert
    finally:
        await ws.close()
        process.stop()
