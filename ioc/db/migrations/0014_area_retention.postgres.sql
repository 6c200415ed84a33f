-- Area minutes expire with the entity minutes they are computed from (400 days), on plain
-- PostgreSQL through delete_expired (the twin of 0014_area_retention.timescaledb.sql).
-- Area hours and days are kept, as the entity hours and days are.
CREATE OR REPLACE FUNCTION delete_expired(at timestamptz DEFAULT now())
RETURNS TABLE (table_name text, deleted bigint) LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    DELETE FROM raw_event WHERE event_time < at - INTERVAL '30 days';
    GET DIAGNOSTICS n = ROW_COUNT;
    table_name := 'raw_event'; deleted := n; RETURN NEXT;
    DELETE FROM metric_minute WHERE bucket < at - INTERVAL '400 days';
    GET DIAGNOSTICS n = ROW_COUNT;
    table_name := 'metric_minute'; deleted := n; RETURN NEXT;
    DELETE FROM area_minute WHERE bucket < at - INTERVAL '400 days';
    GET DIAGNOSTICS n = ROW_COUNT;
    table_name := 'area_minute'; deleted := n; RETURN NEXT;
END
$$;
