-- The sink's refresh after each write: the hours holding the minutes it wrote, then the
-- days holding those hours, computed from the hours. refresh_rollups(window) recomputes
-- hours over its whole window, so a window of whole days (which the day rollup needs)
-- re-aggregated a whole day of minutes every time: late in a live day, every minute row
-- of the city. This costs what the written hours hold, plus 24 hour rows per series.
-- TimescaleDB's twin refreshes its continuous aggregates over the same windows.
CREATE PROCEDURE refresh_rollups_around(first_minute timestamptz, last_minute timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    origin CONSTANT timestamptz := TIMESTAMPTZ '2000-01-01 00:00:00+07';
BEGIN
    IF first_minute IS NULL OR last_minute IS NULL THEN
        RAISE EXCEPTION 'refresh_rollups_around needs both minutes';
    END IF;
    PERFORM refresh_rollup('metric_hour', 'metric_minute', INTERVAL '1 hour',
                           date_bin(INTERVAL '1 hour', first_minute, origin),
                           date_bin(INTERVAL '1 hour', last_minute, origin) + INTERVAL '1 hour');
    PERFORM refresh_rollup('metric_day', 'metric_hour', INTERVAL '1 day',
                           date_bin(INTERVAL '1 day', first_minute, origin),
                           date_bin(INTERVAL '1 day', last_minute, origin) + INTERVAL '1 day');
END
$$;
