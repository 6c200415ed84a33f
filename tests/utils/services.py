"""Processes the tests start: the stream worker and the API, each for one namespace."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from tests.utils.apikeys import keys_env
from tests.utils.eventually import eventually
from tests.utils.namespaces import Namespace

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Process:
    """A project process (``ioc <role>``) with its own log file."""

    def __init__(self, args: list[str], *, env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log = args, env, log
        self.popen: subprocess.Popen[bytes] | None = None
        self.web_port = 0

    def start(self) -> Process:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "ioc.cli", *self.args],
                env={**os.environ, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=ROOT,
                start_new_session=True,
            )
        return self

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill9(self) -> None:
        assert self.popen is not None
        os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait()

    def stop(self, timeout: float = 30) -> int | None:
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        return self.popen.returncode

    def counters(self) -> dict[str, float]:
        """The worker's Prometheus samples by name with labels, like
        ``ioc_events_processed_total{domain="traffic"}``."""
        text = httpx.get(f"http://127.0.0.1:{self.web_port}/metrics", timeout=5).text
        samples = {}
        for line in text.splitlines():
            if line.startswith("ioc_"):
                name, value = line.rsplit(" ", 1)
                samples[name] = float(value)
        return samples

    def total(self, prefix: str) -> float:
        """Sum of every sample of one counter, whatever its labels."""
        return sum(v for k, v in self.counters().items() if k.split("{")[0] == prefix)

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def start_worker(
    namespace: Namespace, *, env: dict[str, str] | None = None, name: str = "worker"
) -> Process:
    """Start ``ioc worker`` for the namespace and wait until it consumes."""
    port = free_port()
    process = Process(
        ["worker"],
        env={**namespace.env, "IOC_STREAMS__WEB_PORT": str(port), **(env or {})},
        log=namespace.logs / f"{name}.log",
    )
    process.web_port = port
    mark = process.log.stat().st_size if process.log.exists() else 0
    process.start()

    def ready() -> bool:
        text = process.log.read_bytes()[mark:].decode(errors="replace")
        return "Worker ready" in text or not process.alive()

    eventually(ready, within_s=90, what="the worker to be ready")
    assert process.alive(), process.tail()
    return process


def start_api(
    namespace: Namespace, *, env: dict[str, str] | None = None, name: str = "api", port: int = 0
) -> tuple[Process, str]:
    """Start ``ioc api`` for the namespace with the test keys of ``tests.utils.apikeys``
    (on ``port``, or a free one); return the process and its base URL once it answers."""
    port = port or free_port()
    process = Process(
        ["api", "--port", str(port)],
        env={**namespace.env, **keys_env(), **(env or {})},
        log=namespace.logs / f"{name}.log",
    )
    process.start()
    base = f"http://127.0.0.1:{port}"
    eventually(
        lambda: httpx.get(f"{base}/healthz"),
        until=lambda answer: answer.status_code == 200,
        within_s=30,
        what=f"the API at {base} to answer /healthz",
    )
    return process, base
