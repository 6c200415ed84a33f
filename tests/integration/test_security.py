"""Security checks through the real processes: hostile strings in every parameter,
secrets kept out of logs and error bodies, CORS closed unless configured."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx
import pytest

from api.main import create_app
from tests.utils.apikeys import KEYS, auth
from tests.utils.namespaces import Namespace
from tests.utils.services import start_api, start_worker

HOSTILE = [
    "' OR '1'='1",
    "'; DROP TABLE alert; --",
    '") OR 1=1 --',
    "x' UNION SELECT current_user, 1, 2 --",
    "'||pg_sleep(10)||'",
    "%",
    "_",
    "\\",
    "$1",
    "../../etc/passwd",
    "..%2F..%2Fetc%2Fpasswd",
    "\u02bc OR 1=1",
    "x" * 5000,
    "%00",
    "nul\x00byte",
]

#: Benign values for the parameters a route needs besides the one under attack.
BENIGN = {
    "domain": "traffic",
    "entity_id": "ix-1",
    "area_id": "qn",
    "alert_id": "00000000-0000-0000-0000-000000000000",
    "event_type": "city.traffic.flow.v1",
    "name": "drill",
    "replay_id": "r-1",
}

DB_PASSWORD = "db-Pa55-never-in-logs-7c1e"
JWT_KEY = "jwt-signing-key-never-in-logs-95ab3f"


def attacks() -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """(method, path, parameter, query) for every string parameter of every operation,
    taken from the OpenAPI document, with a hostile value in that parameter."""
    spec = create_app().openapi()
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            if path.startswith("/v1/live") or method not in ("get", "post"):
                continue
            params = [p for p in op.get("parameters", []) if p["in"] in ("path", "query")]
            for target in params:
                for value in HOSTILE:
                    url, query = path, {}
                    for p in params:
                        chosen = value if p is target else BENIGN.get(p["name"])
                        if p["in"] == "path":
                            url = url.replace("{" + p["name"] + "}", quote(chosen or "x", safe=""))
                        elif chosen is not None:
                            query[p["name"]] = chosen
                    if method == "post" and "events" in path:
                        continue
                    yield method.upper(), url, target["name"], query


async def table_counts(ns: Namespace) -> dict[str, int]:
    conn = await asyncpg.connect(ns.settings.dsn)
    try:
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY 1",
            ns.settings.db_schema,
        )
        return {
            t["tablename"]: await conn.fetchval(
                f'SELECT count(*) FROM "{ns.settings.db_schema}"."{t["tablename"]}"'
            )
            for t in tables
        }
    finally:
        await conn.close()


async def test_hostile_strings_in_every_parameter_never_reach_sql(namespace: Namespace) -> None:
    process, base = start_api(namespace)
    before = await table_counts(namespace)
    assert "alert" in before
    statuses: dict[int, int] = {}
    try:
        async with httpx.AsyncClient(base_url=base, headers=auth("admin"), timeout=10) as client:
            for method, url, param, query in attacks():
                response = await client.request(method, url, params=query)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                assert response.status_code < 500, (method, url, param, query, response.text)
                if response.status_code >= 400:
                    assert response.headers["content-type"].startswith(
                        "application/problem+json"
                    ), (url, response.text)
                    assert "Traceback" not in response.text
    finally:
        process.stop()
    assert sum(statuses.values()) > 100  # every parameter of every route was attacked
    assert await table_counts(namespace) == before


def test_secrets_stay_out_of_logs_and_error_bodies(namespace: Namespace) -> None:
    dsn = namespace.settings.dsn.replace("postgresql://ioc@", f"postgresql://ioc:{DB_PASSWORD}@")
    env = {"DATABASE_URL": dsn, "IOC_API__JWT_KEY": JWT_KEY}
    worker = start_worker(namespace, env=env)
    process, base = start_api(namespace, env=env)
    admin = KEYS["admin"]
    bodies: list[str] = []
    try:
        with httpx.Client(base_url=base, timeout=10) as client:
            # A key in the query string (how browsers open the live feed), a wrong key
            # that is almost right, a bearer token signed with the wrong key, bad input.
            with client.stream(
                "GET",
                "/v1/live/sse",
                params={"api_key": admin},
                headers={"Accept": "text/event-stream"},
            ) as feed:
                assert feed.status_code == 200
                next(feed.iter_lines())
            for headers in (
                {"X-API-Key": admin[:-1]},
                {"Authorization": f"Bearer {admin}"},
                {"X-API-Key": admin, "Content-Type": "application/json"},
            ):
                for method, url, body in (
                    ("GET", "/v1/overview", None),
                    ("GET", "/v1/traffic/entities/nope", None),
                    ("POST", "/v1/events", b"{not json"),
                    ("GET", "/v1/alerts?severity=urgent", None),
                ):
                    response = client.request(method, url, headers=headers, content=body)
                    bodies.append(response.text)
    finally:
        process.stop()
        worker.stop()
    logs = process.log.read_text(errors="replace") + worker.log.read_text(errors="replace")
    assert "GET /v1/live/sse" in logs  # the access log was on
    for secret in (DB_PASSWORD, JWT_KEY, admin):
        assert secret not in logs, f"{secret[:6]}... in a log"
    for secret in (DB_PASSWORD, admin):
        assert all(secret not in body for body in bodies), f"{secret[:6]}... in a response"


@pytest.mark.parametrize("configured", [False, True])
def test_cors_is_closed_unless_origins_are_configured(
    namespace: Namespace, configured: bool
) -> None:
    allowed = "https://ioc.quangninh.example"
    env = {"IOC_API__CORS_ORIGINS": f'["{allowed}"]'} if configured else {}
    process, base = start_api(namespace, env=env)
    try:
        for origin in (allowed, "https://attacker.example"):
            preflight = httpx.options(
                f"{base}/v1/overview",
                headers={
                    "Origin": origin,
                    "Access-Control-Request-Method": "GET",
                    "Access-Control-Request-Headers": "X-API-Key",
                },
            )
            granted = preflight.headers.get("access-control-allow-origin")
            if configured and origin == allowed:
                assert granted == allowed
            else:
                assert granted is None, (origin, preflight.headers)
    finally:
        process.stop()
