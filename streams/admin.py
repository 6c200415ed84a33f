"""Creating the namespace's topics with aiokafka's admin client."""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError

from ioc.settings import Settings
from streams.catalog import DOMAINS
from streams.kafka import client_options
from streams.topics import topic_specs


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
        existing = set(await admin.list_topics())
        specs = topic_specs(settings, DOMAINS)
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
                [NewTopic(s.name, s.partitions, 1, topic_configs=s.config) for s in wanted]
            )
        return [s.name for s in wanted]
    finally:
        await admin.close()
