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
#: The incident tier's levels: each re-keys the alerts by its areas into a topic of its
#: own and keeps two tables, whose changelogs are named after the topics they feed.
INCIDENT_LEVELS = ("commune", "zone")


def by_area_topic(settings: Settings, level: str) -> str:
    """The alerts re-keyed by the level's areas (the incident tier's repartition topic)."""
    return settings.topic(f"{ALERTS_TOPIC}.{level}s")


def changelog_topic(settings: Settings, feeds: str, level: str) -> str:
    """The changelog of the level's table whose output goes to ``feeds`` (the incidents'
    correlation state, or the places' hourly activity)."""
    return settings.topic(f"{feeds}.{level}s-changelog")


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
    # The incident tier's internal topics, made with the namespace rather than left to
    # Faust at its start: a table whose changelog Faust had only just declared was seen
    # with 0 partitions and its agent crashed (PartitionsMismatch).
    compacted = {"cleanup.policy": "compact"}
    for level in INCIDENT_LEVELS:
        specs.append(TopicSpec(by_area_topic(settings, level), n, by_size))
        for feeds in (INCIDENTS_TOPIC, AREA_ACTIVITY_TOPIC):
            specs.append(TopicSpec(changelog_topic(settings, feeds, level), n, compacted))
    return specs
