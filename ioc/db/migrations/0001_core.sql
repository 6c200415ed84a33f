-- Per-minute aggregates per entity and metric: absolute values, upserted by the sink.
-- version is the source offset that produced the row; an upsert never goes backwards.
CREATE TABLE metric_minute (
    entity_id  text             NOT NULL,
    metric     text             NOT NULL,
    bucket     timestamptz      NOT NULL,
    domain     text             NOT NULL,
    count      bigint           NOT NULL,
    sum        double precision NOT NULL,
    min        double precision NOT NULL,
    max        double precision NOT NULL,
    last       double precision NOT NULL,
    version    bigint           NOT NULL,
    updated_at timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (entity_id, metric, bucket)
);

-- Latest known state per entity (the last event's payload by event time).
CREATE TABLE entity_state (
    entity_id  text        PRIMARY KEY,
    domain     text        NOT NULL,
    event_type text,
    event_time timestamptz NOT NULL,
    state      jsonb       NOT NULL,
    version    bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX entity_state_domain ON entity_state (domain, entity_id);
