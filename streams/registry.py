"""The registry as the worker sees it: what each entity is and where, by id.

The ``entity`` table (``ioc seed`` loads the city model into it) says, for each entity,
its domain, kind, commune, zone and expected reporting interval. The aggregator keeps a
copy in memory (:class:`Registry`) and refreshes it from the database: fully at start,
then the rows changed since (``updated_at``). Health rules read the interval and kind
(``streams.alerts.health``). An entity missing from it is simply unknown: its events are
processed as any other's, and the rules that need a registry entry do not judge it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import asyncpg

from ioc.db.pool import connect_options
from ioc.settings import Settings


@dataclass(frozen=True, slots=True)
class Registered:
    """One entity's entry: domain, kind, commune and zone ids, and the seconds between two
    of its periodic reports (None: it reports only when something happens)."""

    domain: str
    kind: str
    commune: str
    zone: str
    interval_s: float | None


class Registry:
    """Registry entries by entity id."""

    def __init__(self, entries: Iterable[tuple[str, Registered]] = ()) -> None:
        self._entries: dict[str, Registered] = dict(entries)

    def get(self, entity_id: str) -> Registered | None:
        return self._entries.get(entity_id)

    def update(self, entries: Iterable[tuple[str, Registered]]) -> int:
        """Add or replace entries; returns how many were given."""
        count = 0
        for entity_id, entry in entries:
            self._entries[entity_id] = entry
            count += 1
        return count

    def __len__(self) -> int:
        return len(self._entries)


#: The registry as the stream worker reads it: rows changed after $1 (all: -infinity).
READ_ENTITIES: Final = """
SELECT id, domain, kind, commune_id, zone_id, report_interval_s, updated_at
FROM entity WHERE updated_at > $1 ORDER BY updated_at
"""


#: Rows a refresh reads again before its ``since``: a load's rows carry the time its
#: transaction began, and one that commits after a refresh must not be missed by the next.
REREAD: Final = timedelta(minutes=5)


async def read_entities(
    settings: Settings, *, since: datetime | None = None
) -> tuple[list[tuple[str, Registered]], datetime | None]:
    """Registry entries changed after ``since - REREAD`` (all when None), and the latest
    change among them (``since`` again when none changed): the next call's ``since``."""
    start = datetime.min.replace(tzinfo=UTC) if since is None else since - REREAD
    conn = await asyncpg.connect(
        settings.dsn,
        timeout=10,
        server_settings={"search_path": f'"{settings.db_schema}",public'},
        **connect_options(settings),
    )
    try:
        rows = await conn.fetch(READ_ENTITIES, start)
    finally:
        await conn.close()
    entries = [
        (
            row["id"],
            Registered(
                domain=row["domain"],
                kind=row["kind"],
                commune=row["commune_id"],
                zone=row["zone_id"],
                interval_s=row["report_interval_s"],
            ),
        )
        for row in rows
    ]
    latest = rows[-1]["updated_at"] if rows else None
    return entries, (since if latest is None or (since and since > latest) else latest)
