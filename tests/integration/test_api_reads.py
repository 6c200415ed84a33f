"""Read endpoints on data that went the whole way: HTTP publish -> Kafka -> worker -> DB.

One namespace, registry, worker and API for the module: events are posted once over
HTTP, then every read endpoint, alert action and the access matrix are checked on them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import jsonschema  # type: ignore[import-untyped]
import pytest

from city.model import City, build_city
from ioc.db.registry import load_registry
from tests.utils.apikeys import auth
from tests.utils.events import T0
from tests.utils.eventually import eventually
from tests.utils.namespaces import Namespace
from tests.utils.rules import shipped_rules_dir
from tests.utils.services import start_api, start_worker

BAD = {"avg_speed_kmh": 9.0, "occupancy_pct": 92.0}
GOOD = {"avg_speed_kmh": 48.0, "occupancy_pct": 25.0}


def flow_events(entity: str, pattern: str) -> list[dict[str, Any]]:
    """Six readings a minute per character of ``pattern`` (B congested, G free);
    vehicles = minute + 1, so each minute's sum is 6 * (minute + 1)."""
    out = []
    for minute, kind in enumerate(pattern):
        for second in range(0, 60, 10):
            at = T0 + timedelta(minutes=minute, seconds=second)
            out.append(
                {
                    "specversion": "1.0",
                    "id": f"{entity}-{minute}-{second}",
                    "source": "/tests/reads",
                    "type": "city.traffic.flow.v1",
                    "time": at.isoformat(),
                    "subject": entity,
                    "data": {
                        "vehicles": minute + 1,
                        "interval_s": 10,
                        **(BAD if kind == "B" else GOOD),
                    },
                }
            )
    return out


@dataclass
class World:
    base: str
    city: City
    jam_a: str
    jam_b: str
    cleared: str
    hospital: str
    namespace: str

    def get(self, path: str, role: str = "view", **params: Any) -> httpx.Response:
        return httpx.get(self.base + path, params=params, headers=auth(role), timeout=20)

    def post(self, path: str, role: str = "view", **kwargs: Any) -> httpx.Response:
        return httpx.post(self.base + path, headers=auth(role), timeout=20, **kwargs)

    def alert_of(self, entity: str) -> dict[str, Any]:
        items: list[dict[str, Any]] = self.get("/v1/alerts", entity=entity).json()["items"]
        [alert] = items
        return alert


@pytest.fixture(scope="module")
async def world(module_namespace: Namespace, tmp_path_factory: pytest.TempPathFactory) -> Any:
    city = build_city(120, seed=0)
    await load_registry(module_namespace.settings, city)
    # The reads below count congestion alerts; the crash incident would open its own.
    rules = shipped_rules_dir(tmp_path_factory.mktemp("rules"), "traffic-congestion")
    worker = start_worker(
        module_namespace,
        env={"IOC_SINK__ROLLUP_INTERVAL_S": "1", "IOC_STREAMS__RULES_DIR": str(rules)},
    )
    process, base = start_api(
        module_namespace, env={"IOC_API__RATE_PER_S": "1000", "IOC_API__RATE_BURST": "1000"}
    )
    traffic = city.in_domain("traffic")
    w = World(
        base=base,
        city=city,
        jam_a=traffic[0].id,
        jam_b=traffic[1].id,
        cleared=traffic[2].id,
        hospital=city.in_domain("hospital")[0].id,
        namespace=module_namespace.settings.namespace,
    )
    events = [
        *flow_events(w.jam_a, "B" * 12),
        *flow_events(w.jam_b, "B" * 12),
        *flow_events(w.cleared, "BBB" + "G" * 9),
        {
            "specversion": "1.0",
            "id": "incident-1",
            "source": "/tests/reads",
            "type": "city.traffic.incident.v1",
            "time": (T0 + timedelta(minutes=1, seconds=5)).isoformat(),
            "subject": w.jam_a,
            "data": {"kind": "crash", "severity": 3, "lanes_blocked": 2},
        },
        {
            "specversion": "1.0",
            "id": "status-1",
            "source": "/tests/reads",
            "type": "city.hospital.status.v1",
            "time": (T0 + timedelta(minutes=2)).isoformat(),
            "subject": w.hospital,
            "data": {
                "beds_total": 200,
                "beds_occupied": 150,
                "icu_total": 20,
                "icu_occupied": 10,
                "er_waiting": 7,
                "ambulances_available": 3,
            },
        },
    ]
    # In event-time order, as sensors would send them: a partition's watermark must not
    # run ahead of an entity's events, or they would be late.
    events.sort(key=lambda e: str(e["time"]))
    response = w.post("/v1/events", "admin", json=events)
    assert response.status_code == 202, response.text
    assert len(response.json()["accepted"]) == len(events)

    def settled() -> bool:
        alerts = w.get("/v1/alerts", domain="traffic").json()["items"]
        states = sorted((a["entity_id"], a["state"]) for a in alerts)
        hour = w.get(
            f"/v1/traffic/entities/{w.jam_a}/series",
            metric="vehicles",
            bucket="1h",
            **{"from": T0.isoformat(), "to": (T0 + timedelta(hours=2)).isoformat()},
        )
        assert hour.status_code == 200, hour.text
        day = w.get(
            f"/v1/traffic/entities/{w.jam_a}/series",
            metric="vehicles",
            bucket="1d",
            **{"from": (T0 - timedelta(days=1)).isoformat(), "to": T0.isoformat()},
        )
        # The sink rolls up an hour once it is final, or everything once nothing has been
        # written for a refresh interval (1 s here, IOC_SINK__ROLLUP_INTERVAL_S): wait for
        # the day's row.
        points = hour.json()["points"]
        return (
            states == sorted([(w.jam_a, "open"), (w.jam_b, "open"), (w.cleared, "resolved")])
            and sum(p["sum"] for p in points) == 6.0 * sum(range(1, 13))
            and day.json()["source"] == "day+minute"
        )

    try:
        eventually(settled, within_s=120, interval_s=1, what="alerts and rollups in the database")
        yield w
    finally:
        process.stop()
        worker.stop()


