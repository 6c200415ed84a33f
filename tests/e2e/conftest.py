"""Fixtures of the browser tests: Debian's Chromium driven by Playwright, and a namespace
with the city model, its worker and an API the dashboard is served from."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import ConsoleMessage, async_playwright

from city.model import build_city
from ioc.db.registry import load_registry
from ioc.infra.chromium import install_chromium
from ioc.settings import Settings
from tests.utils.browser import ARTIFACTS, CHROMIUM_ARGS, CITY_ENTITIES, Browser, Dashboard
from tests.utils.live_clients import EventClock
from tests.utils.namespaces import drop_namespace, new_namespace
from tests.utils.services import free_port, start_worker


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium, installed from the system's packages when it is missing."""
    return install_chromium()


@pytest.fixture(scope="module")
async def dashboard(
    infra: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Dashboard]:
    """The city model in a namespace of the module's own, its worker and its API."""
    namespace = await new_namespace(infra, tmp_path_factory)
    city = build_city(CITY_ENTITIES, seed=0)
    await load_registry(namespace.settings, city)
    worker = start_worker(namespace)
    # Event times start half an hour back and only move forward across the module's
    # tests, so no test's events are late for a partition another test moved on.
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30)
    board = Dashboard(namespace, city, free_port(), EventClock(start))
    try:
        board.start_api()
        yield board
    finally:
        if board.api is not None:
            board.api.stop()
        worker.stop()
        await drop_namespace(namespace.settings)


def _console(errors: list[str]) -> Callable[[ConsoleMessage], None]:
    def record(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(f"console: {message.text} ({message.location.get('url', '')})")

    return record


@pytest.fixture
async def browser(
    chromium: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Browser]:
    """Headless Chromium with a new user-data dir; the page's screenshot is saved to
    ``test-artifacts/e2e/<test>.png`` when the test ends, passed or failed."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(chromium),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1600, "height": 1000},
            locale="vi-VN",
            timezone_id="Asia/Ho_Chi_Minh",
        )
        page = context.pages[0] if context.pages else await context.new_page()
        errors: list[str] = []
        page.on("console", _console(errors))
        page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
        try:
            yield Browser(page, errors)
        finally:
            await page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
            await context.close()
