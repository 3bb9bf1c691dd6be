"""Upstream failures become client errors: status per provider reference §1.4, messages kept but scrubbed."""

from __future__ import annotations

import json

import pytest

from keyrail_common.errors import error_body, error_type_for
from keyrail_workers.upstream_errors import (
    classify_status,
    midstream_error,
    scrub,
    upstream_connection_error,
    upstream_http_error,
    upstream_timeout,
)
from tests.support.contracts import FIXTURES

OPENAI = FIXTURES / "openai"
SLUG = "openai-prod-chat"
# The key the worker read from Vault for this call; it must never reach an error message.
SECRET = "sk-proj-" + "Q" * 40 + "abcd"


# --- classify_status -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("upstream", "client", "error_class"),
    [
        (400, 400, "upstream_bad_request"),  # malformed request: the client's own problem
        (413, 413, "upstream_bad_request"),  # request too large
        (422, 422, "upstream_bad_request"),
        (401, 502, "upstream_auth"),  # the gateway's key is wrong, the caller's request was fine
        (403, 502, "upstream_auth"),
        (404, 502, "upstream_not_found"),  # model known to the gateway, so a configuration error
        (429, 429, "rate_limit"),
        (408, 504, "timeout"),
        (504, 504, "timeout"),
        (503, 503, "upstream_5xx"),
        (529, 503, "upstream_5xx"),  # Anthropic overloaded_error
    ],
)
def test_classify_status_follows_the_reference_table(upstream: int, client: int, error_class: str) -> None:
    assert classify_status(upstream) == (client, error_class)


@pytest.mark.parametrize("upstream", [500, 502, 498])
def test_other_server_failures_are_bad_gateway_or_unavailable(upstream: int) -> None:
    client, error_class = classify_status(upstream)

    assert client in (502, 503)
    assert error_class == "upstream_5xx"


def test_billing_error_402_is_quota_not_a_5xx() -> None:
    client, error_class = classify_status(402)

    assert client in (429, 503)
    assert error_class != "upstream_5xx"


def test_lock_timeout_409_is_a_timeout() -> None:
    assert classify_status(409) == (504, "timeout")


def test_every_upstream_status_maps_to_a_status_the_spec_allows() -> None:
    # SPEC §3: upstream failures after all fallbacks are 502/503/504/429; client errors stay 4xx.
    allowed = {400, 413, 422, 429, 502, 503, 504}

    for upstream in range(400, 600):
        client, error_class = classify_status(upstream)
        assert client in allowed, upstream
        assert error_class, upstream


# --- upstream_http_error on the OpenAI error fixtures ----------------------------------------------


def fixture_message(name: str) -> str:
    message: str = json.loads((OPENAI / name).read_text())["error"]["message"]
    return message


@pytest.mark.parametrize(
    ("name", "upstream", "client"),
    [
        ("error_400_unsupported_parameter.json", 400, 400),
        ("error_401_invalid_api_key.json", 401, 502),
        ("error_404_model_not_found.json", 404, 502),
        ("error_429_rate_limit.json", 429, 429),
        ("error_429_insufficient_quota.json", 429, 429),
    ],
)
def test_upstream_http_error_on_openai_fixtures(name: str, upstream: int, client: int) -> None:
    error = upstream_http_error(SLUG, upstream, (OPENAI / name).read_bytes(), [SECRET])

    assert error.http_status == client
    assert error.type == error_type_for(client)
    assert error.code == f"upstream_{upstream}"
    assert error.error_class == classify_status(upstream)[1]
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

    error = upstream_http_error(SLUG, upstream, (OPENAI / name).read_bytes(), [SECRET])

    assert error.message == f"Upstream '{SLUG}' answered HTTP {upstream}: {fixture_message(name)}"


