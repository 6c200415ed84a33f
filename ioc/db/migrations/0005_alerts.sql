-- Alerts as the rule engine publishes them on ioc.alerts, plus what operators did.
-- The engine's open/update map to 'open' (or stay 'acknowledged' once an operator has
-- acknowledged); resolve maps to 'resolved'. Times are event times.
CREATE TABLE alert (
    alert_id        uuid        PRIMARY KEY,
    rule_id         text        NOT NULL,
    entity_id       text        NOT NULL,
    domain          text        NOT NULL,
    severity        text        NOT NULL,
    state           text        NOT NULL CHECK (state IN ('open', 'acknowledged', 'resolved')),
    opened_at       timestamptz NOT NULL,
    since           timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    resolved_at     timestamptz,
    "values"        jsonb       NOT NULL,
    title_en        text        NOT NULL,
    title_vi        text        NOT NULL,
    acknowledged_by text,
    acknowledged_at timestamptz,
    written_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_open ON alert (rule_id, entity_id) WHERE state <> 'resolved';
CREATE INDEX alert_entity ON alert (entity_id, opened_at DESC);
