"""Error bodies match OpenAI's published `ErrorResponse` schema, so the SDKs parse them."""

from __future__ import annotations

import json

import pytest

from keyrail_common.errors import error_body, error_type_for, make_error
from tests.support.openai_schema import validate_component


@pytest.mark.parametrize(
    ("status", "code", "param", "expected_type"),
    [
        (400, "invalid_value", "messages", "invalid_request_error"),
        (401, "invalid_api_key", None, "authentication_error"),
        (403, "integration_out_of_scope", "model", "permission_error"),
        (404, "model_not_found", "model", "not_found_error"),
        (408, None, None, "timeout_error"),
        (413, "request_too_large", None, "invalid_request_error"),
        (422, None, "tools", "invalid_request_error"),
        (429, "upstream_429", None, "rate_limit_error"),
        (500, None, None, "api_error"),
        (502, "upstream_401", None, "api_error"),
        (503, "worker_pool_unavailable", None, "api_error"),
        (504, "upstream_timeout", None, "api_error"),
    ],
)
def test_error_body_is_a_valid_openai_error_response(
    status: int, code: str | None, param: str | None, expected_type: str
) -> None:
    message = f"Something went wrong ({status}); here is what to do."

    body = json.loads(error_body(make_error(status, message, code=code, param=param)))

    validate_component("ErrorResponse", body)
    assert body == {"error": {"message": message, "type": expected_type, "param": param, "code": code}}


def test_null_code_and_param_are_present_not_omitted() -> None:
    body = json.loads(error_body(make_error(500, "boom")))

    # OpenAI's Error schema requires all four keys, nullable or not.
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] is None and body["error"]["param"] is None


def test_classification_stays_out_of_the_client_body() -> None:
    error = make_error(502, "upstream failed", code="upstream_500", error_class="upstream_5xx")

    raw = error_body(error)

    assert error.error_class == "upstream_5xx"
    assert b"upstream_5xx" not in raw
    assert b"http_status" not in raw


def test_error_class_defaults_to_the_code() -> None:
    assert make_error(404, "m", code="model_not_found").error_class == "model_not_found"
    assert make_error(404, "m").error_class == ""


def test_unicode_and_quotes_in_messages_survive_encoding() -> None:
    message = "Model \"gpt-4o\" isn't enabled - voir l'intégration ✓"

    body = json.loads(error_body(make_error(403, message)))

    validate_component("ErrorResponse", body)
    assert body["error"]["message"] == message


@pytest.mark.parametrize(
    ("status", "expected"),
    [(418, "invalid_request_error"), (409, "invalid_request_error"), (529, "api_error"), (599, "api_error")],
)
def test_error_type_for_unlisted_statuses(status: int, expected: str) -> None:
    assert error_type_for(status) == expected
