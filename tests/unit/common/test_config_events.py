"""Config events on KEYRAIL_CONFIG: versioned envelope round trip, and no room for secret material."""

from __future__ import annotations

import json

import msgspec
import pytest

from keyrail_common.config_events import (
    ENVELOPE_VERSION,
    ApiKeyIssued,
    ApiKeyRevoked,
    ConfigEnvelope,
    ConfigEvent,
    CredentialsRotated,
    IntegrationCreated,
    OrgCreated,
    ProjectCreated,
    UserCreated,
    decode_envelope,
    encode_envelope,
)
from keyrail_common.security import hash_secret

INTEGRATION = IntegrationCreated(
    integration_id="int_1",
    org_id="org_1",
    name="Prod classifier",
    provider="anthropic",
    provider_slug="anthropic-prod-classifier",
    project_scope=["proj_a", "proj_b"],
    enabled_models=["claude-sonnet-4-6"],
    credential_ref="keyrail/org_1/integrations/anthropic-prod-classifier",
    credential_version=2,
    api_format="anthropic",
    custom_host="https://claude-proxy.example.com",
    allow_http=False,
    description="routes the classifier",
)

EVENTS: list[ConfigEvent] = [
    OrgCreated(org_id="org_1", name="Acme"),
    UserCreated(user_id="usr_1", org_id="org_1", name="Ada", role="owner", token_hash=hash_secret("kra-x")),
    ProjectCreated(project_id="proj_a", org_id="org_1", name="A"),
    ApiKeyIssued(
        key_id="key_1",
        org_id="org_1",
        project_id="proj_a",
        name="ci",
        key_hash=hash_secret("kr-x"),
        key_prefix="kr-x",
    ),
    ApiKeyRevoked(key_id="key_1"),
    INTEGRATION,
    msgspec.structs.replace(INTEGRATION, project_scope="all", enabled_models="none", custom_host=""),
    CredentialsRotated(provider_slug="anthropic-prod-classifier", credential_version=3),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_envelope_round_trip(event: ConfigEvent) -> None:
    envelope = ConfigEnvelope(event=event, actor="usr_1", ts=1764201600.25)

    decoded = decode_envelope(encode_envelope(envelope))

    assert decoded == envelope
    assert type(decoded.event) is type(event)
    assert decoded.v == ENVELOPE_VERSION == 1


def test_the_event_is_tagged_with_its_type_on_the_wire() -> None:
    wire = json.loads(encode_envelope(ConfigEnvelope(event=INTEGRATION, actor="usr_1", ts=1.0)))

    assert wire["event"]["type"] == "IntegrationCreated"
    assert wire["actor"] == "usr_1" and wire["v"] == 1


def test_unknown_event_types_raise_the_decode_error_the_projection_skips() -> None:
    data = b'{"event": {"type": "FromTheFuture", "x": 1}, "actor": "usr_1", "ts": 1.0, "v": 2}'

    with pytest.raises(msgspec.DecodeError):
        decode_envelope(data)


# Anything that could hold a credential: API keys, tokens, passwords, auth headers, service-account JSON.
_SECRET_WORDS = ("key", "secret", "token", "password", "header", "auth", "credentials", "service_account")


def test_integration_created_has_no_field_that_could_carry_credentials() -> None:
    fields = set(IntegrationCreated.__struct_fields__)

    assert fields == {
        "integration_id",
        "org_id",
        "name",
        "provider",
        "provider_slug",
        "project_scope",
        "enabled_models",
        "credential_ref",
        "credential_version",
        "api_format",
        "custom_host",
        "allow_http",
        "description",
    }
    assert [f for f in fields if any(word in f for word in _SECRET_WORDS)] == []
    # The credentials are only referenced: a Vault path and a version.
    assert isinstance(INTEGRATION.credential_ref, str)
    assert isinstance(INTEGRATION.credential_version, int)


def test_credential_material_smuggled_into_an_integration_event_is_dropped_on_decode() -> None:
    envelope = json.loads(encode_envelope(ConfigEnvelope(event=INTEGRATION, actor="usr_1", ts=1.0)))
    envelope["event"]["credentials"] = {"api_key": "sk-ant-api03-SMUGGLED"}
    envelope["event"]["auth_headers"] = {"x-api-key": "sk-ant-api03-SMUGGLED"}

    decoded = decode_envelope(json.dumps(envelope).encode())

    assert decoded.event == INTEGRATION
    assert b"SMUGGLED" not in encode_envelope(decoded)


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_no_config_event_has_a_raw_secret_field(event: ConfigEvent) -> None:
    # Hashes, prefixes and Vault references are fine; raw values are not.
    allowed = {"token_hash", "key_hash", "key_prefix", "key_id", "credential_ref", "credential_version"}

    suspicious = [
        f
        for f in type(event).__struct_fields__
        if any(word in f for word in _SECRET_WORDS) and f not in allowed
    ]

    assert suspicious == []
