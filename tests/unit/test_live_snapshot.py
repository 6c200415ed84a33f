"""Snapshots: database rows with the hub's newer knowledge laid over them; chunks; filters."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from api.live.filters import LiveFilter, parse_filter
from api.live.hub import Hub
from api.live.messages import EventId
from api.live.snapshot import merge, snapshot_bodies
from api.problems import Problem
from tests.utils.live import T0_MS, state_record, transition

pytestmark = pytest.mark.timeout(10)


def db_entity(entity: str, time: str, domain: str = "traffic") -> dict[str, Any]:
    return {
        "entity_id": entity,
        "domain": domain,
        "event_type": f"city.{domain}.flow.v1",
        "event_time": time,
        "state": {"db": True},
        "alerts": [],
    }


def db_alert(entity: str, state: str = "open", **extra: Any) -> dict[str, Any]:
    row = {**transition(entity), "state": state, "acknowledged_by": None, "acknowledged_at": None}
    return {**row, **extra}


def test_newer_hub_knowledge_wins_and_resolved_alerts_leave_the_snapshot() -> None:
    hub = Hub(replay_messages=10, max_entities=10, max_alerts=10, epoch="ep")
    hub.publish_state(state_record("e1", time_ms=T0_MS + 60_000, state={"hub": True}))
    hub.publish_state(state_record("e3", time_ms=T0_MS))  # not in the database yet
    hub.publish_alert(transition("e2", state="update", minute=6))
    hub.publish_alert(transition("e4", state="resolve", minute=7))
    hub.publish_alert(transition("e5"))  # opened, not written yet
    sub = hub.subscribe(LiveFilter())
    entities = [
        db_entity("e1", "2024-09-07T08:00:00Z"),
        db_entity("e2", "2024-09-07T08:05:00Z"),
    ]
    alerts = [
        db_alert("e2", state="acknowledged", acknowledged_by="duty-1"),
        db_alert("e4"),
    ]
    views, open_alerts = merge(sub, entities, alerts)
    assert [(v["entity_id"], v["state"]) for v in views] == [
        ("e1", {"hub": True}),
        ("e2", {"db": True}),
        ("e3", {"vehicles": 10}),
    ]
    by_entity = {a["entity_id"]: a for a in open_alerts}
    assert sorted(by_entity) == ["e2", "e5"]
    # An operator's acknowledgement stays; the values and time come from the newer update.
    assert by_entity["e2"]["state"] == "acknowledged"
    assert by_entity["e2"]["updated_at"] == "2024-09-07T08:06:00Z"
    assert by_entity["e5"]["state"] == "open"
    assert views[1]["alerts"] == [
        {"rule_id": "traffic-congestion", "alert_id": db_alert("e2")["alert_id"]}
    ]


def test_an_alert_the_database_holds_as_resolved_does_not_come_back_from_the_hub() -> None:
    hub = Hub(replay_messages=10, max_entities=10, max_alerts=10, epoch="ep")
    hub.publish_alert(transition("e6"))  # the hub saw it open; an operator resolved it since
    hub.publish_alert(transition("e7"))  # opened, not written yet
    sub = hub.subscribe(LiveFilter())
    resolved = transition("e6")["alert_id"]
    _, open_alerts = merge(sub, [], [], closed={resolved})
    assert [a["entity_id"] for a in open_alerts] == ["e7"]


def test_the_filter_applies_to_the_merged_snapshot() -> None:
    hub = Hub(replay_messages=10, max_entities=10, max_alerts=10, epoch="ep")
    hub.publish_state(state_record("h1", domain="hospital"))
    sub = hub.subscribe(LiveFilter(domains=frozenset({"traffic"})))
    views, _ = merge(sub, [db_entity("t1", "2024-09-07T08:00:00Z")], [])
    assert [v["entity_id"] for v in views] == ["t1"]


def test_snapshot_chunks_carry_the_id_only_on_the_last() -> None:
    hub = Hub(replay_messages=10, max_entities=10, max_alerts=10, epoch="ep")
    hub.publish_state(state_record("e0"))
    sub = hub.subscribe(LiveFilter())
    entities = [db_entity(f"e{n}", "2024-09-07T08:00:00Z") for n in range(5)]
    chunks = [orjson.loads(body) for body, _ in snapshot_bodies(sub, entities, [], chunk=2)]
    assert [len(c["entities"]) for c in chunks] == [2, 2, 1]
    assert [c.get("id") for c in chunks] == [None, None, str(EventId("ep", 1))]
    assert [c["more"] for c in chunks] == [True, True, False]
    assert {c["reason"] for c in chunks} == {"initial"}
    empty = list(snapshot_bodies(sub, [], [], chunk=2))
    assert len(empty) == 1
    assert orjson.loads(empty[0][0])["more"] is False


def test_filters_accept_repeats_and_commas_and_name_bad_values() -> None:
    f = parse_filter(domain=["traffic,hospital", "school"], severity=["critical"])
    assert f.domains == frozenset({"traffic", "hospital", "school"})
    assert f.severities == frozenset({"critical"})
    assert f.kinds == {"entity", "alert", "incident", "area"}
    with pytest.raises(Problem) as bad:
        parse_filter(domain=["trafic"])
    assert bad.value.status == 422
    assert "'trafic'" in bad.value.detail
    with pytest.raises(Problem):
        parse_filter(severity=["urgent"])
    with pytest.raises(Problem):
        parse_filter(entity=["x" * 200])


def test_the_openapi_document_describes_the_event_stream() -> None:
    from api.main import create_app
    from ioc.settings import Settings

    document = create_app(Settings(_env_file=None)).openapi()
    operation = document["paths"]["/v1/live/sse"]["get"]
    assert "text/event-stream" in operation["responses"]["200"]["content"]
    assert {p["name"] for p in operation["parameters"]} >= {"domain", "area", "last-event-id"}
