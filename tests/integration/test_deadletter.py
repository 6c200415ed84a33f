"""A malformed record never stops the agent: it is counted and dead-lettered with its reason."""

from __future__ import annotations

from datetime import timedelta

import orjson

from streams.topics import DEADLETTER_TOPIC, raw_topic
from tests.utils.events import T0, Record, flow_value
from tests.utils.eventually import eventually
from tests.utils.kafka import produce, read_all
from tests.utils.namespaces import Namespace
from tests.utils.services import Process


def counter(worker: Process, name: str, **labels: str) -> float:
    """One sample of the worker's Prometheus counters (0 when absent)."""
    selector = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return worker.counters().get(f"{name}{{{selector}}}" if labels else name, 0.0)


async def test_malformed_records_are_dead_lettered_and_the_agent_goes_on(
    namespace: Namespace, worker: Process
) -> None:
    settings = namespace.settings
    ms = int(T0.timestamp() * 1000)
    missing_subject = orjson.loads(flow_value("t-ix-001", T0))
    del missing_subject["subject"]
    bad = [
        Record(b"t-ix-001", b"this is not json {", ms),
        Record(b"t-ix-001", orjson.dumps(missing_subject), ms),
    ]
    good = [
        Record(b"t-ix-001", flow_value("t-ix-001", T0 + timedelta(seconds=s), vehicles=5), ms)
        for s in (1, 2)
    ]
    # The bad ones first, on the same key (so the same partition) as the good ones after them.
    await produce(settings, raw_topic(settings, "traffic"), [*bad, *good])

    dead = await read_all(settings, settings.topic(DEADLETTER_TOPIC), expect=2)
    assert len(dead) == 2
    by_reason = {dict(m.headers)["ioc_reason"].decode(): m for m in dead}
    assert set(by_reason) == {"not_json", "missing_field"}
    assert by_reason["not_json"].value == b"this is not json {"
    assert by_reason["missing_field"].value == orjson.dumps(missing_subject)
    missing = dict(by_reason["missing_field"].headers)
    assert b"subject" in missing["ioc_detail"]
    source = orjson.loads(missing["ioc_source"])
    assert source["topic"] == raw_topic(settings, "traffic")
    assert isinstance(source["partition"], int)
    assert isinstance(source["offset"], int)

    # Counted, and the good records behind them were processed by the same worker.
    eventually(
        lambda: counter(worker, "ioc_events_processed_total", domain="traffic") == 2,
        within_s=30,
        what="both good events processed",
    )
    assert counter(worker, "ioc_events_deadlettered_total", reason="not_json") == 1
    assert counter(worker, "ioc_events_deadlettered_total", reason="missing_field") == 1
    assert counter(worker, "ioc_events_consumed_total", domain="traffic") == 4
    assert worker.alive()
