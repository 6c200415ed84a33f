"""The outside probe's access findings, each against a real API process: the live
namespace guard and name rules, keys in logs whatever their encoding, the query key on
the live feeds only, failed authentications limited, WebSocket refusals that say why."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import httpx
import orjson
import pytest
from websockets.exceptions import InvalidStatus

from tests.utils.apikeys import KEYS, auth
from tests.utils.live_clients import open_ws, ws_refusal
from tests.utils.namespaces import Namespace
from tests.utils.services import Process, start_api

pytestmark = pytest.mark.timeout(180)

VIEW, ADMIN = KEYS["view"], KEYS["admin"]
SSE = {"Accept": "text/event-stream"}


@pytest.fixture(scope="module")
def api(module_namespace: Namespace) -> Iterator[str]:
    process, base = start_api(module_namespace)
    yield base
    process.stop()


def is_problem(response: httpx.Response, status: int) -> bool:
    return (
        response.status_code == status
        and response.headers["content-type"] == "application/problem+json"
        and response.json()["status"] == status
    )


@pytest.mark.parametrize("namespace", ["live\n", "live\r\n", "sandbox\n", "live "])
def test_a_namespace_with_a_line_ending_is_refused_and_nothing_is_made(
    api: str, namespace: str
) -> None:
    with httpx.Client(base_url=api, timeout=20) as client:
        for role, extra in (("engineer", {}), ("admin", {}), ("admin", {"allow_live": True})):
            body = {"recording": "typhoon-yagi", "namespace": namespace, **extra}
            refused = client.post("/v1/replays", json=body, headers=auth(role))
            assert is_problem(refused, 422), (role, extra, refused.text)
        recording = {"name": "probe-line-ending", "namespace": namespace, "duration_s": 5}
        refused = client.post("/v1/recordings", json=recording, headers=auth("admin"))
        assert is_problem(refused, 422), refused.text
        assert client.get("/v1/replays", headers=auth("admin")).json()["replays"] == []
        names = [
            r["name"]
            for r in client.get("/v1/recordings", headers=auth("admin")).json()["recordings"]
        ]
        assert "probe-line-ending" not in names


def test_the_query_key_is_taken_on_the_live_feeds_only(api: str) -> None:
    with httpx.Client(base_url=api, timeout=20) as client:
        # Saying text/event-stream no longer makes a route take ?api_key=.
        for method, path in (("GET", "/v1/overview"), ("POST", "/v1/events")):
            refused = client.request(
                method, path, params={"api_key": ADMIN}, headers=SSE, content=b"[]"
            )
            assert is_problem(refused, 401), (path, refused.text)
        with client.stream("GET", "/v1/live/sse", params={"api_key": VIEW}, headers=SSE) as feed:
            assert feed.status_code == 200
            assert next(feed.iter_lines()) is not None


async def test_websocket_refusals_say_why(api: str) -> None:
    # Refused access: the handshake completes, then a close code and reason.
    assert (await ws_refusal(api, key=None))[0] == 1008
    code, reason = await ws_refusal(api, key="ioc_" + "n" * 43)
    assert (code, reason.split(":")[0]) == (1008, "invalid-credentials")
    # A malformed parameter: the same problem+json as SSE, on the handshake.
    for namespace in ("Not-A-Name", "live\n"):
        with pytest.raises(InvalidStatus) as refused:
            await open_ws(api, namespace=namespace)
        answer = refused.value.response
        assert answer.status_code == 422, namespace
        assert orjson.loads(answer.body)["type"].endswith("invalid-request")
    with pytest.raises(InvalidStatus) as refused:
        await open_ws(api, domain="traffic\x00")
    assert refused.value.response.status_code == 400


#: One key, its query parameter spelled every way the probe tried and then some.
def spellings(key: str) -> list[tuple[str, int]]:
    """Raw query strings with the key, and what the live feed answers to each."""
    encoded = quote(key, safe="")
    return [
        (f"api_key={key}", 200),
        (f"api%5Fkey={key}", 200),
        (f"%61pi_key={key}", 200),
        (f"api_key={encoded.replace('_', '%5F')}", 200),
        (f"k%65y={key}", 401),
        (f"key={key}", 401),
        (f"token={key}", 401),
        (f"api_key%00={key}", 400),
        (f"x={key.replace('_', '%255F')}", 401),
    ]


def test_no_key_reaches_the_log_whatever_its_encoding(namespace: Namespace) -> None:
    process, base = start_api(namespace)
    try:
        with httpx.Client(timeout=20) as client:
            for query, status in spellings(VIEW):
                address = httpx.URL(f"{base}/v1/live/sse?domain=traffic&{query}")
                with client.stream("GET", address, headers=SSE) as answer:
                    assert answer.status_code == status, query
                # The same on a route that takes no query key, and as a wrong key.
                overview = client.get(httpx.URL(f"{base}/v1/overview?{query}"))
                assert overview.status_code in (400, 401), query
            bad = client.get(f"{base}/v1/overview", headers={"X-API-Key": VIEW[:-2] + "zz"})
            assert bad.status_code == 401
    finally:
        process.stop()
    log = process.log.read_text(errors="replace")
    assert "/v1/live/sse?domain=traffic" in log  # the access log was on
    assert log.count("[redacted]") >= len(spellings(VIEW))
    secret = VIEW[len("ioc_") :]
    for form in (secret, quote(secret, safe=""), secret[:24], secret[-24:]):
        assert form not in log, f"{form[:8]}... in the API's log"


def limited_api(namespace: Namespace, **env: str) -> tuple[Process, str]:
    return start_api(
        namespace,
        env={"IOC_API__AUTH_FAILURE_BURST": "4", "IOC_API__AUTH_FAILURE_PER_S": "0.01", **env},
        name=f"api-{len(env)}",
    )


def guess(client: httpx.Client, key: str, *, via: str | None = None) -> httpx.Response:
    headers = {"X-API-Key": key, **({"X-Forwarded-For": via} if via else {})}
    return client.get("/v1/overview", headers=headers)


def wrong_key(n: int, prefix: str = "") -> str:
    return "ioc_" + (prefix or f"g{n:07d}") + f"{n:035d}"


async def test_failed_authentications_are_limited_per_address(namespace: Namespace) -> None:
    process, base = limited_api(namespace)
    try:
        with httpx.Client(base_url=base, timeout=20) as client:
            assert [guess(client, wrong_key(n)).status_code for n in range(4)] == [401] * 4
            held = guess(client, wrong_key(5))
            assert is_problem(held, 429)
            assert held.json()["type"].endswith("too-many-failed-authentications")
            assert int(held.headers["Retry-After"]) >= 1
            # The right key is not even checked from this address; a forged
            # X-Forwarded-For changes nothing when no proxy is trusted.
            assert guess(client, ADMIN).status_code == 429
            assert guess(client, ADMIN, via="203.0.113.9").status_code == 429
        code, reason = await ws_refusal(base, key=VIEW)
        assert (code, reason.split(":")[0]) == (1013, "too-many-failed-authentications")
    finally:
        process.stop()


def test_behind_a_trusted_proxy_each_client_and_key_prefix_is_limited(
    namespace: Namespace,
) -> None:
    process, base = limited_api(namespace, IOC_API__TRUSTED_PROXIES='["127.0.0.1"]')
    try:
        with httpx.Client(base_url=base, timeout=20) as client:
            guesser = "203.0.113.1"
            codes = [guess(client, wrong_key(n), via=guesser).status_code for n in range(5)]
            assert codes == [401, 401, 401, 401, 429]
            # Other clients behind the same proxy are not locked out.
            assert guess(client, ADMIN, via="203.0.113.2").status_code == 200
            assert guess(client, ADMIN, via=guesser).status_code == 429
            # Guesses at one key prefix from many addresses meet the prefix's limit.
            codes = [
                guess(client, wrong_key(n, "AbCdEfGh"), via=f"198.51.100.{n}").status_code
                for n in range(5)
            ]
            assert codes == [401, 401, 401, 401, 429]
            assert guess(client, ADMIN, via="198.51.100.99").status_code == 200
    finally:
        process.stop()
