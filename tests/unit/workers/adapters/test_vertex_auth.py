"""The service account's signed JWT and the token exchange (provider reference §6.3), without I/O.

The signature is verified with the generated key's public half; the token endpoint's answers are
the reference's fixtures.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import pytest
from cryptography.exceptions import InvalidSignature

from keyrail_common.failures import FailureClass
from keyrail_common.service_account import parse_service_account
from keyrail_workers.adapters.base import AccessToken, UpstreamError, UpstreamRequest
from keyrail_workers.adapters.vertex import auth
from tests.support.contracts import FIXTURES
from tests.support.vertex import private_pem, rsa_key, service_account, verified_jwt

VERTEX = FIXTURES / "vertex"
NOW = 1764201600  # the fixture assertion's iat
TOKEN_URI = "https://oauth2.googleapis.com/token"


def account() -> dict[str, object]:
    return service_account()


def test_the_jwt_has_the_reference_header_and_claims_and_verifies_with_the_public_key() -> None:
    expected = json.loads((VERTEX / "jwt_header_and_claims.json").read_text())
    parsed = parse_service_account(account(), "credentials.service_account_json")

    header, claims = verified_jwt(auth.assertion(parsed, NOW), rsa_key())

    assert header == expected["header"]
    assert claims == expected["claims"]


def test_a_jwt_signed_with_another_key_does_not_verify() -> None:
    parsed = parse_service_account(
        service_account(private_key=private_pem(rsa_key("other"))), "credentials.service_account_json"
    )
    signed = auth.assertion(parsed, NOW)

    with pytest.raises(InvalidSignature):
        verified_jwt(signed, rsa_key())


def test_the_audience_is_the_token_uri_the_assertion_is_sent_to() -> None:
    parsed = parse_service_account(
        service_account(token_uri="http://127.0.0.1:9/token"), "credentials.service_account_json", True
    )

    _, claims = verified_jwt(auth.assertion(parsed, NOW), rsa_key())

    assert claims["aud"] == "http://127.0.0.1:9/token"
    assert claims["exp"] - claims["iat"] == 3600


def test_the_token_request_is_the_jwt_bearer_form_post_to_the_token_uri() -> None:
    request = auth.token_request({"service_account_json": account(), "region": "us-central1"}, NOW + 0.7)

    assert isinstance(request, UpstreamRequest)
    assert (request.method, request.url) == ("POST", TOKEN_URI)
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    form = parse_qs(request.body.decode())
    assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    _, claims = verified_jwt(form["assertion"][0], rsa_key())
    assert claims["iat"] == NOW


def test_the_reference_token_request_has_the_same_form_fields() -> None:
    head, _, body = (VERTEX / "token_request.http").read_text().partition("\n\n")

    assert "Content-Type: application/x-www-form-urlencoded" in head
    assert sorted(parse_qs(body.strip())) == ["assertion", "grant_type"]


def test_an_unusable_key_in_the_vault_is_a_credential_refusal_naming_the_field_not_the_key() -> None:
    broken = service_account(
        private_key="-----BEGIN PRIVATE KEY-----\nnot-base64\n-----END PRIVATE KEY-----\n"
    )

    refused = auth.token_request({"service_account_json": broken}, NOW)

    assert isinstance(refused, UpstreamError)
    assert refused.failure_class is FailureClass.CREDENTIAL
    assert "credentials.service_account_json.private_key" in refused.message
    assert "not-base64" not in refused.message


def test_the_token_response_gives_the_token_and_its_lifetime() -> None:
    body = (VERTEX / "token_response.json").read_bytes()

    token = auth.parse_token_response(200, body)

    assert token == AccessToken(json.loads(body)["access_token"], 3599.0)


def test_a_lifetime_sent_as_a_string_is_read() -> None:
    assert auth.parse_token_response(200, b'{"access_token":"ya29.x","expires_in":"1800"}') == AccessToken(
        "ya29.x", 1800.0
    )


@pytest.mark.parametrize("fixture", ["token_error_invalid_grant.json", "token_error_clock_skew.json"])
def test_invalid_grant_is_a_credential_failure_saying_google_s_reason(fixture: str) -> None:
    body = (VERTEX / fixture).read_bytes()

    error = auth.parse_token_response(400, body)

    assert isinstance(error, UpstreamError)
    assert error.failure_class is FailureClass.CREDENTIAL
    assert (error.upstream_status, error.provider_code) == (400, "invalid_grant")
    assert json.loads(body)["error_description"] in error.message
    assert "credentials.service_account_json" in error.message


@pytest.mark.parametrize(
    ("status", "body", "failure_class"),
    [
        (503, b"<html>unavailable</html>", FailureClass.OVERLOADED),
        (500, b"", FailureClass.UPSTREAM_5XX),
        (429, b'{"error":"rate_limited"}', FailureClass.RATE_LIMIT),
        (401, b'{"error":"invalid_client"}', FailureClass.CREDENTIAL),
        (200, b'{"token_type":"Bearer"}', FailureClass.UPSTREAM_5XX),  # no token in a 200
    ],
)
def test_other_token_endpoint_answers_map_through_the_failure_vocabulary(
    status: int, body: bytes, failure_class: FailureClass
) -> None:
    error = auth.parse_token_response(status, body)

    assert isinstance(error, UpstreamError)
    assert (error.failure_class, error.upstream_status) == (failure_class, status)
