"""Routing decisions: `resolve_targets` over a config projection, the shipped catalog and the registry.

Also `unavailable`, which stops a target this version cannot attempt before any worker is asked.
(The fallback policy that used to live here is the failure table: tests/unit/common/test_failures.py.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from keyrail_common.catalog import Catalog
from keyrail_common.config_events import (
    CredentialsRotated,
    IntegrationCreated,
    OrgCreated,
    ProjectCreated,
)
from keyrail_common.failures import ErrorInfo, FailureClass, may_fall_back
from keyrail_common.messages import Prices, Target
from keyrail_common.projection import ConfigState
from keyrail_common.registry import Operation, load_registry
from keyrail_router.resolve import Resolver, resolve_targets, unavailable
from tests.support.registry import registry_lacking

ORG = "org_test"
PROJECT_A = "proj_a"
PROJECT_B = "proj_b"
CATALOG = Catalog.load_default()
SEED_PRICES = "catalog:2026-11-17"  # the version a shipped entry's prices carry: the seed's source date
REGISTRY = load_registry()
RESOLVER = Resolver(REGISTRY)


def integration(
    slug: str,
    provider: str = "openai",
    scope: str | list[str] = "all",
    enabled: str | list[str] = "all",
    **extra: object,
) -> IntegrationCreated:
    return IntegrationCreated(
        integration_id=f"int_{slug}",
        org_id=ORG,
        name=f"{slug} integration",
        provider=provider,
        provider_slug=slug,
        project_scope=scope,  # type: ignore[arg-type]
        enabled_models=enabled,  # type: ignore[arg-type]
        credential_ref=f"keyrail/{ORG}/integrations/{slug}",
        credential_version=1,
        **extra,  # type: ignore[arg-type]
    )


def state_with(*events: object) -> ConfigState:
    state = ConfigState()
    state.apply(OrgCreated(org_id=ORG, name="Test org"))
    state.apply(ProjectCreated(project_id=PROJECT_A, org_id=ORG, name="A"))
    state.apply(ProjectCreated(project_id=PROJECT_B, org_id=ORG, name="B"))
    for event in events:
        state.apply(event)  # type: ignore[arg-type]
    return state


def resolve(state: ConfigState, model: str, project: str = PROJECT_A, pinned: str = "") -> object:
    return resolve_targets(RESOLVER, state, project, model, pinned)


def as_error(result: object) -> ErrorInfo:
    assert isinstance(result, ErrorInfo), f"expected an error, got {result!r}"
    return result


def as_targets(result: object) -> list[Target]:
    assert isinstance(result, list), f"expected targets, got {result!r}"
    return result


# --- pinned `<provider-slug>/<model>` -------------------------------------------------------------


def test_pinned_slug_gives_exactly_one_fully_populated_target() -> None:
    state = state_with(integration("openai-prod-chat", scope=[PROJECT_A], enabled=["gpt-4.1-mini"]))

    targets = as_targets(resolve(state, "openai-prod-chat/gpt-4.1-mini"))

    assert targets == [
        Target(
            integration_id="int_openai-prod-chat",
            provider="openai",
            provider_slug="openai-prod-chat",
            adapter="openai",
            model="gpt-4.1-mini",
            catalog_id="openai/gpt-4.1-mini",
            base_url="https://api.openai.com/v1",  # the registry's default for the provider
            credential_ref=f"keyrail/{ORG}/integrations/openai-prod-chat",
            credential_version=1,
            # Catalog list prices for gpt-4.1-mini, USD per 1M tokens (provider reference §11.1).
            prices=Prices(input=0.4, output=1.6, cached_input=0.1, version=SEED_PRICES),
        )
    ]


def test_pinned_anthropic_integration_goes_to_the_anthropic_pool_with_catalog_prices() -> None:
    state = state_with(integration("anthropic-prod-classifier", provider="anthropic"))

    [target] = as_targets(resolve(state, "anthropic-prod-classifier/claude-sonnet-4-6"))

    assert target.adapter == "anthropic"
    assert target.base_url == "https://api.anthropic.com"
    assert target.provider == "anthropic"
    assert target.model == "claude-sonnet-4-6"
    assert target.catalog_id == "anthropic/claude-sonnet-4-6"
    assert target.prices == Prices(input=3.0, output=15.0, cached_input=0.3, version=SEED_PRICES)


def test_pinned_custom_host_is_the_target_base_url_and_its_api_format_picks_the_pool() -> None:
    state = state_with(
        integration(
            "openai-selfhosted-gw",
            custom_host="https://llm.internal.example/v1",
            api_format="anthropic",
        )
    )

    [target] = as_targets(resolve(state, "openai-selfhosted-gw/gpt-4o-mini"))

    assert target.base_url == "https://llm.internal.example/v1"
    assert target.adapter == "anthropic"
    assert target.provider == "openai"
    assert target.prices == Prices(input=0.15, output=0.6, cached_input=0.075, version=SEED_PRICES)


def test_target_carries_the_rotated_credential_version() -> None:
    state = state_with(
        integration("openai-prod-chat"),
        CredentialsRotated(provider_slug="openai-prod-chat", credential_version=2),
        CredentialsRotated(provider_slug="openai-prod-chat", credential_version=3),
    )

    [target] = as_targets(resolve(state, "openai-prod-chat/gpt-4.1"))

    assert target.credential_version == 3
    assert target.credential_ref == f"keyrail/{ORG}/integrations/openai-prod-chat"


def test_pinned_integration_outside_the_project_scope_is_403() -> None:
    state = state_with(integration("openai-b-only", scope=[PROJECT_B]))

    error = as_error(resolve(state, "openai-b-only/gpt-4.1-mini", project=PROJECT_A))

    assert error.http_status == 403
    assert error.code == "integration_out_of_scope"
    assert error.type == "permission_error"
    assert error.param == "model"
    assert "openai-b-only" in error.message
    assert PROJECT_A in error.message
    assert "project_scope" in error.message  # says what to change


def test_scope_is_checked_before_the_catalog_so_out_of_scope_integrations_reveal_nothing() -> None:
    state = state_with(integration("openai-b-only", scope=[PROJECT_B]))

    error = as_error(resolve(state, "openai-b-only/not-a-real-model", project=PROJECT_A))

    assert (error.http_status, error.code) == (403, "integration_out_of_scope")


def test_pinned_model_missing_from_the_catalog_is_404_explaining_catalog_and_custom_models() -> None:
    state = state_with(integration("openai-prod-chat"))

    error = as_error(resolve(state, "openai-prod-chat/my-finetune-v2"))

    assert error.http_status == 404
    assert error.code == "model_not_found"
    assert error.type == "not_found_error"
    assert error.param == "model"
    assert "my-finetune-v2" in error.message
    assert "catalog" in error.message
    # Says how to register a model outside the catalog, naming the real route.
    assert "POST /admin/v1/integrations/openai-prod-chat/custom-models" in error.message


@pytest.mark.parametrize("enabled", [["gpt-4.1"], "none", []], ids=["other-model", "none", "empty-list"])
def test_pinned_catalog_model_not_enabled_on_the_integration_is_403(enabled: object) -> None:
    state = state_with(integration("openai-prod-chat", enabled=enabled))  # type: ignore[arg-type]

    error = as_error(resolve(state, "openai-prod-chat/gpt-4o-mini"))

    assert error.http_status == 403
    assert error.code == "model_not_enabled"
    assert error.type == "permission_error"
    assert "gpt-4o-mini" in error.message
    assert "/admin/v1/integrations/openai-prod-chat/models" in error.message


# --- `provider/model` catalog form ----------------------------------------------------------------


def test_catalog_form_picks_every_in_scope_enabled_integration_of_that_provider_in_slug_order() -> None:
    state = state_with(
        integration("openai-zz-shared", scope="all", enabled="all"),
        integration("openai-aa-team-a", scope=[PROJECT_A], enabled=["gpt-4.1-mini"]),
        integration("openai-bb-team-b", scope=[PROJECT_B]),  # out of scope
        integration("openai-cc-other-model", enabled=["gpt-4o"]),  # model not enabled
        integration("openai-dd-disabled", enabled="none"),  # nothing enabled
        integration("anthropic-aa", provider="anthropic"),  # another provider
    )

    targets = as_targets(resolve(state, "openai/gpt-4.1-mini", project=PROJECT_A))

    assert [t.provider_slug for t in targets] == ["openai-aa-team-a", "openai-zz-shared"]
    assert {t.model for t in targets} == {"gpt-4.1-mini"}
    assert {t.catalog_id for t in targets} == {"openai/gpt-4.1-mini"}
    assert {t.adapter for t in targets} == {"openai"}
    assert [t.integration_id for t in targets] == ["int_openai-aa-team-a", "int_openai-zz-shared"]


def test_catalog_form_for_another_project_sees_its_own_integrations_only() -> None:
    state = state_with(
        integration("openai-aa-team-a", scope=[PROJECT_A]),
        integration("openai-bb-team-b", scope=[PROJECT_B]),
    )

    targets = as_targets(resolve(state, "openai/gpt-4.1", project=PROJECT_B))

    assert [t.provider_slug for t in targets] == ["openai-bb-team-b"]


@pytest.mark.parametrize(
    "integrations",
    [
        [],
        [integration("openai-bb-team-b", scope=[PROJECT_B])],
        [integration("openai-aa-team-a", scope=[PROJECT_A], enabled=["gpt-4o"])],
        [integration("anthropic-aa", provider="anthropic")],
    ],
    ids=["no-integrations", "only-out-of-scope", "only-model-not-enabled", "only-other-provider"],
)
def test_catalog_form_without_an_in_scope_integration_is_403(integrations: list[IntegrationCreated]) -> None:
    state = state_with(*integrations)

    error = as_error(resolve(state, "openai/gpt-4.1-mini", project=PROJECT_A))

    assert error.http_status == 403
    assert error.code == "no_integration_in_scope"
    assert error.type == "permission_error"
    assert "openai/gpt-4.1-mini" in error.message
    assert "'openai'" in error.message


@pytest.mark.parametrize(
    "model",
    [
        "gpt-9-imaginary",
        "openai/gpt-9-imaginary",
        "nosuchprovider/gpt-4.1-mini",
        "unknown-slug/gpt-4.1-mini",
        "",
    ],
)
def test_unknown_model_strings_are_404_saying_how_to_address_a_model(model: str) -> None:
    state = state_with(integration("openai-prod-chat"))

    error = as_error(resolve(state, model))

    assert error.http_status == 404
    assert error.code == "model_not_found"
    assert error.type == "not_found_error"
    assert error.param == "model"
    assert "'<provider-slug>/<model>'" in error.message and "'<provider>/<model>'" in error.message
    assert "GET /v1/models" in error.message  # where the key's routable model strings are listed


def test_a_bare_catalog_model_id_routes_through_every_in_scope_integration_serving_it() -> None:
    # IDE plugins and third-party tools send `gpt-4.1-mini`, not `openai/gpt-4.1-mini`.
    state = state_with(
        integration("openai-zz", scope=[PROJECT_A], enabled=["gpt-4.1-mini"]),
        integration("openai-aa", scope=[PROJECT_A], enabled=["gpt-4.1-mini"]),
        integration("openai-other-project", scope=[PROJECT_B], enabled=["gpt-4.1-mini"]),
        integration("openai-not-enabled", scope=[PROJECT_A], enabled=["gpt-4o"]),
    )

    targets = as_targets(resolve(state, "gpt-4.1-mini"))

    assert [t.provider_slug for t in targets] == ["openai-aa", "openai-zz"]  # the documented slug order
    assert {t.model for t in targets} == {"gpt-4.1-mini"}


def test_a_model_id_with_a_slash_of_its_own_routes_to_the_provider_that_has_it() -> None:
    # Groq names a model `openai/gpt-oss-120b`: not OpenAI's model, Groq's.
    state = state_with(integration("groq-x", provider="groq"), integration("openai-prod-chat"))

    targets = as_targets(resolve(state, "openai/gpt-oss-120b"))

    assert [(t.provider_slug, t.model) for t in targets] == [("groq-x", "openai/gpt-oss-120b")]


def test_a_bare_catalog_model_id_nobody_in_scope_serves_is_403_naming_the_provider() -> None:
    state = state_with(integration("openai-b-only", scope=[PROJECT_B]))

    error = as_error(resolve(state, "gpt-4.1-mini", project=PROJECT_A))

    assert error.http_status == 403 and error.code == "no_integration_in_scope"
    assert "'openai'" in error.message


# --- `x-keyrail-provider` pinned slug ------------------------------------------------------------


@pytest.mark.parametrize("model", ["gpt-4.1-mini", "openai-prod-chat/gpt-4.1-mini"])
def test_x_keyrail_provider_pins_the_slug_with_or_without_the_slug_prefix(model: str) -> None:
    state = state_with(integration("openai-prod-chat"), integration("openai-other"))

    [target] = as_targets(resolve(state, model, pinned="openai-prod-chat"))

    assert target.provider_slug == "openai-prod-chat"
    assert target.model == "gpt-4.1-mini"
    assert target.catalog_id == "openai/gpt-4.1-mini"


def test_x_keyrail_provider_with_an_unknown_slug_is_404_naming_the_header() -> None:
    state = state_with(integration("openai-prod-chat"))

    error = as_error(resolve(state, "gpt-4.1-mini", pinned="openai-nope"))

    assert error.http_status == 404
    assert error.code == "provider_not_found"
    assert error.param == "x-keyrail-provider"
    assert "openai-nope" in error.message


def test_x_keyrail_provider_still_enforces_scope_and_enabled_models() -> None:
    state = state_with(
        integration("openai-b-only", scope=[PROJECT_B]),
        integration("openai-4o-only", enabled=["gpt-4o"]),
    )

    out_of_scope = as_error(resolve(state, "gpt-4.1-mini", pinned="openai-b-only"))
    not_enabled = as_error(resolve(state, "gpt-4.1-mini", pinned="openai-4o-only"))
    not_in_catalog = as_error(resolve(state, "my-finetune", pinned="openai-4o-only"))

    assert (out_of_scope.http_status, out_of_scope.code) == (403, "integration_out_of_scope")
    assert (not_enabled.http_status, not_enabled.code) == (403, "model_not_enabled")
    assert (not_in_catalog.http_status, not_in_catalog.code) == (404, "model_not_found")


def test_pinned_slug_header_accepts_provider_prefixed_model_regression() -> None:
    """Regression: `x-keyrail-provider: <slug>` with model `openai/gpt-4o-mini` used to be a 404."""
    state = state_with(integration("openai-prod"))
    targets = as_targets(resolve(state, "openai/gpt-4o-mini", pinned="openai-prod"))
    assert [(t.provider_slug, t.model) for t in targets] == [("openai-prod", "gpt-4o-mini")]


# --- adapters and base URLs from the registry -----------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "model", "adapter"),
    [
        ("openai", "gpt-4o-mini", "openai"),
        ("groq", "llama-3.3-70b-versatile", "openai"),  # OpenAI-compatible: the openai pool
        ("groq", "openai/gpt-oss-120b", "openai"),  # a model id with a slash of its own
        ("anthropic", "claude-sonnet-4-6", "anthropic"),
        ("gemini", "gemini-2.5-flash", "gemini"),
    ],
)
def test_targets_take_adapter_and_default_base_url_from_the_registry(
    provider: str, model: str, adapter: str
) -> None:
    state = state_with(integration(f"{provider}-prod", provider=provider))
    entry = REGISTRY.get(provider)
    assert entry is not None

    [pinned] = as_targets(resolve(state, f"{provider}-prod/{model}"))
    [by_catalog] = as_targets(resolve(state, f"{provider}/{model}"))

    assert pinned == by_catalog
    assert (pinned.adapter, pinned.model, pinned.catalog_id) == (adapter, model, f"{provider}/{model}")
    assert pinned.base_url == entry.base_url and pinned.base_url.startswith("https://")


def test_a_registry_override_moves_the_default_base_url(tmp_path: Path) -> None:
    path = tmp_path / "override.json"
    path.write_text('{"groq": {"base_url": "https://egress.internal/groq/v1"}}')
    resolver = Resolver(load_registry(str(path)))
    state = state_with(integration("groq-prod", provider="groq"))

    [target] = as_targets(resolve_targets(resolver, state, PROJECT_A, "groq-prod/llama-3.1-8b-instant"))

    assert target.base_url == "https://egress.internal/groq/v1"


def test_a_custom_host_wins_over_the_registry_base_url() -> None:
    state = state_with(
        integration("groq-proxy", provider="groq", custom_host="https://groq-proxy.example/v1")
    )

    [target] = as_targets(resolve(state, "groq-proxy/llama-3.1-8b-instant"))

    assert target.base_url == "https://groq-proxy.example/v1"
    assert target.adapter == "openai"


# --- unavailable: targets this version cannot attempt -----------------------------------------------


def target_of(provider: str, model: str, **extra: Any) -> Target:
    [target] = as_targets(
        resolve(state_with(integration(f"{provider}-x", provider=provider, **extra)), f"{provider}-x/{model}")
    )
    return target


def test_an_available_adapter_and_an_offered_operation_can_be_attempted() -> None:
    assert unavailable(RESOLVER, target_of("openai", "gpt-4o-mini"), Operation.CHAT) is None
    assert unavailable(RESOLVER, target_of("groq", "llama-3.1-8b-instant"), Operation.CHAT) is None
    assert unavailable(RESOLVER, target_of("gemini", "gemini-2.5-flash"), Operation.CHAT) is None


@pytest.mark.parametrize(("provider", "model"), [("anthropic", "claude-sonnet-4-6")])
def test_an_adapter_this_version_lacks_is_unsupported_and_falls_back(provider: str, model: str) -> None:
    target = target_of(provider, model)

    error = unavailable(Resolver(registry_lacking(target.adapter)), target, Operation.CHAT)

    assert error is not None
    assert error.error_class is FailureClass.UNSUPPORTED
    assert error.code == "provider_adapter_unavailable"
    assert f"'{provider}-x'" in error.message and f"'{target.adapter}'" in error.message
    assert may_fall_back(error) and may_fall_back(error, [429])  # the next target may still serve it


def test_a_custom_host_in_a_format_this_version_lacks_is_unsupported() -> None:
    target = target_of(
        "openai", "gpt-4o-mini", custom_host="https://claude-proxy.example", api_format="anthropic"
    )

    error = unavailable(Resolver(registry_lacking("anthropic")), target, Operation.CHAT)

    assert error is not None and error.code == "provider_adapter_unavailable"


def test_an_operation_the_provider_does_not_offer_is_unsupported_naming_it() -> None:
    state = state_with(integration("groq-x", provider="groq"))

    error = as_error(
        resolve_targets(RESOLVER, state, PROJECT_A, "groq-x/llama-3.1-8b-instant", "", Operation.EMBEDDINGS)
    )

    assert error.error_class is FailureClass.UNSUPPORTED and error.http_status == 400
    assert error.code == "operation_not_supported"
    assert "'groq-x'" in error.message and "Groq" in error.message and "embeddings" in error.message


@pytest.mark.parametrize("provider", ["fal", "pollo"])
@pytest.mark.parametrize("form", ["slug", "provider"])
def test_media_providers_are_not_chat_providers(provider: str, form: str) -> None:
    # Media providers have no catalog models: the answer must still say what they are, not "404".
    state = state_with(integration(f"{provider}-x", provider=provider))
    model = f"{provider}-x/flux-dev" if form == "slug" else f"{provider}/flux-dev"

    error = as_error(resolve(state, model))

    assert error.http_status == 400 and error.code == "operation_not_supported"
    assert "a media-generation provider, not a chat provider" in error.message
    assert "does not offer chat" in error.message
