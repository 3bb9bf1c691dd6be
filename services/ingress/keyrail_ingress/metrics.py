"""Prometheus metrics of the ingress, including the per-hop breakdown of every request."""

from __future__ import annotations

import time

from prometheus_client import Counter, Histogram

from keyrail_common.messages import Timings
from keyrail_common.metric_labels import LabelCache

REQUESTS = LabelCache(
    Counter(
        "keyrail_ingress_requests_total", "Data-plane requests answered", ["provider_slug", "http_status"]
    )
)
OVERHEAD_SECONDS = Histogram(
    "keyrail_ingress_overhead_seconds",
    "Time spent inside Keyrail per request, excluding the upstream",
    buckets=(0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5),
)
HOP_SECONDS = Histogram(
    "keyrail_hop_seconds",
    "Wall-clock time of each hop: ingress→router→worker, upstream, and back to the ingress",
    ["hop"],
    buckets=(0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5),
)
_TO_ROUTER = HOP_SECONDS.labels("ingress_to_router")
_TO_WORKER = HOP_SECONDS.labels("router_to_worker_sent")
_UPSTREAM = HOP_SECONDS.labels("upstream")
_BACK = HOP_SECONDS.labels("worker_to_ingress")


def observe_hops(timings: Timings, upstream_end_ns: int) -> None:
    """Record the hops of one answered request (`upstream_end_ns`: done, or first byte for streams)."""
    if not (timings.routed_ns and timings.upstream_sent_ns and upstream_end_ns):
        return
    _TO_ROUTER.observe((timings.routed_ns - timings.received_ns) / 1e9)
    _TO_WORKER.observe((timings.upstream_sent_ns - timings.routed_ns) / 1e9)
    _UPSTREAM.observe((upstream_end_ns - timings.upstream_sent_ns) / 1e9)
    _BACK.observe((time.time_ns() - upstream_end_ns) / 1e9)
