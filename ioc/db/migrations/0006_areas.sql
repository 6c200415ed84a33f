-- The city registry (areas and entities, loaded from the city model by ioc/db/registry.py)
-- and area rollups read from the entity rollups. Plain SQL: the same on TimescaleDB and on
-- PostgreSQL, because metric_minute, metric_hour and metric_day have the same columns on
-- both flavours (tables, a hypertable or continuous aggregates).

-- Province -> zone (the 13 former district-level units) -> commune-level unit.
-- kind is the place in the hierarchy; level keeps the administrative kind of a
-- commune-level unit (ward, commune or special_zone).
CREATE TABLE area (
    id         text             PRIMARY KEY,
    kind       text             NOT NULL CHECK (kind IN ('province', 'zone', 'commune')),
    level      text             NOT NULL,
    parent_id  text             REFERENCES area (id),
    name       text             NOT NULL,
    name_vi    text             NOT NULL,
    lat        double precision NOT NULL,
    lon        double precision NOT NULL,
    boundary   jsonb            NOT NULL,  -- simple polygon, [[lat, lon], ...]
    updated_at timestamptz      NOT NULL DEFAULT now(),
    CHECK ((kind = 'province') = (parent_id IS NULL))
);
CREATE INDEX area_parent ON area (parent_id);

-- Every thing that emits events. Not a foreign key of metric_minute: the sink writes what
-- the streams saw, registered or not; an unregistered entity is left out of area rollups.
CREATE TABLE entity (
    id         text             PRIMARY KEY,
    domain     text             NOT NULL,
    kind       text             NOT NULL,
    name       text             NOT NULL,
    name_vi    text,
    commune_id text             NOT NULL REFERENCES area (id),
    zone_id    text             NOT NULL REFERENCES area (id),
    lat        double precision NOT NULL,
    lon        double precision NOT NULL,
    landmark   boolean          NOT NULL DEFAULT false,
    attrs      jsonb            NOT NULL DEFAULT '{}',
    updated_at timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX entity_commune ON entity (commune_id);
CREATE INDEX entity_zone ON entity (zone_id);
CREATE INDEX entity_domain ON entity (domain, id);

-- Which entities each area holds: an entity belongs to its commune, its zone and the
-- zone's parent (the province). A filter on area_id reaches each branch, so one commune
-- reads its entities through entity_commune, not the whole registry.
CREATE VIEW area_entity AS
SELECT commune_id AS area_id, id AS entity_id FROM entity
UNION ALL
SELECT zone_id, id FROM entity
UNION ALL
SELECT z.parent_id, e.id
FROM entity AS e JOIN area AS z ON z.id = e.zone_id
WHERE z.parent_id IS NOT NULL;

-- Area rollups of the entity rollups, one view per bucket width, computed when read.
-- Per (area, domain, metric, bucket):
--   entities  entities with at least one reading in the bucket
--   count     readings, sum  their sum, min/max  of all readings
--   last_sum  sum over those entities of each one's last value in the bucket
-- The reader picks what the metric means (see "Areas" in docs/architecture.md):
-- event counts and per-interval quantities (vehicles, admissions) add up, so the area
-- total is sum; rates and levels (speed, occupancy %) are averaged over every reading,
-- avg = sum / count; gauges (er_waiting, present) add up across entities as last_sum.
-- Hour and day views are as fresh as the last refresh of metric_hour and metric_day.
CREATE VIEW area_metric_minute AS
SELECT ae.area_id, m.domain, m.metric, m.bucket,
       count(*)::bigint AS entities,
       sum(m.count)::bigint AS count,
       sum(m.sum) AS sum,
       min(m.min) AS min,
       max(m.max) AS max,
       sum(m.last) AS last_sum
FROM area_entity AS ae JOIN metric_minute AS m ON m.entity_id = ae.entity_id
GROUP BY ae.area_id, m.domain, m.metric, m.bucket;

CREATE VIEW area_metric_hour AS
SELECT ae.area_id, m.domain, m.metric, m.bucket,
       count(*)::bigint AS entities,
       sum(m.count)::bigint AS count,
       sum(m.sum) AS sum,
       min(m.min) AS min,
       max(m.max) AS max,
       sum(m.last) AS last_sum
FROM area_entity AS ae JOIN metric_hour AS m ON m.entity_id = ae.entity_id
GROUP BY ae.area_id, m.domain, m.metric, m.bucket;

CREATE VIEW area_metric_day AS
SELECT ae.area_id, m.domain, m.metric, m.bucket,
       count(*)::bigint AS entities,
       sum(m.count)::bigint AS count,
       sum(m.sum) AS sum,
       min(m.min) AS min,
       max(m.max) AS max,
       sum(m.last) AS last_sum
FROM area_entity AS ae JOIN metric_day AS m ON m.entity_id = ae.entity_id
GROUP BY ae.area_id, m.domain, m.metric, m.bucket;
