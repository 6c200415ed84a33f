"""Removing a test's namespace when it is done, so the broker and database stay lean.

Each namespace has seven topics of 8 partitions (more with IOC_KAFKA__PARTITIONS), and the
suite makes well over a hundred: kept, their log segments' open files reach the broker's
limit (we saw "Too many open files" take the local broker down).
"""

from __future__ import annotations

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient

from ioc.settings import LIVE_NAMESPACE, Settings
from streams.kafka import client_options


async def drop_namespace(settings: Settings) -> None:
    """Delete the namespace's topics and its database schema."""
    if settings.namespace == LIVE_NAMESPACE:
        raise ValueError("tests never drop the live namespace")
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        names = [n for n in await admin.list_topics() if n.startswith(settings.topic_prefix)]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()
    conn = await asyncpg.connect(settings.dsn)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{settings.db_schema}" CASCADE')
    finally:
        await conn.close()
