"""Creating the namespace's topics with aiokafka's admin client."""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError

from contract.catalog import DOMAINS
from ioc.settings import LIVE_NAMESPACE, Settings
from streams.kafka import client_options
from streams.topics import TopicSpec, topic_specs


async def ensure_topics(settings: Settings, *, attempts: int = 30) -> list[str]:
    """Create every missing topic of the namespace; return the names of the ones created."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    for attempt in range(attempts):
        try:
            await admin.start()
            break
        except KafkaConnectionError:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(1)
    try:
        specs = topic_specs(settings, DOMAINS)
        # Operators own the live namespace's topics (KafkaTopic resources); sandboxes
        # (replays, drills) are made here still.
        if not settings.kafka.create_topics and settings.namespace == LIVE_NAMESPACE:
            await check_topics(admin, specs)
            return []
        existing = set(await admin.list_topics())
        wanted = [s for s in specs if s.name not in existing]
        # Topics made by an older version get today's configuration.
        present = [s for s in specs if s.name in existing and s.config]
        if present:
            await admin.alter_configs(
                [ConfigResource(ConfigResourceType.TOPIC, s.name, s.config) for s in present]
            )
        if not wanted:
            return []
        # Another process may create them between our look and our request.
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(
                [
                    NewTopic(
                        s.name,
                        s.partitions,
                        settings.kafka.replication_factor,
                        topic_configs=s.config,
                    )
                    for s in wanted
                ]
            )
        # The controller has them; wait until the broker's metadata lists them too, so a
        # client started right after (a worker, a check) finds them.
        names = {s.name for s in wanted}
        for _ in range(100):
            if names <= set(await admin.list_topics()):
                break
            await asyncio.sleep(0.1)
        return [s.name for s in wanted]
    finally:
        await admin.close()


class TopicsNotReady(RuntimeError):
    """Topics owned by an operator are missing or have another partition count."""


async def check_topics(admin: AIOKafkaAdminClient, specs: list[TopicSpec]) -> None:
    """Check that topics made by someone else (Strimzi's KafkaTopic resources) exist with
    the partition count the worker's co-partitioning needs; alter nothing."""
    existing = set(await admin.list_topics())
    missing = [s.name for s in specs if s.name not in existing]
    if missing:
        raise TopicsNotReady(
            f"IOC_KAFKA__CREATE_TOPICS is false and these topics do not exist: {missing}"
        )
    described = await admin.describe_topics([s.name for s in specs])
    counts = {d["topic"]: len(d["partitions"]) for d in described}
    wrong = {s.name: counts.get(s.name) for s in specs if counts.get(s.name) != s.partitions}
    if wrong:
        raise TopicsNotReady(
            f"topics must have IOC_KAFKA__PARTITIONS={specs[0].partitions} partitions "
            f"(raw and state topics are co-partitioned); found {wrong}"
        )
