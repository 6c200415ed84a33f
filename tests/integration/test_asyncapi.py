"""The AsyncAPI document the API serves: valid for the AsyncAPI project's own parser
(npm @asyncapi/parser), naming every topic, and with message schemas that accept and
refuse what the worker accepts and refuses."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema  # type: ignore[import-untyped]
import orjson
import pytest

from contract.catalog import DOMAINS
from streams.topics import raw_topic
from tests.utils.apikeys import auth
from tests.utils.events import T0, flow_value
from tests.utils.namespaces import Namespace
from tests.utils.node import node_harness
from tests.utils.services import start_api

CHECKER = Path(__file__).resolve().parents[1] / "asyncapi"


@pytest.fixture(scope="module")
def document(module_namespace: Namespace) -> Iterator[dict[str, Any]]:
    api, base = start_api(module_namespace)
    try:
        answer = httpx.get(f"{base}/v1/asyncapi", headers=auth("publish:traffic"), timeout=10)
        assert answer.status_code == 200, answer.text
        yield answer.json()
    finally:
        api.stop()


def parse(document: dict[str, Any], folder: Path) -> dict[str, Any]:
    node = node_harness(CHECKER, "@asyncapi/parser")
    path = folder / "asyncapi.json"
    path.write_text(json.dumps(document))
    done = subprocess.run(
        [node, "check.mjs", str(path)], cwd=CHECKER, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_the_asyncapi_parser_accepts_the_document_and_finds_every_topic(
    document: dict[str, Any], module_namespace: Namespace, tmp_path: Path
) -> None:
    parsed = parse(document, tmp_path)
    assert parsed["valid"], parsed["errors"]
    assert parsed["warnings"] == []
    settings = module_namespace.settings
    assert set(parsed["channels"]) == {
        *(raw_topic(settings, d) for d in DOMAINS),
        settings.topic("ioc.alerts"),
        settings.topic("ioc.incidents"),
        settings.topic("ioc.deadletter"),
        settings.topic("ioc.state"),
        "/v1/live",
    }
    # Events in; alert and incident events out; dead letter; state; the live area tiles.
    assert parsed["messages"] == 8 + 6 + 10 + 2 + 1
    # The parser does check: a message that is not there makes the document invalid.
    broken = orjson.loads(orjson.dumps(document))
    broken["channels"]["trafficEvents"]["messages"]["city_traffic_flow_v1"] = {
        "$ref": "#/components/messages/nothing_here"
    }
    assert not parse(broken, tmp_path)["valid"]


def test_the_message_schemas_accept_and_refuse_what_the_worker_does(
    document: dict[str, Any],
) -> None:
    message = document["components"]["messages"]["city_traffic_flow_v1"]
    assert message["bindings"]["kafka"]["key"]["type"] == "string"
    schema = message["payload"]["schema"]
    jsonschema.Draft7Validator.check_schema(schema)
    event = orjson.loads(flow_value("qn-ix-halong-001", T0))
    jsonschema.validate(event, schema)
    for bad in (
        {**event, "data": {**event["data"], "occupancy_pct": 140}},
        {**event, "type": "city.traffic.incident.v1"},
        {k: v for k, v in event.items() if k != "subject"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
    channel = document["channels"]["trafficEvents"]
    assert "partitioner=murmur2_random" in channel["description"]
    headers = document["components"]["messages"]["deadLetter"]["headers"]
    assert "wrong_partition" in headers["properties"]["ioc_reason"]["enum"]
