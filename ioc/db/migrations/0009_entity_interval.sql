-- How often each entity reports when nothing happens, for the health rules' silence
-- (streams/alerts/health.py): seconds between two periodic reports, NULL for an entity
-- that reports only when something happens (a camera's detections). The stream worker
-- reads the registry at start and then the rows changed since, by updated_at.
ALTER TABLE entity ADD COLUMN report_interval_s double precision
    CHECK (report_interval_s IS NULL OR report_interval_s > 0);
CREATE INDEX entity_updated ON entity (updated_at);
