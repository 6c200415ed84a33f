-- Alerts and incidents opened per area and hour, as the incident tier counts them
-- (streams/incidents/activity.py) and publishes them on ioc.area-activity; stored by
-- streams/incidents/activity_store.py, read by the area series (domain ioc).
-- A commune's row counts the alerts placed in the commune and its commune-level
-- incidents, a zone's row the alerts placed in the zone and its zone-level incidents
-- (an alert counts in both its commune's and its zone's rows). Absolute counts: each
-- record replaces the row, unless the row already holds a later version of it.
CREATE TABLE area_activity_hour (
    area_id    text        NOT NULL,  -- a commune (commune agent) or a zone (zone agent)
    hour       timestamptz NOT NULL,  -- start of the UTC hour (= local hour, UTC+07)
    alerts     integer     NOT NULL,  -- distinct alerts placed here, opened in the hour
    incidents  integer     NOT NULL,  -- incidents of this place's level opened in the hour
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- Grows with every change of the hour's counts in the tier: an older record that
    -- arrives late never overwrites a newer one.
    version    bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (area_id, hour)
);