def problem_slug(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/problem+json", response.text
    slug: str = response.json()["type"].rsplit("/", 1)[1]
    return slug


def test_series_per_minute_has_the_exact_sums(world: World) -> None:
    span = {"from": T0.isoformat(), "to": (T0 + timedelta(minutes=12)).isoformat()}
    for bucket in ("1m", "auto"):
        body = world.get(
            f"/v1/traffic/entities/{world.jam_a}/series", metric="vehicles", bucket=bucket, **span
        ).json()
        assert (body["bucket"], body["source"]) == ("1m", "minute")
        assert [p["sum"] for p in body["points"]] == [6.0 * (m + 1) for m in range(12)]
        assert [p["count"] for p in body["points"]] == [6] * 12


def test_series_reads_hour_and_day_rollups_for_wide_buckets(world: World) -> None:
    total = 6.0 * sum(range(1, 13))
    path = f"/v1/traffic/entities/{world.jam_a}/series"
    hours = world.get(
        path,
        metric="vehicles",
        bucket="1h",
        **{"from": T0.isoformat(), "to": (T0 + timedelta(hours=3)).isoformat()},
    ).json()
    # The newest hour bucket is read from its minutes (it may be open): here the only one.
    assert hours["source"] == "minute"
    assert [(p["t"], p["sum"], p["count"]) for p in hours["points"]] == [
        ("2024-09-07T08:00:00Z", total, 72)
    ]
    days = world.get(
        path,
        metric="vehicles",
        bucket="1d",
        **{
            "from": (T0 - timedelta(days=1)).isoformat(),
            "to": (T0 + timedelta(days=1)).isoformat(),
        },
    ).json()
    assert days["source"] == "day+minute"
    # The local day (UTC+7) of 08:00 UTC starts at 17:00 UTC the day before.
    assert [(p["t"], p["sum"]) for p in days["points"]] == [("2024-09-06T17:00:00Z", total)]
    auto = world.get(
        path,
        metric="vehicles",
        **{"from": T0.isoformat(), "to": (T0 + timedelta(days=60)).isoformat()},
    ).json()
    assert auto["bucket"] == "1h"
    assert sum(p["sum"] for p in auto["points"]) == total


def test_raw_series_has_one_point_per_kept_event(world: World) -> None:
    body = world.get(
        f"/v1/traffic/entities/{world.jam_a}/series",
        metric="lanes_blocked",
        bucket="raw",
        **{"from": T0.isoformat(), "to": (T0 + timedelta(hours=1)).isoformat()},
    ).json()
    assert body["source"] == "raw"
    assert [(p["t"], p["last"]) for p in body["points"]] == [("2024-09-07T08:01:05Z", 2.0)]


@pytest.mark.parametrize(
    ("path", "params", "status", "slug"),
    [
        ("/v1/traffic/entities/nowhere/series", {"metric": "vehicles"}, 404, "unknown-entity"),
        ("/v1/weather/entities/x/series", {"metric": "vehicles"}, 404, "unknown-domain"),
        (
            "JAM/series",
            {
                "metric": "vehicles",
                "bucket": "1m",
                "from": "2024-01-01T00:00:00Z",
                "to": "2024-03-01T00:00:00Z",
            },
            400,
            "too-many-points",
        ),
        (
            "JAM/series",
            {"metric": "vehicles", "from": "2024-09-07T09:00:00Z", "to": "2024-09-07T08:00:00Z"},
            422,
            "invalid-request",
        ),
        (
            "JAM/series",
            {"metric": "vehicles", "from": "2024-09-07T08:00:00"},
            422,
            "invalid-request",
        ),
        ("JAM/series", {"metric": "vehicles", "bucket": "2m"}, 422, "invalid-request"),
        ("JAM/series", {"metric": "vehicles", "from": "yesterday"}, 422, "invalid-request"),
        ("JAM/series", {}, 422, "invalid-request"),
        ("/v1/traffic/entities", {"limit": "0"}, 422, "invalid-request"),
        ("/v1/traffic/entities", {"limit": "ten"}, 422, "invalid-request"),
        ("/v1/traffic/entities", {"area": "atlantis"}, 404, "unknown-area"),
        ("/v1/weather/entities", {}, 404, "unknown-domain"),
        ("/v1/traffic/entities/nowhere", {}, 404, "unknown-entity"),
        ("/v1/areas/atlantis", {}, 404, "unknown-area"),
        ("/v1/alerts", {"domain": "weather"}, 404, "unknown-domain"),
        ("/v1/alerts", {"state": "sleeping"}, 422, "invalid-request"),
        ("/v1/alerts", {"area": "atlantis"}, 404, "unknown-area"),
        ("/v1/schemas/city.weather.rain.v1", {}, 404, "unknown-type"),
    ],
)
def test_bad_reads_are_specific_problems(
    world: World, path: str, params: dict[str, str], status: int, slug: str
) -> None:
    path = path.replace("JAM", f"/v1/traffic/entities/{world.jam_a}")
    response = world.get(path, **params)
    assert response.status_code == status, response.text
    assert problem_slug(response) == slug
    assert "Traceback" not in response.text


def test_entities_list_pages_and_filters_by_area(world: World) -> None:
    registered = {e.id for e in world.city.in_domain("traffic")}
    seen: list[str] = []
    after = ""
    while True:
        page = world.get("/v1/traffic/entities", limit=7, after=after).json()
        seen += [e["id"] for e in page["items"]]
        if page["next_after"] is None:
            break
        after = page["next_after"]
    assert seen == sorted(registered)
    commune = world.city.by_id[world.jam_a].commune
    in_commune = world.get("/v1/traffic/entities", area=commune, limit=1000).json()["items"]
    assert {e["id"] for e in in_commune} == {
        e.id for e in world.city.in_domain("traffic") if e.commune == commune
    }
    jam = next(e for e in in_commune if e["id"] == world.jam_a)
    assert jam["registered"] is True
    assert jam["state"]["event_type"] == "city.traffic.flow.v1"
    assert jam["state"]["data"]["vehicles"] == 12


def test_entity_detail_has_state_newest_minute_and_open_alerts(world: World) -> None:
    body = world.get(f"/v1/traffic/entities/{world.jam_a}").json()
    assert body["minute"] == "2024-09-07T08:11:00Z"
    assert body["metrics"]["vehicles"]["sum"] == 72.0
    assert body["metrics"]["avg_speed_kmh"]["avg"] == 9.0
    assert [a["rule_id"] for a in body["open_alerts"]] == ["traffic-congestion"]
    wrong_domain = world.get(f"/v1/hospital/entities/{world.jam_a}")
    assert (wrong_domain.status_code, problem_slug(wrong_domain)) == (404, "unknown-entity")


def test_overview_tiles_count_entities_reporters_and_open_alerts(world: World) -> None:
    tiles = {t["domain"]: t for t in world.get("/v1/overview").json()["tiles"]}
    assert sorted(tiles) == ["hospital", "school", "security", "traffic"]
    traffic = tiles["traffic"]
    assert traffic["entities"] == len(world.city.in_domain("traffic"))
    assert traffic["reporting"] == 3
    assert traffic["alerts_open"] == {"warning": 2}
    assert traffic["minute"] == "2024-09-07T08:11:00Z"
    assert traffic["metrics"]["vehicles"]["sum"] == 3 * 72.0
    assert tiles["hospital"]["metrics"]["er_waiting"]["last_sum"] == 7.0
    assert tiles["school"]["reporting"] == 0


def test_area_summary_for_province_zone_and_commune(world: World) -> None:
    jam = world.city.by_id[world.jam_a]
    province = world.city.province.id
    commune = world.get(f"/v1/areas/{jam.commune}").json()
    assert (commune["kind"], commune["parent"]["id"]) == ("commune", jam.zone)
    assert commune["domains"]["traffic"]["reporting"] >= 1
    zone = world.get(f"/v1/areas/{jam.zone}").json()
    assert jam.commune in {c["id"] for c in zone["children"]}
    whole = world.get(f"/v1/areas/{province}").json()
    assert (whole["kind"], whole["parent"]) == ("province", None)
    assert len(whole["children"]) == 13
    assert whole["domains"]["traffic"] == {
        "entities": len(world.city.in_domain("traffic")),
        "reporting": 3,
        "alerts_open": 2,
    }


def test_alert_filters(world: World) -> None:
    def ids(**params: str) -> set[str]:
        return {a["entity_id"] for a in world.get("/v1/alerts", **params).json()["items"]}

    assert ids(domain="traffic") == {world.jam_a, world.jam_b, world.cleared}
    assert ids(state="resolved") == {world.cleared}
    assert ids(severity="critical") == set()
    assert ids(entity=world.jam_b) == {world.jam_b}
    assert ids(area=world.city.by_id[world.cleared].commune) >= {world.cleared}
    assert ids(domain="hospital") == set()
    page = world.get("/v1/alerts", limit=1).json()
    assert (len(page["items"]), page["next_offset"]) == (1, 1)


def test_acknowledge_and_resolve_record_who_and_refuse_conflicts(world: World) -> None:
    first = world.alert_of(world.jam_a)["alert_id"]
    acked = world.post(f"/v1/alerts/{first}/ack")
    assert acked.status_code == 200, acked.text
    assert (acked.json()["state"], acked.json()["acknowledged_by"]) == ("acknowledged", "view")
    again = world.post(f"/v1/alerts/{first}/ack", "admin")
    assert (again.status_code, problem_slug(again)) == (409, "alert-state")
    assert "acknowledged (by view)" in again.json()["detail"]

    second = world.alert_of(world.jam_b)["alert_id"]
    resolved = world.post(f"/v1/alerts/{second}/resolve", "admin")
    assert resolved.status_code == 200, resolved.text
    body = resolved.json()
    assert (body["state"], body["resolved_by"]) == ("resolved", "admin")
    assert world.post(f"/v1/alerts/{second}/resolve").status_code == 409
    assert world.post(f"/v1/alerts/{second}/ack").status_code == 409

    by_data = world.alert_of(world.cleared)["alert_id"]
    refused = world.post(f"/v1/alerts/{by_data}/resolve")
    assert refused.status_code == 409
    assert "(by the data)" in refused.json()["detail"]

    missing = world.post(f"/v1/alerts/{uuid.uuid4()}/ack")
    assert (missing.status_code, problem_slug(missing)) == (404, "unknown-alert")
    malformed = world.post("/v1/alerts/not-a-uuid/ack")
    assert (malformed.status_code, problem_slug(malformed)) == (422, "invalid-request")
    assert {
        a["entity_id"] for a in world.get("/v1/alerts", state="acknowledged").json()["items"]
    } == {world.jam_a}


def test_schemas_are_json_schemas_an_event_validates_against(world: World) -> None:
    listed = world.get("/v1/schemas", "publish:traffic").json()
    assert len([s for s in listed if s["direction"] == "in"]) == 8
    assert {s["type"] for s in listed if s["direction"] == "out"} == {
        f"city.alert.{kind}.v1"
        for kind in ("provisional", "opened", "updated", "resolved", "retracted", "acknowledged")
    } | {
        f"city.incident.{kind}.v1"
        for kind in (
            *("opened", "updated", "closed", "retracted", "acknowledged", "assigned"),
            *("annotated", "step-checked", "resolved", "merged"),
        )
    }
    flow = next(s for s in listed if s["type"] == "city.traffic.flow.v1")
    schema = world.get(flow["url"], "publish:traffic").json()
    jsonschema.Draft202012Validator.check_schema(schema)
    event = flow_events("qn-ix-x", "G")[0]
    jsonschema.validate(event, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**event, "data": {**event["data"], "vehicles": "many"}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**event, "type": "city.traffic.incident.v1"}, schema)


