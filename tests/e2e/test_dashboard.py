"""The operations-centre dashboard in a real browser, against a real worker and API.

Events go into Kafka like an integrator's; the page sees them through the live feed and
the API's reads. Every test leaves a screenshot in ``test-artifacts/e2e/``.
"""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from playwright.async_api import Page, WebSocketRoute, expect

from ioc.db.registry import load_registry
from ioc.settings import Settings
from streams.topics import raw_topic
from tests.utils.apikeys import KEYS, auth
from tests.utils.browser import ARTIFACTS, Browser, Dashboard
from tests.utils.events import Record, alarm_value, flow_value
from tests.utils.eventually import eventually
from tests.utils.kafka import produce
from tests.utils.namespaces import drop_namespace, new_namespace
from tests.utils.services import start_worker

VIEW_KEY = KEYS["view"]
#: On a fresh machine the first test's setup installs Chromium from Debian's packages.
pytestmark = pytest.mark.timeout(600)


def detection(entity: str, at: datetime, *, kind: str, confidence: float) -> Record:
    """One camera detection CloudEvent."""
    value = orjson.dumps(
        {
            "specversion": "1.0",
            "id": f"{entity}-{kind}-{at.timestamp()}",
            "source": "/tests/e2e",
            "type": "city.security.detection.v1",
            "time": at,
            "subject": entity,
            "data": {"kind": kind, "confidence": confidence, "count": 1},
        }
    )
    return Record(entity.encode(), value, int(at.timestamp() * 1000))


def alarm(entity: str, at: datetime, *, kind: str) -> Record:
    """One security alarm CloudEvent."""
    return Record(entity.encode(), alarm_value(entity, at, kind=kind), int(at.timestamp() * 1000))


def flow(entity: str, at: datetime, vehicles: int) -> Record:
    return Record(
        entity.encode(),
        flow_value(entity, at, vehicles=vehicles, event_id=f"{entity}-{at.timestamp()}"),
        int(at.timestamp() * 1000),
    )


async def get(board: Dashboard, path: str, **params: object) -> Any:
    """GET a route of the dashboard's API with the view key; the JSON body."""
    query = {k: v.isoformat() if isinstance(v, datetime) else str(v) for k, v in params.items()}
    async with httpx.AsyncClient(base_url=board.base, headers=auth("view")) as client:
        response = await client.get(path, params=query)
    response.raise_for_status()
    return response.json()


async def open_live(page: Page, board: Dashboard) -> None:
    """Open the page with the view key in the address, and wait for the live feed."""
    await page.goto(f"{board.base}/?key={VIEW_KEY}")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=15_000)
    await expect(page.locator("#tiles .tile")).to_have_count(4)


async def test_page_loads_with_map_tiles_and_no_console_errors(
    dashboard: Dashboard, browser: Browser
) -> None:
    page = browser.page
    # The page itself needs no key; its data calls do.
    async with httpx.AsyncClient(base_url=dashboard.base) as client:
        assert (await client.get("/")).status_code == 200
        assert (await client.get("/v1/areas")).status_code == 401

    await open_live(page, dashboard)
    # The key left the address bar for the tab's sessionStorage.
    assert "key=" not in page.url
    assert await page.evaluate("sessionStorage.getItem('ioc.key')") == VIEW_KEY
    # Keyboard: the first Tab reaches the skip link, which leads to the alerts.
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.className") == "skip"
    await page.keyboard.press("Enter")
    assert await page.evaluate("document.activeElement.id") == "alerts"

    # The map: 13 zones, 54 commune-level units, a marker per registered entity.
    await expect(page.locator("#map polygon.zone")).to_have_count(13)
    await expect(page.locator("#map polygon.commune")).to_have_count(54)
    await expect(page.locator("#map .marker")).to_have_count(len(dashboard.city.entities))
    # Vietnamese first, with its diacritics; English on request, and back.
    await expect(page.locator("h1")).to_have_text("Trung tâm Điều hành Thông minh Quảng Ninh")
    await expect(page.locator(".tile[data-domain='traffic'] h3")).to_have_text("Giao thông")
    await page.locator("#lang").click()
    await expect(page.locator("h1")).to_have_text("Quang Ninh Intelligent Operations Centre")
    await expect(page.locator(".tile[data-domain='traffic'] h3")).to_have_text("Traffic")
    assert await page.evaluate("document.documentElement.lang") == "en"
    await page.locator("#lang").click()
    await expect(page.locator("h1")).to_have_text("Trung tâm Điều hành Thông minh Quảng Ninh")

    # An operator's key reads the API's own namespace only: no switcher.
    await expect(page.locator("#ns-wrap")).to_be_hidden()
    assert browser.errors == []


