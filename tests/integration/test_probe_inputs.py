"""Inputs an outside probe of the API sent (issue 16), on a real API, Kafka and worker:
each is a specific 4xx problem, never a 500, and the OpenAPI document says so."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest

from city.model import build_city
from contract.envelope import MAX_DEPTH
from ioc.db.registry import load_registry
from recordings.store import NAME_MAX_LENGTH, NAME_PATTERN
from streams.topics import DEADLETTER_TOPIC, raw_topic
from tests.utils.apikeys import auth
from tests.utils.events import T0, Record, flow_value
from tests.utils.eventually import eventually
from tests.utils.kafka import produce, read_all
from tests.utils.namespaces import Namespace, drop_namespace, new_namespace
from tests.utils.services import Process, start_api

DEEP = 300
PROBLEM = "application/problem+json"


def nested(levels: int) -> bytes:
    """A JSON array ``levels`` deep."""
    return b"[" * levels + b"]" * levels


def flow_event(ident: str, subject: str = "qn-ix-probe-001") -> bytes:
    return flow_value(subject, T0, event_id=ident)


def with_member(event: bytes, name: str, value: bytes, *, in_data: bool = False) -> bytes:
    """``event`` (a JSON object) with one more member, at the top or in ``data``."""
    if in_data:
        return event.replace(b'"data":{', b'"data":{"' + name.encode() + b'":' + value + b",")
    return event[:-1] + b',"' + name.encode() + b'":' + value + b"}"


@dataclass
class Probe:
    base: str
    entity: str
    sandbox: str

    def call(self, method: str, path: str, role: str = "admin", **kwargs: Any) -> httpx.Response:
        return httpx.request(method, self.base + path, headers=auth(role), timeout=60, **kwargs)

    def raw(self, method: str, path: str, body: bytes, role: str = "admin") -> httpx.Response:
        headers = {**auth(role), "content-type": "application/json"}
        return httpx.request(method, self.base + path, content=body, headers=headers, timeout=60)


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The problem body of ``response``, checked to be one with ``status``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM, response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


@pytest.fixture(scope="module")
async def probe(
    module_namespace: Namespace, tmp_path_factory: pytest.TempPathFactory, infra: Any
) -> AsyncIterator[Probe]:
    city = build_city(60, seed=0)
    await load_registry(module_namespace.settings, city)
    sandbox = await new_namespace(infra, tmp_path_factory)
    recordings = tmp_path_factory.mktemp("recordings")
    process, base = start_api(
        module_namespace,
        env={
            "IOC_API__RATE_PER_S": "1000",
            "IOC_API__RATE_BURST": "1000",
            "IOC_RECORDINGS__DIR": str(recordings),
        },
    )
    try:
        yield Probe(base, city.in_domain("traffic")[0].id, sandbox.settings.namespace)
    finally:
        process.stop()
        await drop_namespace(sandbox.settings)


@pytest.fixture(scope="module")
def replay_url(probe: Probe) -> Iterator[str]:
    """A replay of the shipped typhoon recording, paused, into the sandbox namespace."""
    started = probe.call(
        "POST",
        "/v1/replays",
        role="replay",
        json={
            "recording": "typhoon-yagi",
            "namespace": probe.sandbox,
            "paused": True,
            "prime": False,
        },
    )
    assert started.status_code == 201, started.text
    url = f"/v1/replays/{started.json()['id']}"
    eventually(
        lambda: probe.call("GET", url, role="replay").json()["state"] == "paused",
        within_s=60,
        what="the replay to start paused",
    )
    yield url
    probe.call("POST", f"{url}/stop", role="replay")


# Finding 1: deep nesting.


@pytest.mark.parametrize("in_data", [True, False], ids=["in-data", "in-extension"])
def test_a_deeply_nested_event_is_a_422_naming_the_depth_limit(probe: Probe, in_data: bool) -> None:
    body = with_member(flow_event(f"deep-{in_data}"), "deep", nested(DEEP), in_data=in_data)
    answer = problem(probe.raw("POST", "/v1/events", body, role="publish:traffic"), 422)
    [refused] = answer["rejected"]
    assert refused["reason"] == "invalid_field"
    assert f"deeper than {MAX_DEPTH} levels" in refused["detail"]
    assert refused["field"] == ("data" if in_data else "deep")


def test_a_batch_keeps_its_good_events_beside_a_deeply_nested_one(probe: Probe) -> None:
    deep = with_member(flow_event("batch-deep"), "ext", nested(DEEP))
    body = b"[" + flow_event("batch-fine") + b"," + deep + b"]"
    answer = probe.raw("POST", "/v1/events", body, role="publish:traffic")
    assert answer.status_code == 202, answer.text
    assert [a["id"] for a in answer.json()["accepted"]] == ["batch-fine"]
    assert [(r["index"], r["reason"]) for r in answer.json()["rejected"]] == [(1, "invalid_field")]


async def test_the_worker_dead_letters_a_deeply_nested_record_with_its_reason(
    namespace: Namespace, worker: Process
) -> None:
    settings = namespace.settings
    ms = int(T0.timestamp() * 1000)
    deep = with_member(flow_value("t-ix-deep", T0), "ext", nested(DEEP))
    good = flow_value("t-ix-deep", T0, event_id="after-the-deep-one")
    await produce(
        settings,
        raw_topic(settings, "traffic"),
        [Record(b"t-ix-deep", deep, ms), Record(b"t-ix-deep", good, ms)],
    )
    [letter] = await read_all(settings, settings.topic(DEADLETTER_TOPIC), expect=1)
    headers = dict(letter.headers)
    assert headers["ioc_reason"] == b"invalid_field"
    assert f"deeper than {MAX_DEPTH} levels".encode() in headers["ioc_detail"]
    assert letter.value == deep
    eventually(
        lambda: worker.total("ioc_events_processed_total") == 1,
        within_s=30,
        what="the good event behind the deep one",
    )
    assert worker.alive(), worker.tail()


# Finding 2: extreme dates.

EXTREME_SERIES = [
    {"to": "0001-01-01T00:00:00Z"},
    {"from": "0001-01-01T00:00:00Z", "to": "0001-01-08T00:00:00Z", "bucket": "1d"},
    {"from": "0001-01-01T00:00:00Z", "to": "0001-03-01T00:00:00Z", "bucket": "7d"},
    {"from": "0001-01-01T00:00:00+14:00", "to": "2024-01-01T00:00:00Z"},
    {"to": "9999-12-31T23:59:59-14:00"},
    {"from": "2024-01-01T00:00:00Z", "to": "9999-12-31T23:59:59Z", "bucket": "7d"},
]


@pytest.mark.parametrize("params", EXTREME_SERIES, ids=lambda p: "&".join(p.values()))
def test_an_extreme_series_time_is_a_422_naming_the_parameter(
    probe: Probe, params: dict[str, str]
) -> None:
    path = f"/v1/traffic/entities/{probe.entity}/series"
    answer = problem(probe.call("GET", path, params={"metric": "vehicles", **params}), 422)
    named = "from" if "0001" in params.get("from", "") else "to"
    assert answer["detail"].startswith(f"query.{named}:"), answer
    assert "1970-01-01" in answer["detail"]


@pytest.mark.parametrize(
    "params",
    [
        {"from": "1970-01-01T00:00:00Z", "to": "1970-03-01T00:00:00Z", "bucket": "7d"},
        {"from": "1970-01-01T00:00:00Z", "to": "1970-01-02T00:00:00Z", "bucket": "1d"},
        {"to": "1970-01-01T01:00:00Z"},
        {"to": "9998-12-31T09:59:59-14:00", "bucket": "1h"},
        {"from": "9998-12-01T00:00:00Z", "to": "9998-12-31T23:59:59Z", "bucket": "7d"},
    ],
    ids=lambda p: "&".join(p.values()),
)
def test_a_series_at_the_edges_of_the_range_is_answered(
    probe: Probe, params: dict[str, str]
) -> None:
    path = f"/v1/traffic/entities/{probe.entity}/series"
    answer = probe.call("GET", path, params={"metric": "vehicles", **params})
    assert answer.status_code == 200, answer.text
    assert answer.json()["points"] == []


@pytest.mark.parametrize("name", ["start_time", "end_time"])
def test_an_extreme_replay_time_is_a_422_naming_the_field(probe: Probe, name: str) -> None:
    body = {"recording": "typhoon-yagi", "namespace": probe.sandbox, name: "0001-01-01T00:00:00Z"}
    answer = problem(probe.call("POST", "/v1/replays", role="replay", json=body), 422)
    assert answer["detail"].startswith(f"body.{name}:"), answer


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"time": "0001-01-01T00:00:00+14:00"}, "time"),
        ({"time": "9999-12-31T23:59:59-14:00"}, "time"),
        ({"index": 1e20}, "index"),
        ({"index": 2**53 + 1}, "index"),
    ],
)
def test_an_extreme_seek_is_a_422_naming_the_field(
    probe: Probe, replay_url: str, body: dict[str, Any], field: str
) -> None:
    answer = problem(probe.call("POST", f"{replay_url}/seek", role="replay", json=body), 422)
    assert answer["detail"].startswith(f"body.{field}:"), answer


# Finding 3: unbounded numbers.


def test_a_seek_past_the_recording_is_a_422_saying_its_size(probe: Probe, replay_url: str) -> None:
    total = probe.call("GET", replay_url, role="replay").json()["total"]
    body = {"index": total}
    answer = problem(probe.call("POST", f"{replay_url}/seek", role="replay", json=body), 422)
    assert answer["type"].endswith("/invalid-seek")
    assert f"{total:,} records" in answer["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"start_index": 1e20}, "start_index"),
        ({"end_index": 2**60}, "end_index"),
        ({"speed": 1e308}, "speed"),
    ],
)
def test_an_unbounded_replay_number_is_a_422_naming_the_field(
    probe: Probe, body: dict[str, Any], field: str
) -> None:
    body = {"recording": "typhoon-yagi", "namespace": probe.sandbox, **body}
    answer = problem(probe.call("POST", "/v1/replays", role="replay", json=body), 422)
    assert answer["detail"].startswith(f"body.{field}:"), answer


def test_a_replay_starting_past_the_recording_is_a_422(probe: Probe) -> None:
    body = {"recording": "typhoon-yagi", "namespace": probe.sandbox, "start_index": 2**52}
    answer = problem(probe.call("POST", "/v1/replays", role="replay", json=body), 422)
    assert answer["type"].endswith("/invalid-replay")
    assert "records" in answer["detail"]


@pytest.mark.parametrize("duration", [1e308, 7 * 86_400 + 1, 0])
def test_a_recording_duration_out_of_bounds_is_a_422(probe: Probe, duration: float) -> None:
    body = {"name": "too-long", "duration_s": duration}
    answer = problem(probe.call("POST", "/v1/recordings", role="replay", json=body), 422)
    assert answer["detail"].startswith("body.duration_s:"), answer


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"kind": "crash", "severity": 3, "lanes_blocked": False}, "data.lanes_blocked"),
        ({"kind": "crash", "severity": 3.5, "lanes_blocked": 1}, "data.severity"),
        ({"kind": "crash", "severity": "3", "lanes_blocked": 1}, "data.severity"),
    ],
)
def test_an_event_number_of_the_wrong_kind_is_refused(
    probe: Probe, data: dict[str, Any], field: str
) -> None:
    event = {
        **orjson.loads(flow_event(f"wrong-kind-{field}-{data[field.split('.')[1]]}")),
        "type": "city.traffic.incident.v1",
        "data": data,
    }
    answer = problem(probe.call("POST", "/v1/events", json=event), 422)
    [refused] = answer["rejected"]
    assert (refused["reason"], refused["field"]) == ("invalid_field", field)


def test_a_numeric_event_time_is_refused(probe: Probe) -> None:
    event = {**orjson.loads(flow_event("numeric-time")), "time": 1_700_000_000}
    answer = problem(probe.call("POST", "/v1/events", json=event), 422)
    [refused] = answer["rejected"]
    assert (refused["reason"], refused["field"]) == ("invalid_field", "time")
    assert "RFC 3339" in refused["detail"]


# Finding 4: conformance.


def test_the_recording_name_rule_is_in_the_openapi_document(probe: Probe) -> None:
    document = probe.call("GET", "/openapi.json").json()
    for path in ("/v1/recordings/{name}", "/v1/recordings/{name}/stop"):
        [operation] = document["paths"][path].values()
        [name] = [p for p in operation["parameters"] if p["name"] == "name"]
        assert name["schema"]["pattern"] == NAME_PATTERN.pattern
        assert name["schema"]["maxLength"] == NAME_MAX_LENGTH
    ecmascript = re.compile(NAME_PATTERN.pattern)  # no Python-only syntax in it
    assert ecmascript.fullmatch("typhoon-yagi")


@pytest.mark.parametrize("name", ["typhoon-yagi%0A", "a..b", "-dash", "x" * (NAME_MAX_LENGTH + 1)])
def test_a_recording_name_off_the_rule_is_a_422(probe: Probe, name: str) -> None:
    for method, path in [
        ("GET", f"/v1/recordings/{name}"),
        ("POST", f"/v1/recordings/{name}/stop"),
    ]:
        problem(probe.call(method, path, role="replay"), 422)


@pytest.mark.parametrize(
    "body",
    [b"{not json", b'{"count": 1', b'{"count": "\xff"}', nested(5000)],
    ids=["syntax", "truncated", "not-utf-8", "too-deep"],
)
@pytest.mark.parametrize(
    "path",
    [
        "/v1/replays/any/step",
        "/v1/replays/any/seek",
        "/v1/replays",
        "/v1/recordings",
        "/v1/events",
    ],
)
def test_a_malformed_body_is_a_422_problem_on_every_route(
    probe: Probe, path: str, body: bytes
) -> None:
    answer = problem(probe.raw("POST", path, body), 422)
    assert answer["type"].endswith("/malformed-json"), answer


def test_body_routes_document_422_and_not_400_for_bodies(probe: Probe) -> None:
    document = probe.call("GET", "/openapi.json").json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if "requestBody" in operation:
                assert "422" in operation["responses"], (method, path)
                # Every route documents 400, for a NUL in its URL (api.inputs), not a body.
                bad_url = operation["responses"]["400"]["description"]
                assert "URL" in bad_url, (method, path)
                assert "body" not in bad_url.lower(), (method, path)


# Finding 5: response models.


def test_replay_and_recording_answers_are_described(probe: Probe) -> None:
    document = probe.call("GET", "/openapi.json").json()
    schemas = document["components"]["schemas"]
    for path, method in [
        ("/v1/replays", "post"),
        ("/v1/replays", "get"),
        ("/v1/replays/{replay_id}", "get"),
        ("/v1/replays/{replay_id}/seek", "post"),
        ("/v1/recordings", "get"),
        ("/v1/recordings", "post"),
        ("/v1/recordings/{name}", "get"),
        ("/v1/recordings/{name}/stop", "post"),
    ]:
        responses = document["paths"][path][method]["responses"]
        success = next(v for k, v in responses.items() if k.startswith("2"))
        ref = success["content"]["application/json"]["schema"]["$ref"]
        assert schemas[ref.rsplit("/", 1)[1]]["properties"], (method, path)


def test_the_replay_status_has_every_field_its_model_documents(
    probe: Probe, replay_url: str
) -> None:
    document = probe.call("GET", "/openapi.json").json()
    schema = document["components"]["schemas"]["ReplayStatus"]
    status = probe.call("GET", replay_url, role="replay").json()
    # The same JSON as before the model: nothing dropped, nothing added.
    assert set(status) == set(schema["properties"])
    assert set(schema["required"]) <= set(status)
