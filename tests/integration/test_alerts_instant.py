"""Instant rules and quiet partitions through the whole pipeline: one alarm into a
namespace where nothing else happens is on the live feed within seconds; the worker's
clock marks make the partition's minutes final without any other event, so its window
rules open, its instant alerts resolve on time and a registered sensor that stops
reporting is found silent; an operator's resolve reaches the rules, and the next alarm
opens a new alert."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from city.model import build_city
from ioc.db.registry import load_registry
from streams.alerts.rules import RULES_DIR
from streams.topics import raw_topic
from tests.utils.apikeys import auth
from tests.utils.events import Record, alarm_value, detection_value, flow_value
from tests.utils.eventually import eventually
from tests.utils.kafka import produce
from tests.utils.live_clients import Received, WsClient, open_ws
from tests.utils.namespaces import Namespace
from tests.utils.rules import FIRE_ALARM
from tests.utils.services import ROOT, start_api, start_worker

pytestmark = pytest.mark.timeout(240)

LATENESS_S = 5


def alerts(received: Received, rule: str, state: str) -> list[dict[str, Any]]:
    return [
        m["alert"]
        for m in received.of("alert")
        if m["alert"]["rule_id"] == rule and m["alert"]["state"] == state
    ]


#: A traffic sensor of the city model (registered by the fixture, every 10 s).
SENSOR = next(e for e in build_city(60).entities if e.kind == "intersection")
#: The silent rule as shipped, but after one minute (six intervals) instead of five.
QUICK_SILENCE = {
    "kind": "silent",
    "id": "traffic-sensor-silent",
    "domain": "traffic",
    "title": {"en": "Traffic sensor silent", "vi": "Cảm biến giao thông mất tín hiệu"},
    "severity": "warning",
    "intervals": 6,
    "min_minutes": 1,
}


@pytest.fixture(scope="module")
def rules_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped security rules, with the panic alarm quiet after one minute, and a
    traffic sensor silent after one minute."""
    shipped = json.loads((RULES_DIR / "security.json").read_text())
    for rule in shipped["rules"]:
        if rule["id"] == "security-alarm-panic":
            rule["clear_minutes"] = 1
    folder = tmp_path_factory.mktemp("rules")
    (folder / "security.json").write_text(json.dumps(shipped))
    (folder / "traffic.json").write_text(json.dumps({"rules": [QUICK_SILENCE]}))
    return folder


@pytest.fixture(scope="module")
async def pipeline(module_namespace: Namespace, rules_dir: Path) -> AsyncIterator[str]:
    """A worker that marks its quiet partitions (a sandbox: marks are switched on), with
    five seconds of allowed lateness, and an API, over a registry of 60 entities; yields
    the API's base URL."""
    await load_registry(module_namespace.settings, build_city(60))
    env = {
        "IOC_STREAMS__CLOCK_MARKS": "on",
        "IOC_STREAMS__ALLOWED_LATENESS_S": str(LATENESS_S),
        "IOC_STREAMS__RULES_DIR": str(rules_dir),
    }
    worker = start_worker(module_namespace, env=env)
    api, base = start_api(module_namespace, env=env)
    yield base
    api.stop()
    worker.stop()


async def alert_feed(base: str) -> WsClient:
    """The live feed's alert transitions, once its snapshot has come."""
    ws = await open_ws(base, kind="alert")
    await eventually(
        ws.received.so_far, until=lambda r: bool(r.of("snapshot")), within_s=20, what="a snapshot"
    )
    return ws


def now_record(entity: str, value: bytes) -> Record:
    return Record(entity.encode(), value, int(time.time() * 1000))


