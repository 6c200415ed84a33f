-- Who resolved an alert by hand. acknowledged_by/acknowledged_at (0005) record the
-- acknowledgement; an operator's resolution sets state 'resolved', resolved_by and
-- resolved_at (the wall-clock time of the action, where the engine writes the event time
-- of the minute that cleared it). The sink never touches a resolved alert again.
ALTER TABLE alert ADD COLUMN resolved_by text;
-- The API lists alerts newest first, optionally by state.
CREATE INDEX alert_state_opened ON alert (state, opened_at DESC);
