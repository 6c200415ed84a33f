"""asyncpg pools bound to one namespace's schema."""

from __future__ import annotations

import asyncpg

from ioc.settings import Settings


async def create_pool(settings: Settings, *, min_size: int = 0) -> asyncpg.Pool:
    """A pool whose connections see the namespace's schema first.

    ``min_size=0`` opens connections on demand, so a process can start while the
    database is down and connect once it is back.
    """
    db = settings.database
    pool = await asyncpg.create_pool(
        settings.dsn,
        min_size=min_size,
        max_size=db.pool_max_size,
        timeout=5,
        command_timeout=30,
        server_settings={"search_path": f"{settings.db_schema},public"},
    )
    assert pool is not None
    return pool
