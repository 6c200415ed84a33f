"""Every topic of the platform, named once: the aggregator, the incident tier's Faust app,
the sinks, the simulator, recordings and the API import them from here."""

from __future__ import annotations

from dataclasses import dataclass

from ioc.settings import Settings

RAW_TOPIC = "ioc.{domain}.events"
STATE_TOPIC = "ioc.state"
DEADLETTER_TOPIC = "ioc.deadletter"
ALERTS_TOPIC = "ioc.alerts"
#: Incident transitions (``streams.incidents``), keyed by area id.
INCIDENTS_TOPIC = "ioc.incidents"
#: Alerts and incidents opened per area and hour, as absolute counts
#: (``streams.incidents.activity``), keyed by area id.
AREA_ACTIVITY_TOPIC = "ioc.area-activity"


@dataclass(frozen=True)
class TopicSpec:
    """A topic to create: its full name in the namespace and its configuration."""

    name: str
    partitions: int
    config: dict[str, str]


def raw_topic(settings: Settings, domain: str) -> str:
    """Raw event topic of one domain, keyed by entity id."""
    return settings.topic(RAW_TOPIC.format(domain=domain))


def topic_specs(settings: Settings, domains: tuple[str, ...]) -> list[TopicSpec]:
    """All topics a namespace needs, with the partition count they must share.

    The entity records' changelog (``ioc.state``) is co-partitioned with the raw topics:
    the aggregator writes an entity's record to the partition its events come from.
    """
    n = settings.kafka.partitions
    # Kafka deletes by the records' timestamps, which here are event times: a log of
    # last year's typhoon would be deleted as soon as it was written. Keep by size.
    by_size = {"retention.ms": "-1", "retention.bytes": str(settings.kafka.log_retention_bytes)}
    specs = [TopicSpec(raw_topic(settings, d), n, by_size) for d in domains]
    specs.append(
        TopicSpec(
            settings.topic(STATE_TOPIC),
            n,
            {
                "cleanup.policy": "compact",
                "min.compaction.lag.ms": str(settings.kafka.state_min_compaction_lag_ms),
            },
        )
    )
    specs.append(TopicSpec(settings.topic(DEADLETTER_TOPIC), n, by_size))
    specs.append(TopicSpec(settings.topic(ALERTS_TOPIC), n, by_size))
    specs.append(TopicSpec(settings.topic(INCIDENTS_TOPIC), n, by_size))
    specs.append(TopicSpec(settings.topic(AREA_ACTIVITY_TOPIC), n, by_size))
    return specs
