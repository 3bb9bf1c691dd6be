"""The Gemini adapter's `classify_error` beyond the fixtures (which the conformance suite classifies,
Vertex AI's too: the same `google.rpc.Status` shape): what the client sees, retry delays, quotas,
canonical statuses and bodies that are not Google's."""

from __future__ import annotations

import json
from typing import Any

import pytest

from keyrail_common.failures import FailureClass
from keyrail_workers.adapters import ADAPTERS
from keyrail_workers.upstream_errors import upstream_failure
from tests.support.contracts import FIXTURES

ADAPTER = ADAPTERS["gemini"]
F = FailureClass


def google_error(
    code: int, status: str, message: str = "m", details: list[dict[str, Any]] | None = None
) -> bytes:
    return json.dumps(
        {"error": {"code": code, "message": message, "status": status, "details": details or []}}
    ).encode()


def test_the_invalid_key_reaches_the_client_as_a_stored_credential_problem() -> None:
    body = (FIXTURES / "gemini" / "error_400_api_key_invalid.json").read_bytes()

    error = upstream_failure("gemini-prod", ADAPTER.classify_error(400, {}, body), ["AIzaSy-secret"])

    assert (error.http_status, error.error_class) == (502, F.CREDENTIAL)  # the caller's request was fine
    assert "rejected the stored credential" in error.message and "API key not valid" in error.message


def test_the_rate_limit_delay_reaches_the_client() -> None:
    body = (FIXTURES / "gemini" / "error_429_resource_exhausted.json").read_bytes()

    error = upstream_failure("gemini-prod", ADAPTER.classify_error(429, {}, body), [])

    assert (error.http_status, error.error_class, error.retry_after_ms) == (429, F.RATE_LIMIT, 38000)


def test_a_daily_quota_is_exhausted_quota_not_a_rate_limit() -> None:
    raw = json.loads((FIXTURES / "gemini" / "error_429_resource_exhausted.json").read_text())
    violation = raw["error"]["details"][0]["violations"][0]
    violation["quotaId"] = "GenerateRequestsPerDayPerProjectPerModel-FreeTier"

    error = ADAPTER.classify_error(429, {}, json.dumps(raw).encode())

    assert error.failure_class is F.QUOTA
    assert upstream_failure("gemini-prod", error, []).http_status == 429


@pytest.mark.parametrize(
    ("headers", "details", "expected"),
    [
        ({"retry-after": "7"}, [], 7.0),  # no RetryInfo: the header
        (
            {"retry-after": "7"},
            [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}],
            1.5,
        ),
        ({}, [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "soon"}], 0.0),
        ({}, [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "-3s"}], 0.0),
        ({}, [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "infs"}], 0.0),
    ],
)
def test_the_retry_delay_prefers_retry_info_to_headers(
    headers: dict[str, str], details: list[dict[str, Any]], expected: float
) -> None:
    error = ADAPTER.classify_error(429, headers, google_error(429, "RESOURCE_EXHAUSTED", details=details))

    assert error.failure_class is F.RATE_LIMIT
    assert error.retry_after_s == pytest.approx(expected)


def test_a_retry_delay_is_no_delay_for_a_caller_error() -> None:
    details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "9s"}]

    error = ADAPTER.classify_error(
        400, {"retry-after": "9"}, google_error(400, "INVALID_ARGUMENT", details=details)
    )

    assert (error.failure_class, error.retry_after_s) == (F.CALLER_ERROR, 0.0)


@pytest.mark.parametrize(
    ("code", "status", "failure_class"),
    [
        (400, "INVALID_ARGUMENT", F.CALLER_ERROR),
        (400, "FAILED_PRECONDITION", F.MODEL_ACCESS),  # region / billing: another target may serve it
        (401, "UNAUTHENTICATED", F.CREDENTIAL),
        (403, "PERMISSION_DENIED", F.CREDENTIAL),
        (404, "NOT_FOUND", F.MODEL_ACCESS),
        (429, "RESOURCE_EXHAUSTED", F.RATE_LIMIT),
        (500, "INTERNAL", F.UPSTREAM_5XX),
        (503, "UNAVAILABLE", F.OVERLOADED),
        (504, "DEADLINE_EXCEEDED", F.TIMEOUT),
        (499, "CANCELLED", F.CALLER_ERROR),  # unknown to the table: the HTTP status decides
        (501, "UNIMPLEMENTED", F.UPSTREAM_5XX),
    ],
)
def test_canonical_statuses(code: int, status: str, failure_class: FailureClass) -> None:
    error = ADAPTER.classify_error(code, {}, google_error(code, status, "upstream words"))

    assert (error.failure_class, error.provider_code, error.message) == (
        failure_class,
        status,
        "upstream words",
    )


def test_the_canonical_status_wins_over_an_odd_http_status() -> None:
    assert ADAPTER.classify_error(500, {}, google_error(503, "UNAVAILABLE")).failure_class is F.OVERLOADED


def test_a_streaming_endpoints_array_wrapped_error_is_read() -> None:
    body = b"[" + (FIXTURES / "gemini" / "error_503_unavailable.json").read_bytes() + b"]"

    error = ADAPTER.classify_error(503, {}, body)

    assert (error.failure_class, error.provider_code) == (F.OVERLOADED, "UNAVAILABLE")
    assert error.message == "The model is overloaded. Please try again later."


@pytest.mark.parametrize(
    ("code", "failure_class"), [(502, F.UPSTREAM_5XX), (429, F.RATE_LIMIT), (404, F.MODEL_ACCESS)]
)
def test_a_body_that_is_not_googles_falls_back_to_the_status(code: int, failure_class: FailureClass) -> None:
    error = ADAPTER.classify_error(code, {"retry-after": "3"}, b"<html>Bad gateway</html>\n")

    assert (error.failure_class, error.message, error.provider_code) == (
        failure_class,
        "<html>Bad gateway</html>",
        "",
    )
    assert error.retry_after_s == (3.0 if failure_class is F.RATE_LIMIT else 0.0)


def test_an_empty_message_falls_back_to_the_body() -> None:
    body = b'{"error": {"code": 500, "status": "INTERNAL"}}'

    assert ADAPTER.classify_error(500, {}, body).message == body.decode()
