-- On plain PostgreSQL, a BRIN index keeps time-range scans cheap on the append-mostly table.
CREATE INDEX metric_minute_bucket_brin ON metric_minute USING brin (bucket);
