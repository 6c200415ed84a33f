"""The incidents panel in a real browser, with an incident made the whole way: a flooded
road reported like an integrator's event, the worker's instant rule opens an alert, the
incident tier (``ioc incidents``) correlates it into a flooding incident, the worker's
incident sink stores it and the API's live feed announces it. The operator opens it,
acknowledges it, writes a note, checks every step of its SOP and resolves it.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import asyncpg
import httpx
import orjson
import pytest
from playwright.async_api import expect

from streams.incidents.sops import load_sops
from streams.topics import raw_topic
from tests.utils.apikeys import KEYS, auth
from tests.utils.browser import ARTIFACTS, Browser, Dashboard
from tests.utils.events import Record
from tests.utils.incident_tier import start_incidents
from tests.utils.kafka import produce

VIEW_KEY = KEYS["view"]
#: On a fresh machine the setup installs Chromium from Debian's packages.
pytestmark = pytest.mark.timeout(300)


def flooding(entity: str, at: datetime) -> Record:
    """A flooded road at an intersection (as in seeds/scenarios/typhoon-yagi.json)."""
    value = orjson.dumps(
        {
            "specversion": "1.0",
            "id": f"{entity}-flooding-{at.timestamp()}",
            "source": "/tests/e2e",
            "type": "city.traffic.incident.v1",
            "time": at,
            "subject": entity,
            "data": {"kind": "flooding", "severity": 4, "lanes_blocked": 2},
        }
    )
    return Record(entity.encode(), value, int(at.timestamp() * 1000))


async def database_incident(
    board: Dashboard, incident_id: str
) -> tuple[asyncpg.Record, list[asyncpg.Record]]:
    """The incident's row and its checked steps as the database holds them."""
    settings = board.settings
    conn = await asyncpg.connect(settings.dsn)
    try:
        schema = f'"{settings.db_schema}"'
        row = await conn.fetchrow(
            f"SELECT state, acknowledged_by, resolved_by FROM {schema}.incident "
            "WHERE incident_id = $1",
            uuid.UUID(incident_id),
        )
        steps = await conn.fetch(
            f"SELECT step_id, checked_by FROM {schema}.incident_step WHERE incident_id = $1",
            uuid.UUID(incident_id),
        )
    finally:
        await conn.close()
    assert row is not None
    return row, list(steps)


