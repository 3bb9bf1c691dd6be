"""An upstream HTTP status → failure class (provider reference §1.4), and what follows for the client."""

from __future__ import annotations

import pytest

from keyrail_common.failures import FailureClass, client_status, failure, may_fall_back, may_retry
from keyrail_workers.adapters.status import class_for_status

F = FailureClass


def classified(upstream: int) -> tuple[int, FailureClass]:
    """(status for the client, failure class) of an upstream status."""
    failure_class = class_for_status(upstream)
    return client_status(failure_class, upstream), failure_class


@pytest.mark.parametrize(
    ("upstream", "client", "failure_class"),
    [
        (400, 400, F.CALLER_ERROR),  # malformed request: the client's own problem
        (413, 413, F.CALLER_ERROR),  # request too large
        (422, 422, F.CALLER_ERROR),
        (401, 502, F.CREDENTIAL),  # the gateway's key is wrong, the caller's request was fine
        (403, 502, F.CREDENTIAL),
        (404, 502, F.MODEL_ACCESS),  # model known to the gateway, so a configuration error
        (429, 429, F.RATE_LIMIT),
        (408, 504, F.TIMEOUT),
        (504, 504, F.TIMEOUT),
        (503, 503, F.OVERLOADED),
        (529, 503, F.OVERLOADED),  # Anthropic overloaded_error
        (498, 503, F.OVERLOADED),  # Groq flex capacity unavailable
    ],
)
def test_class_for_status_follows_the_reference_table(
    upstream: int, client: int, failure_class: FailureClass
) -> None:
    assert classified(upstream) == (client, failure_class)


@pytest.mark.parametrize("upstream", [500, 502, 505, 520, 599])
def test_other_server_failures_are_bad_gateway(upstream: int) -> None:
    assert classified(upstream) == (502, F.UPSTREAM_5XX)


def test_billing_error_402_is_quota_not_a_5xx() -> None:
    assert classified(402) == (429, F.QUOTA)


def test_lock_timeout_409_is_a_timeout() -> None:
    assert classified(409) == (504, F.TIMEOUT)


@pytest.mark.parametrize("upstream", [405, 406, 410, 411, 415, 418, 451])
def test_other_client_errors_are_caller_errors_answered_400(upstream: int) -> None:
    assert classified(upstream) == (400, F.CALLER_ERROR)


def test_every_upstream_status_maps_to_a_status_the_spec_allows() -> None:
    # SPEC §3: upstream failures after all fallbacks are 502/503/504/429; client errors stay 4xx.
    allowed = {400, 413, 422, 429, 502, 503, 504}

    for upstream in range(400, 600):
        client, failure_class = classified(upstream)
        assert client in allowed, upstream
        assert failure_class in FailureClass, upstream


@pytest.mark.parametrize(
    ("upstream_status", "falls_back", "retried"),
    [
        # Provider reference §1.4, "Retry same upstream" and "Fall back to another provider" columns.
        (400, False, False),
        (422, False, False),
        (401, True, False),
        (403, True, False),
        (404, True, False),
        (402, True, False),
        (429, True, True),
        (408, True, True),
        (409, True, True),
        (500, True, True),
        (502, True, True),
        (503, True, True),
        (504, True, True),
        (529, True, True),
        (498, True, True),
    ],
)
def test_classified_upstream_statuses_follow_the_retry_and_fallback_columns_of_the_reference(
    upstream_status: int, falls_back: bool, retried: bool
) -> None:
    error = failure(class_for_status(upstream_status), "m", upstream_status=upstream_status)

    assert may_fall_back(error) is falls_back
    assert may_retry(error) is retried
