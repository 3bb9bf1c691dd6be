"""Config events on KEYRAIL_CONFIG: versioned envelope round trip, and no room for secret material."""

from __future__ import annotations

import json

import msgspec
import pytest

from keyrail_common.config_events import (
    AGGREGATES,
    ENVELOPE_VERSION,
    AdminTokenIssued,
    AdminTokenRevoked,
    ApiKeyIssued,
    ApiKeyRevoked,
    ConfigEnvelope,
    ConfigEvent,
    CredentialsRotated,
    IntegrationCreated,
    IntegrationDisabled,
    IntegrationModelsSet,
    IntegrationUpdated,
    OrgCreated,
    ProjectCreated,
    ProjectUpdated,
    UserCreated,
    UserCreatedV2,
    UserDisabled,
    UserUpdated,
    aggregate_of,
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
    IntegrationModelsSet(provider_slug="anthropic-prod-classifier", enabled_models="all"),
    UserCreatedV2(user_id="user_2", org_id="org_1", name="Bo", project_roles={"proj_a": "developer"}),
    UserUpdated(user_id="user_2", name="Bo", email="bo@x", owner=True, project_roles={}),
    UserDisabled(user_id="user_2"),
    AdminTokenIssued(
        token_id="tok_1", user_id="user_2", name="ci", token_hash=hash_secret("kra-y"), token_prefix="kra-y"
    ),
    AdminTokenIssued(
        token_id="tok_2", user_id="user_2", name="ci", token_hash="h", token_prefix="kra-z", expires_at=9e9
    ),
    AdminTokenRevoked(token_id="tok_1", user_id="user_2"),
    ProjectUpdated(project_id="proj_a", name="A2", archived=True),
    IntegrationUpdated(
        provider_slug="anthropic-prod-classifier",
        name="n",
        description="d",
        project_scope="all",
        custom_host="",
        api_format="anthropic",
        allow_http=False,
        credential_version=4,
    ),
    IntegrationDisabled(provider_slug="anthropic-prod-classifier"),
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
        "credential_fingerprint",  # "…" + four characters, as provider consoles show: never the key
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
    allowed = {
        "token_hash",
        "token_id",
        "token_prefix",
        "key_hash",
        "key_prefix",
        "key_id",
        "credential_ref",
        "credential_version",
    }

    suspicious = [
        f
        for f in type(event).__struct_fields__
        if any(word in f for word in _SECRET_WORDS) and f not in allowed
    ]

    assert suspicious == []


def test_every_event_type_names_its_aggregate_and_the_aggregate_id_field_exists() -> None:
    assert set(AGGREGATES) == set(ConfigEvent.__args__)
    for event in EVENTS:
        aggregate, aggregate_id = aggregate_of(event)
        assert aggregate in {"org", "user", "admintoken", "project", "apikey", "integration"}
        assert aggregate_id and aggregate_id == getattr(event, AGGREGATES[type(event)][1])


# The bytes the previous version of Keyrail wrote: they must still decode, and mean the same.
OLD_STREAM = [
    b'{"event":{"type":"OrgCreated","org_id":"org_default","name":"default"},"actor":"bootstrap","ts":1.0,"v":1}',
    b'{"event":{"type":"UserCreated","user_id":"user_owner","org_id":"org_default","name":"owner",'
    b'"role":"owner","token_hash":"ab"},"actor":"bootstrap","ts":1.0,"v":1}',
    b'{"event":{"type":"ProjectCreated","project_id":"proj_1","org_id":"org_default","name":"demo"},'
    b'"actor":"user_owner","ts":2.0,"v":1}',
    b'{"event":{"type":"ApiKeyIssued","key_id":"key_1","org_id":"org_default","project_id":"proj_1",'
    b'"name":"laptop","key_hash":"cd","key_prefix":"kr-abcd"},"actor":"user_owner","ts":3.0,"v":1}',
    b'{"event":{"type":"IntegrationCreated","integration_id":"int_1","org_id":"org_default",'
    b'"name":"Local mock","provider":"openai","provider_slug":"openai-dev-mock","project_scope":"all",'
    b'"enabled_models":["gpt-4o-mini"],"credential_ref":"integrations/org_default/openai-dev-mock",'
    b'"credential_version":1,"api_format":"openai","custom_host":"http://127.0.0.1:9900/v1",'
    b'"allow_http":true,"description":""},"actor":"user_owner","ts":4.0,"v":1}',
    b'{"event":{"type":"CredentialsRotated","provider_slug":"openai-dev-mock","credential_version":2},'
    b'"actor":"user_owner","ts":5.0,"v":1}',
    b'{"event":{"type":"IntegrationModelsSet","provider_slug":"openai-dev-mock","enabled_models":"all"},'
    b'"actor":"user_owner","ts":6.0,"v":1}',
    b'{"event":{"type":"ApiKeyRevoked","key_id":"key_1"},"actor":"user_owner","ts":7.0,"v":1}',
]


def test_events_written_by_the_previous_version_still_decode() -> None:
    decoded = [decode_envelope(raw) for raw in OLD_STREAM]

    assert [type(e.event).__name__ for e in decoded] == [
        "OrgCreated",
        "UserCreated",
        "ProjectCreated",
        "ApiKeyIssued",
        "IntegrationCreated",
        "CredentialsRotated",
        "IntegrationModelsSet",
        "ApiKeyRevoked",
    ]
    owner = decoded[1].event
    assert isinstance(owner, UserCreated) and owner.role == "owner" and owner.token_hash == "ab"
