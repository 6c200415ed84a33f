"""Small helpers shared by the launchers: pid files, ports, waiting."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServiceStatus:
    """What ``ioc infra status`` reports for one service."""

    name: str
    state: str  # "running", "stopped" or "external"
    address: str
    detail: str = ""


class InfraError(RuntimeError):
    """A local service could not be prepared, started or stopped."""


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        # The state is the field after the parenthesised command name.
        state = stat.read_text().rsplit(")", 1)[-1].split()[0]
        return state != "Z"
    return True


def read_pid(pid_file: Path) -> int | None:
    """The pid recorded in ``pid_file`` if that process still runs."""
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def wait_until(
    check: Callable[[], bool], *, timeout_s: float, what: str, log_file: Path | None = None
) -> None:
    """Poll ``check`` until it is true; raise naming ``what`` and the log when it never is."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    hint = f"; see {log_file}" if log_file else ""
    raise InfraError(f"{what} not ready after {timeout_s:.0f} s{hint}")


#: Services this process started and has not stopped. Holding the Popen objects keeps
#: them from being collected (and warning) while the service runs, and lets us reap them.
_spawned: dict[int, subprocess.Popen[bytes]] = {}


def spawn(command: list[str], *, log: Path) -> subprocess.Popen[bytes]:
    """Start a long-running service in its own session, output appended to ``log``."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    _spawned[process.pid] = process
    return process


def terminate(pid: int, *, timeout_s: float = 30.0) -> None:
    """Send SIGTERM, wait for the process to exit, and SIGKILL it if it does not."""
    try:
        _terminate(pid, timeout_s=timeout_s)
    finally:
        child = _spawned.pop(pid, None)
        if child is not None:
            child.wait()


def _terminate(pid: int, *, timeout_s: float) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.2)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
