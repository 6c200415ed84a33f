"""The Faust application of one namespace: its topics and the entity table.

Run a worker with ``ioc worker``. Every agent and the sink import the app, topics and
table from here; nothing connects until the worker starts.
"""

from __future__ import annotations

import faust

from ioc.settings import get_settings
from streams.catalog import DOMAINS
from streams.topics import ALERTS_TOPIC, DEADLETTER_TOPIC, STATE_TOPIC, raw_topic

settings = get_settings()

app = faust.App(
    f"ioc-{settings.namespace}",
    broker=";".join(f"kafka://{s}" for s in settings.bootstrap_servers.split(",")),
    store="memory://",
    # Faust keeps a small data directory per app; inside the state dir, not the cwd.
    datadir=str(settings.state_dir.resolve() / "faust" / f"ioc-{settings.namespace}"),
    autodiscover=False,
    topic_partitions=settings.kafka.partitions,
    topic_replication_factor=1,
    topic_disable_leader=True,
    table_standby_replicas=0,
    consumer_auto_offset_reset="earliest",
    key_serializer="raw",
    value_serializer="raw",
    web_host="127.0.0.1",
    web_port=settings.streams.web_port,
    web_in_thread=False,
    producer_acks=-1,
    # A worker killed with -9 holds its partitions until its session times out.
    broker_session_timeout=10.0,
    broker_heartbeat_interval=2.0,
    # Batch changelog and dead-letter records: one produce request per record is costly.
    producer_linger=0.01,
    producer_max_batch_size=256 * 1024,
)

raw_topics: dict[str, faust.TopicT] = {
    domain: app.topic(raw_topic(settings, domain), key_type=bytes, value_type=bytes)
    for domain in DOMAINS
}
state_topic = app.topic(
    settings.topic(STATE_TOPIC),
    key_type=bytes,
    value_serializer="json",
    partitions=settings.kafka.partitions,
    compacting=True,
)
alerts_topic = app.topic(settings.topic(ALERTS_TOPIC), key_type=bytes, value_type=bytes)
deadletter_topic = app.topic(settings.topic(DEADLETTER_TOPIC), key_type=bytes, value_type=bytes)

#: Latest state, open minutes and last applied offset of every entity (see streams.windows),
#: keyed by the entity id's bytes (the raw topics' key); values are JSON (orjson in Faust).
entity_table = app.Table(
    "entities",
    default=None,
    key_type=bytes,
    changelog_topic=state_topic,
    partitions=settings.kafka.partitions,
)
