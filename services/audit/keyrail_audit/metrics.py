"""Prometheus metrics of the audit service."""

from prometheus_client import Counter, Histogram

ROWS_WRITTEN = Counter("keyrail_audit_rows_written_total", "Activity rows inserted into ClickHouse")
INSERT_SECONDS = Histogram("keyrail_audit_insert_seconds", "Time of one batch insert")
ACTIVITY_LAG_SECONDS = Histogram(
    "keyrail_audit_activity_lag_seconds",
    "From a request's start to its activity row being written (oldest row of each insert)",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 120),
)
