"""The dashboard's place view in a real browser: ten minutes of the simulator's city go
through Kafka, the worker and the sink like a live day; the map shows Quang Ninh's real
coastline under the schematic areas; a click on a zone opens its panel, whose charts hold
the points of ``GET /v1/areas/{id}/series``, whose alerts are the zone's, and whose links
lead down to a commune and its entities and up to the province. Screenshots of the map
and of the panel go to ``test-artifacts/e2e/``.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from playwright.async_api import Page, expect

from simulators.engine import SimConfig, Simulation
from streams.topics import raw_topic
from tests.utils.apikeys import KEYS, auth
from tests.utils.browser import ARTIFACTS, CITY_ENTITIES, Browser, Dashboard
from tests.utils.events import Record, alarm_value
from tests.utils.eventually import eventually
from tests.utils.kafka import produce

VIEW_KEY = KEYS["view"]
#: On a fresh machine the setup installs Chromium from Debian's packages.
pytestmark = pytest.mark.timeout(300)
#: Simulated minutes of the whole city (about 3,400 events at 120 entities).
SIMULATED_MINUTES = 10
ZONE, ZONE_VI = "halong", "Hạ Long"
#: The shipped rule a tampered camera's alarm raises.
TAMPER_RULE = "security-alarm-tamper"
COMMUNE, COMMUNE_VI = "bai-chay", "Bãi Cháy"
PROVINCE, PROVINCE_VI = "quang-ninh", "Quảng Ninh"


async def get(board: Dashboard, path: str, **params: object) -> Any:
    """GET a route of the dashboard's API with the view key; the JSON body."""
    async with httpx.AsyncClient(base_url=board.base, headers=auth("view")) as client:
        response = await client.get(path, params={k: str(v) for k, v in params.items()})
    response.raise_for_status()
    return response.json()


async def simulate(board: Dashboard) -> tuple[datetime, float]:
    """The simulator's events of the test city for ten minutes, into each domain's topic;
    the start of those minutes and the vehicles the zone's junctions and roads counted."""
    start = board.clock.minutes(SIMULATED_MINUTES)
    config = SimConfig(
        start=start, entities=CITY_ENTITIES, seed=0, duration_s=SIMULATED_MINUTES * 60
    )
    in_zone = {e.id for e in board.city.entities if e.zone == ZONE}
    vehicles = 0.0
    by_domain: dict[str, list[Record]] = defaultdict(list)
    for event in Simulation(config, city=board.city).events():
        by_domain[event.domain].append(Record(event.key, event.value, event.time_ms))
        cloud_event = orjson.loads(event.value)
        if cloud_event["subject"] in in_zone and cloud_event["type"] == "city.traffic.flow.v1":
            vehicles += cloud_event["data"]["vehicles"]
    for domain, records in by_domain.items():
        await produce(board.settings, raw_topic(board.settings, domain), records)
    return start, vehicles


async def settled_series(
    board: Dashboard, start: datetime, vehicles: float
) -> list[dict[str, Any]]:
    """The zone's vehicles in 5-minute buckets once the sink has written all of them: the
    route's buckets add up to the vehicles the simulator sent for the zone's entities."""
    path = f"/v1/areas/{ZONE}/series"
    params = {
        "domain": "traffic",
        "metric": "vehicles",
        "from": start.isoformat(),
        "to": (start + timedelta(minutes=SIMULATED_MINUTES)).isoformat(),
        "bucket": "5m",
    }

    async def points() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = (await get(board, path, **params))["points"]
        return found

    return await eventually(
        points,
        until=lambda points: sum(p["value"] for p in points) == vehicles,
        within_s=40,
        interval_s=1,
        what=f"the zone's vehicles to add up to {vehicles}",
    )


async def chart_values(page: Page, domain: str) -> list[float]:
    figure = page.locator(f"#area figure[data-domain='{domain}']")
    rows = figure.locator("tbody tr")
    values: list[str] = await rows.evaluate_all("rows => rows.map(r => r.dataset.value)")
    return [float(v) for v in values]


