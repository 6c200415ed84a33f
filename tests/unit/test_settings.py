"""The settings object: environment names, external services, namespaces."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from ioc.settings import Settings


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from the defaults, whatever the shell running the suite set."""
    for name in list(os.environ):
        if name.startswith("IOC_") or name in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL"):
            monkeypatch.delenv(name)


def test_defaults_point_at_the_local_services() -> None:
    settings = Settings(_env_file=None)
    assert settings.bootstrap_servers == "127.0.0.1:19092"
    assert settings.dsn == "postgresql://ioc@127.0.0.1:15432/ioc"
    assert not settings.external_kafka
    assert not settings.external_database
    assert settings.topic("ioc.state") == "ioc.state"


def test_well_known_variables_make_services_external(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9092,kafka-2:9092")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:secret@db:5432/city")
    settings = Settings(_env_file=None)
    assert settings.external_kafka
    assert settings.external_database
    assert settings.bootstrap_servers == "kafka-1:9092,kafka-2:9092"
    assert settings.dsn.endswith("@db:5432/city")
    assert "secret" not in repr(settings)


def test_nested_variables_and_sandbox_namespaces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IOC_NAMESPACE", "drill_1")
    monkeypatch.setenv("IOC_KAFKA__PARTITIONS", "12")
    settings = Settings(_env_file=None)
    assert settings.kafka.partitions == 12
    assert settings.topic("ioc.traffic.events") == "drill_1.ioc.traffic.events"
    assert settings.db_schema == "drill_1"


@pytest.mark.parametrize("bad", ["Live", "1abc", "a-b", "", "x" * 40, 'a"; drop'])
def test_bad_namespace_names_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError, match="namespace"):
        Settings(_env_file=None, namespace=bad)


def test_event_time_topics_keep_records_by_size_not_age() -> None:
    from contract.catalog import DOMAINS
    from streams.topics import topic_specs

    specs = {s.name: s.config for s in topic_specs(Settings(_env_file=None), DOMAINS)}
    for name in ("ioc.traffic.events", "ioc.hospital.events", "ioc.deadletter"):
        assert specs[name]["retention.ms"] == "-1"
        assert int(specs[name]["retention.bytes"]) > 0
    assert specs["ioc.state"]["cleanup.policy"] == "compact"
