"""Tools from Debian's packages, installed when missing (as root, where apt-get exists):
the browser of the dashboard's tests, kcat for the integrator tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from ioc.infra.process import InfraError


def ensure_command(command: str, packages: Sequence[str]) -> Path:
    """The path of ``command``, installing ``packages`` with apt-get when it is missing."""
    found = shutil.which(command)
    if found:
        return Path(found)
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise InfraError(
            f"{command} not found; install Debian's {' '.join(packages)} "
            f"(apt-get install {' '.join(packages)})"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Another apt-get may hold the lock for a while on a shared machine: wait for it.
    lock = ["-o", "DPkg::Lock::Timeout=300"]
    for step in (
        ["apt-get", *lock, "update", "-q"],
        ["apt-get", *lock, "install", "-y", "-q", "--no-install-recommends", *packages],
    ):
        result = subprocess.run(step, capture_output=True, text=True, env=env, check=False)
        if result.returncode != 0:
            raise InfraError(f"{' '.join(step)} failed:\n{result.stdout[-2000:]}{result.stderr}")
    found = shutil.which(command)
    if found is None:
        raise InfraError(f"{' '.join(packages)} installed no {command}")
    return Path(found)
