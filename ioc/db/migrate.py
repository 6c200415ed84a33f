"""Ordered SQL migrations, applied by ``ioc migrate`` to one namespace's schema.

Files in ``migrations/`` are applied in the order of their number. A file named
``NNNN_name.timescaledb.sql`` runs only where the TimescaleDB extension is available,
``NNNN_name.postgres.sql`` only where it is not; plain ``NNNN_name.sql`` runs everywhere.
The version table ``schema_migrations`` in the schema records what ran and on which flavour.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from ioc.db.pool import connect_options
from ioc.settings import Settings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
FILE_PATTERN = re.compile(r"^(\d{4})_([a-z0-9_]+?)(?:\.(timescaledb|postgres))?\.sql$")
# Migrations of every namespace are serialised by this advisory lock.
LOCK_ID = 0x10C_0001


@dataclass(frozen=True)
class Migration:
    """One SQL file and the flavour it is for (None: any)."""

    version: int
    name: str
    flavour: str | None
    path: Path


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """All migration files, ordered; a name that does not fit the pattern is an error."""
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = FILE_PATTERN.match(path.name)
        if match is None:
            raise ValueError(f"migration file {path.name} does not match NNNN_name[.flavour].sql")
        found.append(Migration(int(match[1]), match[2], match[3], path))
    return sorted(found, key=lambda m: (m.version, m.flavour or ""))


async def timescaledb_available(conn: asyncpg.Connection) -> bool:
    """True when the server can load the TimescaleDB extension."""
    value = await conn.fetchval(
        "SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'"
    )
    return bool(value)


async def migrate(settings: Settings) -> list[str]:
    """Apply pending migrations to the namespace's schema; return the ones applied."""
    schema = settings.db_schema
    conn = await asyncpg.connect(settings.dsn, timeout=10, **connect_options(settings))
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", LOCK_ID)
        flavour = "timescaledb" if await timescaledb_available(conn) else "postgres"
        if flavour == "timescaledb":
            await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(f'SET search_path TO "{schema}", public')
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer NOT NULL, name text NOT NULL, flavour text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (version, name))"
        )
        done = {
            (r["version"], r["name"])
            for r in await conn.fetch("SELECT version, name FROM schema_migrations")
        }
        applied = []
        for migration in discover():
            if migration.flavour not in (None, flavour):
                continue
            if (migration.version, migration.name) in done:
                continue
            async with conn.transaction():
                await conn.execute(migration.path.read_text())
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, flavour) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    flavour,
                )
            applied.append(migration.path.name)
        return applied
    finally:
        await conn.close()
