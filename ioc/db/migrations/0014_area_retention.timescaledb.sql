-- Area minutes expire with the entity minutes they are computed from (400 days): on
-- TimescaleDB the table becomes a hypertable whose chunks a retention policy drops (the twin
-- of 0014_area_retention.postgres.sql). Area hours and days are kept, as the entity
-- hours and days are.
SELECT create_hypertable('area_minute', 'bucket', chunk_time_interval => INTERVAL '7 days',
                         migrate_data => true);
SELECT add_retention_policy('area_minute', drop_after => INTERVAL '400 days');
