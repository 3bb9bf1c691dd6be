"""Prometheus metrics of the router."""

from prometheus_client import Counter, Histogram

ROUTED = Counter("keyrail_router_requests_total", "Route requests answered", ["provider_slug", "http_status"])
ROUTE_SECONDS = Histogram(
    "keyrail_router_seconds",
    "Time from route request to answer, including the worker call",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30),
)