def test_masked_key_echoed_by_openai_401_is_removed_but_the_advice_stays() -> None:
    body = (OPENAI / "error_401_invalid_api_key.json").read_bytes()
    assert b"sk-proj-****" in body  # the fixture really echoes a masked key

    error = upstream_http_error(SLUG, 401, body, [SECRET])

    assert "sk-proj" not in error.message
    assert "****" not in error.message
    assert "abcd" not in error.message
    assert "Incorrect API key provided: [redacted]" in error.message
    assert "You can find your API key at https://platform.openai.com/account/api-keys." in error.message


def test_secret_echoed_in_full_is_redacted_even_without_a_key_like_prefix() -> None:
    secret = "AIzaSyD-0123456789abcdefGHIJ"
    body = json.dumps({"error": {"message": f"API key not valid: {secret}", "code": 400}}).encode()

    error = upstream_http_error("gemini-prod", 400, body, [secret])

    assert secret not in error.message
    assert error.message.endswith("API key not valid: [redacted]")


def test_groq_error_without_a_code_field_keeps_its_message() -> None:
    body = (FIXTURES / "openai_compatible" / "groq_error_400_unsupported_field.json").read_bytes()

    error = upstream_http_error("groq-prod", 400, body, [SECRET])

    assert error.http_status == 400
    assert "'messages.0.name' : property 'name' is unsupported" in error.message


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
    error = upstream_http_error(SLUG, 503, body, [SECRET])

    assert error.http_status == 503
    assert error.message.startswith(f"Upstream '{SLUG}' answered HTTP 503: ")
    assert expected_tail in error.message


def test_long_non_json_bodies_are_truncated_and_invalid_utf8_is_tolerated() -> None:
    body = b"\xff\xfe" + b"A" * 5000

    error = upstream_http_error(SLUG, 500, body, [])

    assert len(error.message) < 400
    assert "\ufffd" in error.message


def test_non_json_body_echoing_the_secret_is_scrubbed() -> None:
    body = f"<html>Invalid key {SECRET} for this endpoint</html>".encode()

    error = upstream_http_error(SLUG, 401, body, [SECRET])

    assert SECRET not in error.message
    assert "Invalid key [redacted] for this endpoint" in error.message


def test_secret_cut_by_truncation_does_not_leak_a_prefix() -> None:
    azure_key = "0123456789abcdef0123456789abcdef"  # Azure keys are 32 hex chars, no key-like prefix
    body = b"<html><body>" + b"x" * 270 + b" api-key " + azure_key.encode() + b"</body></html>"

    error = upstream_http_error("azure-prod", 401, body, [azure_key])

    assert azure_key[:8] not in error.message


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


# --- other error constructors ----------------------------------------------------------------------


def test_midstream_error_from_the_fixture_keeps_the_upstream_message() -> None:
    line = (OPENAI / "stream_error_midstream.sse").read_text().strip().splitlines()[-1]
    upstream = json.loads(line.removeprefix("data: "))["error"]

    error = midstream_error(SLUG, upstream, [SECRET])

    assert (error.http_status, error.code, error.error_class) == (502, "upstream_stream_error", "stream")
    assert error.message == (
        f"Upstream '{SLUG}' failed mid-stream: "
        "The server had an error while processing your request. Sorry about that!"
    )


def test_midstream_error_scrubs_secrets() -> None:
    error = midstream_error(SLUG, {"message": f"bad key {SECRET}"}, [SECRET])

    assert SECRET not in error.message


def test_connection_and_timeout_errors_name_the_slug() -> None:
    connection = upstream_connection_error(SLUG, "ClientConnectorError")
    timeout = upstream_timeout(SLUG, 120.0)

    assert (connection.http_status, connection.error_class) == (502, "connection")
    assert f"'{SLUG}'" in connection.message and "ClientConnectorError" in connection.message
    assert (timeout.http_status, timeout.error_class, timeout.type) == (504, "timeout", "api_error")
    assert f"'{SLUG}'" in timeout.message and "120s" in timeout.message
