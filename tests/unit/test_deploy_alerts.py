"""deploy/prometheus/alerts.yaml alerts only on metrics the services export, each rule complete."""

from __future__ import annotations

import re

import yaml
from prometheus_client import REGISTRY

import keyrail_audit.metrics  # noqa: F401  (registers the audit service's metrics)
import keyrail_common.activity  # noqa: F401  (the publisher's, exported by ingress, router and workers)
from tests.support.contracts import REPO_ROOT

ALERTS = REPO_ROOT / "deploy" / "prometheus" / "alerts.yaml"


def _exported() -> set[str]:
    return {sample.name for metric in REGISTRY.collect() for sample in metric.samples}


def test_every_alert_names_only_exported_metrics_and_says_what_to_do() -> None:
    rules = [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]
    assert {rule["alert"] for rule in rules} == {"KeyrailActivityRowsDropped", "KeyrailAuditBacklog"}
    exported = _exported()
    for rule in rules:
        named = set(re.findall(r"\bkeyrail_[a-z_]+", rule["expr"]))
        assert named and named <= exported, (rule["alert"], named - exported)
        assert rule["labels"]["severity"] in {"critical", "warning"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
