"""Prometheus metrics of the audit service."""

from prometheus_client import Counter, Histogram

ROWS_WRITTEN = Counter("keyrail_audit_rows_written_total", "Activity rows inserted into ClickHouse")
INSERT_SECONDS = Histogram("keyrail_audit_insert_seconds", "Time of one batch insert")
