-- Hour and day rollups of metric_minute, compression and retention, on TimescaleDB.
-- The plain PostgreSQL flavour (0003_rollups.postgres.sql) gives the same columns and,
-- after a refresh of the same window, the same rows; tests/integration/
-- test_timescaledb_parity.py checks that against a real TimescaleDB build.
--
-- Buckets are aligned to local midnight in Quang Ninh (Asia/Ho_Chi_Minh, UTC+07:00 all
-- year, no daylight saving), so a "day" is the operators' day. The origin is a fixed
-- offset rather than a zone name because TimescaleDB refuses a hierarchical aggregate
-- whose origin differs from its parent's, and UTC+07 is a whole number of hours, so the
-- hour buckets are the plain UTC hours.

-- Minutes: compressed after 7 days (segments per series, so one series' history is one
-- compressed batch), dropped after 400 days. The sink's upsert still works on compressed
-- chunks (TimescaleDB decompresses the affected batch), so a late replay is not refused.
ALTER TABLE metric_minute SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'entity_id, metric',
    timescaledb.compress_orderby = 'bucket DESC'
);
SELECT add_compression_policy('metric_minute', compress_after => INTERVAL '7 days');
SELECT add_retention_policy('metric_minute', drop_after => INTERVAL '400 days');

-- materialized_only: a rollup shows what its last refresh computed, on both flavours.
-- Real-time aggregation has no cheap plain-PostgreSQL twin; the current hour or day is
-- read from metric_minute.
CREATE MATERIALIZED VIEW metric_hour
WITH (timescaledb.continuous, timescaledb.materialized_only = true) AS
SELECT entity_id,
       metric,
       time_bucket(INTERVAL '1 hour', bucket, TIMESTAMPTZ '2000-01-01 00:00:00+07') AS bucket,
       domain,
       sum(count)::bigint AS count,
       sum(sum) AS sum,
       min(min) AS min,
       max(max) AS max,
       last(last, bucket) AS last
FROM metric_minute
GROUP BY entity_id, metric,
         time_bucket(INTERVAL '1 hour', bucket, TIMESTAMPTZ '2000-01-01 00:00:00+07'), domain
WITH NO DATA;

-- Days roll up hours (a hierarchical continuous aggregate): a refresh reads 24 rows per
-- series and day instead of 1,440.
CREATE MATERIALIZED VIEW metric_day
WITH (timescaledb.continuous, timescaledb.materialized_only = true) AS
SELECT entity_id,
       metric,
       time_bucket(INTERVAL '1 day', bucket, TIMESTAMPTZ '2000-01-01 00:00:00+07') AS bucket,
       domain,
       sum(count)::bigint AS count,
       sum(sum) AS sum,
       min(min) AS min,
       max(max) AS max,
       last(last, bucket) AS last
FROM metric_hour
GROUP BY entity_id, metric,
         time_bucket(INTERVAL '1 day', bucket, TIMESTAMPTZ '2000-01-01 00:00:00+07'), domain
WITH NO DATA;

CREATE INDEX metric_hour_series ON metric_hour (entity_id, metric, bucket);
CREATE INDEX metric_day_series ON metric_day (entity_id, metric, bucket);

-- A refresh materialises only buckets that lie wholly inside its window. end_offset leaves
-- the allowed lateness (2 min) and the sink's delay behind before an hour is computed;
-- later changes are caught by the next run through TimescaleDB's invalidation log.
SELECT add_continuous_aggregate_policy('metric_hour',
    start_offset => INTERVAL '3 days', end_offset => INTERVAL '10 minutes',
    schedule_interval => INTERVAL '5 minutes');
SELECT add_continuous_aggregate_policy('metric_day',
    start_offset => INTERVAL '7 days', end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '1 hour');

-- The same call on both flavours: recompute the hour and day buckets lying wholly inside
-- [window_start, window_end). TimescaleDB refuses a window that holds no whole bucket
-- ("refresh window too small"); such a rollup is skipped instead, as on PostgreSQL.
-- Use CALL outside a transaction block: each refresh commits.
CREATE FUNCTION rollup_window_holds_bucket(
    width interval, window_start timestamptz, window_end timestamptz
) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN time_bucket(width, window_start, TIMESTAMPTZ '2000-01-01 00:00:00+07')
             = window_start THEN window_start + width <= window_end
        ELSE time_bucket(width, window_start, TIMESTAMPTZ '2000-01-01 00:00:00+07')
             + 2 * width <= window_end
    END
$$;

CREATE PROCEDURE refresh_rollups(window_start timestamptz, window_end timestamptz)
LANGUAGE plpgsql AS $$
BEGIN
    IF window_start IS NULL OR window_end IS NULL THEN
        RAISE EXCEPTION 'refresh_rollups needs both ends of the window';
    END IF;
    IF rollup_window_holds_bucket(INTERVAL '1 hour', window_start, window_end) THEN
        CALL refresh_continuous_aggregate('metric_hour', window_start, window_end);
        COMMIT;
    END IF;
    IF rollup_window_holds_bucket(INTERVAL '1 day', window_start, window_end) THEN
        CALL refresh_continuous_aggregate('metric_day', window_start, window_end);
    END IF;
END
$$;
