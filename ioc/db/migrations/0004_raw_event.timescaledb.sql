-- Raw events, for the domains that keep them: a hypertable chunked by day whose chunks
-- are dropped after 30 days by a retention policy. The key makes a repeated write of the
-- same event (at-least-once delivery) a no-op with ON CONFLICT DO NOTHING; it holds the
-- time column because a hypertable's unique keys must.
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
SELECT create_hypertable('raw_event', 'event_time', chunk_time_interval => INTERVAL '1 day');
SELECT add_retention_policy('raw_event', drop_after => INTERVAL '30 days');
