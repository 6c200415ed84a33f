"""Debian's docker-compose (v1, Python), which renders and checks a compose file with no
Docker engine: installed from Debian's packages when missing, as the PostgreSQL launcher
does for the server."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml  # type: ignore[import-untyped]

from ioc.infra.debian import ensure_command
from tests.utils.services import ROOT


def install_docker_compose() -> str:
    """Path of ``docker-compose``, installing Debian's package (as root) when missing."""
    return str(ensure_command("docker-compose", ["docker-compose"]))


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