async def test_tiles_change_within_3_s_of_events(dashboard: Dashboard, browser: Browser) -> None:
    page = browser.page
    await open_live(page, dashboard)
    tile = page.locator(".tile[data-domain='traffic']")
    before = int(await tile.get_attribute("data-reporting") or "0")

    entities = [dashboard.entity("traffic", "intersection") for _ in range(3)]
    at = dashboard.clock.minutes(1) + timedelta(seconds=10)
    await produce(
        dashboard.settings,
        raw_topic(dashboard.settings, "traffic"),
        [flow(e, at + timedelta(seconds=i), 40 + i) for i, e in enumerate(entities)],
    )
    produced = time.monotonic()
    await expect(tile).to_have_attribute("data-reporting", str(before + 3), timeout=3_000)
    assert time.monotonic() - produced <= 3.0
    # The tile's figures are the newest minute's: these three readings.
    vehicles = tile.locator("[data-metric='vehicles']")
    await expect(vehicles).to_have_attribute("data-value", str(40 + 41 + 42), timeout=3_000)
    # Their markers turned from "no data" to "ok".
    for entity in entities:
        marker = page.locator(f"#map .marker[data-entity='{entity}']")
        await expect(marker).to_have_attribute("data-state", "ok")
    assert browser.errors == []


async def test_a_camera_the_registry_does_not_place_counts_in_the_security_tile(
    dashboard: Dashboard, browser: Browser
) -> None:
    """An integrator's camera not yet registered rings an alarm: the Security tile (the
    province's live tile) counts its alarm, its open alert and itself, and says that one
    entity reporting is placed nowhere in the registry."""
    page = browser.page
    await open_live(page, dashboard)
    tile = page.locator(".tile[data-domain='security']")
    alarms = tile.locator("[data-metric='alarms']")
    await expect(tile).to_have_attribute("data-unplaced", "0")
    before = int(await alarms.get_attribute("data-value") or "0")
    camera = "qn-cam-unregistered-e2e"
    at = dashboard.clock.minutes(1) + timedelta(seconds=20)
    topic = raw_topic(dashboard.settings, "security")
    await produce(dashboard.settings, topic, [alarm(camera, at, kind="fire")])
    await expect(tile).to_have_attribute("data-unplaced", "1", timeout=10_000)
    await expect(alarms).to_have_attribute("data-value", str(before + 1), timeout=10_000)
    await expect(tile.locator(".unplaced")).to_have_text("gồm 1 thiết bị chưa đăng ký vị trí")
    await expect(tile.locator(".badge.sev-critical")).to_be_visible(timeout=10_000)
    await page.screenshot(path=str(ARTIFACTS / "unplaced_camera_tile.png"))
    assert browser.errors == []


