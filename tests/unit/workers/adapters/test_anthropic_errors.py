"""Anthropic error responses → the failure vocabulary (reference §4.4), with the retry delays
their headers ask for, and what the client then sees."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from keyrail_common.failures import POLICIES, FailureClass, client_status
from keyrail_workers.adapters.anthropic.errors import classify_error
from keyrail_workers.upstream_errors import upstream_failure
from tests.unit.workers.adapters.anthropic_support import ANTHROPIC, fixture


def body(error_type: str, message: str = "something") -> bytes:
    return json.dumps({"type": "error", "error": {"type": error_type, "message": message}}).encode()


@pytest.mark.parametrize(
    ("status", "error_type", "failure_class"),
    [
        (400, "invalid_request_error", FailureClass.CALLER_ERROR),
        (401, "authentication_error", FailureClass.CREDENTIAL),
        (402, "billing_error", FailureClass.QUOTA),
        (403, "permission_error", FailureClass.CREDENTIAL),
        (404, "not_found_error", FailureClass.MODEL_ACCESS),
        (413, "request_too_large", FailureClass.CALLER_ERROR),
        (429, "rate_limit_error", FailureClass.RATE_LIMIT),
        (500, "api_error", FailureClass.UPSTREAM_5XX),
        (504, "timeout_error", FailureClass.TIMEOUT),
        (529, "overloaded_error", FailureClass.OVERLOADED),
    ],
)
def test_each_anthropic_error_type_has_its_class(
    status: int, error_type: str, failure_class: FailureClass
) -> None:
    assert classify_error(status, {}, body(error_type)).failure_class is failure_class


def test_the_error_type_decides_over_the_status() -> None:
    # An overload behind a proxy that turned the 529 into a 500 is still an overload.
    assert classify_error(500, {}, body("overloaded_error")).failure_class is FailureClass.OVERLOADED


@pytest.mark.parametrize(
    ("status", "raw", "failure_class"),
    [
        (529, b"", FailureClass.OVERLOADED),
        (503, b"<html>Service Unavailable</html>", FailureClass.OVERLOADED),
        (502, b"Bad gateway", FailureClass.UPSTREAM_5XX),
        (402, b"{}", FailureClass.QUOTA),
        (400, body("a_type_added_later"), FailureClass.CALLER_ERROR),
    ],
)
def test_a_body_that_is_not_anthropics_is_classified_by_its_status(
    status: int, raw: bytes, failure_class: FailureClass
) -> None:
    error = classify_error(status, {}, raw)

    assert error.failure_class is failure_class
    if not raw.startswith(b"{"):
        assert error.message == raw.decode().strip()


@pytest.mark.parametrize(
    "message",
    [
        "prompt is too long: 215000 tokens > 200000 maximum",
        "input length and `max_tokens` exceed context limit: 197000 + 8192 > 200000, decrease input length",
    ],
)
def test_a_prompt_too_long_is_a_context_length_failure(message: str) -> None:
    error = classify_error(400, {}, body("invalid_request_error", message))

    assert error.failure_class is FailureClass.CONTEXT_LENGTH
    assert client_status(error.failure_class, error.upstream_status) == 400


def test_request_too_large_keeps_its_413_for_the_client() -> None:
    error = classify_error(413, {}, body("request_too_large", "Request exceeds the maximum size"))

    assert client_status(error.failure_class, error.upstream_status) == 413
    assert POLICIES[error.failure_class].fallback is False


def test_a_rate_limit_waits_as_long_as_retry_after_says() -> None:
    recorded = fixture("rate_limit_headers_429.json")

    error = classify_error(
        recorded["status"], recorded["headers"], (ANTHROPIC / "error_429_rate_limit.json").read_bytes()
    )

    assert error.failure_class is FailureClass.RATE_LIMIT and error.retry_after_s == 17.0


def test_without_retry_after_a_rate_limit_waits_for_the_exhausted_limits_reset() -> None:
    headers = dict(fixture("rate_limit_headers_429.json")["headers"])
    del headers["retry-after"]
    reset = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    headers["anthropic-ratelimit-input-tokens-reset"] = reset  # the limit with 0 remaining

    error = classify_error(429, headers, body("rate_limit_error"))

    assert 25 <= error.retry_after_s <= 31


def test_an_overload_reads_only_the_explicit_retry_header() -> None:
    reset = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    headers = {"anthropic-ratelimit-tokens-reset": reset, "anthropic-ratelimit-tokens-remaining": "0"}

    assert classify_error(529, headers, body("overloaded_error")).retry_after_s == 0.0
    assert classify_error(529, {**headers, "retry-after": "4"}, body("overloaded_error")).retry_after_s == 4.0


def test_a_caller_error_asks_for_no_delay_whatever_the_headers() -> None:
    assert classify_error(400, {"retry-after": "9"}, body("invalid_request_error")).retry_after_s == 0.0


def test_the_client_reads_the_upstreams_message_without_the_credential() -> None:
    key = "sk-ant-api03-LEAKED0123456789abcdef"
    error = classify_error(401, {}, body("authentication_error", f"invalid x-api-key {key}"))

    info = upstream_failure("anthropic-prod", error, [key])

    assert key not in info.message and "invalid x-api-key" in info.message
    assert info.http_status == 502 and info.provider_code == "authentication_error"
