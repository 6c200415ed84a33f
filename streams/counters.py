"""Prometheus counters of the stream worker: every consumed record is accounted for."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

CONSUMED = Counter("ioc_events_consumed", "Raw records consumed", ["domain"])
PROCESSED = Counter("ioc_events_processed", "Events applied to entity state", ["domain"])
DUPLICATES = Counter(
    "ioc_events_duplicate", "Records seen again after a restart and skipped", ["domain"]
)
CONTROL = Counter(
    "ioc_control_records",
    "Clock marks and operators' actions read from the raw topics (streams.marks)",
    ["kind"],
)
DEADLETTERED = Counter(
    "ioc_events_deadlettered", "Records sent to the dead-letter topic", ["reason"]
)
SINK_ROWS = Counter("ioc_sink_rows", "Rows upserted by the database sink", ["table"])
SINK_EXPIRED = Counter("ioc_sink_expired_rows", "Rows deleted past their retention", ["table"])
SINK_RETRIES = Counter("ioc_sink_retries", "Failed database writes retried by the sink")
# Gauges of live processes only, summed (the worker's counters come from two processes).
SINK_LAG = Gauge(
    "ioc_sink_pending_records",
    "Records the sink holds but has not written",
    multiprocess_mode="livesum",
)
OWNED = Gauge(
    "ioc_partitions_owned",
    "Raw-topic partitions this worker consumes",
    ["domain"],
    multiprocess_mode="livesum",
)
REGISTERED = Gauge(
    "ioc_registry_entities",
    "Entities of the registry the worker knows (streams.registry)",
    multiprocess_mode="liveall",
)
