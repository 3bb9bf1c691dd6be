"""`ConfigState.apply`: the in-memory projection every service routes and authenticates from."""

from __future__ import annotations

import msgspec
import pytest

from keyrail_common.config_events import (
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
from keyrail_common.config_state import legacy_token_id
from keyrail_common.projection import ConfigState
from keyrail_common.security import hash_secret, lookup_by_hash

ORG = "org_1"


def key_issued(key_id: str, secret: str, project_id: str = "proj_a") -> ApiKeyIssued:
    return ApiKeyIssued(
        key_id=key_id,
        org_id=ORG,
        project_id=project_id,
        name=f"{key_id} name",
        key_hash=hash_secret(secret),
        key_prefix=secret[:7],
    )


def integration(slug: str, version: int = 1, **extra: object) -> IntegrationCreated:
    fields: dict[str, object] = {
        "integration_id": f"int_{slug}",
        "org_id": ORG,
        "name": slug,
        "provider": "openai",
        "provider_slug": slug,
        "project_scope": ["proj_a"],
        "enabled_models": ["gpt-4.1-mini"],
        "credential_ref": f"keyrail/{ORG}/integrations/{slug}",
        "credential_version": version,
        **extra,
    }
    return msgspec.convert(fields, IntegrationCreated)


def state_of(*events: ConfigEvent) -> ConfigState:
    state = ConfigState()
    for event in events:
        state.apply(event)
    return state


def test_a_fresh_state_is_empty() -> None:
    state = ConfigState()

    assert state.org is None
    assert state.users == state.admin_tokens == state.admin_tokens_by_hash == state.projects == {}
    assert state.api_keys == state.api_keys_by_hash == state.integrations == {}
    assert state.disabled_integrations == state.versions == {}


def test_org_projects_and_a_v1_user_with_its_token_are_indexed() -> None:
    owner = UserCreated(
        user_id="usr_1", org_id=ORG, name="Ada", role="owner", token_hash=hash_secret("kra-x")
    )
    state = state_of(
        OrgCreated(org_id=ORG, name="Acme"),
        ProjectCreated(project_id="proj_a", org_id=ORG, name="A"),
        owner,
    )

    assert state.org == OrgCreated(org_id=ORG, name="Acme")
    assert state.projects["proj_a"].name == "A" and not state.projects["proj_a"].archived
    (user,) = state.users.values()
    assert (user.user_id, user.name, user.owner, user.project_roles, user.disabled) == (
        "usr_1",
        "Ada",
        True,
        {},
        False,
    )
    token = lookup_by_hash(state.admin_tokens_by_hash, "kra-x")
    assert token is not None and token.token_id == legacy_token_id("usr_1") and token.user_id == "usr_1"


def test_issued_key_is_found_by_id_and_by_hash() -> None:
    issued = key_issued("key_1", "kr-secret-one")

    state = state_of(issued)

    key = state.api_keys["key_1"]
    assert (key.key_id, key.project_id, key.key_prefix, key.revoked) == ("key_1", "proj_a", "kr-secr", False)
    assert state.api_keys_by_hash == {hash_secret("kr-secret-one"): key}
    assert lookup_by_hash(state.api_keys_by_hash, "kr-secret-one") is key


def test_revoking_a_key_removes_it_from_the_lookup_and_keeps_it_listed_as_revoked() -> None:
    state = state_of(key_issued("key_1", "kr-secret-one"), key_issued("key_2", "kr-secret-two"))

    state.apply(ApiKeyRevoked(key_id="key_1"))

    assert state.api_keys["key_1"].revoked
    assert hash_secret("kr-secret-one") not in state.api_keys_by_hash
    assert lookup_by_hash(state.api_keys_by_hash, "kr-secret-one") is None
    # The other key is untouched.
    assert lookup_by_hash(state.api_keys_by_hash, "kr-secret-two") is state.api_keys["key_2"]


def test_revoking_an_unknown_or_already_revoked_key_is_a_no_op() -> None:
    state = state_of(key_issued("key_1", "kr-secret-one"), ApiKeyRevoked(key_id="key_1"))

    state.apply(ApiKeyRevoked(key_id="key_1"))
    state.apply(ApiKeyRevoked(key_id="key_nope"))

    assert list(state.api_keys) == ["key_1"] and state.api_keys["key_1"].revoked
    assert state.api_keys_by_hash == {}


def test_integrations_are_keyed_by_provider_slug_and_a_later_event_wins() -> None:
    first = integration("openai-prod", description="first")
    second = integration("openai-prod", description="second")

    state = state_of(first, integration("openai-dev"), second)

    assert sorted(state.integrations) == ["openai-dev", "openai-prod"]
    assert state.integrations["openai-prod"] is second


def test_credentials_rotation_bumps_the_version_and_nothing_else() -> None:
    created = integration("openai-prod", custom_host="https://llm.example.com/v1")
    state = state_of(created)

    state.apply(CredentialsRotated(provider_slug="openai-prod", credential_version=2))

    rotated = state.integrations["openai-prod"]
    assert rotated.credential_version == 2
    assert msgspec.structs.replace(rotated, credential_version=1) == created
    # The earlier event object is not mutated: targets resolved before the rotation keep their version.
    assert created.credential_version == 1


def test_successive_rotations_keep_the_latest_version() -> None:
    state = state_of(
        integration("openai-prod"),
        CredentialsRotated(provider_slug="openai-prod", credential_version=2),
        CredentialsRotated(provider_slug="openai-prod", credential_version=3),
    )

    assert state.integrations["openai-prod"].credential_version == 3


def test_rotation_for_an_unknown_slug_creates_nothing() -> None:
    state = state_of(integration("openai-prod"))

    state.apply(CredentialsRotated(provider_slug="openai-ghost", credential_version=5))

    assert list(state.integrations) == ["openai-prod"]
    assert state.integrations["openai-prod"].credential_version == 1


@pytest.mark.parametrize("through_the_wire", [False, True])
def test_replaying_the_log_rebuilds_the_same_state(through_the_wire: bool) -> None:
    events: list[ConfigEvent] = [
        OrgCreated(org_id=ORG, name="Acme"),
        ProjectCreated(project_id="proj_a", org_id=ORG, name="A"),
        key_issued("key_1", "kr-one"),
        key_issued("key_2", "kr-two"),
        ApiKeyRevoked(key_id="key_1"),
        integration("openai-prod"),
        CredentialsRotated(provider_slug="openai-prod", credential_version=4),
    ]
    if through_the_wire:
        events = [
            decode_envelope(encode_envelope(ConfigEnvelope(event=e, actor="usr_1", ts=1.0))).event
            for e in events
        ]

    state = state_of(*events)

    assert [k for k, key in state.api_keys.items() if not key.revoked] == ["key_2"]
    assert list(state.api_keys_by_hash) == [hash_secret("kr-two")]
    assert state.integrations["openai-prod"].credential_version == 4
    assert state.org is not None and state.org.name == "Acme"
