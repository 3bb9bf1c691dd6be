"""Prometheus metrics of the ingress."""

from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "keyrail_ingress_requests_total", "Data-plane requests answered", ["provider_slug", "http_status"]
)
OVERHEAD_SECONDS = Histogram(
    "keyrail_ingress_overhead_seconds",
    "Time spent inside Keyrail per request, excluding the upstream",
    buckets=(0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5),
)
