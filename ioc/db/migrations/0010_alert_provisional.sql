-- Provisional alerts (streams/alerts/engine.py: window rules foresee an alert from the
-- minutes seen before they are final). A provisional alert is stored like an open one,
-- with provisional = true, and may be acknowledged; the engine's open with the same id
-- confirms it (provisional = false), its retract ends it as 'retracted'. A retracted
-- alert keeps provisional = true: it never was more than a forecast.
ALTER TABLE alert DROP CONSTRAINT alert_state_check;
ALTER TABLE alert ADD CONSTRAINT alert_state_check
    CHECK (state IN ('open', 'acknowledged', 'resolved', 'retracted'));
ALTER TABLE alert ADD COLUMN provisional boolean NOT NULL DEFAULT false;
