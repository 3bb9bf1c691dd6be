"""Error bodies match OpenAI's published `ErrorResponse` schema, so the SDKs parse them."""

from __future__ import annotations

import json

import pytest

from keyrail_common.errors import error_body, openai_error_body
from keyrail_common.failures import FailureClass, error_type_for, failure
from tests.support.openai_schema import validate_component


@pytest.mark.parametrize(
    ("failure_class", "upstream_status", "code", "param", "status", "expected_type"),
    [
        (FailureClass.BAD_REQUEST, 0, "invalid_value", "messages", 400, "invalid_request_error"),
        (FailureClass.UNAUTHENTICATED, 0, "invalid_api_key", None, 401, "authentication_error"),
        (FailureClass.SCOPE, 0, "integration_out_of_scope", "model", 403, "permission_error"),
        (FailureClass.NOT_FOUND, 0, "model_not_found", "model", 404, "not_found_error"),
        (FailureClass.REQUEST_TOO_LARGE, 0, "request_too_large", None, 413, "invalid_request_error"),
        (FailureClass.CALLER_ERROR, 422, None, "tools", 422, "invalid_request_error"),
        (FailureClass.RATE_LIMIT, 429, "upstream_429", None, 429, "rate_limit_error"),
        (FailureClass.CREDENTIAL, 401, "upstream_401", None, 502, "api_error"),
        (FailureClass.NO_WORKER, 0, "worker_pool_unavailable", None, 503, "api_error"),
        (FailureClass.TIMEOUT, 0, "upstream_timeout", None, 504, "api_error"),
    ],
)
def test_error_body_is_a_valid_openai_error_response(
    failure_class: FailureClass,
    upstream_status: int,
    code: str | None,
    param: str | None,
    status: int,
    expected_type: str,
) -> None:
    message = f"Something went wrong ({status}); here is what to do."
    error = failure(failure_class, message, code=code, param=param, upstream_status=upstream_status)

    body = json.loads(error_body(error))

    validate_component("ErrorResponse", body)
    assert error.http_status == status
    # Without an explicit code, the class name is the code.
    assert body == {
        "error": {"message": message, "type": expected_type, "param": param, "code": code or failure_class}
    }


@pytest.mark.parametrize("failure_class", list(FailureClass))
def test_every_failure_class_gives_a_valid_error_body(failure_class: FailureClass) -> None:
    error = failure(failure_class, "m")

    body = json.loads(error_body(error))

    validate_component("ErrorResponse", body)
    assert body["error"]["type"] == error_type_for(error.http_status)


@pytest.mark.parametrize(("status", "expected_type"), [(408, "timeout_error"), (500, "api_error")])
def test_openai_error_body_for_statuses_no_failure_class_answers(status: int, expected_type: str) -> None:
    body = json.loads(openai_error_body("boom", error_type_for(status), None, None))

    validate_component("ErrorResponse", body)
    assert body == {"error": {"message": "boom", "type": expected_type, "param": None, "code": None}}


def test_null_code_and_param_are_present_not_omitted() -> None:
    body = json.loads(openai_error_body("boom", "api_error", None, None))
    from_failure = json.loads(error_body(failure(FailureClass.WORKER_ERROR, "boom")))

    # OpenAI's Error schema requires all four keys, nullable or not.
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] is None and body["error"]["param"] is None
    assert set(from_failure["error"]) == {"message", "type", "param", "code"}
    assert from_failure["error"]["param"] is None


def test_classification_stays_out_of_the_client_body() -> None:
    error = failure(
        FailureClass.UPSTREAM_5XX,
        "upstream failed",
        code="upstream_500",
        upstream_status=500,
        provider_code="server_error",
        retry_after_s=2.0,
    )

    raw = error_body(error)

    assert error.error_class == "upstream_5xx"
    for hidden in (b"upstream_5xx", b"http_status", b"server_error", b"retry_after", b"upstream_status"):
        assert hidden not in raw
    assert json.loads(raw)["error"]["code"] == "upstream_500"


def test_code_defaults_to_the_class_name() -> None:
    assert failure(FailureClass.NOT_FOUND, "m", code="model_not_found").code == "model_not_found"
    assert failure(FailureClass.NOT_FOUND, "m").code == "not_found"
    assert failure(FailureClass.NOT_FOUND, "m").error_class is FailureClass.NOT_FOUND


def test_unicode_and_quotes_in_messages_survive_encoding() -> None:
    message = "Model \"gpt-4o\" isn't enabled - voir l'intégration ✓"

    body = json.loads(error_body(failure(FailureClass.SCOPE, message)))

    validate_component("ErrorResponse", body)
    assert body["error"]["message"] == message