async def test_intrusion_alert_appears_and_is_acknowledged_then_resolved(
    dashboard: Dashboard, browser: Browser
) -> None:
    page = browser.page
    await open_live(page, dashboard)
    camera = dashboard.entity("security", "camera")
    start = dashboard.clock.minutes(5)
    # An intrusion at >= 0.8 confidence: the rule foresees an alert from the minute seen so
    # far, before it is final. It is listed as provisional, not marked, not read out.
    await produce(
        dashboard.settings,
        raw_topic(dashboard.settings, "security"),
        [detection(camera, start + timedelta(seconds=5), kind="intrusion", confidence=0.93)],
    )
    item = page.locator(f"#alert-list [data-entity='{camera}']")
    await expect(item).to_have_count(1, timeout=30_000)
    await expect(item).to_have_attribute("data-provisional", "true")
    await expect(item.locator(".badge.provisional")).to_have_text("Dự báo")
    marker = page.locator(f"#map .marker[data-entity='{camera}']")
    announce = page.locator("#announce")
    assert await marker.get_attribute("data-state") != "critical"
    assert "Phát hiện xâm nhập trái phép" not in (await announce.text_content() or "")
    # A quiet reading four minutes on makes the intrusion's minute final (one minute plus
    # two of lateness): the rule opens the alert it foresaw, and the page confirms it.
    await produce(
        dashboard.settings,
        raw_topic(dashboard.settings, "security"),
        [detection(camera, start + timedelta(minutes=4), kind="crowd", confidence=0.3)],
    )
    await expect(item).to_have_attribute("data-provisional", "false", timeout=30_000)
    await expect(item).to_have_count(1)
    await expect(item).to_have_attribute("data-state", "open")
    await expect(item).to_have_attribute("data-severity", "critical")
    await expect(item.locator(".alert-title")).to_have_text("Phát hiện xâm nhập trái phép")
    await expect(marker).to_have_attribute("data-state", "critical")
    # A critical alert is read out to screen readers; a warning is listed, not read out.
    await expect(announce).to_contain_text("Phát hiện xâm nhập trái phép")
    other = dashboard.entity("security", "camera")
    await produce(
        dashboard.settings,
        raw_topic(dashboard.settings, "security"),
        [alarm(other, start + timedelta(minutes=4, seconds=5), kind="tamper")],
    )
    tampered = page.locator(f"#alert-list [data-entity='{other}']")
    await expect(tampered).to_have_attribute("data-severity", "warning", timeout=10_000)
    await expect(announce).to_contain_text("Phát hiện xâm nhập trái phép")

    # Acknowledge from the keyboard: focus the button, press Enter.
    await item.locator("button[data-action='ack']").focus()
    await page.keyboard.press("Enter")
    await expect(item).to_have_attribute("data-state", "acknowledged")
    await expect(item.locator("button[data-action='ack']")).to_have_count(0)
    await expect(marker).to_have_attribute("data-state", "acknowledged")
    # Focus stayed in the alert, on the button that remains.
    focused = await page.evaluate("document.activeElement.dataset.action")
    assert focused == "resolve"
    alerts = await get(dashboard, "/v1/alerts", entity=camera)
    assert [(a["state"], a["acknowledged_by"]) for a in alerts["items"]] == [
        ("acknowledged", "view")
    ]

    await item.locator("button[data-action='resolve']").click()
    await expect(item).to_have_count(0)
    alerts = await get(dashboard, "/v1/alerts", entity=camera)
    assert [(a["state"], a["resolved_by"]) for a in alerts["items"]] == [("resolved", "view")]
    assert browser.errors == []


