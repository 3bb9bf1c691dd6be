"""Service account → OAuth2 access token (provider reference §6.3): the RFC 7523 JWT-bearer grant.

`assertion` builds and signs the JWT (RS256) as google-auth does; `token_request` wraps it in the
form POST to the key file's `token_uri`; `parse_token_response` reads the token or classifies the
refusal. All pure: the runner sends the request through the same pooled client and egress as
every upstream call. Errors name the integration's field, never the key or a token.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlencode

import msgspec

from keyrail_common.failures import FailureClass
from keyrail_common.service_account import (
    ServiceAccount,
    ServiceAccountError,
    load_rsa_key,
    parse_service_account,
)
from keyrail_workers.adapters.base import AccessToken, Credential, UpstreamError, UpstreamRequest
from keyrail_workers.adapters.status import class_for_status

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
LIFETIME_S = 3600  # Google's maximum for a self-signed assertion
FIELD = "credentials.service_account_json"
_encode = msgspec.json.Encoder().encode
_REFRESH_HINT = f"check that {FIELD} is a current key of an enabled service account"


class _TokenAnswer(msgspec.Struct):
    access_token: str = ""
    expires_in: int | str = 0  # Google sends a number; some proxies a string
    error: str = ""
    error_description: str = ""


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def jwt_claims(account: ServiceAccount, now_s: int) -> dict[str, Any]:
    """Claims as google-auth sets them: the audience is the token endpoint the assertion goes to."""
    return {
        "iss": account.client_email,
        "scope": SCOPE,
        "aud": account.token_uri,
        "iat": now_s,
        "exp": now_s + LIFETIME_S,
    }


def assertion(account: ServiceAccount, now_s: int, key: Any = None) -> str:
    """The signed JWT: b64url(header).b64url(claims).b64url(RS256 signature). `key` is the parsed
    private key (parsed from the account when not given)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    header: dict[str, str] = {"alg": "RS256", "typ": "JWT"}
    if account.private_key_id:
        header["kid"] = account.private_key_id
    signing_input = _b64url(_encode(header)) + b"." + _b64url(_encode(jwt_claims(account, now_s)))
    key = key if key is not None else load_rsa_key(account.private_key, f"{FIELD}.private_key")
    signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return (signing_input + b"." + _b64url(signature)).decode()


def _refused(message: str) -> UpstreamError:
    return UpstreamError(FailureClass.CREDENTIAL, message, provider_code="invalid_service_account")


def token_request(credential: Credential, now_s: float) -> UpstreamRequest | UpstreamError:
    try:
        account = parse_service_account(credential.get("service_account_json"), FIELD, allow_http=True)
        signed = assertion(account, int(now_s))
    except ServiceAccountError as exc:  # saved before the admin API checked keys, or edited in Vault
        return _refused(str(exc))
    return UpstreamRequest(
        method="POST",
        url=account.token_uri,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
        body=urlencode({"grant_type": GRANT_TYPE, "assertion": signed}).encode(),
    )


def parse_token_response(status: int, body: bytes) -> AccessToken | UpstreamError:
    try:
        answer = msgspec.json.decode(body, type=_TokenAnswer)
    except (msgspec.DecodeError, msgspec.ValidationError):
        answer = _TokenAnswer()
    if status < 300:
        try:
            lifetime = float(answer.expires_in)
        except ValueError:
            lifetime = 0.0
        if answer.access_token and lifetime > 0:
            return AccessToken(answer.access_token, lifetime)
        return UpstreamError(
            FailureClass.UPSTREAM_5XX,
            "the OAuth2 token endpoint answered without an access token and its lifetime",
            upstream_status=status,
            provider_code="invalid_token_response",
        )
    said = f"{answer.error} ({answer.error_description})" if answer.error_description else answer.error
    failure_class = class_for_status(status)
    # invalid_grant is a 400 (bad signature, unknown or deleted key, clock skew): the key's fault.
    if answer.error in ("invalid_grant", "invalid_client", "unauthorized_client") or status in (401, 403):
        failure_class = FailureClass.CREDENTIAL
    return UpstreamError(
        failure_class,
        f"the OAuth2 token endpoint refused the service account's signed assertion: "
        f"{said or 'no error given'}; {_REFRESH_HINT}",
        upstream_status=status,
        provider_code=answer.error or "token_exchange_failed",
    )
