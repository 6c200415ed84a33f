"""A PostgreSQL cluster of the project's own, from Debian's packages, on a loopback port.

PostgreSQL refuses to run as root, so when the launcher runs as root it drops to the
``postgres`` service user that Debian's package creates, and keeps the cluster where
that user can reach it (``/var/lib/ioc/postgres-<hash of the state dir>``). Run as an
ordinary user, the cluster lives in the state directory.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import subprocess
from pathlib import Path

from ioc.infra.process import InfraError, ServiceStatus, port_open
from ioc.settings import Settings

SERVICE_USER = "postgres"


def _pg_bin_dir() -> Path | None:
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return versions[-1].parent if versions else None


def install_server() -> Path:
    """Install Debian's PostgreSQL server when it is missing; return its bin directory."""
    found = _pg_bin_dir()
    if found is not None:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise InfraError(
            "PostgreSQL server binaries not found under /usr/lib/postgresql; "
            "install the 'postgresql' package or set DATABASE_URL"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", "postgresql"],
    ):
        result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if result.returncode != 0:
            raise InfraError(f"{' '.join(command)} failed:\n{result.stdout[-2000:]}{result.stderr}")
    found = _pg_bin_dir()
    if found is None:
        raise InfraError("the postgresql package installed no server under /usr/lib/postgresql")
    return found


class PostgresCluster:
    """Starts, stops and reports the local cluster; does nothing when the database is external."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        state = settings.state_dir.resolve()
        if os.geteuid() == 0:
            digest = hashlib.sha256(str(state).encode()).hexdigest()[:10]
            self.home = Path("/var/lib/ioc") / f"postgres-{digest}"
        else:
            self.home = state / "postgres"
        self.data = self.home / "data"
        self.log_file = self.home / "postgres.log"

    @property
    def port(self) -> int:
        return self.settings.database.local_port

    def _as_service_user(self, command: list[str]) -> subprocess.CompletedProcess[str]:
        if os.geteuid() == 0:
            command = ["runuser", "-u", SERVICE_USER, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=False, cwd="/")

    def _prepare(self, bin_dir: Path) -> None:
        if (self.data / "PG_VERSION").exists():
            return
        self.home.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            user = pwd.getpwnam(SERVICE_USER)
            Path("/var/lib/ioc").chmod(0o755)
            os.chown(self.home, user.pw_uid, user.pw_gid)
        db = self.settings.database
        result = self._as_service_user(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                db.local_user,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ]
        )
        if result.returncode != 0:
            raise InfraError(f"initdb failed:\n{result.stdout}{result.stderr}")
        # Loopback only, the socket in the data directory, and settings that suit a
        # development cluster on a 2-core machine.
        with (self.data / "postgresql.auto.conf").open("a") as conf:
            conf.write(
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.data}'\n"
                "max_connections = 200\nshared_buffers = '256MB'\n"
            )

    def up(self) -> ServiceStatus:
        """Install if needed, create the cluster on first use, start it and create the database."""
        if self.settings.external_database:
            return self.status()
        if port_open(self.port) and self._pg_ctl_status():
            return self.status()
        if port_open(self.port):
            raise InfraError(
                f"port {self.port} is taken by another program; set IOC_DATABASE__LOCAL_PORT "
                "or DATABASE_URL"
            )
        bin_dir = install_server()
        self._prepare(bin_dir)
        result = self._as_service_user(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log_file),
                "-w",
                "-t",
                "60",
                "start",
            ]
        )
        if result.returncode != 0:
            raise InfraError(
                f"PostgreSQL did not start: {result.stdout}{result.stderr}; see {self.log_file}"
            )
        self._create_database(bin_dir)
        return self.status()

    def _create_database(self, bin_dir: Path) -> None:
        db = self.settings.database
        client = ["-h", "127.0.0.1", "-p", str(self.port), "-U", db.local_user]
        exists = self._as_service_user(
            [
                str(bin_dir / "psql"),
                *client,
                "-d",
                "postgres",
                "-tAc",
                f"SELECT 1 FROM pg_database WHERE datname = '{db.local_database}'",
            ]
        )
        if exists.stdout.strip() == "1":
            return
        result = self._as_service_user([str(bin_dir / "createdb"), *client, db.local_database])
        if result.returncode != 0:
            raise InfraError(f"createdb failed: {result.stderr}")

    def _pg_ctl_status(self) -> bool:
        bin_dir = _pg_bin_dir()
        if bin_dir is None or not (self.data / "PG_VERSION").exists():
            return False
        return (
            self._as_service_user(
                [str(bin_dir / "pg_ctl"), "-D", str(self.data), "status"]
            ).returncode
            == 0
        )

    def down(self, *, mode: str = "fast") -> None:
        """Stop the cluster (``fast`` rolls back open transactions; ``immediate`` is a crash)."""
        if self.settings.external_database:
            return
        bin_dir = _pg_bin_dir()
        if bin_dir is None or not self._pg_ctl_status():
            return
        result = self._as_service_user(
            [str(bin_dir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"]
        )
        if result.returncode != 0:
            raise InfraError(f"PostgreSQL did not stop: {result.stderr}")

    def status(self) -> ServiceStatus:
        """Running, stopped or external, and where."""
        db = self.settings.database
        if self.settings.external_database:
            return ServiceStatus("postgres", "external", "(DATABASE_URL)")
        address = f"127.0.0.1:{self.port}/{db.local_database}"
        if self._pg_ctl_status() and port_open(self.port):
            return ServiceStatus("postgres", "running", address, f"data {self.data}")
        return ServiceStatus("postgres", "stopped", address)
