-- Raw events, for the domains that keep them, on plain PostgreSQL: the twin of
-- 0004_raw_event.timescaledb.sql. The key makes a repeated write of the same event
-- (at-least-once delivery) a no-op with ON CONFLICT DO NOTHING.
CREATE TABLE raw_event (
    entity_id  text        NOT NULL,
    event_time timestamptz NOT NULL,
    source     text        NOT NULL,
    event_id   text        NOT NULL,
    domain     text        NOT NULL,
    event_type text        NOT NULL,
    payload    jsonb       NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (entity_id, event_time, source, event_id)
);
-- Events arrive roughly in time order, so the table's physical order follows event_time:
-- a BRIN index (a few pages for millions of rows) is enough for time-range scans and for
-- finding the expired rows below, where a B-tree on event_time would cost as much to
-- maintain on every insert as the table's key does.
CREATE INDEX raw_event_time_brin ON raw_event USING brin (event_time);

-- Retention without TimescaleDB's chunk dropping: delete what is older than the horizons
-- the TimescaleDB flavour's policies use (raw events 30 days, minutes 400 days). The sink
-- calls it hourly in the live namespace (IOC_SINK__EXPIRE, IOC_SINK__EXPIRE_INTERVAL_S),
-- e.g. SELECT * FROM delete_expired(). A plain DELETE leaves dead rows for autovacuum, which is
-- the price of not partitioning; time partitions are the step up if volume demands.
CREATE FUNCTION delete_expired(at timestamptz DEFAULT now())
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
END
$$;
