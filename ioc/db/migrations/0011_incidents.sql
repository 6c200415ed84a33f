-- Incidents as the incident tier publishes them on ioc.incidents (streams.incidents),
-- stored by streams/incidents/store.py, plus what operators did with them
-- (api/routes/incidents.py). The tier's open/update map to 'open' (or stay
-- 'acknowledged' once an operator acknowledged it), close to 'closed', retract to
-- 'retracted'; 'resolved' and 'merged' are operators' and never change again.
-- opened_at, updated_at and closed_at are event times (updated_at is the newest
-- transition applied: an older one never overwrites it); the operators' *_at columns are
-- wall-clock times of their actions.
CREATE TABLE incident (
    incident_id     uuid        PRIMARY KEY,
    rule_id         text        NOT NULL,
    sop             text        NOT NULL,
    area_id         text        NOT NULL,
    level           text        NOT NULL,
    severity        text        NOT NULL,
    state           text        NOT NULL CHECK (state IN ('open', 'acknowledged', 'closed',
                                                          'resolved', 'retracted', 'merged')),
    opened_at       timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    closed_at       timestamptz,
    title_en        text        NOT NULL,
    title_vi        text        NOT NULL,
    acknowledged_by text,
    acknowledged_at timestamptz,
    assignee        text,
    assigned_by     text,
    assigned_at     timestamptz,
    resolved_by     text,
    resolved_at     timestamptz,
    merged_into     uuid        REFERENCES incident (incident_id),
    written_at      timestamptz NOT NULL DEFAULT now()
);
-- The API lists incidents newest opened first, optionally by state or by area.
CREATE INDEX incident_opened ON incident (opened_at DESC);
CREATE INDEX incident_state_opened ON incident (state, opened_at DESC);
CREATE INDEX incident_area ON incident (area_id, opened_at DESC);

-- Member alerts. joined_at is the event time of the first transition that listed the
-- alert (a merge keeps it). No reference to alert: the two sinks write independently.
CREATE TABLE incident_alert (
    incident_id uuid        NOT NULL REFERENCES incident (incident_id) ON DELETE CASCADE,
    alert_id    uuid        NOT NULL,
    joined_at   timestamptz NOT NULL,
    PRIMARY KEY (incident_id, alert_id)
);
CREATE INDEX incident_alert_alert ON incident_alert (alert_id);

-- The incident's timeline: every correlation transition (at = its event time, by NULL)
-- and every operator's action (at = wall clock, by = the key's name). event_id is the
-- CloudEvent's id, so a repeat or a re-read after a crash adds nothing.
CREATE TABLE incident_log (
    event_id    uuid        PRIMARY KEY,
    incident_id uuid        NOT NULL REFERENCES incident (incident_id) ON DELETE CASCADE,
    at          timestamptz NOT NULL,
    kind        text        NOT NULL,
    "by"        text,
    detail      jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX incident_log_incident ON incident_log (incident_id, at);

-- The steps of the incident's SOP (seeds/sops/<sop>.json) an operator has checked.
CREATE TABLE incident_step (
    incident_id uuid        NOT NULL REFERENCES incident (incident_id) ON DELETE CASCADE,
    step_id     text        NOT NULL,
    checked_by  text        NOT NULL,
    checked_at  timestamptz NOT NULL,
    PRIMARY KEY (incident_id, step_id)
);
