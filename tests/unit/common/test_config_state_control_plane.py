"""`ConfigState.apply` for the control plane: users and roles, admin tokens, archived projects,
changed and disabled integrations, aggregate versions, and the previous version's stream."""

from __future__ import annotations

import msgspec

from keyrail_common.config_events import (
    AdminTokenIssued,
    AdminTokenRevoked,
    ApiKeyIssued,
    ApiKeyRevoked,
    ConfigEvent,
    IntegrationCreated,
    IntegrationDisabled,
    IntegrationEnabled,
    IntegrationUpdated,
    ProjectCreated,
    ProjectUpdated,
    UserCreatedV2,
    UserDisabled,
    UserEnabled,
    UserUpdated,
    decode_envelope,
)
from keyrail_common.config_state import ConfigState, EventMeta, legacy_token_id
from keyrail_common.security import hash_secret, lookup_by_hash
from tests.unit.common.test_config_events import OLD_STREAM

ORG = "org_1"


def state_of(*events: ConfigEvent) -> ConfigState:
    state = ConfigState()
    for seq, event in enumerate(events, start=1):
        state.apply(event, EventMeta(seq=seq, actor="user_owner", ts=float(seq)))
    return state


def user(user_id: str = "user_a", **roles: str) -> UserCreatedV2:
    return msgspec.convert(
        {"user_id": user_id, "org_id": ORG, "name": user_id, "project_roles": roles}, UserCreatedV2
    )


def token(token_id: str, user_id: str = "user_a", expires_at: float | None = None) -> AdminTokenIssued:
    return AdminTokenIssued(
        token_id=token_id,
        user_id=user_id,
        name=token_id,
        token_hash=hash_secret(f"kra-{token_id}"),
        token_prefix="kra-" + token_id[:4],
        expires_at=expires_at,
    )


def key(key_id: str, project_id: str = "proj_a") -> ApiKeyIssued:
    return ApiKeyIssued(
        key_id=key_id,
        org_id=ORG,
        project_id=project_id,
        name=key_id,
        key_hash=hash_secret(f"kr-{key_id}"),
        key_prefix="kr-" + key_id[:4],
    )


def integration(slug: str) -> IntegrationCreated:
    return IntegrationCreated(
        integration_id=f"int_{slug}",
        org_id=ORG,
        name=slug,
        provider="openai",
        provider_slug=slug,
        project_scope="all",
        enabled_models="all",
        credential_ref=f"integrations/{ORG}/{slug}",
        credential_version=1,
    )


def test_a_v2_user_holds_a_role_per_project_and_signs_in_with_its_tokens() -> None:
    state = state_of(user(proj_a="project_admin", proj_b="developer"), token("tok_1"))

    record = state.users["user_a"]
    assert record.project_roles == {"proj_a": "project_admin", "proj_b": "developer"}
    assert not record.owner and (record.created_at, record.created_by) == (1.0, "user_owner")
    found = lookup_by_hash(state.admin_tokens_by_hash, "kra-tok_1")
    assert found is not None and found.user_id == "user_a" and found.token_prefix == "kra-tok_"


def test_user_updated_replaces_the_mutable_fields_and_leaves_the_old_record_alone() -> None:
    state = state_of(user(proj_a="developer"))
    before = state.users["user_a"]

    state.apply(UserUpdated(user_id="user_a", name="Ada", email="a@x", owner=True, project_roles={}))

    after = state.users["user_a"]
    assert (after.name, after.email, after.owner, after.project_roles) == ("Ada", "a@x", True, {})
    assert before.project_roles == {"proj_a": "developer"} and not before.owner
    assert [u.user_id for u in state.owners()] == ["user_a"]


def test_a_disabled_users_tokens_stop_working_and_new_ones_never_start() -> None:
    state = state_of(user(), token("tok_1"), UserDisabled(user_id="user_a"), token("tok_2"))

    assert state.users["user_a"].disabled
    assert state.admin_tokens_by_hash == {}
    assert set(state.admin_tokens) == {"tok_1", "tok_2"}  # still listed


def test_a_re_enabled_user_keeps_the_tokens_of_before_revoked_and_works_with_new_ones() -> None:
    state = state_of(user(), token("tok_1"), UserDisabled(user_id="user_a"), UserEnabled(user_id="user_a"))
    assert not state.users["user_a"].disabled
    assert state.admin_tokens["tok_1"].revoked and state.admin_tokens_by_hash == {}
    state.apply(token("tok_3"), EventMeta(seq=9))
    assert lookup_by_hash(state.admin_tokens_by_hash, "kra-tok_3") is not None


