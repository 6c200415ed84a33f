-- Area rollups kept as rows: the views of 0006_areas.sql computed once per refresh
-- instead of at every read. The same SQL on TimescaleDB and on PostgreSQL.
--
-- Why: a view joins every entity row of the range at read time. Measured with 100,000
-- entities, the province's vehicles over one hour of minutes took 1.4 s through
-- area_metric_minute, so a day of minutes took tens of seconds; from these tables the same
-- read is one index range of 1,440 rows (benchmarks/bench_areas.py, RESULTS.md "Area
-- series"). TimescaleDB's continuous aggregates accept a join with one plain table, but
-- not the three-level membership this needs, and not on the plain flavour: one procedure
-- serves both.
--
-- Rows equal the views' rows for the same bucket once refreshed (tests/integration/
-- test_area_series.py): per (area, domain, metric, bucket) the entities with a reading,
-- count, sum, min, max and last_sum (the sum of each entity's last value). Commune and
-- zone rows come from the entity rows in one pass (grouping sets over each entity's
-- commune_id and zone_id, as area_entity places them); the province's rows from its zones'
-- rows, since every one of those figures adds up (or takes the min/max) across disjoint
-- sets of entities.

CREATE TABLE area_minute (
    area_id  text             NOT NULL,
    domain   text             NOT NULL,
    metric   text             NOT NULL,
    bucket   timestamptz      NOT NULL,
    entities bigint           NOT NULL,
    count    bigint           NOT NULL,
    sum      double precision NOT NULL,
    min      double precision NOT NULL,
    max      double precision NOT NULL,
    last_sum double precision NOT NULL,
    PRIMARY KEY (area_id, domain, metric, bucket)
);
-- A refresh deletes what a window no longer holds: by bucket, across areas.
CREATE INDEX area_minute_bucket ON area_minute (bucket);

CREATE TABLE area_hour (LIKE area_minute INCLUDING ALL);
CREATE TABLE area_day (LIKE area_minute INCLUDING ALL);

-- Recompute ``target``'s rows for the buckets in [window_start, window_end) from the
-- entity rollup ``source`` (metric_minute, metric_hour or metric_day): upsert what the
-- entities hold, delete area rows whose entities hold nothing there any more. Absolute and
-- idempotent, like refresh_rollup: running it twice, late, or beside the sink gives the
-- rows a single run after the sink finished would.
CREATE FUNCTION refresh_area_rollup(
    target regclass, source regclass, window_start timestamptz, window_end timestamptz
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF window_start >= window_end THEN
        RETURN;
    END IF;
    EXECUTE format($sql$
        CREATE TEMPORARY TABLE area_fresh ON COMMIT DROP AS
        WITH places AS (
            SELECT CASE WHEN grouping(e.commune_id) = 0 THEN e.commune_id ELSE e.zone_id END
                       AS area_id,
                   grouping(e.commune_id) = 1 AS is_zone,
                   m.domain, m.metric, m.bucket,
                   count(*)::bigint AS entities, sum(m.count)::bigint AS count,
                   sum(m.sum) AS sum, min(m.min) AS min, max(m.max) AS max,
                   sum(m.last) AS last_sum
            FROM %1$s AS m JOIN entity AS e ON e.id = m.entity_id
            WHERE m.bucket >= $1 AND m.bucket < $2
            GROUP BY GROUPING SETS ((e.commune_id, m.domain, m.metric, m.bucket),
                                    (e.zone_id, m.domain, m.metric, m.bucket))
        )
        SELECT area_id, domain, metric, bucket, entities, count, sum, min, max, last_sum
        FROM places
        UNION ALL
        SELECT z.parent_id, p.domain, p.metric, p.bucket, sum(p.entities)::bigint,
               sum(p.count)::bigint, sum(p.sum), min(p.min), max(p.max), sum(p.last_sum)
        FROM places AS p JOIN area AS z ON z.id = p.area_id
        WHERE p.is_zone AND z.parent_id IS NOT NULL
        GROUP BY z.parent_id, p.domain, p.metric, p.bucket
    $sql$, source) USING window_start, window_end;
    EXECUTE format($sql$
        INSERT INTO %1$s AS r
            (area_id, domain, metric, bucket, entities, count, sum, min, max, last_sum)
        SELECT * FROM area_fresh
        ON CONFLICT (area_id, domain, metric, bucket) DO UPDATE SET
            entities = EXCLUDED.entities, count = EXCLUDED.count, sum = EXCLUDED.sum,
            min = EXCLUDED.min, max = EXCLUDED.max, last_sum = EXCLUDED.last_sum
        WHERE (r.entities, r.count, r.sum, r.min, r.max, r.last_sum)
              IS DISTINCT FROM (EXCLUDED.entities, EXCLUDED.count, EXCLUDED.sum,
                                EXCLUDED.min, EXCLUDED.max, EXCLUDED.last_sum)
    $sql$, target);
    EXECUTE format($sql$
        DELETE FROM %1$s AS r
        WHERE r.bucket >= $1 AND r.bucket < $2
          AND NOT EXISTS (
              SELECT 1 FROM area_fresh AS f
              WHERE f.area_id = r.area_id AND f.domain = r.domain
                AND f.metric = r.metric AND f.bucket = r.bucket)
    $sql$, target) USING window_start, window_end;
    DROP TABLE area_fresh;
END
$$;

-- Minutes whose entity rows changed since their area minutes were last computed. The sink
-- adds them in the transaction that writes the rows, so a crash between a write and the
-- refresh loses nothing, and several sinks share the work.
CREATE TABLE area_pending (bucket timestamptz PRIMARY KEY);

-- Area minutes for up to ``max_minutes`` pending minutes (oldest first); returns how many
-- it took, so the caller repeats while there are more. Run by the sink every
-- IOC_SINK__AREA_REFRESH_S, open minutes included: a minute of the city is re-read once
-- per refresh, and the area series lags the entity rows by at most that interval.
-- Minutes another sink is refreshing are skipped (SKIP LOCKED), never waited for.
CREATE FUNCTION refresh_area_minutes(max_minutes integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    taken timestamptz[];
    run record;
BEGIN
    WITH picked AS (
        SELECT bucket FROM area_pending ORDER BY bucket LIMIT max_minutes
        FOR UPDATE SKIP LOCKED
    ), gone AS (
        DELETE FROM area_pending AS a USING picked WHERE a.bucket = picked.bucket
        RETURNING a.bucket
    )
    SELECT array_agg(bucket ORDER BY bucket) INTO taken FROM gone;
    IF taken IS NULL THEN
        RETURN 0;
    END IF;
    -- Consecutive minutes are one window: (minute - its rank) is constant along a run.
    FOR run IN
        SELECT min(b) AS first, max(b) AS last
        FROM (SELECT b, b - (row_number() OVER (ORDER BY b))::integer * INTERVAL '1 minute'
                            AS grp
              FROM unnest(taken) AS b) AS ranked
        GROUP BY grp
    LOOP
        PERFORM refresh_area_rollup('area_minute', 'metric_minute',
                                    run.first, run.last + INTERVAL '1 minute');
    END LOOP;
    RETURN cardinality(taken);
END
$$;

-- Area hours and days holding the minutes in [first_minute, last_minute], read from
-- metric_hour and metric_day as they stand: the sink calls it right after
-- refresh_rollups_around for the same minutes (the hours that became final).
CREATE PROCEDURE refresh_area_rollups_around(first_minute timestamptz, last_minute timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    origin CONSTANT timestamptz := TIMESTAMPTZ '2000-01-01 00:00:00+07';
BEGIN
    IF first_minute IS NULL OR last_minute IS NULL THEN
        RAISE EXCEPTION 'refresh_area_rollups_around needs both minutes';
    END IF;
    PERFORM refresh_area_rollup('area_hour', 'metric_hour',
                                date_bin(INTERVAL '1 hour', first_minute, origin),
                                date_bin(INTERVAL '1 hour', last_minute, origin)
                                    + INTERVAL '1 hour');
    PERFORM refresh_area_rollup('area_day', 'metric_day',
                                date_bin(INTERVAL '1 day', first_minute, origin),
                                date_bin(INTERVAL '1 day', last_minute, origin)
                                    + INTERVAL '1 day');
END
$$;
