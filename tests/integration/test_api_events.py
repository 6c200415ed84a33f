"""POST /v1/events against a real API and Kafka: what is produced, what is refused, why."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest

from contract.envelope import decode
from streams.topics import raw_topic
from tests.utils.apikeys import auth
from tests.utils.events import HOSPITAL_STATUS, T0
from tests.utils.kafka import read_all
from tests.utils.namespaces import Namespace
from tests.utils.services import free_port, start_api

FLOW = {"vehicles": 12, "avg_speed_kmh": 40.0, "occupancy_pct": 20.0, "interval_s": 60}
STATUS = HOSPITAL_STATUS


def event(
    ident: str,
    *,
    subject: str = "qn-ix-http-001",
    kind: str = "city.traffic.flow.v1",
    data: dict[str, Any] | None = None,
    minutes: int = 0,
) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": ident,
        "source": "/tests/http",
        "type": kind,
        "time": (T0 + timedelta(minutes=minutes)).isoformat(),
        "subject": subject,
        "data": FLOW if data is None else data,
    }


@pytest.fixture(scope="module")
def base(module_namespace: Namespace) -> Iterator[str]:
    process, url = start_api(
        module_namespace, env={"IOC_API__RATE_PER_S": "1000", "IOC_API__RATE_BURST": "1000"}
    )
    yield url
    process.stop()


@pytest.fixture
async def client(base: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base, timeout=20) as c:
        yield c


async def topic_records(namespace: Namespace, domain: str, expect: int) -> list[Any]:
    """The domain's raw records, read until ``expect`` + 1 arrive or 3 s pass (so a
    record too many shows)."""
    settings = namespace.settings
    return await read_all(settings, raw_topic(settings, domain), expect=expect + 1, timeout_s=3)


async def test_one_event_is_produced_keyed_by_subject_at_event_time(
    module_namespace: Namespace, client: httpx.AsyncClient
) -> None:
    sent = event("single-1", subject="qn-ix-single", minutes=3)
    response = await client.post("/v1/events", json=sent, headers=auth("publish:traffic"))
    assert response.status_code == 202, response.text
    body = response.json()
    topic = raw_topic(module_namespace.settings, "traffic")
    assert body == {
        "accepted": [
            {
                "index": 0,
                "id": "single-1",
                "source": "/tests/http",
                "topic": topic,
                "duplicate": False,
            }
        ],
        "rejected": [],
    }
    records = [
        r
        for r in await topic_records(module_namespace, "traffic", expect=10)
        if r.key == b"qn-ix-single"
    ]
    assert len(records) == 1
    assert records[0].timestamp == int((T0 + timedelta(minutes=3)).timestamp() * 1000)
    decoded = decode(records[0].value, key=records[0].key, domain="traffic")
    assert decoded.envelope.id == "single-1"
    assert orjson.loads(records[0].value)["data"] == FLOW


async def test_a_batch_gets_a_reason_for_every_refused_item(
    module_namespace: Namespace, client: httpx.AsyncClient
) -> None:
    batch: list[Any] = [
        event("batch-ok", subject="qn-ix-batch"),
        event("batch-bad", subject="qn-ix-batch", data={**FLOW, "vehicles": "many"}),
        event("batch-unknown", subject="qn-ix-batch", kind="city.traffic.teleport.v1"),
        event("batch-hosp", subject="qn-hosp-batch", kind="city.hospital.status.v1", data=STATUS),
        {**event("batch-nosubj"), "subject": None},
        "not an object",
    ]
    del batch[4]["subject"]
    response = await client.post("/v1/events", json=batch, headers=auth("publish:traffic"))
    assert response.status_code == 202, response.text
    body = response.json()
    assert [(a["index"], a["id"]) for a in body["accepted"]] == [(0, "batch-ok")]
    refused = {r["index"]: (r["id"], r["reason"], r["field"]) for r in body["rejected"]}
    assert refused == {
        1: ("batch-bad", "invalid_field", "data.vehicles"),
        2: ("batch-unknown", "unknown_type", "type"),
        3: ("batch-hosp", "forbidden", "type"),
        4: ("batch-nosubj", "missing_field", "subject"),
        5: (None, "not_object", None),
    }
    traffic = await topic_records(module_namespace, "traffic", expect=10)
    assert [orjson.loads(r.value)["id"] for r in traffic if r.key == b"qn-ix-batch"] == ["batch-ok"]
    assert await topic_records(module_namespace, "hospital", expect=0) == []


async def test_admin_publishes_any_domain_and_repeats_are_not_produced_again(
    module_namespace: Namespace, client: httpx.AsyncClient
) -> None:
    sent = event("hosp-1", subject="qn-hosp-dup", kind="city.hospital.status.v1", data=STATUS)
    first = await client.post("/v1/events", json=sent, headers=auth("admin"))
    again = await client.post("/v1/events", json=[sent, sent], headers=auth("admin"))
    assert first.status_code == again.status_code == 202
    assert first.json()["accepted"][0]["duplicate"] is False
    assert [a["duplicate"] for a in again.json()["accepted"]] == [True, True]
    records = await topic_records(module_namespace, "hospital", expect=1)
    assert [r.key for r in records] == [b"qn-hosp-dup"]


@pytest.mark.parametrize(
    ("role", "body", "status", "slug"),
    [
        ("publish:traffic", b"{not json", 422, "malformed-json"),
        ("publish:traffic", b"42", 422, "invalid-body"),
        ("publish:traffic", b"[]", 422, "empty-batch"),
        ("publish:traffic", orjson.dumps(event("x", data={})), 422, "events-rejected"),
        # Kafka would refuse a timestamp this far ahead of its clock.
        (
            "publish:traffic",
            orjson.dumps(event("future", minutes=10_000_000)),
            422,
            "events-rejected",
        ),
        (
            "publish:traffic",
            orjson.dumps(event("h", kind="city.hospital.status.v1", data=STATUS)),
            403,
            "events-forbidden",
        ),
        ("view", orjson.dumps(event("v")), 403, "forbidden"),
        ("replay", orjson.dumps(event("r")), 403, "forbidden"),
        (None, orjson.dumps(event("n")), 401, "unauthenticated"),
    ],
)
async def test_bad_requests_are_specific_problems(
    client: httpx.AsyncClient, role: str | None, body: bytes, status: int, slug: str
) -> None:
    headers = {"Content-Type": "application/json", **(auth(role) if role else {})}
    response = await client.post("/v1/events", content=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"].endswith("/" + slug)
    assert problem["status"] == status
    if slug.startswith("events-"):
        assert problem["rejected"][0]["index"] == 0


async def test_media_type_batch_size_and_body_size_are_bounded(client: httpx.AsyncClient) -> None:
    headers = auth("publish:traffic")
    text = await client.post(
        "/v1/events",
        content=orjson.dumps(event("t")),
        headers={**headers, "Content-Type": "text/plain"},
    )
    assert (text.status_code, text.json()["type"].rsplit("/", 1)[1]) == (
        415,
        "unsupported-media-type",
    )
    many = await client.post(
        "/v1/events", json=[event(f"m{i}") for i in range(1001)], headers=headers
    )
    assert (many.status_code, many.json()["type"].rsplit("/", 1)[1]) == (422, "batch-too-large")
    huge = await client.post(
        "/v1/events",
        content=b"[" + b" " * (1024 * 1024) + b"]",
        headers={**headers, "Content-Type": "application/json"},
    )
    assert huge.status_code == 413
    assert huge.json()["type"].endswith("/body-too-large")

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b" " * 32_768

    streamed = await client.post(
        "/v1/events", content=chunks(), headers={**headers, "Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    assert streamed.headers["content-type"] == "application/problem+json"


def test_kafka_unreachable_is_503_with_retry_after(module_namespace: Namespace) -> None:
    process, url = start_api(
        module_namespace,
        env={
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
            "IOC_API__PUBLISH_TIMEOUT_S": "1",
        },
        name="api-no-kafka",
    )
    try:
        response = httpx.post(
            f"{url}/v1/events", json=event("k1"), headers=auth("publish:traffic"), timeout=20
        )
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "5"
        assert response.json()["type"].endswith("/kafka-unavailable")
        # Reads still work while Kafka is away.
        assert httpx.get(f"{url}/readyz", timeout=5).status_code == 200
    finally:
        process.stop()


def test_the_rate_limit_is_per_key_and_answers_429(module_namespace: Namespace) -> None:
    process, url = start_api(
        module_namespace,
        env={"IOC_API__RATE_PER_S": "0.2", "IOC_API__RATE_BURST": "2"},
        name="api-rate",
    )
    try:
        with httpx.Client(base_url=url, timeout=10) as c:
            path = "/v1/traffic/entities/qn-ix-none/series?metric=vehicles"
            statuses = [c.get(path, headers=auth("view")).status_code for _ in range(3)]
            assert statuses == [404, 404, 429]
            limited = c.get(path, headers=auth("view"))
            assert limited.headers["content-type"] == "application/problem+json"
            assert 1 <= int(limited.headers["retry-after"]) <= 5
            # Another key has its own bucket.
            assert c.get(path, headers=auth("admin")).status_code == 404
    finally:
        process.stop()


async def test_a_key_bound_to_its_sources_cannot_claim_another_vendors_events(
    module_namespace: Namespace, client: httpx.AsyncClient
) -> None:
    """An event is a repeat when its (source, id) was seen: a vendor who could publish under
    another's source could make that vendor's genuine event dropped as a repeat."""
    theirs = {**event("b-000042", subject="qn-ix-vendor-b"), "source": "/vendors/b"}
    forged = await client.post("/v1/events", json=theirs, headers=auth("acme"))
    assert forged.status_code == 403, forged.text
    [refused] = forged.json()["rejected"]
    assert (refused["reason"], refused["field"]) == ("forbidden", "source")
    assert "/vendors/acme/*" in refused["detail"]
    # The genuine event is not taken for a repeat of the forged one.
    genuine = await client.post("/v1/events", json=theirs, headers=auth("admin"))
    assert genuine.status_code == 202, genuine.text
    assert genuine.json()["accepted"][0]["duplicate"] is False
    # Under its own sources the bound key publishes as any other.
    own = {**event("acme-1", subject="qn-ix-vendor-a"), "source": "/vendors/acme/cam-7"}
    mine = await client.post("/v1/events", json=own, headers=auth("acme"))
    assert mine.status_code == 202, mine.text