def test_a_re_enabled_integration_is_routed_again_as_it_was() -> None:
    created = integration("openai-a")
    state = state_of(created, IntegrationDisabled(provider_slug="openai-a"))
    assert "openai-a" not in state.integrations
    state.apply(IntegrationEnabled(provider_slug="openai-a"), EventMeta(seq=3))
    assert state.integrations["openai-a"] == created and state.disabled_integrations == {}


def test_a_revoked_token_leaves_the_lookup_and_is_listed_as_revoked() -> None:
    state = state_of(
        user(), token("tok_1"), token("tok_2"), AdminTokenRevoked(token_id="tok_1", user_id="user_a")
    )

    assert state.admin_tokens["tok_1"].revoked and not state.admin_tokens["tok_2"].revoked
    assert lookup_by_hash(state.admin_tokens_by_hash, "kra-tok_1") is None
    assert lookup_by_hash(state.admin_tokens_by_hash, "kra-tok_2") is not None


def test_archiving_a_project_refuses_its_keys_and_restoring_it_brings_back_the_unrevoked_ones() -> None:
    state = state_of(
        ProjectCreated(project_id="proj_a", org_id=ORG, name="A"),
        ProjectCreated(project_id="proj_b", org_id=ORG, name="B"),
        key("key_1"),
        key("key_2"),
        key("key_3", "proj_b"),
        ApiKeyRevoked(key_id="key_2"),
        ProjectUpdated(project_id="proj_a", name="A", archived=True),
        key("key_4"),  # issued into the archived project (a race with the archive): not usable either
    )
    usable = {k.key_id for k in state.api_keys_by_hash.values()}
    assert usable == {"key_3"} and state.projects["proj_a"].archived
    # The data plane can still say why an archived project's key is refused; a revoked key: no.
    assert {k.key_id for k in state.dormant_keys_by_hash.values()} == {"key_1", "key_4"}

    state.apply(ProjectUpdated(project_id="proj_a", name="A again", archived=False))

    assert {k.key_id for k in state.api_keys_by_hash.values()} == {"key_1", "key_3", "key_4"}
    assert state.dormant_keys_by_hash == {}
    assert state.projects["proj_a"].name == "A again"


def test_an_integration_update_replaces_its_fields_and_a_disabled_one_is_no_longer_routable() -> None:
    state = state_of(integration("openai-a"), integration("openai-b"))
    update = IntegrationUpdated(
        provider_slug="openai-a",
        name="renamed",
        description="d",
        project_scope=["proj_a"],
        custom_host="https://llm.example.com/v1",
        api_format="openai",
        allow_http=False,
        credential_version=2,
    )

    state.apply(update)
    state.apply(IntegrationDisabled(provider_slug="openai-b"))

    changed = state.integrations["openai-a"]
    assert (changed.name, changed.project_scope, changed.custom_host, changed.credential_version) == (
        "renamed",
        ["proj_a"],
        "https://llm.example.com/v1",
        2,
    )
    assert changed.provider == "openai" and changed.enabled_models == "all"  # what never changes
    assert list(state.integrations) == ["openai-a"]
    assert list(state.disabled_integrations) == ["openai-b"]
    assert state.integration("openai-b") is state.disabled_integrations["openai-b"]


def test_versions_are_the_sequence_of_each_aggregates_last_event_undecodable_ones_included() -> None:
    state = ConfigState()
    state.apply(ProjectCreated(project_id="proj_a", org_id=ORG, name="A"), EventMeta(5, "project.proj_a"))
    state.apply(key("key_1"), EventMeta(6, "apikey.key_1"))
    state.apply(ProjectUpdated(project_id="proj_a", name="B", archived=False), EventMeta(9, "project.proj_a"))
    state.record_version(EventMeta(11, "apikey.key_1"))  # an event from a newer Keyrail

    assert state.version("project", "proj_a") == 9
    assert state.version("apikey", "key_1") == 11
    assert state.version("integration", "nothing-yet") == 0


def test_the_previous_versions_stream_replays_to_the_same_configuration() -> None:
    state = ConfigState()
    for seq, raw in enumerate(OLD_STREAM, start=1):
        envelope = decode_envelope(raw)
        state.apply(envelope.event, EventMeta(seq, "", envelope.actor, envelope.ts))

    owner = state.users["user_owner"]
    assert owner.owner and owner.project_roles == {} and not owner.disabled
    assert state.admin_tokens_by_hash["ab"].token_id == legacy_token_id("user_owner")
    assert state.projects["proj_1"].name == "demo"
    assert state.api_keys["key_1"].revoked and state.api_keys_by_hash == {}
    mock = state.integrations["openai-dev-mock"]
    assert (mock.credential_version, mock.enabled_models) == (2, "all")
