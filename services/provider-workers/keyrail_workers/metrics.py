"""Prometheus metrics of a provider worker."""

from prometheus_client import Counter, Histogram

from keyrail_common.metric_labels import LabelCache

WORKER_CALLS = LabelCache(
    Counter("keyrail_worker_calls_total", "Upstream attempts", ["provider_slug", "http_status"])
)
UPSTREAM_SECONDS = LabelCache(
    Histogram(
        "keyrail_worker_upstream_seconds",
        "Time from sending the upstream request to its headers (non-streaming: to the full body)",
        ["provider_slug"],
        buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 120),
    )
)
