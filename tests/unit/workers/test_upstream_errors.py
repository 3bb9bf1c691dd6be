"""Upstream failures become client errors: status by failure class, messages kept but scrubbed.

(The status → class table that used to be here is tests/unit/workers/adapters/test_status.py.)
"""

from __future__ import annotations

import json

import pytest

from keyrail_common.errors import error_body
from keyrail_common.failures import ErrorInfo, FailureClass, error_type_for
from keyrail_workers.adapters import ADAPTERS
from keyrail_workers.adapters.base import UpstreamError
from keyrail_workers.adapters.openai.errors import in_band_error
from keyrail_workers.upstream_errors import (
    connection_failure,
    scrub,
    stream_cut,
    timeout_failure,
    upstream_failure,
)
from tests.support.contracts import FIXTURES

OPENAI = FIXTURES / "openai"
SLUG = "openai-prod-chat"
ADAPTER = ADAPTERS["openai"]
# The key the worker read from Vault for this call; it must never reach an error message.
SECRET = "sk-proj-" + "Q" * 40 + "abcd"


def http_error(slug: str, status: int, body: bytes, secrets: list[str]) -> ErrorInfo:
    """What the runner does with an upstream error response: classify, then build the client's error."""
    return upstream_failure(slug, ADAPTER.classify_error(status, {}, body), secrets)


def fixture_message(name: str) -> str:
    message: str = json.loads((OPENAI / name).read_text())["error"]["message"]
    return message


# --- upstream_failure on the OpenAI error fixtures --------------------------------------------------


@pytest.mark.parametrize(
    ("name", "upstream", "client", "failure_class"),
    [
        ("error_400_unsupported_parameter.json", 400, 400, FailureClass.CALLER_ERROR),
        ("error_401_invalid_api_key.json", 401, 502, FailureClass.CREDENTIAL),
        ("error_404_model_not_found.json", 404, 502, FailureClass.MODEL_ACCESS),
        ("error_429_rate_limit.json", 429, 429, FailureClass.RATE_LIMIT),
        ("error_429_insufficient_quota.json", 429, 429, FailureClass.QUOTA),
    ],
)
def test_upstream_failure_on_openai_fixtures(
    name: str, upstream: int, client: int, failure_class: FailureClass
) -> None:
    error = http_error(SLUG, upstream, (OPENAI / name).read_bytes(), [SECRET])

    assert error.http_status == client
    assert error.type == error_type_for(client)
    assert error.code == f"upstream_{upstream}"
    assert error.error_class is failure_class
    assert error.upstream_status == upstream
    assert f"'{SLUG}'" in error.message
    assert f"HTTP {upstream}" in error.message
    assert SECRET not in error.message
    assert SECRET.encode() not in error_body(error)


@pytest.mark.parametrize(
    "name",
    [
        "error_400_unsupported_parameter.json",
        "error_404_model_not_found.json",
        "error_429_rate_limit.json",
        "error_429_insufficient_quota.json",
    ],
)
def test_upstream_message_is_kept_verbatim_when_it_holds_nothing_key_like(name: str) -> None:
    upstream = int(name.split("_")[1])

    error = http_error(SLUG, upstream, (OPENAI / name).read_bytes(), [SECRET])

    assert error.message == f"Upstream '{SLUG}' answered HTTP {upstream}: {fixture_message(name)}"


def test_masked_key_echoed_by_openai_401_is_removed_but_the_advice_stays() -> None:
    body = (OPENAI / "error_401_invalid_api_key.json").read_bytes()
    assert b"sk-proj-****" in body  # the fixture really echoes a masked key

    error = http_error(SLUG, 401, body, [SECRET])

    assert "sk-proj" not in error.message
    assert "****" not in error.message
    assert "abcd" not in error.message
    assert "Incorrect API key provided: [redacted]" in error.message
    assert "You can find your API key at https://platform.openai.com/account/api-keys." in error.message


def test_a_credential_failure_names_the_slug_and_how_to_rotate() -> None:
    body = (OPENAI / "error_401_invalid_api_key.json").read_bytes()

    error = http_error(SLUG, 401, body, [SECRET])

    assert error.message.startswith(f"Upstream '{SLUG}' rejected the stored credential (HTTP 401: ")
    assert f"PUT /admin/v1/integrations/{SLUG}/credentials" in error.message
    assert error.http_status == 502 and error.code == "upstream_401"


