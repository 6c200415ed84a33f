"""Engineers read another namespace with ``?namespace=``: every read route, the alert
actions and the live feed, on the sandbox a replay fills, while the API serves its own.

One API serves namespace "own"; a worker fills each of "own" and "sandbox"; "spare" is
migrated and empty. The API may open one other namespace at a time (max_namespaces=1).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from ioc.settings import Settings
from streams.topics import raw_topic
from tests.utils.apikeys import KEYS, auth
from tests.utils.events import T0, Record, flow_value
from tests.utils.eventually import eventually
from tests.utils.kafka import produce
from tests.utils.live_clients import open_ws, ws_refusal
from tests.utils.live_env import BAD, GOOD, db_value, snapshot_of
from tests.utils.namespaces import Namespace, drop_namespace, new_namespace
from tests.utils.services import start_api, start_worker

pytestmark = pytest.mark.timeout(180)

ENGINEER = KEYS["engineer"]


@dataclass
class Spaces:
    base: str
    own: Namespace
    sandbox: Namespace
    spare: Namespace

    def get(self, path: str, role: str = "engineer", **params: Any) -> httpx.Response:
        return httpx.get(self.base + path, params=params, headers=auth(role), timeout=20)

    def post(self, path: str, role: str = "engineer", **params: Any) -> httpx.Response:
        return httpx.post(self.base + path, params=params, headers=auth(role), timeout=20)


def flow(entity: str, pattern: str, start: datetime) -> list[Record]:
    """Six readings a minute per character of ``pattern`` (B congested, G free)."""
    out = []
    for minute, kind in enumerate(pattern):
        for second in range(0, 60, 10):
            at = start + timedelta(minutes=minute, seconds=second)
            value = flow_value(entity, at, **(BAD if kind == "B" else GOOD))
            out.append(Record(entity.encode(), value, int(at.timestamp() * 1000)))
    return out


@pytest.fixture(scope="module")
async def spaces(
    infra: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Spaces]:
    own, sandbox, spare = [await new_namespace(infra, tmp_path_factory) for _ in range(3)]
    workers = [start_worker(own, name="own-worker"), start_worker(sandbox, name="sb-worker")]
    api, base = start_api(
        own,
        env={
            "IOC_API__MAX_NAMESPACES": "1",
            "IOC_API__RATE_PER_S": "1000",
            "IOC_API__RATE_BURST": "1000",
        },
    )
    try:
        await produce(own.settings, raw_topic(own.settings, "traffic"), flow("own-ix", "G", T0))
        # Three congested minutes, made final by the free ones after: an alert opens.
        await produce(
            sandbox.settings, raw_topic(sandbox.settings, "traffic"), flow("sb-jam", "BBBBBGG", T0)
        )
        holds = "SELECT count(*) = 1 FROM {s}.entity_state"
        await eventually(lambda: db_value(own.settings, holds), within_s=30, what=holds)
        holds = "SELECT count(*) = 1 FROM {s}.alert WHERE state = 'open'"
        await eventually(lambda: db_value(sandbox.settings, holds), within_s=30, what=holds)
        yield Spaces(base, own, sandbox, spare)
    finally:
        api.stop()
        for worker in workers:
            worker.stop()
        for namespace in (own, sandbox, spare):
            await drop_namespace(namespace.settings)


def names(spaces: Spaces) -> tuple[str, str, str]:
    return (
        spaces.own.settings.namespace,
        spaces.sandbox.settings.namespace,
        spaces.spare.settings.namespace,
    )


def test_engineers_list_every_namespace_with_the_apis_own_first(spaces: Spaces) -> None:
    own, sandbox, spare = names(spaces)
    response = spaces.get("/v1/namespaces")
    assert response.status_code == 200, response.text
    items = {item["name"]: item for item in response.json()["items"]}
    assert response.json()["items"][0]["name"] == own
    assert (items[own]["own"], items[own]["entities"]) == (True, 1)
    assert (items[sandbox]["own"], items[sandbox]["entities"]) == (False, 1)
    assert items[sandbox]["newest"].startswith((T0 + timedelta(minutes=6)).date().isoformat())
    assert (items[spare]["entities"], items[spare]["newest"]) == (0, None)
    # Operators see only the API's own; integrators nothing.
    operators = spaces.get("/v1/namespaces", "view")
    assert [item["name"] for item in operators.json()["items"]] == [own]
    assert spaces.get("/v1/namespaces", "publish:traffic").status_code == 403


def test_every_read_route_reads_the_named_namespace(spaces: Spaces) -> None:
    own, sandbox, _ = names(spaces)
    mine = [e["id"] for e in spaces.get("/v1/traffic/entities").json()["items"]]
    theirs = spaces.get("/v1/traffic/entities", namespace=sandbox).json()["items"]
    assert mine == ["own-ix"]
    assert [e["id"] for e in theirs] == ["sb-jam"]
    assert spaces.get("/v1/traffic/entities", namespace=own).json()["items"][0]["id"] == "own-ix"

    detail = spaces.get("/v1/traffic/entities/sb-jam", namespace=sandbox)
    assert detail.status_code == 200, detail.text
    assert spaces.get("/v1/traffic/entities/sb-jam").status_code == 404

    series = spaces.get(
        "/v1/traffic/entities/sb-jam/series",
        namespace=sandbox,
        metric="vehicles",
        bucket="1m",
        **{"from": T0.isoformat(), "to": (T0 + timedelta(minutes=7)).isoformat()},
    )
    assert series.status_code == 200, series.text
    assert [p["count"] for p in series.json()["points"]] == [6] * 7

    tiles = {t["domain"]: t for t in spaces.get("/v1/overview", namespace=sandbox).json()["tiles"]}
    assert tiles["traffic"]["reporting"] == 1
    assert sum(tiles["traffic"]["alerts_open"].values()) == 1
    own_tiles = {t["domain"]: t for t in spaces.get("/v1/overview").json()["tiles"]}
    assert sum(own_tiles["traffic"]["alerts_open"].values()) == 0

    alerts = spaces.get("/v1/alerts", namespace=sandbox).json()["items"]
    assert [(a["entity_id"], a["state"]) for a in alerts] == [("sb-jam", "open")]
    assert spaces.get("/v1/alerts").json()["items"] == []


def test_only_engineers_name_another_namespace(spaces: Spaces) -> None:
    own, sandbox, _ = names(spaces)
    for role in ("view", "publish:traffic", "replay"):
        refused = spaces.get("/v1/overview", role, namespace=sandbox)
        assert refused.status_code == 403, (role, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
    assert "replay" in spaces.get("/v1/overview", "view", namespace=sandbox).json()["detail"]
    # Naming the API's own namespace is no privilege.
    assert spaces.get("/v1/overview", "view", namespace=own).status_code == 200
    assert spaces.get("/v1/overview", "admin", namespace=sandbox).status_code == 200


@pytest.mark.parametrize("name", ["Sandbox", "1abc", "a" * 32, "sand-box", "../live", "a b"])
def test_a_malformed_namespace_is_422(spaces: Spaces, name: str) -> None:
    response = spaces.get("/v1/overview", namespace=name)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


def test_an_unknown_namespace_is_404(spaces: Spaces) -> None:
    response = spaces.get("/v1/overview", namespace="nosuchspace")
    assert response.status_code == 404, response.text
    assert response.json()["type"].endswith("/unknown-namespace")


async def test_the_live_feed_and_alert_actions_of_a_named_namespace(spaces: Spaces) -> None:
    _, sandbox, _ = names(spaces)
    ws = await open_ws(spaces.base, key=ENGINEER, namespace=sandbox)
    try:
        await eventually(
            ws.received.so_far, until=lambda r: bool(r.messages), within_s=20, what="a snapshot"
        )
        entities = snapshot_of(ws.received)["entities"]
        assert [e["entity_id"] for e in entities] == ["sb-jam"]  # type: ignore[attr-defined]
        # Something new in the sandbox comes through its feed.
        later = T0 + timedelta(minutes=7)
        await produce(
            spaces.sandbox.settings,
            raw_topic(spaces.sandbox.settings, "traffic"),
            flow("sb-new", "G", later),
        )
        await eventually(
            ws.received.so_far,
            until=lambda r: any(m["entity"]["entity_id"] == "sb-new" for m in r.of("entity")),
            within_s=30,
            what="the sandbox's new entity",
        )
        # An engineer acknowledges the sandbox's alert; the sandbox's feed shows it.
        [alert] = spaces.get("/v1/alerts", namespace=sandbox).json()["items"]
        acked = spaces.post(f"/v1/alerts/{alert['alert_id']}/ack", namespace=sandbox)
        assert acked.status_code == 200, acked.text
        assert acked.json()["acknowledged_by"] == "engineer"
        await eventually(
            ws.received.so_far,
            until=lambda r: any(m["alert"]["state"] == "acknowledge" for m in r.of("alert")),
            within_s=20,
            what="the acknowledgement on the sandbox's feed",
        )
        [again] = spaces.get("/v1/alerts", namespace=sandbox).json()["items"]
        assert again["state"] == "acknowledged"
        # Nothing of it reached the API's own namespace.
        assert spaces.get("/v1/traffic/entities/sb-new").status_code == 404
    finally:
        await ws.close()


async def test_operators_cannot_open_another_namespaces_feed(spaces: Spaces) -> None:
    _, sandbox, _ = names(spaces)
    code, reason = await ws_refusal(spaces.base, key=KEYS["view"], namespace=sandbox)
    assert (code, reason.split(":")[0]) == (1008, "forbidden")


async def test_namespaces_open_at_once_are_bounded(spaces: Spaces) -> None:
    _, sandbox, spare = names(spaces)
    ws = await open_ws(spaces.base, key=ENGINEER, namespace=sandbox)
    try:
        await eventually(
            ws.received.so_far, until=lambda r: bool(r.messages), within_s=20, what="a snapshot"
        )
        # The sandbox is watched, and one other namespace is all this API may hold open.
        busy = spaces.get("/v1/overview", namespace=spare)
        assert busy.status_code == 503, busy.text
        assert busy.headers["retry-after"] == "30"
        assert busy.json()["type"].endswith("/too-many-namespaces")
    finally:
        await ws.close()
    # Nobody watches the sandbox now (once the server has seen the close): it gives way.
    opened: list[httpx.Response] = []

    def spare_opens() -> bool:
        opened.append(spaces.get("/v1/overview", namespace=spare))
        return opened[-1].status_code == 200

    eventually(spare_opens, within_s=10, what="the spare namespace to open")
    assert all(t["reporting"] == 0 for t in opened[-1].json()["tiles"])
