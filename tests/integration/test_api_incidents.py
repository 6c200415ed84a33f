"""The incident routes on incidents that went the tier's way: transitions produced to
``ioc.incidents``, stored by the worker's incident sink, read and acted on over HTTP,
and operators' actions read back from ``ioc.incidents`` as CloudEvents.

One namespace, registry, worker and API for the module; each action test works on
incidents of its own, the list tests on four nobody acts on.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import jsonschema  # type: ignore[import-untyped]
import orjson
import pytest

from city.model import build_city
from ioc.db.registry import load_registry
from ioc.settings import Settings
from streams.incidents.events import OPERATORS_SOURCE, IncidentTransition
from streams.topics import INCIDENTS_TOPIC
from tests.utils.apikeys import auth
from tests.utils.eventually import eventually
from tests.utils.incidents import (
    alert_ids,
    incident_record,
    store_alerts,
    store_transitions,
    transition,
)
from tests.utils.kafka import produce, read_all, records_in
from tests.utils.namespaces import Namespace
from tests.utils.services import start_api, start_worker

ENTITY = "qn-ix-test-001"


def opened(name: str, area: str, minute: int, **fields: Any) -> IncidentTransition:
    """The open of an incident named for the test (its alerts seeded by the name)."""
    return transition(
        area=area,
        alerts=alert_ids(2, seed=name),
        opened_minute=minute,
        minute=minute,
        rule_id=f"rule-{name}",
        **fields,
    )


def later(t: IncidentTransition, state: str, minute: int, **fields: Any) -> IncidentTransition:
    """A later transition of the same incident."""
    return t.model_copy(
        update={
            "state": state,
            "updated_at": f"2024-09-07T{8 + minute // 60:02d}:{minute % 60:02d}:00Z",
            "closed_at": None,
            **fields,
        }
    )


# The list's incidents: opened at minutes 0, 5, 10 and 15.
L1 = opened("l1", "hong-gai", 0)
L2 = opened("l2", "luong-minh", 5, sop="fire")
L3 = opened("l3", "halong", 10, sop="storm", severity="critical", level="zone")
L4 = opened("l4", "bai-chay", 15)
ACK, ASSIGN, STEP, RESOLVE = (opened(n, "ha-long", 20 + i) for i, n in enumerate("aspr"))
MERGE_SRC = opened("merge-src", "ha-long", 30)
MERGE_DST = opened("merge-dst", "ha-long", 31)
MERGE_GONE = opened("merge-gone", "ha-long", 32)
TRANSITIONS = [
    L1,
    later(L1, "update", 3, severity="critical", escalated=True),
    L2,
    L3,
    later(L3, "close", 40, closed_at="2024-09-07T08:40:00Z"),
    L4,
    later(L4, "retract", 16),
    ACK,
    ASSIGN,
    STEP,
    RESOLVE,
    MERGE_SRC,
    MERGE_DST,
    MERGE_GONE,
    later(MERGE_GONE, "retract", 33),
]
LISTED = {t.incident_id for t in (L1, L2, L3, L4)}


@dataclass
class World:
    base: str
    namespace: Namespace

    def get(self, path: str, role: str = "view", **params: Any) -> httpx.Response:
        return httpx.get(self.base + path, params=params, headers=auth(role), timeout=20)

    def post(self, path: str, role: str = "view", **kwargs: Any) -> httpx.Response:
        return httpx.post(self.base + path, headers=auth(role), timeout=20, **kwargs)

    def post_raw(self, path: str, content: bytes) -> httpx.Response:
        headers = {**auth("view"), "Content-Type": "application/json"}
        return httpx.post(self.base + path, headers=headers, content=content, timeout=20)

    def incident(self, t: IncidentTransition) -> dict[str, Any]:
        response = self.get(f"/v1/incidents/{t.incident_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture(scope="module")
async def world(module_namespace: Namespace) -> AsyncIterator[World]:
    settings = module_namespace.settings
    await load_registry(settings, build_city(60, seed=0))
    await store_alerts(settings, alert_ids(2, seed="l1"), entity=ENTITY)
    worker = start_worker(module_namespace)
    process, base = start_api(
        module_namespace, env={"IOC_API__RATE_PER_S": "1000", "IOC_API__RATE_BURST": "1000"}
    )
    w = World(base=base, namespace=module_namespace)
    try:
        await produce(
            settings, settings.topic(INCIDENTS_TOPIC), [incident_record(t) for t in TRANSITIONS]
        )
        await eventually(
            lambda: log_count(settings),
            until=lambda found: found >= len(TRANSITIONS),
            within_s=60,
            what=f"{len(TRANSITIONS)} timeline lines stored",
        )
        yield w
    finally:
        process.stop()
        worker.stop()


async def log_count(settings: Settings) -> int:
    conn = await asyncpg.connect(
        settings.dsn, server_settings={"search_path": f"{settings.db_schema},public"}
    )
    try:
        return int(await conn.fetchval("SELECT count(*) FROM incident_log"))
    finally:
        await conn.close()


def problem_slug(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/problem+json", response.text
    slug: str = response.json()["type"].rsplit("/", 1)[1]
    return slug


async def operator_events(settings: Settings) -> list[dict[str, Any]]:
    """Every operators' CloudEvent on the namespace's ``ioc.incidents``."""
    topic = settings.topic(INCIDENTS_TOPIC)
    records = await read_all(settings, topic, expect=await records_in(settings, topic))
    events = [orjson.loads(r.value) for r in records]
    return [e for e in events if e["source"] == OPERATORS_SOURCE]


def test_list_filters_pages_and_orders_newest_first(world: World) -> None:
    def ids(**params: Any) -> list[str]:
        response = world.get("/v1/incidents", limit=500, **params)
        assert response.status_code == 200, response.text
        return [i["incident_id"] for i in response.json()["items"] if i["incident_id"] in LISTED]

    assert ids() == [L4.incident_id, L3.incident_id, L2.incident_id, L1.incident_id]
    assert ids(state="open") == [L2.incident_id, L1.incident_id]
    assert ids(state="closed") == [L3.incident_id]
    assert ids(state="retracted") == [L4.incident_id]
    assert ids(severity="critical") == [L3.incident_id, L1.incident_id]
    assert ids(sop="fire") == [L2.incident_id]
    # An area holds the incidents of the areas inside it.
    assert ids(area="hong-gai") == [L1.incident_id]
    assert ids(area="halong") == [L4.incident_id, L3.incident_id, L1.incident_id]
    assert ids(area="quang-ninh") == ids()
    assert ids(area="luong-minh", state="open") == [L2.incident_id]

    everything = world.get("/v1/incidents", limit=500).json()["items"]
    assert len(everything) == len({t.incident_id for t in TRANSITIONS})
    page = world.get("/v1/incidents", limit=2).json()
    assert [i["incident_id"] for i in page["items"]] == [i["incident_id"] for i in everything[:2]]
    assert page["next_offset"] == 2
    rest = world.get("/v1/incidents", limit=500, offset=2).json()
    assert rest["next_offset"] is None
    assert page["items"] + rest["items"] == everything

    first = next(i for i in everything if i["incident_id"] == L1.incident_id)
    assert (first["state"], first["severity"], first["alert_count"]) == ("open", "critical", 2)
    assert (first["area_id"], first["sop"], first["level"]) == ("hong-gai", "flooding", "commune")

    problems: list[tuple[dict[str, Any], int, str]] = [
        ({"area": "nowhere"}, 404, "unknown-area"),
        ({"sop": "no-such-sop"}, 404, "unknown-sop"),
        ({"state": "exploded"}, 422, "invalid-request"),
        ({"severity": "dire"}, 422, "invalid-request"),
        ({"limit": 0}, 422, "invalid-request"),
    ]
    for params, status, slug in problems:
        refused = world.get("/v1/incidents", **params)
        assert (refused.status_code, problem_slug(refused)) == (status, slug), params


def test_one_incident_has_its_alerts_timeline_and_checklist(world: World) -> None:
    body = world.incident(L1)
    members = sorted(alert_ids(2, seed="l1"))
    assert sorted(body["alert_ids"]) == members
    assert [a["alert_id"] for a in body["alerts"]] == members  # opened in that order
    assert body["alerts"][0]["entity_id"] == ENTITY
    assert [(e["kind"], e["by"]) for e in body["timeline"]] == [("open", None), ("update", None)]
    assert body["timeline"][1]["detail"] == {
        "severity": "critical",
        "alerts": members,
        "escalated": True,
    }
    checklist = body["checklist"]
    assert (checklist["sop"], checklist["title_en"], checklist["title_vi"]) == (
        "flooding",
        "Flooding",
        "Ngập lụt",
    )
    assert checklist["steps"][0]["id"] == "confirm-extent"
    assert all(s["en"] and s["vi"] and s["checked_by"] is None for s in checklist["steps"])

    # Member alerts the alert sink has not written are listed by id only.
    assert world.incident(L2)["alerts"] == []
    assert len(world.incident(L2)["alert_ids"]) == 2

    missing = world.get(f"/v1/incidents/{uuid.uuid4()}")
    assert (missing.status_code, problem_slug(missing)) == (404, "unknown-incident")
    malformed = world.get("/v1/incidents/not-a-uuid")
    assert (malformed.status_code, problem_slug(malformed)) == (422, "invalid-request")


async def test_acknowledge_is_published_and_holds_through_correlation(world: World) -> None:
    path = f"/v1/incidents/{ACK.incident_id}"
    acked = world.post(f"{path}/acknowledge")
    assert acked.status_code == 200, acked.text
    body = acked.json()
    assert (body["state"], body["acknowledged_by"]) == ("acknowledged", "view")
    entry = body["timeline"][-1]
    assert (entry["kind"], entry["by"], entry["detail"]) == ("acknowledge", "view", {})

    again = world.post(f"{path}/acknowledge", "admin")
    assert (again.status_code, problem_slug(again)) == (409, "incident-state")
    assert again.json()["detail"] == "cannot acknowledge an incident that is acknowledged (by view)"
    assert again.json()["state"] == "acknowledged"

    # The operator's CloudEvent on ioc.incidents, as the served schema describes it; its id
    # is the timeline's line.
    settings = world.namespace.settings
    [event] = [
        e for e in await operator_events(settings) if e["data"]["incident_id"] == ACK.incident_id
    ]
    assert event["type"] == "city.incident.acknowledged.v1"
    assert event["id"] == entry["event_id"]
    assert event["subject"] == "ha-long"
    assert (event["data"]["state"], event["data"]["by"]) == ("acknowledge", "view")
    schema = world.get(f"/v1/schemas/{event['type']}").json()
    jsonschema.validate(event, schema)

    # The worker's incident sink skipped that event; correlation's next update keeps the
    # acknowledgement and records the new alert.
    lines = await log_count(settings)
    newcomer = alert_ids(1, seed="ack-late")[0]
    update = later(ACK, "update", 50, severity="critical", alerts=sorted([*ACK.alerts, newcomer]))
    await produce(settings, settings.topic(INCIDENTS_TOPIC), [incident_record(update)])
    await eventually(
        lambda: log_count(settings),
        until=lambda found: found >= lines + 1,
        within_s=60,
        what=f"{lines + 1} timeline lines stored",
    )
    body = world.incident(ACK)
    assert (body["state"], body["severity"]) == ("acknowledged", "critical")
    assert newcomer in body["alert_ids"]


async def test_assign_and_notes(world: World) -> None:
    path = f"/v1/incidents/{ASSIGN.incident_id}"
    assigned = world.post(f"{path}/assign", json={"assignee": "fire-team-halong"})
    assert assigned.status_code == 200, assigned.text
    body = assigned.json()
    assert (body["assignee"], body["assigned_by"], body["state"]) == (
        "fire-team-halong",
        "view",
        "open",
    )
    assert body["assigned_at"] is not None
    again = world.post(f"{path}/assign", "admin", json={"assignee": "Trần Văn An"})
    assert (again.json()["assignee"], again.json()["assigned_by"]) == ("Trần Văn An", "admin")

    noted = world.post(f"{path}/notes", json={"text": "Police on site; water 40 cm."})
    assert noted.status_code == 200, noted.text
    lines = [(e["kind"], e["by"], e["detail"]) for e in noted.json()["timeline"]]
    assert lines[1:] == [
        ("assign", "view", {"assignee": "fire-team-halong"}),
        ("assign", "admin", {"assignee": "Trần Văn An"}),
        ("annotate", "view", {"text": "Police on site; water 40 cm."}),
    ]

    for route, body_in in [
        ("assign", {"assignee": ""}),
        ("assign", {"assignee": " padded "}),
        ("assign", {"assignee": "x" * 129}),
        ("assign", {"assignee": 7}),
        ("assign", {"assignee": "a\u0000b"}),
        ("assign", {"assignee": "ok", "extra": 1}),
        ("assign", {}),
        ("notes", {"text": "   "}),
        ("notes", {"text": "x" * 4001}),
        ("notes", {"text": None}),
    ]:
        refused = world.post(f"{path}/{route}", json=body_in)
        assert (refused.status_code, problem_slug(refused)) == (422, "invalid-request"), body_in

    for route, raw in [
        ("assign", b'{"assignee": "\\ud800"}'),
        ("notes", b'{"text": "a lone \\udfff"}'),
        ("notes", b'{"text": "unfinished'),
    ]:
        refused = world.post_raw(f"{path}/{route}", raw)
        assert refused.status_code == 422, (raw, refused.text)

    settings = world.namespace.settings
    kinds = [
        (e["type"], e["data"].get("assignee") or e["data"].get("text"))
        for e in await operator_events(settings)
        if e["data"]["incident_id"] == ASSIGN.incident_id
    ]
    assert kinds == [
        ("city.incident.assigned.v1", "fire-team-halong"),
        ("city.incident.assigned.v1", "Trần Văn An"),
        ("city.incident.annotated.v1", "Police on site; water 40 cm."),
    ]


def test_steps_of_the_sop_are_checked_once(world: World) -> None:
    path = f"/v1/incidents/{STEP.incident_id}/steps"
    checked = world.post(f"{path}/confirm-extent")
    assert checked.status_code == 200, checked.text
    steps = {s["id"]: s for s in checked.json()["checklist"]["steps"]}
    assert steps["confirm-extent"]["checked_by"] == "view"
    assert steps["confirm-extent"]["checked_at"] is not None
    assert steps["call-commune"]["checked_by"] is None
    assert checked.json()["timeline"][-1]["detail"] == {"step_id": "confirm-extent"}

    again = world.post(f"{path}/confirm-extent", "admin")
    assert (again.status_code, problem_slug(again)) == (409, "step-checked")
    assert "checked by view" in again.json()["detail"]
    unknown = world.post(f"{path}/call-114")  # a step of the fire SOP, not of flooding
    assert (unknown.status_code, problem_slug(unknown)) == (404, "unknown-step")
    malformed = world.post(f"{path}/Not_A_Step")
    assert (malformed.status_code, problem_slug(malformed)) == (422, "invalid-request")
    nowhere = world.post(f"/v1/incidents/{uuid.uuid4()}/steps/confirm-extent")
    assert (nowhere.status_code, problem_slug(nowhere)) == (404, "unknown-incident")


def test_resolve_ends_what_operators_may_do(world: World) -> None:
    path = f"/v1/incidents/{RESOLVE.incident_id}"
    assert world.post(f"{path}/acknowledge").status_code == 200
    resolved = world.post(f"{path}/resolve", "admin")
    assert resolved.status_code == 200, resolved.text
    body = resolved.json()
    assert (body["state"], body["resolved_by"], body["acknowledged_by"]) == (
        "resolved",
        "admin",
        "view",
    )
    actions: list[tuple[str, dict[str, Any]]] = [
        ("resolve", {}),
        ("acknowledge", {}),
        ("assign", {"json": {"assignee": "late"}}),
        ("steps/rescue", {}),
        ("merge", {"json": {"into": MERGE_DST.incident_id}}),
    ]
    for route, kwargs in actions:
        refused = world.post(f"{path}/{route}", **kwargs)
        assert (refused.status_code, problem_slug(refused)) == (409, "incident-state"), route
        assert "that is resolved (by admin)" in refused.json()["detail"]
    # A note is still welcome.
    assert world.post(f"{path}/notes", json={"text": "Debrief on Monday"}).status_code == 200


def test_merge_moves_the_alerts_and_refuses_what_cannot_be(world: World) -> None:
    path = f"/v1/incidents/{MERGE_SRC.incident_id}"
    into_itself = world.post(f"{path}/merge", json={"into": MERGE_SRC.incident_id})
    assert (into_itself.status_code, problem_slug(into_itself)) == (409, "merge-into-itself")
    into_gone = world.post(f"{path}/merge", json={"into": MERGE_GONE.incident_id})
    assert (into_gone.status_code, problem_slug(into_gone)) == (409, "incident-state")
    assert "merge into an incident that is retracted" in into_gone.json()["detail"]
    into_nothing = world.post(f"{path}/merge", json={"into": str(uuid.uuid4())})
    assert (into_nothing.status_code, problem_slug(into_nothing)) == (404, "unknown-incident")
    not_an_id = world.post(f"{path}/merge", json={"into": "somewhere"})
    assert (not_an_id.status_code, problem_slug(not_an_id)) == (422, "invalid-request")

    merged = world.post(f"{path}/merge", json={"into": MERGE_DST.incident_id})
    assert merged.status_code == 200, merged.text
    body = merged.json()
    assert (body["state"], body["merged_into"]) == ("merged", MERGE_DST.incident_id)
    moved = sorted(alert_ids(2, seed="merge-src"))
    assert body["timeline"][-1]["detail"] == {"into": MERGE_DST.incident_id, "alerts": moved}

    target = world.incident(MERGE_DST)
    assert set(target["alert_ids"]) == {*moved, *alert_ids(2, seed="merge-dst")}
    assert target["state"] == "open"
    line = target["timeline"][-1]
    assert (line["kind"], line["by"]) == ("merge", "view")
    assert line["detail"] == {"from": MERGE_SRC.incident_id, "alerts": moved}

    again = world.post(f"{path}/merge", json={"into": MERGE_DST.incident_id})
    assert (again.status_code, problem_slug(again)) == (409, "incident-state")
    into_merged = world.post(
        f"/v1/incidents/{MERGE_DST.incident_id}/merge", json={"into": MERGE_SRC.incident_id}
    )
    assert (into_merged.status_code, problem_slug(into_merged)) == (409, "incident-state")


def test_every_action_on_an_unknown_incident_is_404(world: World) -> None:
    nobody = uuid.uuid4()
    actions: list[tuple[str, dict[str, Any]]] = [
        ("acknowledge", {}),
        ("assign", {"json": {"assignee": "someone"}}),
        ("notes", {"json": {"text": "hello"}}),
        ("resolve", {}),
        ("merge", {"json": {"into": MERGE_DST.incident_id}}),
    ]
    for route, kwargs in actions:
        refused = world.post(f"/v1/incidents/{nobody}/{route}", **kwargs)
        assert (refused.status_code, problem_slug(refused)) == (404, "unknown-incident"), route


async def test_a_named_namespace_is_read_and_acted_on(world: World, namespace: Namespace) -> None:
    sandbox = namespace.settings
    theirs = opened("sandbox", "ha-long", 0)
    await store_transitions(sandbox, [theirs])
    name = sandbox.namespace

    listed = world.get("/v1/incidents", "engineer", namespace=name).json()["items"]
    assert [i["incident_id"] for i in listed] == [theirs.incident_id]
    refused = world.get("/v1/incidents", "view", namespace=name)
    assert (refused.status_code, problem_slug(refused)) == (403, "forbidden")
    mine = world.get(f"/v1/incidents/{theirs.incident_id}", "engineer")
    assert mine.status_code == 404  # not in the API's own namespace

    acked = world.post(
        f"/v1/incidents/{theirs.incident_id}/acknowledge", "engineer", params={"namespace": name}
    )
    assert acked.status_code == 200, acked.text
    assert acked.json()["acknowledged_by"] == "engineer"
    [event] = await operator_events(sandbox)
    assert event["data"]["incident_id"] == theirs.incident_id
