"""The home partition of a key, and records found elsewhere."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import ConsumerRecord

from streams.alerts import RuleEngine
from streams.partitions import home_partition
from streams.state import EntityStore
from tests.utils.events import T0, flow_value

PARTITIONS = 8


def test_the_home_partition_is_where_aiokafka_sends_the_key() -> None:
    partitioner = DefaultPartitioner()
    for n in range(500):
        key = f"qn-ix-halong-{n:03d}".encode()
        chosen = partitioner(key, list(range(PARTITIONS)), list(range(PARTITIONS)))
        assert home_partition(key, PARTITIONS) == chosen


def _record(entity: str, partition: int, offset: int) -> ConsumerRecord:
    value = flow_value(entity, T0, event_id=f"{entity}-{offset}")
    return ConsumerRecord(
        "ioc.traffic.events", partition, offset, 0, 0, entity.encode(), value, None, 0, 0, []
    )


def test_a_record_off_its_home_partition_is_dead_lettered_naming_the_setting() -> None:
    store = EntityStore(rules=RuleEngine([]), lateness_ms=120_000)
    home = home_partition(b"ix-7", PARTITIONS)
    away = (home + 1) % PARTITIONS
    wrong = store.apply(
        [_record("ix-7", away, 0)], domain="traffic", partition=away, partitions=PARTITIONS
    )
    assert wrong.outcomes == {"wrong_partition": 1}
    [(_, rejection)] = wrong.deadletters
    assert rejection.field == "partition"
    assert f"belongs on partition {home}" in rejection.detail
    assert "partitioner=murmur2_random" in rejection.detail
    assert store.records == {}  # no second state started
    right = store.apply(
        [_record("ix-7", home, 0)], domain="traffic", partition=home, partitions=PARTITIONS
    )
    assert right.outcomes == {"applied": 1}
    assert store.records[b"ix-7"].partition == home
