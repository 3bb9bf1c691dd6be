"""`/healthz` detail: what a component reports about itself, shown without making it unready."""

from __future__ import annotations

from keyrail_audit.backlog import AuditHealth, health_encoder
from keyrail_audit.store import StoreState
from keyrail_ingress.health import reported


def test_the_audit_services_answer_is_its_detail() -> None:
    answer = health_encoder.encode(AuditHealth(backlog=1234, store=StoreState.FAILING))

    assert reported(answer) == {"backlog": 1234, "store": "failing"}


def test_a_store_not_opened_yet_is_reported_unavailable() -> None:
    answer = health_encoder.encode(AuditHealth(backlog=7, store=StoreState.UNAVAILABLE))

    assert reported(answer) == {"backlog": 7, "store": "unavailable"}


def test_a_plain_ok_or_anything_but_a_json_object_has_no_detail() -> None:
    assert reported(b"ok") is None
    assert reported(b"") is None
    assert reported(None) is None
    assert reported(b"[1, 2]") is None
    assert reported(b"not json") is None
