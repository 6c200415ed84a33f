"""Debian's Chromium, for the dashboard's browser tests: installed from the system's
packages when missing, like PostgreSQL (``ioc.infra.postgres``).

Playwright drives this binary; it never downloads a browser build of its own (those
downloads come from outside the package registries and fail on CI machines here).
"""

from __future__ import annotations

from pathlib import Path

from ioc.infra.debian import ensure_command
from ioc.infra.process import InfraError

CHROMIUM = Path("/usr/bin/chromium")
#: The browser, and a font with Vietnamese diacritics for what it renders.
PACKAGES = ("chromium", "fonts-dejavu-core")


def install_chromium() -> Path:
    """Install Debian's ``chromium`` when ``/usr/bin/chromium`` is missing; return its path."""
    if CHROMIUM.exists():
        return CHROMIUM
    ensure_command("chromium", PACKAGES)
    if not CHROMIUM.exists():
        raise InfraError(f"the chromium package installed no {CHROMIUM}")
    return CHROMIUM
