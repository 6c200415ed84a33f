"""Node.js harnesses of the tests (a folder with package.json and its lock): installed
with ``npm ci`` when the locked version of their main package is not there yet."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path


def node_harness(folder: Path, package: str) -> str:
    """Path of ``node``, once ``folder``'s packages are installed as locked."""
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node, "Node.js 20+ is needed for this test"
    assert npm, "npm is needed for this test"
    lock = json.loads((folder / "package-lock.json").read_text())
    wanted = lock["packages"][f"node_modules/{package}"]["version"]
    installed = folder / "node_modules" / package / "package.json"
    if not installed.exists() or json.loads(installed.read_text())["version"] != wanted:
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=folder,
            check=True,
            capture_output=True,
            timeout=300,
        )
    return node
