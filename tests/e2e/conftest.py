"""Fixtures of the browser tests: Debian's Chromium driven by Playwright, and a namespace
with the city model, its worker and an API the dashboard is served from."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.async_api import ConsoleMessage, Page, async_playwright

from city.model import City, build_city
from ioc.db.migrate import migrate
from ioc.db.registry import load_registry
from ioc.infra.chromium import install_chromium
from ioc.settings import Settings
from streams.admin import ensure_topics
from tests.conftest import Namespace
from tests.integration.conftest import start_worker
from tests.utils.apikeys import keys_env
from tests.utils.live_clients import EventClock
from tests.utils.namespaces import drop_namespace
from tests.utils.services import ROOT, Process, free_port, wait_for

#: Screenshots of every browser test, one per test (ignored by git).
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Entities in the test city: every domain is represented, the page stays quick to load.
CITY_ENTITIES = 120


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium, installed from the system's packages when it is missing."""
    return install_chromium()


@dataclass
class Dashboard:
    """A namespace with the city model, its worker, and the API serving the page."""

    namespace: Namespace
    city: City
    port: int
    clock: EventClock
    api: Process | None = None
    used: set[str] = field(default_factory=set)

    @property
    def settings(self) -> Settings:
        return self.namespace.settings

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def entity(self, domain: str, kind: str | None = None) -> str:
        """An entity of the city no other test of the module has used yet."""
        for entity in self.city.entities:
            wanted = entity.domain == domain and (kind is None or entity.kind == kind)
            if wanted and entity.id not in self.used:
                self.used.add(entity.id)
                return entity.id
        raise AssertionError(f"no unused {domain} entity left in the test city")

    def start_api(self) -> None:
        """Start ``ioc api`` on the dashboard's port and wait until it answers."""
        self.api = _api_process(self.namespace, self.port).start()
        wait_for(
            lambda: httpx.get(f"{self.base}/healthz").status_code == 200,
            timeout=30,
            what="the API",
        )


def _api_process(namespace: Namespace, port: int) -> Process:
    return Process(
        ["api", "--port", str(port)],
        env={**namespace.env, **keys_env()},
        log=namespace.logs / "api.log",
    )


@pytest.fixture(scope="module")
async def dashboard(
    infra: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Dashboard]:
    """The city model in a namespace of the module's own, its worker and its API."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    settings = infra.model_copy(update={"namespace": name})
    await migrate(settings)
    await ensure_topics(settings)
    city = build_city(CITY_ENTITIES, seed=0)
    await load_registry(settings, city)
    env = {"IOC_NAMESPACE": name, "IOC_STATE_DIR": str(infra.state_dir)}
    namespace = Namespace(settings=settings, env=env, logs=tmp_path_factory.mktemp(name))
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
        await drop_namespace(settings)


@dataclass
class Browser:
    """A page in a fresh Chromium profile, with what its console reported."""

    page: Page
    errors: list[str]


def _console(errors: list[str]) -> object:
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
