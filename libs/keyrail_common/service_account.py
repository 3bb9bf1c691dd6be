"""Google service-account keys and Vertex AI locations: what the admin API accepts and the worker signs with.

A service-account key file (provider reference §6.3) is checked when an integration is saved, so a
worker never meets a key it cannot use: `type` is `service_account`, `project_id` and
`client_email` are there, `private_key` is a PEM RSA key (parsed with `cryptography`), and
`token_uri` is an http(s) URL the custom-host rules accept. Errors name the field and never say
its value. The worker parses the same file with `parse_service_account` and signs with the key.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from keyrail_common.hosts import HostRejected, validate_custom_host

DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"
# Regions (`us-central1`, `europe-west4`, `northamerica-northeast1`), `global`, and the multi-regions.
_LOCATION = re.compile(r"[a-z]+-[a-z]+[0-9]{1,2}|global|us|eu")
_LOCATION_TEXT = "a Vertex AI location such as us-central1, europe-west4, global, us or eu"


class ServiceAccountError(ValueError):
    """A field of the key file is missing or unusable; `field` names it under the credential field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class ServiceAccount(msgspec.Struct, frozen=True):
    project_id: str
    client_email: str
    private_key: str  # PEM; never logged, never in an error
    private_key_id: str = ""
    token_uri: str = DEFAULT_TOKEN_URI

    def __repr__(self) -> str:  # the key must not reach a log line through a repr
        return f"ServiceAccount(project_id={self.project_id!r}, client_email={self.client_email!r})"


def _text(value: dict[str, Any], name: str, field: str, example: str) -> str:
    found = value.get(name)
    if not isinstance(found, str) or not found.strip():
        raise ServiceAccountError(
            f"{field}.{name}", f"{field}.{name} is required: a non-empty string ({example})."
        )
    return found


def load_rsa_key(pem: str, field: str) -> Any:
    """The RSA private key of a PEM text (`cryptography` key object), or ServiceAccountError."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):  # their messages are about the content: not repeated
        raise ServiceAccountError(
            field,
            f"{field} is not an unencrypted PEM private key; paste the private_key of the "
            "service account's JSON key file as it is (with its \\n line breaks).",
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ServiceAccountError(
            field, f"{field} must be an RSA key (Google signs service accounts with RS256)."
        )
    return key


def parse_service_account(value: object, field: str, allow_http: bool = False) -> ServiceAccount:
    """The usable parts of a service-account key file, checked; `field` is where it sits
    (`credentials.service_account_json`). The private key is parsed, so a pasted key that lost its
    line breaks is refused here and not at the first request."""
    if not isinstance(value, dict):
        raise ServiceAccountError(
            field, f"{field} must be the service account's JSON key file, as an object."
        )
    if value.get("type") != "service_account":
        raise ServiceAccountError(
            f"{field}.type",
            f'{field}.type must be "service_account" (a key file from IAM > Service accounts > Keys; '
            "user credentials and external-account files are not supported).",
        )
    project_id = _text(value, "project_id", field, "the Google Cloud project id")
    client_email = _text(value, "client_email", field, "name@project.iam.gserviceaccount.com")
    private_key = _text(value, "private_key", field, "the PEM key of the key file")
    load_rsa_key(private_key, f"{field}.private_key")
    token_uri = value.get("token_uri", DEFAULT_TOKEN_URI)
    if not isinstance(token_uri, str):
        raise ServiceAccountError(
            f"{field}.token_uri", f"{field}.token_uri must be a URL ({DEFAULT_TOKEN_URI})."
        )
    try:
        token_uri = validate_custom_host(token_uri, allow_http)
    except HostRejected as exc:
        reason = str(exc).replace("custom_host", f"{field}.token_uri")
        raise ServiceAccountError(f"{field}.token_uri", reason) from None
    key_id = value.get("private_key_id")
    return ServiceAccount(
        project_id=project_id,
        client_email=client_email,
        private_key=private_key,
        private_key_id=key_id if isinstance(key_id, str) else "",
        token_uri=token_uri,
    )


def check_location(value: object, field: str) -> str:
    if not isinstance(value, str) or not _LOCATION.fullmatch(value):
        raise ServiceAccountError(field, f"{field} must be {_LOCATION_TEXT}.")
    return value


def vertex_base_url(location: str) -> str:
    """Vertex AI's API base for a location (§6.1): regional, global or multi-region host."""
    if location == "global":
        return "https://aiplatform.googleapis.com/v1"
    if location in ("us", "eu"):
        return f"https://aiplatform.{location}.rep.googleapis.com/v1"
    return f"https://{location}-aiplatform.googleapis.com/v1"
