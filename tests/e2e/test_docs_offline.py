"""``/docs`` in a real browser that can reach nothing but the API, as on the operations
centre's closed network: Swagger UI must render every operation from the API's files."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Request, Route, async_playwright, expect

from ioc.settings import Settings
from tests.utils.browser import ARTIFACTS, CHROMIUM_ARGS
from tests.utils.namespaces import drop_namespace, new_namespace
from tests.utils.services import start_api

#: On a fresh machine the setup installs Chromium from Debian's packages.
pytestmark = pytest.mark.timeout(600)

#: A host name that is not localhost, as operators browse the API: Swagger UI makes
#: some outside calls (its online validator's badge) for any host but localhost.
HOST = "ioc-ops.test"


@pytest.fixture(scope="module")
async def api_port(infra: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[int]:
    """An ``ioc api`` for a namespace of the module's own; its port."""
    namespace = await new_namespace(infra, tmp_path_factory)
    process, base = start_api(namespace, name="docs-api")
    try:
        port = urlsplit(base).port
        assert port is not None
        yield port
    finally:
        process.stop()
        await drop_namespace(namespace.settings)


async def test_swagger_ui_renders_every_operation_without_leaving_the_api(
    api_port: int, chromium: Path, tmp_path: Path
) -> None:
    base = f"http://{HOST}:{api_port}"
    async with httpx.AsyncClient() as client:
        document = (await client.get(f"http://127.0.0.1:{api_port}/openapi.json")).json()
    operations = sum(len(ops) for ops in document["paths"].values())
    assert operations > 20

    outside: list[str] = []
    errors: list[str] = []

    async def only_the_api(route: Route, request: Request) -> None:
        # Anything for another origin is refused here and recorded: a closed network.
        if urlsplit(request.url).netloc == f"{HOST}:{api_port}":
            await route.continue_()
        else:
            outside.append(request.url)
            await route.abort()

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(chromium),
            headless=True,
            # The name resolves to the API on 127.0.0.1, and nothing else resolves.
            args=[*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {HOST} 127.0.0.1, MAP * ~NOTFOUND"],
            viewport={"width": 1400, "height": 1000},
        )
        try:
            await context.route("**/*", only_the_api)
            page = context.pages[0] if context.pages else await context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
            await page.goto(f"{base}/docs")
            await expect(page.locator(".opblock")).to_have_count(operations, timeout=20_000)
            await expect(page.locator(".info .title")).to_contain_text("Smart-city IOC API")
            await page.screenshot(path=str(ARTIFACTS / "docs_offline.png"))
        finally:
            await context.close()
    # No request went elsewhere, and the page's policy refused nothing it needed.
    assert outside == []
    assert errors == []