def test_metrics_count_requests_by_route(world: World) -> None:
    text = world.get("/metrics").text
    assert 'ioc_api_requests_total{method="GET",route="/v1/overview",status="200"}' in text
    assert 'ioc_api_events_total{outcome="produced"}' in text


ROLES = (None, "view", "publish:traffic", "replay", "admin")


def routes(world: World) -> Iterator[tuple[str, str, dict[str, Any], int, AbstractSet[str | None]]]:
    """(method, path, request, status when allowed, roles allowed) of every route."""
    view = {"view", "admin"}
    jam = world.jam_a
    yield "GET", "/healthz", {}, 200, set(ROLES)
    yield "GET", "/readyz", {}, 200, set(ROLES)
    yield "GET", "/openapi.json", {}, 200, set(ROLES)
    yield "GET", "/docs", {}, 200, set(ROLES)
    yield "GET", "/metrics", {}, 200, view
    yield "GET", "/v1/overview", {}, 200, view
    # Naming the API's own namespace needs nothing more (another one needs view + replay:
    # tests/integration/test_api_namespaces.py).
    own = {"params": {"namespace": world.namespace}}
    yield "GET", "/v1/overview", own, 200, view
    yield "GET", "/v1/namespaces", {}, 200, view
    yield "GET", "/v1/traffic/entities", {}, 200, view
    yield "GET", f"/v1/traffic/entities/{jam}", {}, 200, view
    yield "GET", f"/v1/traffic/entities/{jam}/series", {"params": {"metric": "vehicles"}}, 200, view
    yield "GET", f"/v1/areas/{world.city.province.id}", {}, 200, view
    yield "GET", "/v1/alerts", {}, 200, view
    yield "POST", f"/v1/alerts/{uuid.uuid4()}/ack", {}, 404, view
    yield "POST", f"/v1/alerts/{uuid.uuid4()}/resolve", {}, 404, view
    yield "GET", "/v1/incidents", {}, 200, view
    incident = f"/v1/incidents/{uuid.uuid4()}"
    yield "GET", incident, {}, 404, view
    for action, body in [
        ("acknowledge", None),
        ("assign", {"assignee": "fire-team"}),
        ("notes", {"text": "on site"}),
        ("steps/verify", None),
        ("resolve", None),
        ("merge", {"into": str(uuid.uuid4())}),
    ]:
        yield "POST", f"{incident}/{action}", {"json": body} if body else {}, 404, view
    yield "GET", "/v1/schemas", {}, 200, {"view", "publish:traffic", "replay", "admin"}
    yield (
        "GET",
        "/v1/schemas/city.traffic.flow.v1",
        {},
        200,
        {"view", "publish:traffic", "replay", "admin"},
    )
    event = flow_events(jam, "G")[0]
    yield "POST", "/v1/events", {"json": event}, 202, {"publish:traffic", "admin"}


def test_access_matrix(world: World) -> None:
    checked = 0
    with httpx.Client(base_url=world.base, timeout=20) as client:
        for method, path, request, allowed_status, allowed in routes(world):
            for role in ROLES:
                headers = auth(role) if role else {}
                response = client.request(method, path, headers=headers, **request)
                expected = allowed_status if role in allowed else 401 if role is None else 403
                assert response.status_code == expected, (method, path, role, response.text)
                if expected in (401, 403):
                    assert problem_slug(response) in ("unauthenticated", "forbidden")
                checked += 1
    assert checked == 26 * len(ROLES)