@pytest.mark.parametrize("upstream", [401, 403])
def test_every_credential_failure_says_how_to_rotate(upstream: int) -> None:
    error = http_error("groq-prod", upstream, b'{"error": {"message": "Invalid API Key"}}', [SECRET])

    assert error.error_class is FailureClass.CREDENTIAL
    assert "PUT /admin/v1/integrations/groq-prod/credentials" in error.message
    assert "Invalid API Key" in error.message


def test_secret_echoed_in_full_is_redacted_even_without_a_key_like_prefix() -> None:
    secret = "AIzaSyD-0123456789abcdefGHIJ"
    body = json.dumps({"error": {"message": f"API key not valid: {secret}", "code": 400}}).encode()

    error = http_error("gemini-prod", 400, body, [secret])

    assert secret not in error.message
    assert error.message.endswith("API key not valid: [redacted]")


def test_groq_error_without_a_code_field_keeps_its_message() -> None:
    body = (FIXTURES / "openai_compatible" / "groq_error_400_unsupported_field.json").read_bytes()

    error = http_error("groq-prod", 400, body, [SECRET])

    assert error.http_status == 400
    assert "'messages.0.name' : property 'name' is unsupported" in error.message


def test_the_retry_delay_of_a_rate_limit_reaches_the_error() -> None:
    body = (OPENAI / "error_429_rate_limit.json").read_bytes()

    error = upstream_failure(SLUG, ADAPTER.classify_error(429, {"retry-after": "7"}, body), [SECRET])

    assert error.retry_after_ms == 7000
    assert error.provider_code == "rate_limit_exceeded"


# --- non-JSON and odd bodies ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected_tail"),
    [
        (
            b"<html><body><h1>502 Bad Gateway</h1></body></html>\n",
            "<html><body><h1>502 Bad Gateway</h1></body></html>",
        ),
        (
            b"upstream connect error or disconnect/reset before headers",
            "upstream connect error or disconnect",
        ),
        (b'{"error": "model is overloaded"}', "model is overloaded"),
        (b'["not", "an", "object"]', '["not", "an", "object"]'),
        (b'{"error": {"message": null}}', '{"error": {"message": null}}'),
        (b"", "no message"),
        (b'{"detail": "nope"}', "no message"),
    ],
    ids=["html", "text", "error-string", "json-list", "null-message", "empty", "no-error-key"],
)
def test_non_openai_bodies_still_give_a_message(body: bytes, expected_tail: str) -> None:
    error = http_error(SLUG, 503, body, [SECRET])

    assert error.http_status == 503
    assert error.message.startswith(f"Upstream '{SLUG}' answered HTTP 503: ")
    assert expected_tail in error.message


def test_long_non_json_bodies_are_truncated_and_invalid_utf8_is_tolerated() -> None:
    body = b"\xff\xfe" + b"A" * 5000

    error = http_error(SLUG, 500, body, [])

    assert len(error.message) < 400
    assert "\ufffd" in error.message


def test_non_json_body_echoing_the_secret_is_scrubbed() -> None:
    body = f"<html>Invalid key {SECRET} for this endpoint</html>".encode()

    error = http_error(SLUG, 401, body, [SECRET])

    assert SECRET not in error.message
    assert "Invalid key [redacted] for this endpoint" in error.message


def test_secret_cut_by_truncation_does_not_leak_a_prefix() -> None:
    azure_key = "0123456789abcdef0123456789abcdef"  # Azure keys are 32 hex chars, no key-like prefix
    body = b"<html><body>" + b"x" * 270 + b" api-key " + azure_key.encode() + b"</body></html>"

    error = http_error("azure-prod", 401, body, [azure_key])

    assert azure_key[:8] not in error.message


@pytest.mark.parametrize("offset", [280, 290, 295, 299, 300])
def test_scrubbing_comes_before_truncation_at_the_message_limit(offset: int) -> None:
    # A secret straddling the 300-character limit: truncating first would leave its head behind.
    for secret in ("0123456789abcdef0123456789abcdef", SECRET):
        message = "x" * offset + secret + " trailing words"

        error = upstream_failure(
            SLUG, UpstreamError(FailureClass.UPSTREAM_5XX, message, upstream_status=500), [secret]
        )

        assert secret[:6] not in error.message
        assert "[redacted]"[: max(300 - offset, 0)] in error.message


@pytest.mark.parametrize("offset", [285, 292, 296])
def test_key_like_tokens_at_the_limit_do_not_leak_a_prefix(offset: int) -> None:
    token = "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUv"  # not ours, so only the key-like pattern can catch it
    message = "y" * offset + " " + token

    error = upstream_failure(
        SLUG, UpstreamError(FailureClass.CALLER_ERROR, message, upstream_status=400), [SECRET]
    )

    assert "sk-ant" not in error.message and "AbCd" not in error.message


