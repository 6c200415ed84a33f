"""Command (a) of the README comes up: health answers and the series has data within 60 s."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import httpx

from tests.utils.eventually import eventually
from tests.utils.namespaces import Namespace
from tests.utils.services import ROOT, free_port


def test_readme_run_command_serves_data_within_60_s_and_stops_cleanly(
    namespace: Namespace,
) -> None:
    port = free_port()
    env = {
        **os.environ,
        **namespace.env,
        "IOC_API__PORT": str(port),
        "IOC_STREAMS__WEB_PORT": str(free_port()),
    }
    log = namespace.logs / "run.log"
    started = time.monotonic()
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["./run"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        eventually(
            lambda: httpx.get(f"{base}/healthz").status_code == 200, within_s=60, what="/healthz"
        )

        # The demo prints its key once; an operator copies it from there.
        key = eventually(
            lambda: re.search(r"(?<![\w-])ioc_[\w-]{43}(?![\w-])", log.read_text()),
            within_s=10,
            what="the demo key",
        ).group(0)
        series = f"{base}/v1/traffic/entities/qn-ix-halong-001/series"
        assert httpx.get(series, params={"metric": "vehicles"}).status_code == 401

        def series_has_points() -> bool:
            response = httpx.get(series, params={"metric": "vehicles"}, headers={"X-API-Key": key})
            return response.status_code == 200 and len(response.json()["points"]) > 0

        remaining = 60 - (time.monotonic() - started)
        eventually(series_has_points, within_s=remaining, what="series data")
        assert time.monotonic() - started <= 60
        assert f"{base}/docs" in log.read_text()
    finally:
        os.killpg(process.pid, signal.SIGINT)
        code = process.wait(timeout=60)
    assert code == 0, log.read_text()[-3000:]
    assert "stopped" in log.read_text()
    # Nothing it started is left listening.
    eventually(lambda: _refused(base), within_s=5, what="the API to be gone")


def _refused(base: str) -> bool:
    try:
        httpx.get(f"{base}/healthz", timeout=1)
    except httpx.ConnectError:
        return True
    return False