async def test_drill_down_chart_shows_the_entity_history(
    dashboard: Dashboard, browser: Browser
) -> None:
    page = browser.page
    entity = dashboard.entity("traffic", "intersection")
    start = dashboard.clock.minutes(3)
    # Two readings a minute for three minutes: 15, 27 and 39 vehicles per minute.
    readings = [(0, 10), (0, 5), (1, 20), (1, 7), (2, 30), (2, 9)]
    await produce(
        dashboard.settings,
        raw_topic(dashboard.settings, "traffic"),
        [
            flow(entity, start + timedelta(minutes=m, seconds=10 + 20 * (i % 2)), v)
            for i, (m, v) in enumerate(readings)
        ],
    )
    series = f"/v1/traffic/entities/{entity}/series"
    end = start + timedelta(minutes=3)

    async def sums() -> list[float]:
        body = await get(dashboard, series, metric="vehicles", **{"from": start, "to": end})
        return [p["sum"] for p in body["points"]]

    await eventually(
        sums,
        until=lambda sums: sums == [15.0, 27.0, 39.0],
        within_s=30,
        interval_s=0.3,
        what="the sink to write the three minutes' vehicles",
    )

    await open_live(page, dashboard)
    name = next(e.name_vi or e.name for e in dashboard.city.entities if e.id == entity)
    # Find it from the keyboard, by its Vietnamese name, and open it.
    await page.locator("#find-input").fill(f"{name} — {entity}")
    await page.locator("#find-input").press("Enter")
    dialog = page.locator("#detail")
    await expect(dialog).to_be_visible()
    await expect(dialog.locator("#detail-title")).to_have_text(name)
    chart = dialog.locator("#chart")
    await expect(chart).to_have_attribute("data-metric", "vehicles")
    await expect(chart).to_have_attribute("data-points", "3")
    await expect(chart.locator("circle")).to_have_count(3)
    values = await chart.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.value)")
    assert values == ["15", "27", "39"]
    # Another metric of the same entity: average speed, 42.5 km/h in every reading.
    await dialog.locator("button[data-metric='avg_speed_kmh']").click()
    await expect(chart).to_have_attribute("data-metric", "avg_speed_kmh")
    values = await chart.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.value)")
    assert values == ["42.5", "42.5", "42.5"]
    await page.screenshot(path=str(ARTIFACTS / "test_drill_down_chart_open.png"))
    # Escape closes it.
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    assert browser.errors == []


async def test_a_refused_key_brings_the_sign_in_form_back(
    dashboard: Dashboard, browser: Browser
) -> None:
    page = browser.page
    await page.goto(f"{dashboard.base}/?key=ioc_not-a-key-of-this-api")
    await expect(page.locator("#login")).to_be_visible(timeout=15_000)
    await expect(page.locator("#login-error")).to_contain_text("Khóa không hợp lệ")
    assert await page.evaluate("sessionStorage.getItem('ioc.key')") is None
    # The form signs in with a good key, from the keyboard.
    await expect(page.locator("#key")).to_be_focused()
    await page.keyboard.type(VIEW_KEY)
    await page.keyboard.press("Enter")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=15_000)
    await expect(page.locator("#login")).to_be_hidden()


async def test_page_reconnects_after_the_api_restarts(
    dashboard: Dashboard, browser: Browser
) -> None:
    page = browser.page
    await open_live(page, dashboard)
    conn = page.locator("#conn")
    await expect(conn).to_have_attribute("data-snapshots", "1")

    assert dashboard.api is not None
    dashboard.api.stop()
    await expect(conn).to_have_attribute("data-state", "retrying", timeout=10_000)
    await expect(page.locator("#conn-text")).to_contain_text("Mất kết nối")
    dashboard.start_api()
    # Back by itself, with a fresh snapshot: the old position belongs to the old process.
    await expect(conn).to_have_attribute("data-state", "live", timeout=30_000)
    await expect(conn).to_have_attribute("data-snapshots", "2")
    await expect(conn).to_have_attribute("data-snapshot", "unknown-id")

    # And the feed carries news again.
    tile = page.locator(".tile[data-domain='traffic']")
    before = int(await tile.get_attribute("data-reporting") or "0")
    entity = dashboard.entity("traffic", "intersection")
    at = dashboard.clock.minutes(1) + timedelta(seconds=5)
    await produce(
        dashboard.settings, raw_topic(dashboard.settings, "traffic"), [flow(entity, at, 12)]
    )
    await expect(tile).to_have_attribute("data-reporting", str(before + 1), timeout=3_000)
    marker = page.locator(f"#map .marker[data-entity='{entity}']")
    await expect(marker).to_have_attribute("data-state", "ok")


