"""Prometheus metrics of the router."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from keyrail_common.metric_labels import LabelCache
from keyrail_router.breaker import BreakerBoard, CircuitState

ROUTED = LabelCache(
    Counter("keyrail_router_requests_total", "Route requests answered", ["provider_slug", "http_status"])
)
ROUTE_SECONDS = Histogram(
    "keyrail_router_seconds",
    "Time from route request to answer, including the worker call",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30),
)
BREAKER_OPENED = Counter(
    "keyrail_breaker_opened_total", "Times a target's circuit opened", ["provider_slug", "model"]
)
_STATE_VALUE = {CircuitState.CLOSED: 0, CircuitState.OPEN: 1, CircuitState.HALF_OPEN: 2}


class BreakerCollector(Collector):
    """Each known target's circuit state at scrape time (an open circuit turns half open as time
    passes, with no event to update a gauge on)."""

    def __init__(self, board: BreakerBoard) -> None:
        self._board = board

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "keyrail_breaker_state",
            "Circuit state per target: 0 closed, 1 open, 2 half open (a probe may go through)",
            labels=["provider_slug", "model"],
        )
        now = time.time()
        for breaker in self._board.all():
            family.add_metric([breaker.slug, breaker.model], _STATE_VALUE[breaker.state(now)])
        yield family
