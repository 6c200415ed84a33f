"""The city model in the database: areas and entities, upserted idempotently.

``ioc seed`` (and ``ioc run``, after migrating) loads ``city.model.build_city``'s
model into the namespace's ``area`` and ``entity`` tables, which the area rollups
(``area_metric_minute``, ``_hour``, ``_day``) join to the entity rollups. A load writes
only rows that differ from what is stored, so loading the same model twice changes
nothing; an entity that left the model keeps its row (its history stays in its areas).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import asyncpg
import orjson

from city.model import REPORT_INTERVAL_S, Area, City, Point
from ioc.db.pool import connect_options
from ioc.settings import Settings

#: The place in the hierarchy of each administrative level of the city model.
AREA_KINDS: Final = {
    "province": "province",
    "zone": "zone",
    "ward": "commune",
    "commune": "commune",
    "special_zone": "commune",
}
#: Rows per statement: a 100,000-entity load is a handful of round trips.
BATCH: Final = 20_000

UPSERT_AREAS: Final = """
WITH changed AS (
    INSERT INTO area AS a (id, kind, level, parent_id, name, name_vi, lat, lon, boundary)
    SELECT i, k, lv, p, n, nv, la, lo, b::jsonb
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                $7::float8[], $8::float8[], $9::text[])
         AS r(i, k, lv, p, n, nv, la, lo, b)
    ON CONFLICT (id) DO UPDATE SET
        kind = EXCLUDED.kind, level = EXCLUDED.level, parent_id = EXCLUDED.parent_id,
        name = EXCLUDED.name, name_vi = EXCLUDED.name_vi, lat = EXCLUDED.lat,
        lon = EXCLUDED.lon, boundary = EXCLUDED.boundary, updated_at = now()
    WHERE (a.kind, a.level, a.parent_id, a.name, a.name_vi, a.lat, a.lon, a.boundary)
          IS DISTINCT FROM (EXCLUDED.kind, EXCLUDED.level, EXCLUDED.parent_id, EXCLUDED.name,
                            EXCLUDED.name_vi, EXCLUDED.lat, EXCLUDED.lon, EXCLUDED.boundary)
    RETURNING 1
)
SELECT count(*) FROM changed
"""

UPSERT_ENTITIES: Final = """
WITH changed AS (
    INSERT INTO entity AS e
        (id, domain, kind, name, name_vi, commune_id, zone_id, lat, lon, landmark, attrs,
         report_interval_s)
    SELECT i, d, k, n, nv, c, z, la, lo, lm, at::jsonb, ri
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                $7::text[], $8::float8[], $9::float8[], $10::bool[], $11::text[],
                $12::float8[])
         AS r(i, d, k, n, nv, c, z, la, lo, lm, at, ri)
    ON CONFLICT (id) DO UPDATE SET
        domain = EXCLUDED.domain, kind = EXCLUDED.kind, name = EXCLUDED.name,
        name_vi = EXCLUDED.name_vi, commune_id = EXCLUDED.commune_id,
        zone_id = EXCLUDED.zone_id, lat = EXCLUDED.lat, lon = EXCLUDED.lon,
        landmark = EXCLUDED.landmark, attrs = EXCLUDED.attrs,
        report_interval_s = EXCLUDED.report_interval_s, updated_at = now()
    WHERE (e.domain, e.kind, e.name, e.name_vi, e.commune_id, e.zone_id, e.lat, e.lon,
           e.landmark, e.attrs, e.report_interval_s)
          IS DISTINCT FROM (EXCLUDED.domain, EXCLUDED.kind, EXCLUDED.name, EXCLUDED.name_vi,
                            EXCLUDED.commune_id, EXCLUDED.zone_id, EXCLUDED.lat,
                            EXCLUDED.lon, EXCLUDED.landmark, EXCLUDED.attrs,
                            EXCLUDED.report_interval_s)
    RETURNING 1
)
SELECT count(*) FROM changed
"""


@dataclass(frozen=True)
class RegistryLoad:
    """What one load wrote: rows in the model, and rows inserted or changed."""

    version: str
    areas: int
    entities: int
    areas_changed: int
    entities_changed: int


def boundary_json(polygon: Iterable[Point]) -> str:
    """A polygon as the JSON text stored in ``area.boundary``: ``[[lat, lon], ...]``."""
    return orjson.dumps([[lat, lon] for lat, lon in polygon]).decode()


def _area_kind(area: Area) -> str:
    try:
        return AREA_KINDS[area.level]
    except KeyError:
        raise ValueError(f"area {area.id}: unknown level {area.level!r}") from None


def area_columns(city: City) -> list[list[Any]]:
    """The model's areas as column arrays in ``UPSERT_AREAS`` order, parents first."""
    areas = (city.province, *city.zones, *city.communes)
    repeated = sorted(i for i, n in Counter(a.id for a in areas).items() if n > 1)
    if repeated:
        raise ValueError(f"area ids used more than once across levels: {repeated}")
    rows = [
        (
            a.id,
            _area_kind(a),
            a.level,
            a.parent,
            a.name,
            a.name_vi,
            a.lat,
            a.lon,
            boundary_json(a.polygon),
        )
        for a in areas
    ]
    return [list(column) for column in zip(*rows, strict=True)]


def entity_columns(city: City) -> list[list[Any]]:
    """The model's entities as column arrays in ``UPSERT_ENTITIES`` order."""
    columns: list[list[Any]] = [[] for _ in range(12)]
    for e in city.entities:
        row = (
            e.id,
            e.domain,
            e.kind,
            e.name,
            e.name_vi,
            e.commune,
            e.zone,
            e.lat,
            e.lon,
            e.landmark,
            orjson.dumps(e.attrs, option=orjson.OPT_SORT_KEYS).decode(),
            REPORT_INTERVAL_S.get(e.kind),
        )
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    return columns


def batches(columns: Sequence[list[Any]], size: int = BATCH) -> Iterable[list[list[Any]]]:
    """Column arrays cut into consecutive slices of at most ``size`` rows."""
    rows = len(columns[0]) if columns else 0
    for start in range(0, rows, size):
        yield [column[start : start + size] for column in columns]


async def load_registry(settings: Settings, city: City) -> RegistryLoad:
    """Upsert the city model's areas and entities into the namespace's schema."""
    conn = await asyncpg.connect(
        settings.dsn,
        timeout=10,
        server_settings={"search_path": f'"{settings.db_schema}",public'},
        **connect_options(settings),
    )
    try:
        async with conn.transaction():
            areas_changed = await conn.fetchval(UPSERT_AREAS, *area_columns(city))
            entities_changed = 0
            for chunk in batches(entity_columns(city)):
                entities_changed += await conn.fetchval(UPSERT_ENTITIES, *chunk)
    finally:
        await conn.close()
    return RegistryLoad(
        version=city.version,
        areas=1 + len(city.zones) + len(city.communes),
        entities=len(city.entities),
        areas_changed=areas_changed,
        entities_changed=entities_changed,
    )
