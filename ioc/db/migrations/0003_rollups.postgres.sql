-- Hour and day rollups of metric_minute on plain PostgreSQL: the twin of
-- 0003_rollups.timescaledb.sql. Same columns, same buckets (local midnight in Quang Ninh,
-- UTC+07:00, no daylight saving) and, after a refresh of the same window, the same rows;
-- tests/integration/test_timescaledb_parity.py checks that against real TimescaleDB.
--
-- Why tables and a procedure rather than materialized views: PostgreSQL's REFRESH
-- MATERIALIZED VIEW recomputes everything, every time. A rollup table refreshed one time
-- window at a time costs what the window holds, and the refresh is idempotent: it writes
-- absolute values computed from metric_minute, so running it twice, late or concurrently
-- with the sink gives the same rows as running it once after the sink has finished.
-- Nothing runs it by itself here (no background jobs as with TimescaleDB's policies):
-- whoever schedules maintenance calls refresh_rollups for the recent past, like the
-- TimescaleDB policies (hours: the last 3 days every 5 minutes; days: the last 7 days
-- every hour).

CREATE TABLE metric_hour (
    entity_id text             NOT NULL,
    metric    text             NOT NULL,
    bucket    timestamptz      NOT NULL,
    domain    text             NOT NULL,
    count     bigint           NOT NULL,
    sum       double precision NOT NULL,
    min       double precision NOT NULL,
    max       double precision NOT NULL,
    last      double precision NOT NULL,
    -- domain is part of the key because the continuous aggregate groups by it too.
    PRIMARY KEY (entity_id, metric, bucket, domain)
);

CREATE TABLE metric_day (LIKE metric_hour INCLUDING ALL);

-- Recompute one rollup's buckets lying wholly inside [window_start, window_end) from its
-- source (minutes for hours, hours for days), as TimescaleDB's
-- refresh_continuous_aggregate does: upsert what the source holds, delete buckets whose
-- source rows are gone (retention, or a correction), leave everything else alone.
CREATE FUNCTION refresh_rollup(
    target regclass, source regclass, width interval,
    window_start timestamptz, window_end timestamptz
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    origin CONSTANT timestamptz := TIMESTAMPTZ '2000-01-01 00:00:00+07';
    first_bucket timestamptz := date_bin(width, window_start, origin);
    end_bucket timestamptz := date_bin(width, window_end, origin);
BEGIN
    IF first_bucket < window_start THEN
        first_bucket := first_bucket + width;
    END IF;
    IF first_bucket >= end_bucket THEN
        RETURN;
    END IF;
    EXECUTE format($sql$
        INSERT INTO %1$s AS r (entity_id, metric, bucket, domain, count, sum, min, max, last)
        SELECT entity_id, metric, date_bin($1, bucket, $4), domain,
               sum(count)::bigint, sum(sum), min(min), max(max),
               (array_agg(last ORDER BY bucket DESC))[1]
        FROM %2$s
        WHERE bucket >= $2 AND bucket < $3
        GROUP BY entity_id, metric, date_bin($1, bucket, $4), domain
        ON CONFLICT (entity_id, metric, bucket, domain) DO UPDATE SET
            count = EXCLUDED.count, sum = EXCLUDED.sum, min = EXCLUDED.min,
            max = EXCLUDED.max, last = EXCLUDED.last
        WHERE (r.count, r.sum, r.min, r.max, r.last)
              IS DISTINCT FROM (EXCLUDED.count, EXCLUDED.sum, EXCLUDED.min,
                                EXCLUDED.max, EXCLUDED.last)
    $sql$, target, source) USING width, first_bucket, end_bucket, origin;
    EXECUTE format($sql$
        DELETE FROM %1$s AS r
        WHERE r.bucket >= $2 AND r.bucket < $3
          AND NOT EXISTS (
              SELECT 1 FROM %2$s AS s
              WHERE s.entity_id = r.entity_id AND s.metric = r.metric
                AND s.domain = r.domain
                AND s.bucket >= r.bucket AND s.bucket < r.bucket + $1)
    $sql$, target, source) USING width, first_bucket, end_bucket;
END
$$;

-- The same call on both flavours: CALL refresh_rollups(window_start, window_end).
-- Hours first, then days from the refreshed hours.
CREATE PROCEDURE refresh_rollups(window_start timestamptz, window_end timestamptz)
LANGUAGE plpgsql AS $$
BEGIN
    IF window_start IS NULL OR window_end IS NULL THEN
        RAISE EXCEPTION 'refresh_rollups needs both ends of the window';
    END IF;
    PERFORM refresh_rollup('metric_hour', 'metric_minute', INTERVAL '1 hour',
                           window_start, window_end);
    PERFORM refresh_rollup('metric_day', 'metric_hour', INTERVAL '1 day',
                           window_start, window_end);
END
$$;
