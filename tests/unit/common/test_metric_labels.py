"""The label cache hands out the very children `labels()` would, looked up once per value set."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from keyrail_common.metric_labels import LabelCache


def test_the_cached_child_is_the_metrics_own_and_counts_in_the_exposition() -> None:
    registry = CollectorRegistry()
    counter = Counter("calls_total", "calls", ["provider_slug", "http_status"], registry=registry)
    calls = LabelCache(counter)
    for status in (200, 200, 502):
        calls("openai-prod", status).inc()
    assert calls("openai-prod", 200) is counter.labels("openai-prod", "200")  # the same child
    assert (
        registry.get_sample_value("calls_total", {"provider_slug": "openai-prod", "http_status": "200"}) == 2
    )
    assert (
        registry.get_sample_value("calls_total", {"provider_slug": "openai-prod", "http_status": "502"}) == 1
    )
