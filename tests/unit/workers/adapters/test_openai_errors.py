"""The OpenAI adapter's `classify_error` beyond the fixtures (which the conformance suite
classifies): retry headers, provider codes refining the status, Azure-shaped and odd bodies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from keyrail_common.failures import FailureClass
from keyrail_workers.adapters import ADAPTERS
from keyrail_workers.upstream_errors import upstream_failure
from tests.support.contracts import FIXTURES
from tests.unit.workers.conformance.cases import ErrorCase, load_cases

ADAPTER = ADAPTERS["openai"]
F = FailureClass
ERROR_CASES = load_cases()["openai"].errors  # the conformance suite classifies each fixture
RATE_LIMIT_HEADERS = FIXTURES / "anthropic" / "rate_limit_headers_429.json"


def fixture_headers(path: Path) -> dict[str, str]:
    """A fixture's response headers, when it has them (`{"status", "headers"}` beside the body)."""
    raw = json.loads(path.read_text())
    return {k.lower(): v for k, v in raw.get("headers", {}).items()}


@pytest.mark.parametrize("case", ERROR_CASES, ids=lambda c: c.fixture)
def test_rate_limit_headers_give_a_retry_delay_only_to_rate_limits(case: ErrorCase) -> None:
    headers = fixture_headers(RATE_LIMIT_HEADERS)
    assert headers["retry-after"] == "17"

    error = ADAPTER.classify_error(case.status, headers, (FIXTURES / case.fixture).read_bytes())

    expected = 17.0 if case.failure_class is F.RATE_LIMIT else 0.0
    assert error.retry_after_s == pytest.approx(expected)


def test_openai_rate_limit_with_its_own_reset_headers() -> None:
    body = (FIXTURES / "openai" / "error_429_rate_limit.json").read_bytes()
    headers = {
        "x-ratelimit-remaining-requests": "499",
        "x-ratelimit-reset-requests": "120ms",
        "x-ratelimit-remaining-tokens": "0",
        "x-ratelimit-reset-tokens": "6.596s",
    }

    error = ADAPTER.classify_error(429, headers, body)

    assert error.failure_class is F.RATE_LIMIT
    assert error.retry_after_s == pytest.approx(6.596)


def test_a_retry_after_on_a_quota_failure_is_not_a_retry_delay() -> None:
    body = (FIXTURES / "openai" / "error_429_insufficient_quota.json").read_bytes()

    error = ADAPTER.classify_error(429, {"retry-after": "30"}, body)

    assert (error.failure_class, error.retry_after_s) == (F.QUOTA, 0.0)


@pytest.mark.parametrize("upstream", [503, 529])
def test_an_explicit_retry_after_on_an_overloaded_upstream_is_kept(upstream: int) -> None:
    error = ADAPTER.classify_error(upstream, {"retry-after": "30"}, b'{"error": {"message": "overloaded"}}')

    assert error.failure_class is F.OVERLOADED
    assert error.retry_after_s == pytest.approx(30.0)


def test_a_rate_limit_with_an_infinite_retry_after_is_still_a_rate_limit() -> None:
    body = (FIXTURES / "openai" / "error_429_rate_limit.json").read_bytes()

    error = upstream_failure("openai-prod", ADAPTER.classify_error(429, {"retry-after": "inf"}, body), [])

    assert (error.http_status, error.error_class) == (429, F.RATE_LIMIT)


# --- codes refine the status -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "failure_class"),
    [
        (
            400,
            {"message": "too long", "type": "invalid_request_error", "code": "context_length_exceeded"},
            F.CONTEXT_LENGTH,
        ),
        (400, {"message": "too long", "code": "string_above_max_length"}, F.CONTEXT_LENGTH),
        (400, {"message": "filtered", "code": "content_filter"}, F.CONTENT_FILTER),
        (400, {"message": "policy", "code": "content_policy_violation"}, F.CONTENT_FILTER),
        (400, {"message": "bad key", "code": "invalid_api_key"}, F.CREDENTIAL),
        (400, {"message": "no model", "code": "model_not_found"}, F.MODEL_ACCESS),
        (403, {"message": "no model", "code": "model_not_found"}, F.MODEL_ACCESS),
        (404, {"message": "no deployment", "code": "DeploymentNotFound"}, F.MODEL_ACCESS),
        (429, {"message": "no credit", "type": "insufficient_quota"}, F.QUOTA),
        (429, {"message": "slow down", "type": "tokens", "code": "rate_limit_exceeded"}, F.RATE_LIMIT),
        # A code never turns a retryable failure into a caller's one, or the reverse.
        (500, {"message": "too long?", "code": "context_length_exceeded"}, F.UPSTREAM_5XX),
        (503, {"message": "quota?", "code": "insufficient_quota"}, F.OVERLOADED),
        (429, {"message": "filtered?", "code": "content_filter"}, F.RATE_LIMIT),
        (401, {"message": "too long?", "code": "context_length_exceeded"}, F.CREDENTIAL),
        (400, {"message": "quota?", "code": "insufficient_quota"}, F.CALLER_ERROR),
    ],
)
def test_provider_codes_refine_the_status(
    status: int, body: dict[str, object], failure_class: FailureClass
) -> None:
    error = ADAPTER.classify_error(status, {}, json.dumps({"error": body}).encode())

    assert error.failure_class is failure_class


@pytest.mark.parametrize(
    ("status", "failure_class"),
    [
        (500, F.UPSTREAM_5XX),
        (502, F.UPSTREAM_5XX),
        (503, F.OVERLOADED),
        (504, F.TIMEOUT),
        (529, F.OVERLOADED),
        (498, F.OVERLOADED),
    ],
)
def test_server_failures(status: int, failure_class: FailureClass) -> None:
    body = b'{"error": {"message": "The server had an error", "type": "server_error"}}'

    error = ADAPTER.classify_error(status, {}, body)

    assert (error.failure_class, error.provider_code, error.message) == (
        failure_class,
        "server_error",
        "The server had an error",
    )


@pytest.mark.parametrize(
    ("name", "status", "failure_class"),
    [
        ("error_400_content_filter.json", 400, F.CONTENT_FILTER),
        ("error_401.json", 401, F.CREDENTIAL),
        ("error_429.json", 429, F.RATE_LIMIT),
        ("error_deployment_not_found.json", 404, F.MODEL_ACCESS),
    ],
)
def test_azure_shaped_errors(name: str, status: int, failure_class: FailureClass) -> None:
    # Azure speaks OpenAI's error shape with its own codes (the azure adapter will reuse this).
    path = FIXTURES / "azure" / name

    error = ADAPTER.classify_error(status, {}, path.read_bytes())

    assert error.failure_class is failure_class
    assert error.message == json.loads(path.read_text())["error"]["message"]


@pytest.mark.parametrize(
    ("body", "message", "code"),
    [
        (
            b"<html><body><h1>502 Bad Gateway</h1></body></html>\n",
            "<html><body><h1>502 Bad Gateway</h1></body></html>",
            "",
        ),
        (b'{"error": "model is overloaded"}', "model is overloaded", ""),
        (b'{"error": {"message": "m", "code": 42}}', "m", "42"),
        (b'{"detail": "nope"}', "", ""),
        (b"", "", ""),
    ],
    ids=["html", "error-string", "numeric-code", "no-error-key", "empty"],
)
def test_odd_bodies_still_classify_by_status(body: bytes, message: str, code: str) -> None:
    error = ADAPTER.classify_error(502, {}, body)

    assert (error.failure_class, error.message, error.provider_code) == (F.UPSTREAM_5XX, message, code)
