"""Debian's docker-compose (v1, Python), which renders and checks a compose file with no
Docker engine: installed from Debian's packages when missing, as the PostgreSQL launcher
does for the server."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.utils.services import ROOT


class ComposeUnavailable(RuntimeError):
    """docker-compose is missing and cannot be installed here."""


def install_docker_compose() -> str:
    """Path of ``docker-compose``, installing Debian's package (as root) when missing."""
    found = shutil.which("docker-compose")
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ComposeUnavailable(
            "docker-compose is not installed and this is not root on Debian: "
            "apt-get install docker-compose"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Another apt-get may hold the lock for a while on a shared machine: wait for it.
    lock = ["-o", "DPkg::Lock::Timeout=300"]
    for command in (
        ["apt-get", *lock, "update", "-q"],
        ["apt-get", *lock, "install", "-y", "-q", "--no-install-recommends", "docker-compose"],
    ):
        result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if result.returncode != 0:
            raise ComposeUnavailable(
                f"{' '.join(command)} failed:\n{result.stdout[-2000:]}{result.stderr}"
            )
    found = shutil.which("docker-compose")
    if found is None:
        raise ComposeUnavailable("the docker-compose package installed no docker-compose")
    return found


def compose_config(
    binary: str,
    *,
    file: Path = ROOT / "docker-compose.yml",
    env: dict[str, str] | None = None,
    profiles: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """``docker-compose config`` of ``file``, run offline with only ``env`` set."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("IOC_", "COMPOSE_"))}
    command = [binary, "--project-directory", str(file.parent), "-f", str(file)]
    for profile in profiles:
        command += ["--profile", profile]
    return subprocess.run(
        [*command, "config"],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        timeout=60,
        check=False,
    )


def rendered(result: subprocess.CompletedProcess[str]) -> dict[str, object]:
    """The configuration ``docker-compose config`` printed, as data."""
    assert result.returncode == 0, result.stderr
    data = yaml.safe_load(result.stdout)
    assert isinstance(data, dict)
    return data
