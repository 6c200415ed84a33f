-- The sink's refresh after each write (the twin of 0008_recent_rollups.postgres.sql):
-- the hours holding the minutes it wrote, then the days holding them. Continuous
-- aggregates materialise only what TimescaleDB's invalidation log marks as changed, so a
-- window costs what changed in it. Each window reaches one bucket further on both sides:
-- TimescaleDB rounds a refresh window inward on its own bucket grid and refuses one left
-- with no whole bucket ("refresh window too small"), which a single local day can be.
-- Use CALL outside a transaction block: each refresh commits.
CREATE PROCEDURE refresh_rollups_around(first_minute timestamptz, last_minute timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    origin CONSTANT timestamptz := TIMESTAMPTZ '2000-01-01 00:00:00+07';
BEGIN
    IF first_minute IS NULL OR last_minute IS NULL THEN
        RAISE EXCEPTION 'refresh_rollups_around needs both minutes';
    END IF;
    CALL refresh_continuous_aggregate('metric_hour',
        time_bucket(INTERVAL '1 hour', first_minute, origin) - INTERVAL '1 hour',
        time_bucket(INTERVAL '1 hour', last_minute, origin) + INTERVAL '2 hours');
    COMMIT;
    CALL refresh_continuous_aggregate('metric_day',
        time_bucket(INTERVAL '1 day', first_minute, origin) - INTERVAL '1 day',
        time_bucket(INTERVAL '1 day', last_minute, origin) + INTERVAL '2 days');
END
$$;
