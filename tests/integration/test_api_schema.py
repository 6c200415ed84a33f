"""The API against its own OpenAPI document, with schemathesis's command line: every
check, every phase (the document's examples, boundary values, fuzzing, and stateful
sequences along the links it infers, such as starting a replay and then pausing,
seeking and stopping it). Zero server errors and zero conformance failures; the four
exceptions are configured in ``schemathesis/schemathesis.toml`` and explained in
docs/security.md.

The live feeds stream for as long as a client listens: tested in test_live_feeds.
"""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from city.model import build_city
from ioc.db.registry import load_registry
from recordings.simulated import record_simulation
from simulators.engine import SimConfig
from tests.utils.apikeys import KEYS
from tests.utils.namespaces import Namespace
from tests.utils.services import start_api

CONFIG = Path(__file__).parent / "schemathesis" / "schemathesis.toml"
#: Test cases per operation in the fuzzing and stateful phases. The coverage phase makes
#: most of the run whatever this is (6,300 of 6,700 cases over 40 operations: 22 s of 33
#: here); 8 keeps the rest to about 9 s. One schemathesis worker: with two, its threads
#: compiling at once failed in CPython 3.11 ("AST constructor recursion depth mismatch").
#: The outside probe's run of 1,700 cases is the deeper one (docs/security.md).
EXAMPLES = 8
#: When the typhoon recording starts: the stand-in recording's start (see ``api_base``).
TYPHOON_DAY = datetime(2024, 9, 7, 5, 45, tzinfo=UTC)

pytestmark = pytest.mark.timeout(420)


@pytest.fixture(scope="module")
async def api_base(
    module_namespace: Namespace, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    await load_registry(module_namespace.settings, build_city(60, seed=0))
    recordings = tmp_path_factory.mktemp("recordings")
    # The replays the run starts name the documented example, typhoon-yagi: a recorded one
    # of that name (found before the shipped seed) holds two simulated minutes of the same
    # 60 entities. With the whole seed (153,231 records) the run sent 4.6 million records
    # to the sandbox from thirty-odd replays at up to x1000, and took 2-3 times as long.
    (recordings / "typhoon-yagi").mkdir()
    record_simulation(
        recordings / "typhoon-yagi" / "part-00000.mcap",
        SimConfig(start=TYPHOON_DAY, entities=60, seed=0, duration_s=120),
    )
    process, base = start_api(
        module_namespace,
        env={
            "IOC_API__RATE_PER_S": "10000",
            "IOC_API__RATE_BURST": "10000",
            # The checks send refused credentials on purpose (ignored_auth).
            "IOC_API__AUTH_FAILURE_BURST": "1000000",
            # Recordings the fuzzer starts go to a folder of their own.
            "IOC_RECORDINGS__DIR": str(recordings),
        },
    )
    yield base
    process.stop()


def test_every_operation_conforms_to_the_openapi_document(api_base: str, tmp_path: Path) -> None:
    schemathesis = Path(sys.executable).with_name("schemathesis")
    junit = tmp_path / "junit.xml"
    command = [
        str(schemathesis),
        "--config-file",
        str(CONFIG),
        "run",
        f"{api_base}/openapi.json",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--exclude-path-regex",
        "^/v1/live",
        "--header",
        f"X-API-Key: {KEYS['admin']}",
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        "1",
        "--workers",
        "1",
        "--request-timeout",
        "20",
        "--report",
        "junit",
        "--report-junit-path",
        str(junit),
        "--no-color",
    ]
    run = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=400, check=False
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-8000:]
    cases = ET.parse(junit).getroot().iter("testcase")
    tested = {case.get("name", "") for case in cases}
    # Every operation but the two live feeds (29 in the document today).
    assert len(tested) >= 27, sorted(tested)
    assert "Scenarios:" in output, output[-3000:]  # the stateful phase ran
