"""A Vertex integration's credentials as the admin API checks them: each problem names its field,
never a value, and a usable key file passes."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from keyrail_common.registry import CredentialError, load_registry
from keyrail_common.service_account import parse_service_account, vertex_base_url
from tests.support.vertex import private_pem, rsa_key, service_account

REGISTRY = load_registry()
FIELD = "credentials.service_account_json"
EC_KEY = (
    ec.generate_private_key(ec.SECP256R1())
    .private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    .decode()
)


def refusal(credentials: dict[str, Any], allow_http: bool = False) -> CredentialError:
    with pytest.raises(CredentialError) as raised:
        REGISTRY.validate_credentials("vertex", credentials, allow_http)
    return raised.value


def test_a_key_file_and_a_region_pass() -> None:
    REGISTRY.validate_credentials(
        "vertex", {"service_account_json": service_account(), "region": "europe-west4"}
    )


def test_the_parsed_account_is_what_the_worker_signs_with() -> None:
    parsed = parse_service_account(service_account(), FIELD)

    assert (parsed.project_id, parsed.token_uri) == (
        "fixture-project-000000",
        "https://oauth2.googleapis.com/token",
    )
    assert parsed.private_key == private_pem(rsa_key())
    assert "PRIVATE KEY" not in repr(parsed)


@pytest.mark.parametrize(
    ("changes", "field", "says"),
    [
        ({"type": "authorized_user"}, f"{FIELD}.type", '"service_account"'),
        ({"project_id": ""}, f"{FIELD}.project_id", "required"),
        ({"client_email": None}, f"{FIELD}.client_email", "required"),
        ({"private_key": None}, f"{FIELD}.private_key", "required"),
        (
            {"private_key": "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC-the-key-without-its-pem-lines"},
            f"{FIELD}.private_key",
            "PEM",
        ),
        ({"private_key": EC_KEY}, f"{FIELD}.private_key", "RSA"),
        ({"token_uri": "ftp://oauth2.example/token"}, f"{FIELD}.token_uri", "http(s) URL"),
        ({"token_uri": "http://127.0.0.1:9/token"}, f"{FIELD}.token_uri", "allow_http"),
        ({"token_uri": "https://169.254.169.254/token"}, f"{FIELD}.token_uri", "link-local"),
    ],
)
def test_each_problem_of_the_key_file_names_its_field_and_never_the_key(
    changes: dict[str, Any], field: str, says: str
) -> None:
    error = refusal({"service_account_json": service_account(**changes), "region": "us-central1"})

    assert error.field == field
    assert says in str(error)
    assert private_pem(rsa_key()) not in str(error)
    assert "the-key-without" not in str(error) and "BEGIN" not in str(error)


def test_a_plain_http_token_uri_passes_when_the_integration_allows_http() -> None:
    account = service_account(token_uri="http://127.0.0.1:9/token")

    REGISTRY.validate_credentials("vertex", {"service_account_json": account, "region": "us-central1"}, True)


def test_a_key_file_that_is_not_an_object_is_refused() -> None:
    error = refusal({"service_account_json": '{"type": "service_account"}', "region": "us-central1"})

    assert error.field == FIELD


@pytest.mark.parametrize(
    "region", ["us-central1.evil.example", "us_central1", "US-CENTRAL1", "", 5, "us-central"]
)
def test_a_region_that_is_not_a_vertex_location_is_refused(region: object) -> None:
    error = refusal({"service_account_json": service_account(), "region": region})

    assert error.field == "credentials.region"
    assert "us-central1" in str(error)


@pytest.mark.parametrize(
    ("location", "base"),
    [
        ("us-central1", "https://us-central1-aiplatform.googleapis.com/v1"),
        ("global", "https://aiplatform.googleapis.com/v1"),
        ("eu", "https://aiplatform.eu.rep.googleapis.com/v1"),
    ],
)
def test_the_api_base_of_a_location(location: str, base: str) -> None:
    assert vertex_base_url(location) == base