def test_custom_header_values_are_scrubbed_like_credentials() -> None:
    # The runner passes the credential's values and the custom auth headers' values as secrets.
    header_value = "org-token-7f3a9c2b11"
    message = f"unknown X-Org-Token {header_value} for key {SECRET}"

    error = upstream_failure(
        "custom-gw",
        UpstreamError(FailureClass.CREDENTIAL, message, upstream_status=403),
        [SECRET, header_value],
    )

    assert header_value not in error.message and SECRET not in error.message


# --- scrub ---------------------------------------------------------------------------------------------


def test_scrub_removes_every_exact_secret() -> None:
    text = "key=AbCdEf123456 other=ZzYyXx987 again AbCdEf123456"

    assert scrub(text, ["AbCdEf123456", "ZzYyXx987"]) == "key=[redacted] other=[redacted] again [redacted]"


def test_scrub_ignores_empty_and_very_short_secrets() -> None:
    text = "a message about abc"

    assert scrub(text, ["", "a", "abc"]) == text


@pytest.mark.parametrize(
    "token",
    [
        "sk-abc***xyz",
        "sk-proj-****abcd",
        "sk-ant-api03-AbCdEfGhIjKlMnOp",
        "gsk_0123456789abcdef",
        "xai-AbCdEf012345",
        "kr-AbCdEf_0123-xyz",
        "SK-ABCDEFGH",
        "pk_live_12345678",
    ],
)
def test_scrub_removes_key_like_tokens_that_are_not_ours(token: str) -> None:
    scrubbed = scrub(f"Incorrect API key provided: {token} - check it", [])

    assert token not in scrubbed
    assert scrubbed == "Incorrect API key provided: [redacted] - check it"


@pytest.mark.parametrize(
    "text",
    [
        "Rate limit reached for gpt-4.1 in organization org-Xa1b2C3d4E5f6G7h8I9j0K1l on tokens per min (TPM)",
        "Unsupported parameter: 'max_tokens' is not supported with this model.",
        "task-force desk-top risk-free",
        "Visit https://platform.openai.com/account/api-keys to learn more.",
    ],
)
def test_scrub_leaves_ordinary_text_alone(text: str) -> None:
    assert scrub(text, [SECRET]) == text


# --- mid-stream, connection, timeout, stream cut ------------------------------------------------------


def test_midstream_error_from_the_fixture_keeps_the_upstream_message() -> None:
    line = (OPENAI / "stream_error_midstream.sse").read_text().strip().splitlines()[-1]
    upstream = json.loads(line.removeprefix("data: "))["error"]

    error = upstream_failure(SLUG, in_band_error(upstream), [SECRET])

    assert (error.http_status, error.code, error.error_class) == (502, "upstream_stream_error", "stream_cut")
    assert error.message == (
        f"Upstream '{SLUG}' failed mid-stream: "
        "The server had an error while processing your request. Sorry about that!"
    )


def test_midstream_error_scrubs_secrets() -> None:
    error = upstream_failure(SLUG, in_band_error({"message": f"bad key {SECRET}"}), [SECRET])

    assert SECRET not in error.message
    assert error.message == f"Upstream '{SLUG}' failed mid-stream: bad key [redacted]"


def test_connection_and_timeout_errors_name_the_slug() -> None:
    connection = connection_failure(SLUG, "ClientConnectorError")
    timeout = timeout_failure(SLUG, 120.0)

    assert (connection.http_status, connection.error_class, connection.code) == (
        502,
        "connection",
        "upstream_unreachable",
    )
    assert f"'{SLUG}'" in connection.message and "ClientConnectorError" in connection.message
    assert (timeout.http_status, timeout.error_class, timeout.type, timeout.code) == (
        504,
        "timeout",
        "api_error",
        "upstream_timeout",
    )
    assert f"'{SLUG}'" in timeout.message and "120.0s" in timeout.message
    assert "share of the request's deadline" in timeout.message


def test_stream_cut_names_the_slug_and_what_broke() -> None:
    error = stream_cut(SLUG, "UpstreamConnectionError")

    assert (error.http_status, error.error_class, error.code) == (502, "stream_cut", "upstream_stream_error")
    assert f"'{SLUG}'" in error.message and "UpstreamConnectionError" in error.message