async def test_an_engineer_switches_to_a_sandbox_and_watches_it_live(
    dashboard: Dashboard,
    browser: Browser,
    infra: Settings,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # A sandbox with the same city, filled by a worker of its own (as a replay fills one).
    sandbox = await new_namespace(infra, tmp_path_factory)
    settings, name = sandbox.settings, sandbox.settings.namespace
    await load_registry(settings, dashboard.city)
    worker = start_worker(sandbox, name="sandbox-worker")
    try:
        traffic = [e.id for e in dashboard.city.entities if e.domain == "traffic"][:3]
        at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
        topic = raw_topic(settings, "traffic")
        await produce(settings, topic, [flow(e, at, 7) for e in traffic[:2]])
        async with httpx.AsyncClient(base_url=dashboard.base, headers=auth("engineer")) as client:

            async def reporting() -> int:
                body = (await client.get("/v1/overview", params={"namespace": name})).json()
                count: int = {t["domain"]: t for t in body["tiles"]}["traffic"]["reporting"]
                return count

            # It used to give up here silently and let the page checks below fail.
            await eventually(
                reporting,
                until=lambda count: count == 2,
                within_s=30,
                interval_s=0.3,
                what="the sandbox's overview to show 2 traffic entities reporting",
            )
        own = await get(dashboard, "/v1/overview")
        own_reporting = {t["domain"]: t for t in own["tiles"]}["traffic"]["reporting"]

        page = browser.page
        await page.goto(f"{dashboard.base}/?key={KEYS['engineer']}")
        await expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=15_000)
        switcher = page.locator("#ns")
        await expect(page.locator("#ns-wrap")).to_be_visible()
        # The API's own namespace comes first and is the one shown.
        await expect(switcher.locator("option").first).to_have_text(dashboard.settings.namespace)
        tile = page.locator(".tile[data-domain='traffic']")
        await expect(tile).to_have_attribute("data-reporting", str(own_reporting))

        conn = page.locator("#conn")
        snapshots = int(await conn.get_attribute("data-snapshots") or "0")
        await switcher.select_option(name)
        await expect(tile).to_have_attribute("data-reporting", "2", timeout=5_000)
        # The feed started over on the sandbox: its snapshot came.
        await expect(conn).to_have_attribute("data-snapshots", str(snapshots + 1), timeout=15_000)
        await expect(conn).to_have_attribute("data-state", "live")
        # The sandbox's live feed: a third entity reports, the tile follows.
        await produce(settings, topic, [flow(traffic[2], at + timedelta(seconds=5), 9)])
        await expect(tile).to_have_attribute("data-reporting", "3", timeout=5_000)
        marker = page.locator(f"#map .marker[data-entity='{traffic[2]}']")
        await expect(marker).to_have_attribute("data-state", "ok")

        # Back to the API's own namespace.
        await switcher.select_option(dashboard.settings.namespace)
        await expect(tile).to_have_attribute("data-reporting", str(own_reporting), timeout=5_000)
        assert browser.errors == []
    finally:
        worker.stop()
        await drop_namespace(settings)


async def test_the_lists_say_loading_until_the_feeds_snapshot_comes(
    dashboard: Dashboard, browser: Browser
) -> None:
    """Before the live feed's snapshot, the page does not know the open alerts and
    incidents: the lists say so ("loading"), not "no open alerts", which an operator
    would take as all clear. The feed is held back here, then let through."""
    page = browser.page
    release = asyncio.Event()

    async def hold(socket: WebSocketRoute) -> None:
        await release.wait()
        socket.connect_to_server()

    await page.route_web_socket(re.compile(r"/v1/live"), hold)
    await page.goto(f"{dashboard.base}/?key={VIEW_KEY}")
    await expect(page.locator("#tiles .tile")).to_have_count(4)
    for part in ("#alerts-empty", "#incidents-empty"):
        await expect(page.locator(part)).to_have_text("Đang tải…")
    await page.screenshot(path=str(ARTIFACTS / "dashboard-before-snapshot.png"))
    release.set()
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=15_000)
    await expect(page.locator("#alerts-empty")).to_have_text("Không có cảnh báo đang mở.")
    await expect(page.locator("#incidents-empty")).to_have_text("Không có sự cố đang mở.")
    # In English on request, the same.
    await page.locator("#lang").click()
    await expect(page.locator("#alerts-empty")).to_have_text("No open alerts.")
    assert browser.errors == []
