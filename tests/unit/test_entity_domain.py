"""One domain per entity: the registry's, or that of its first applied event."""

from __future__ import annotations

from aiokafka.structs import ConsumerRecord

from streams.alerts import RuleEngine
from streams.registry import Registered, Registry
from streams.state import EntityStore
from tests.utils.events import T0, alarm_value, flow_value


def _record(topic: str, key: str, value: bytes, offset: int) -> ConsumerRecord:
    return ConsumerRecord(topic, 0, offset, 0, 0, key.encode(), value, None, 0, 0, [])


def test_an_unregistered_entity_keeps_the_domain_of_its_first_event() -> None:
    store = EntityStore(rules=RuleEngine([]), lateness_ms=120_000)
    flow = _record("ioc.traffic.events", "x-1", flow_value("x-1", T0), 0)
    assert store.apply([flow], domain="traffic", partition=0).outcomes == {"applied": 1}
    alarm = _record("ioc.security.events", "x-1", alarm_value("x-1", T0, kind="fire"), 0)
    refused = store.apply([alarm], domain="security", partition=0)
    assert refused.outcomes == {"wrong_domain": 1}
    [(_, reason)] = refused.deadletters
    assert "'x-1' is a traffic entity (its first event says so)" in reason.detail
    assert store.records[b"x-1"].domain == "traffic"
    assert store.records[b"x-1"].event_type == "city.traffic.flow.v1"  # its state untouched


def test_the_registry_decides_before_any_event() -> None:
    registry = Registry([("cam-1", Registered("security", "camera", "c", "z", None))])
    store = EntityStore(rules=RuleEngine([]), lateness_ms=120_000, registry=registry)
    flow = _record("ioc.traffic.events", "cam-1", flow_value("cam-1", T0), 0)
    refused = store.apply([flow], domain="traffic", partition=0)
    assert refused.outcomes == {"wrong_domain": 1}
    assert "(the registry says so)" in refused.deadletters[0][1].detail
    assert store.records == {}
    alarm = _record("ioc.security.events", "cam-1", alarm_value("cam-1", T0, kind="fire"), 1)
    assert store.apply([alarm], domain="security", partition=0).outcomes == {"applied": 1}
