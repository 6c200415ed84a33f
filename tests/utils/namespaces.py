"""A test's namespace: made with its topics and schema, and removed when the test is done,
so the broker and database stay lean.

Each namespace has seven topics of 8 partitions (more with IOC_KAFKA__PARTITIONS), and the
suite makes well over a hundred: kept, their log segments' open files reach the broker's
limit (we saw "Too many open files" take the local broker down).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from ioc.settings import LIVE_NAMESPACE, Settings
from streams.kafka import client_options


@dataclass
class Namespace:
    """A sandbox namespace of its own for one test: topics, schema, consumer groups."""

    settings: Settings
    env: dict[str, str] = field(default_factory=dict)
    logs: Path = Path()


NamespaceFactory = Callable[[], Coroutine[Any, Any, Namespace]]


async def new_namespace(infra: Settings, tmp_path_factory: pytest.TempPathFactory) -> Namespace:
    """A fresh namespace (topics created, schema migrated) whose processes log into a
    directory of its own; the caller drops it (``drop_namespace``)."""
    from ioc.db.migrate import migrate
    from streams.admin import ensure_topics

    name = f"t_{uuid.uuid4().hex[:10]}"
    settings = infra.model_copy(update={"namespace": name})
    await migrate(settings)
    await ensure_topics(settings)
    env = {"IOC_NAMESPACE": name, "IOC_STATE_DIR": str(infra.state_dir)}
    return Namespace(settings=settings, env=env, logs=tmp_path_factory.mktemp(name))


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
