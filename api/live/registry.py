"""What the area tiles read from the database: the registry's areas and where it places
each entity (the same ``area_entity`` view the ``area`` filter resolves through), and, once,
the baseline of entity states, open alerts and incidents on screens (the snapshot's own
reads)."""

from __future__ import annotations

import asyncpg

from api.live.areas import Place, Registry
from api.live.filters import LiveFilter
from api.live.hub import Baseline
from api.live.incidents import read_incidents
from api.live.snapshot import read_database

Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

AREAS = "SELECT id, kind, name, name_vi, parent_id FROM area"
PLACEMENTS = """
SELECT ae.area_id, ae.entity_id, e.domain
FROM area_entity AS ae JOIN entity AS e ON e.id = ae.entity_id
"""


async def read_registry(conn: Connection) -> Registry:
    """The areas and the entities' placement as the registry holds them now."""
    areas = await conn.fetch(AREAS)
    placements = await conn.fetch(PLACEMENTS)
    return Registry.of(
        (Place(r["id"], r["kind"], r["name"], r["name_vi"], r["parent_id"]) for r in areas),
        ((r["area_id"], r["entity_id"], r["domain"]) for r in placements),
    )


async def read_baseline(conn: Connection) -> Baseline:
    """Every entity's state, the open alerts and the incidents on screens."""
    everything = LiveFilter()
    entities, alerts = await read_database(conn, everything)
    incidents = await read_incidents(conn, everything, [])
    return Baseline(entities, alerts, incidents)