async def test_an_alarm_alone_is_on_the_feed_in_seconds_and_quiet_rules_go_on(
    module_namespace: Namespace, pipeline: str
) -> None:
    settings = module_namespace.settings
    ws = await open_ws(pipeline, kind="alert")
    try:
        await eventually(
            ws.received.so_far,
            until=lambda r: bool(r.of("snapshot")),
            within_s=20,
            what="a snapshot",
        )
        # A registered traffic sensor reports, then stops: nothing else reaches traffic.
        last_report = datetime.now(UTC).replace(microsecond=0)
        await produce(settings, raw_topic(settings, "traffic"), [_flow(last_report)])
        sent = time.monotonic()
        now = datetime.now(UTC)
        await produce(
            settings,
            raw_topic(settings, "security"),
            [now_record("t-cam-quiet", alarm_value("t-cam-quiet", now, kind="panic"))],
        )
        await eventually(
            ws.received.so_far,
            until=lambda r: bool(alerts(r, "security-alarm-panic", "open")),
            within_s=10,
            what="the panic alarm's alert on the live feed",
        )
        took = time.monotonic() - sent
        [opened] = alerts(ws.received, "security-alarm-panic", "open")
        assert opened["entity_id"] == "t-cam-quiet"
        assert opened["severity"] == "critical"
        assert opened["values"]["zone"] == "lobby"
        print(f"panic alarm to the live feed: {took:.2f} s")

        # An intrusion seen once by another camera: the window rule judges its minute when
        # the minute is final, which only the worker's clock marks can make it here.
        detected = datetime.now(UTC)
        await produce(
            settings,
            raw_topic(settings, "security"),
            [
                now_record(
                    "t-cam-other",
                    detection_value("t-cam-other", detected, kind="intrusion", confidence=0.95),
                )
            ],
        )
        await eventually(
            ws.received.so_far,
            until=lambda r: bool(alerts(r, "security-intrusion", "open")),
            within_s=60 + LATENESS_S + 20,
            what="the intrusion window rule to open with no other event",
        )
        # The panic alarm's quiet minute ends and becomes final the same way.
        await eventually(
            ws.received.so_far,
            until=lambda r: bool(alerts(r, "security-alarm-panic", "resolve")),
            within_s=60 + LATENESS_S + 20,
            what="the panic alert to resolve after its quiet minute",
        )
        [resolved] = alerts(ws.received, "security-alarm-panic", "resolve")
        assert resolved["alert_id"] == opened["alert_id"]
        quiet_end = datetime.fromisoformat(opened["opened_at"]).timestamp() + 60
        assert datetime.fromisoformat(resolved["resolved_at"]).timestamp() == quiet_end

        # The sensor's silence is certain one minute after its report, plus the lateness.
        await eventually(
            ws.received.so_far,
            until=lambda r: bool(alerts(r, "traffic-sensor-silent", "open")),
            within_s=60 + LATENESS_S + 20,
            what="the silent sensor's alert",
        )
        [silent] = alerts(ws.received, "traffic-sensor-silent", "open")
        assert silent["entity_id"] == SENSOR.id
        assert datetime.fromisoformat(silent["since"]) == last_report
        assert datetime.fromisoformat(silent["opened_at"]) == last_report + timedelta(minutes=1)
        assert silent["values"] == {"silent_s": 60.0, "interval_s": 10.0}
        # It reports again: the alert resolves at that report's time.
        back = datetime.now(UTC).replace(microsecond=0)
        await produce(settings, raw_topic(settings, "traffic"), [_flow(back)])
        await eventually(
            ws.received.so_far,
            until=lambda r: bool(alerts(r, "traffic-sensor-silent", "resolve")),
            within_s=10,
            what="the silence to end",
        )
        [ended] = alerts(ws.received, "traffic-sensor-silent", "resolve")
        assert ended["alert_id"] == silent["alert_id"]
        assert datetime.fromisoformat(ended["resolved_at"]) == back
    finally:
        await ws.close()


def _flow(at: datetime) -> Record:
    return Record(SENSOR.id.encode(), flow_value(SENSOR.id, at), int(at.timestamp() * 1000))


async def test_an_operators_resolve_reaches_the_rules(
    module_namespace: Namespace, pipeline: str
) -> None:
    settings = module_namespace.settings
    topic = raw_topic(settings, "security")
    ws = await open_ws(pipeline, kind="alert")
    try:
        await eventually(
            ws.received.so_far,
            until=lambda r: bool(r.of("snapshot")),
            within_s=20,
            what="a snapshot",
        )
        first_alarm = alarm_value("t-cam-9", datetime.now(UTC), kind="fire")
        await produce(settings, topic, [now_record("t-cam-9", first_alarm)])
        await eventually(
            ws.received.so_far,
            until=lambda r: bool(alerts(r, "security-alarm-fire", "open")),
            within_s=10,
            what="the fire alarm's alert",
        )
        [first] = alerts(ws.received, "security-alarm-fire", "open")
        url = f"{pipeline}/v1/alerts/{first['alert_id']}/resolve"

        def resolve() -> bool:
            # 404 until the sink has stored the alert.
            return httpx.post(url, headers=auth("view"), timeout=10).status_code == 200

        eventually(resolve, within_s=20, what="the operator's resolve to be taken")
        # Within the alarm's 60 quiet minutes, another fire alarm: the rules know the
        # first alert is resolved, so this one opens a new alert.
        again = alarm_value("t-cam-9", datetime.now(UTC), kind="fire", zone="hall")
        await produce(settings, topic, [now_record("t-cam-9", again)])
        await eventually(
            ws.received.so_far,
            until=lambda r: len(alerts(r, "security-alarm-fire", "open")) == 2,
            within_s=10,
            what="a new alert for the second fire alarm",
        )
        second = alerts(ws.received, "security-alarm-fire", "open")[1]
        assert second["alert_id"] != first["alert_id"]
    finally:
        await ws.close()


def test_a_bad_rule_file_stops_the_worker_at_start_naming_it(tmp_path: Path) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    fyre = {"field": "kind", "op": "in", "value": ["fyre"]}
    bad = {**FIRE_ALARM, "match": {"type": "city.security.alarm.v1", "where": [fyre]}}
    (folder / "security.json").write_text(json.dumps({"rules": [bad]}))
    done = subprocess.run(
        [sys.executable, "-m", "ioc.cli", "worker"],
        cwd=ROOT,
        env={**os.environ, "IOC_STREAMS__RULES_DIR": str(folder), "COLUMNS": "300"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    said = " ".join(done.stderr.split())
    assert "security.json" in said
    assert "rules[0](alarm-fire).match" in said
    assert "'kind' is never 'fyre'" in said
