"""Debian's Chromium, for the dashboard's browser tests: installed from the system's
packages when missing, like PostgreSQL (``ioc.infra.postgres``).

Playwright drives this binary; it never downloads a browser build of its own (those
downloads come from outside the package registries and fail on CI machines here).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from ioc.infra.process import InfraError

CHROMIUM = Path("/usr/bin/chromium")
#: The browser, and a font with Vietnamese diacritics for what it renders.
PACKAGES = ("chromium", "fonts-dejavu-core")


def install_chromium() -> Path:
    """Install Debian's ``chromium`` when ``/usr/bin/chromium`` is missing; return its path."""
    if CHROMIUM.exists():
        return CHROMIUM
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise InfraError(
            f"{CHROMIUM} not found; install Debian's 'chromium' package "
            "(apt-get install chromium) to run the browser tests"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES],
    ):
        result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if result.returncode != 0:
            raise InfraError(f"{' '.join(command)} failed:\n{result.stdout[-2000:]}{result.stderr}")
    if not CHROMIUM.exists():
        raise InfraError(f"the chromium package installed no {CHROMIUM}")
    return CHROMIUM