async def route_points(
    board: Dashboard, page: Page, domain: str, area: str = ZONE
) -> list[dict[str, Any]]:
    """What the route answers for the chart's own metric, range and bucket."""
    figure = page.locator(f"#area figure[data-domain='{domain}']")
    asked = await figure.evaluate("f => ({...f.dataset})")
    body = await get(
        board,
        f"/v1/areas/{area}/series",
        domain=domain,
        metric=asked["metric"],
        bucket=asked["bucket"],
        **{"from": asked["from"], "to": asked["to"]},
    )
    points: list[dict[str, Any]] = body["points"]
    return points


async def test_a_zone_opens_its_panel_with_the_area_series_alerts_and_links(
    dashboard: Dashboard, browser: Browser
) -> None:
    started = time.monotonic()
    start, sent = await simulate(dashboard)
    assert sent > 0
    # A tampered camera of the zone: a warning alert of the zone, not of the others.
    camera = next(
        e.id for e in dashboard.city.entities if e.zone == ZONE and e.domain == "security"
    )
    tamper = start + timedelta(minutes=SIMULATED_MINUTES - 1, seconds=30)
    await produce(
        dashboard.settings,
        raw_topic(dashboard.settings, "security"),
        [
            Record(
                camera.encode(),
                alarm_value(camera, tamper, kind="tamper"),
                int(tamper.timestamp() * 1000),
            )
        ],
    )
    vehicles = await settled_series(dashboard, start, sent)

    page = browser.page
    await page.goto(f"{dashboard.base}/?key={VIEW_KEY}")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=15_000)
    # Natural Earth's coastline under the areas, China's side apart; the note says so.
    await expect(page.locator("#map path.coast")).to_have_count(2)
    await expect(page.locator("#map path.coast[data-country='VN']")).to_have_count(1)
    await expect(page.locator("#map-note")).to_contain_text("Natural Earth")
    await expect(page.locator("#map polygon.commune")).to_have_count(54)
    # The tamper alert by its rule: the simulated camera may raise others of its own
    # (its detections follow the hour of the day, and the test runs at any hour).
    tampered = f"[data-rule='{TAMPER_RULE}'][data-entity='{camera}']"
    await expect(page.locator(f"#alert-list {tampered}")).to_have_count(1, timeout=15_000)
    # The header tiles follow the feed's province tile (contract B) once it comes.
    await expect(page.locator("#tiles")).to_have_attribute("data-source", "live", timeout=10_000)
    province = (await get(dashboard, f"/v1/areas/{PROVINCE}"))["domains"]["traffic"]
    await expect(page.locator(".tile[data-domain='traffic']")).to_have_attribute(
        "data-reporting", str(province["reporting"]), timeout=10_000
    )
    await page.locator("#map-panel").screenshot(path=str(ARTIFACTS / "area_panel_map.png"))

    # A click on the zone's name opens its panel.
    await page.locator(f"#map .zone-label[data-area='{ZONE}']").click()
    dialog = page.locator("#area")
    await expect(dialog).to_be_visible()
    await expect(dialog.locator("#area-title")).to_have_text(ZONE_VI)
    await expect(dialog.locator("#area-meta")).to_contain_text("Vùng")
    await expect(page.locator(f"#map .zones [data-zone='{ZONE}']")).to_have_class(
        "zone area-selected"
    )
    # What its entities report now, per domain, as the registry counts them.
    summary = await get(dashboard, f"/v1/areas/{ZONE}")
    for domain, counts in summary["domains"].items():
        await expect(dialog.locator(f"#area-now [data-domain='{domain}']")).to_have_attribute(
            "data-reporting", str(counts["reporting"])
        )
    # Its traffic chart: vehicles, the route's points for the range it shows.
    traffic = dialog.locator("figure[data-domain='traffic']")
    await expect(traffic).to_have_attribute("data-metric", "vehicles", timeout=10_000)
    points = await route_points(dashboard, page, "traffic")
    assert points, "the chart's range holds the simulated minutes"
    await expect(traffic).to_have_attribute("data-points", str(len(points)))
    await expect(traffic.locator("circle")).to_have_count(len(points))
    assert await chart_values(page, "traffic") == [p["value"] for p in points]
    # The simulated buckets are among them, as the route gave them before the page opened.
    shown = {p["t"]: p["value"] for p in points}
    assert all(shown[p["t"]] == p["value"] for p in vehicles)
    # A chart per domain the zone has entities of, and the centre's own.
    await expect(dialog.locator("figure.chart")).to_have_count(5)
    for domain in ("hospital", "school", "security"):
        figure = dialog.locator(f"figure[data-domain='{domain}']")
        await expect(figure).to_have_attribute("data-metric", re.compile(".+"), timeout=10_000)
        count = len(await route_points(dashboard, page, domain))
        await expect(figure).to_have_attribute("data-points", str(count))
    # The metric picker: average speed, a mean of the readings.
    await dialog.locator(
        "section[data-domain='traffic'] button[data-metric='avg_speed_kmh']"
    ).click()
    await expect(traffic).to_have_attribute("data-metric", "avg_speed_kmh")
    speeds = await route_points(dashboard, page, "traffic")
    assert speeds
    assert await chart_values(page, "traffic") == [p["value"] for p in speeds]
    await expect(
        dialog.locator("section[data-domain='traffic'] button[aria-pressed='true']")
    ).to_have_attribute("data-metric", "avg_speed_kmh")

    # Its open alerts: the tampered camera's, and nothing of another zone.
    stored = await get(dashboard, "/v1/alerts", area=ZONE, state="open")
    assert camera in {a["entity_id"] for a in stored["items"]}
    alerts = dialog.locator("#area-alerts li[data-alert]")
    tamper_item = dialog.locator(f"#area-alerts li[data-rule='{TAMPER_RULE}']")
    await expect(tamper_item.locator(f"button[data-entity='{camera}']")).to_have_count(1)
    listed = await alerts.locator("button[data-entity]").evaluate_all(
        "buttons => buttons.map(b => b.dataset.entity)"
    )
    zone_of = {e.id: e.zone for e in dashboard.city.entities}
    assert {zone_of[e] for e in listed} == {ZONE}
    await page.screenshot(path=str(ARTIFACTS / "area_panel_zone.png"))

    # Down to a commune, whose panel lists its entities and links up to zone and province.
    await dialog.locator(f"#area-links button[data-area='{COMMUNE}']").click()
    await expect(dialog.locator("#area-title")).to_have_text(COMMUNE_VI)
    await expect(dialog.locator("#area-meta")).to_contain_text("Phường")
    entities = [e for e in dashboard.city.entities if e.commune == COMMUNE]
    await expect(dialog.locator("#area-links button[data-entity]")).to_have_count(len(entities))
    await expect(dialog.locator(f"#area-links button[data-area='{ZONE}']")).to_have_count(1)
    # An entity of it opens its drill-down above the panel; Escape goes back to the panel.
    entity = entities[0]
    await dialog.locator(f"#area-links button[data-entity='{entity.id}']").click()
    await expect(page.locator("#detail")).to_be_visible()
    await expect(page.locator("#detail-title")).to_have_text(entity.name_vi or entity.name)
    await page.keyboard.press("Escape")
    await expect(page.locator("#detail")).to_be_hidden()
    await expect(dialog).to_be_visible()
    # Up to the province: its zones below it.
    await dialog.locator(f"#area-links button[data-area='{PROVINCE}']").click()
    await expect(dialog.locator("#area-title")).to_have_text(PROVINCE_VI)
    await expect(dialog.locator("#area-links button[data-area]")).to_have_count(13)
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()

    # From the keyboard: a zone's name takes the focus and Enter opens it, in English too.
    await page.locator("#lang").click()
    label = page.locator(f"#map .zone-label[data-area='{ZONE}']")
    await expect(label).to_have_attribute("aria-label", "Open the panel of Ha Long")
    await label.focus()
    await page.keyboard.press("Enter")
    await expect(dialog.locator("#area-title")).to_have_text("Ha Long")
    await expect(dialog.locator("#area-meta")).to_contain_text("Zone")
    # The metric chosen stays chosen from one opening to the next.
    await expect(traffic).to_have_attribute("data-metric", "avg_speed_kmh", timeout=10_000)
    await expect(traffic).to_have_attribute("data-points", str(len(speeds)))
    await expect(traffic.locator("figcaption")).to_have_text("Average speed (km/h), last 3 hours")
    await page.keyboard.press("Escape")
    # The area picker below the map reaches the communes too.
    await page.locator("#area-select").select_option(COMMUNE)
    await page.locator("#area-find button[type='submit']").click()
    await expect(dialog.locator("#area-title")).to_have_text("Bai Chay")
    await page.keyboard.press("Escape")
    assert browser.errors == []
    assert time.monotonic() - started < 60
