-- With TimescaleDB, minutes live in a hypertable chunked by day.
SELECT create_hypertable('metric_minute', 'bucket', chunk_time_interval => interval '1 day',
                         migrate_data => true);
