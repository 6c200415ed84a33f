"""What the browser tests share: where screenshots go, how Chromium runs, the test city
and its dashboard (namespace, worker, API), and a page with what its console said."""

from __future__ import annotations

from dataclasses import dataclass, field

from playwright.async_api import Page

from city.model import City
from ioc.settings import Settings
from tests.utils.live_clients import EventClock
from tests.utils.namespaces import Namespace
from tests.utils.services import ROOT, Process, start_api

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
        self.api, _ = start_api(self.namespace, port=self.port)


@dataclass
class Browser:
    """A page in a fresh Chromium profile, with what its console reported."""

    page: Page
    errors: list[str]
