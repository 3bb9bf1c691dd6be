"""Prometheus metrics of the audit service."""

from prometheus_client import Counter, Gauge, Histogram

BACKLOG_MESSAGES = Gauge(
    "keyrail_audit_backlog_messages",
    "Activity messages in JetStream not yet written to ClickHouse (pending + unacknowledged)",
)
INSERT_FAILURES = Counter(
    "keyrail_audit_insert_failures_total", "Batch inserts that failed (rows redelivered)"
)
ROWS_WRITTEN = Counter("keyrail_audit_rows_written_total", "Activity rows inserted into ClickHouse")
INSERT_SECONDS = Histogram("keyrail_audit_insert_seconds", "Time of one batch insert")
ACTIVITY_LAG_SECONDS = Histogram(
    "keyrail_audit_activity_lag_seconds",
    "From a request's start to its activity row being written (oldest row of each insert)",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 120),
)