async def test_an_operator_works_a_flooding_incident_through_its_sop(
    dashboard: Dashboard, browser: Browser
) -> None:
    tier = start_incidents(dashboard.namespace)
    try:
        page = browser.page
        await page.goto(f"{dashboard.base}/?key={VIEW_KEY}")
        await expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=15_000)
        await expect(page.locator("#incidents-empty")).to_be_visible()

        entity = dashboard.entity("traffic", "intersection")
        commune = next(e.commune for e in dashboard.city.entities if e.id == entity)
        at = dashboard.clock.minutes(1) + timedelta(seconds=10)
        await produce(
            dashboard.settings,
            raw_topic(dashboard.settings, "traffic"),
            [flooding(entity, at)],
        )

        # The panel lists it from the live feed: a flooding incident of one alert.
        item = page.locator("#incident-list .incident[data-sop='flooding']")
        await expect(item).to_have_count(1, timeout=30_000)
        await expect(item).to_have_attribute("data-state", "open")
        await expect(item).to_have_attribute("data-alerts", "1")
        await expect(item.locator(".alert-title")).to_have_text("Ngập lụt")
        sop = load_sops()["flooding"]
        await expect(item.locator(".incident-sop")).to_have_text(f"Quy trình: {sop.title_vi}")
        incident_id = await item.get_attribute("data-incident")
        assert incident_id is not None
        await page.screenshot(path=str(ARTIFACTS / "incident-list.png"))
        # In English on request.
        await page.locator("#lang").click()
        await expect(item.locator(".alert-title")).to_have_text("Flooding")
        await expect(item.locator(".incident-sop")).to_have_text(f"SOP: {sop.title_en}")
        await expect(item.locator(".incident-count")).to_have_text("1 alert")
        await page.locator("#lang").click()
        await expect(item.locator(".alert-title")).to_have_text("Ngập lụt")

        # Another screen's action comes through the feed: assigned over HTTP.
        async with httpx.AsyncClient(base_url=dashboard.base, headers=auth("view")) as client:
            answer = await client.post(
                f"/v1/incidents/{incident_id}/assign", json={"assignee": "doi-cuu-ho-ha-long"}
            )
        assert answer.status_code == 200, answer.text
        await expect(item).to_contain_text("Giao cho doi-cuu-ho-ha-long")

        # Its panel: the member alert, the checklist, the timeline.
        await item.locator("button[data-action='open']").click()
        dialog = page.locator("#incident")
        await expect(dialog).to_be_visible()
        await expect(dialog.locator("#incident-title")).to_have_text("Ngập lụt")
        members = dialog.locator("#incident-alerts li[data-alert]")
        await expect(members).to_have_count(1, timeout=10_000)
        await expect(members.locator(".member-title")).to_have_text("Đường ngập nước")
        steps = dialog.locator("#checklist [data-step]")
        await expect(steps).to_have_count(len(sop.steps))
        await expect(dialog.locator("#timeline [data-kind='open']")).to_have_count(1)

        # The member alert opens its entity's drill-down; Escape goes back to the incident.
        await members.locator("button[data-entity]").click()
        await expect(page.locator("#detail")).to_be_visible()
        await expect(page.locator("#detail-meta")).to_contain_text(entity)
        await page.keyboard.press("Escape")
        await expect(page.locator("#detail")).to_be_hidden()
        await expect(dialog).to_be_visible()

        await dialog.locator("button[data-action='acknowledge']").click()
        await expect(dialog).to_have_attribute("data-state", "acknowledged")
        await expect(item).to_have_attribute("data-state", "acknowledged")
        await dialog.locator("#note").fill("Công an xã đã có mặt; nước ngập 40 cm.")
        await dialog.locator("#note-form button[type='submit']").click()
        await expect(dialog.locator("#timeline [data-kind='annotate']")).to_contain_text(
            "nước ngập 40 cm"
        )

        for step in sop.steps:
            line = dialog.locator(f"#checklist [data-step='{step.id}']")
            await expect(line.locator(".step-text")).to_have_text(step.vi)
            await line.locator("input[type='checkbox']").check()
            await expect(line).to_have_attribute("data-checked", "true")
            await expect(line.locator(".step-by")).to_contain_text("view")
        await expect(dialog.locator("#checklist-progress")).to_have_text(
            f"đã xong {len(sop.steps)}/{len(sop.steps)} bước"
        )
        await expect(dialog.locator("#timeline [data-kind='step']")).to_have_count(len(sop.steps))

        await dialog.locator("button[data-action='resolve']").click()
        await expect(dialog).to_have_attribute("data-state", "resolved")
        await expect(dialog.locator("#incident-meta")).to_contain_text("Đã xử lý")
        await expect(dialog.locator("#incident-actions button")).to_have_count(0)
        # Still every step checked, each saying who.
        for index in range(len(sop.steps)):
            await expect(steps.nth(index)).to_have_attribute("data-checked", "true")
            await expect(steps.nth(index).locator("input")).to_be_checked()
        # Off the panel: resolved incidents are not on screens.
        await expect(item).to_have_count(0)
        await page.screenshot(path=str(ARTIFACTS / "incident-panel.png"), full_page=True)

        row, checked = await database_incident(dashboard, incident_id)
        assert (row["state"], row["acknowledged_by"], row["resolved_by"]) == (
            "resolved",
            "view",
            "view",
        )
        assert sorted((s["step_id"], s["checked_by"]) for s in checked) == sorted(
            (s.id, "view") for s in sop.steps
        )
        # The incident is the commune's where the road is.
        async with httpx.AsyncClient(base_url=dashboard.base, headers=auth("view")) as client:
            answer = await client.get(f"/v1/incidents/{incident_id}")
        assert (answer.json()["area_id"], answer.json()["state"]) == (commune, "resolved")
        await dialog.locator("#incident-close").click()
        await expect(dialog).to_be_hidden()
        assert browser.errors == []
    finally:
        tier.stop()
