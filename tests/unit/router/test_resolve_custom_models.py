"""Routing to custom models and with owners' catalog entries: `<slug>/<model_slug>` (and the
`x-keyrail-provider` pin), the base model's schema, the custom host, and the prices the target
carries."""

from __future__ import annotations

import msgspec
import pytest

from keyrail_common.config_events import CatalogEntrySet, CatalogPrices, CustomModelRegistered
from keyrail_common.config_state import EventMeta
from keyrail_common.messages import Prices
from keyrail_common.registry import Operation
from keyrail_router.resolve import resolve_targets
from tests.unit.router.test_resolve import (
    PROJECT_A,
    PROJECT_B,
    RESOLVER,
    SEED_PRICES,
    as_error,
    as_targets,
    integration,
    resolve,
    state_with,
)


def custom(
    slug: str = "openai-prod", model_slug: str = "ft-classifier-v3", **extra: object
) -> CustomModelRegistered:
    fields: dict[str, object] = {
        "provider_slug": slug,
        "model_slug": model_slug,
        "base_model": "openai/gpt-4o-mini",
        "input_price_per_mtok": 0.3,
        "output_price_per_mtok": 1.2,
        "additional_token_pricing": {"reasoning": 12.0},
        **extra,
    }
    return msgspec.convert(fields, CustomModelRegistered)


def test_slug_and_model_slug_route_to_the_custom_model_with_its_own_prices() -> None:
    state = state_with(integration("openai-prod", enabled="none"))
    state.apply(custom(), EventMeta(seq=40))

    (target,) = as_targets(resolve(state, "openai-prod/ft-classifier-v3"))

    assert target.model == "ft-classifier-v3"  # what the upstream is sent
    assert target.catalog_id == "openai/gpt-4o-mini"  # the schema it speaks
    assert (target.adapter, target.base_url) == ("openai", "https://api.openai.com/v1")
    assert target.provider_slug == "openai-prod" and target.credential_ref.endswith("/openai-prod")
    # Its own prices, never the base model's (0.15 / 0.6), and unpriced cached input falls to Prices.
    assert target.prices == Prices(
        input=0.3,
        output=1.2,
        additional={"reasoning": 12.0},
        version="custom:openai-prod/ft-classifier-v3@40",
    )


def test_the_pin_header_with_the_model_slug_routes_to_it_too() -> None:
    state = state_with(integration("openai-prod"))
    state.apply(custom(), EventMeta(seq=7))

    for model in ("ft-classifier-v3", "openai-prod/ft-classifier-v3"):
        (target,) = as_targets(resolve(state, model, pinned="openai-prod"))
        assert target.model == "ft-classifier-v3" and target.prices.version.endswith("@7")


def test_a_custom_host_gets_the_request_in_the_base_models_schema() -> None:
    state = state_with(integration("openai-prod"))
    state.apply(
        custom(base_model="anthropic/claude-sonnet-4-6", custom_host="https://claude-proxy.example.com/v1")
    )

    (target,) = as_targets(resolve(state, "openai-prod/ft-classifier-v3"))

    assert (target.adapter, target.base_url) == ("anthropic", "https://claude-proxy.example.com/v1")
    assert target.catalog_id == "anthropic/claude-sonnet-4-6"


def test_without_its_own_host_it_goes_to_the_integrations_custom_host_in_its_format() -> None:
    gateway = integration(
        "openai-gw", custom_host="http://127.0.0.1:9900/v1", api_format="openai", allow_http=True
    )
    state = state_with(gateway)
    state.apply(custom("openai-gw"))

    (target,) = as_targets(resolve(state, "openai-gw/ft-classifier-v3"))

    assert (target.adapter, target.base_url) == ("openai", "http://127.0.0.1:9900/v1")


def test_a_custom_model_is_scoped_like_its_integration() -> None:
    state = state_with(integration("openai-prod", scope=["proj_a"]))
    state.apply(custom())

    error = as_error(resolve(state, "openai-prod/ft-classifier-v3", project=PROJECT_B))

    assert error.http_status == 403 and error.code == "integration_out_of_scope"


def test_an_embeddings_base_model_makes_a_chat_request_a_wrong_endpoint() -> None:
    state = state_with(integration("openai-prod"))
    state.apply(custom(base_model="openai/text-embedding-3-small"))

    error = as_error(resolve(state, "openai-prod/ft-classifier-v3"))
    assert error.code == "wrong_endpoint_for_model" and "POST /v1/embeddings" in error.message
    (target,) = as_targets(
        resolve_targets(RESOLVER, state, PROJECT_A, "openai-prod/ft-classifier-v3", "", Operation.EMBEDDINGS)
    )
    assert target.model == "ft-classifier-v3"


def test_a_custom_model_of_another_integration_is_not_found_here() -> None:
    state = state_with(integration("openai-prod"), integration("openai-other"))
    state.apply(custom("openai-other"))

    error = as_error(resolve(state, "openai-prod/ft-classifier-v3"))

    assert error.http_status == 404 and error.code == "model_not_found"
    assert "POST /admin/v1/integrations/openai-prod/custom-models" in error.message


@pytest.mark.parametrize("model", ["openai/gpt-4o-mini", "openai-prod/gpt-4o-mini", "gpt-4o-mini"])
def test_an_owners_catalog_override_is_the_price_of_the_next_request(model: str) -> None:
    state = state_with(integration("openai-prod"))
    (before,) = as_targets(resolve(state, model))
    assert before.prices == Prices(input=0.15, output=0.6, cached_input=0.075, version=SEED_PRICES)

    override = CatalogEntrySet(
        catalog_id="openai/gpt-4o-mini",
        provider="openai",
        model="gpt-4o-mini",
        schema="openai",
        context_window=128000,
        prices=CatalogPrices(input=0.2, output=0.8, cached_input=0.1),
    )
    state.apply(override, EventMeta(seq=91, aggregate_key="catalog.openai/gpt-4o-mini"))

    (after,) = as_targets(resolve(state, model))
    assert after.prices == Prices(input=0.2, output=0.8, cached_input=0.1, version="catalog@91")


def test_an_owner_added_catalog_model_is_routable_through_an_integration_enabling_all() -> None:
    state = state_with(integration("openai-prod"))
    added = CatalogEntrySet(
        catalog_id="openai/gpt-owner-1",
        provider="openai",
        model="gpt-owner-1",
        schema="openai",
        context_window=32000,
        prices=CatalogPrices(input=1.0, output=2.0),
    )
    state.apply(added, EventMeta(seq=5))

    (target,) = as_targets(resolve(state, "openai/gpt-owner-1"))

    assert (target.model, target.provider_slug, target.prices.version) == (
        "gpt-owner-1",
        "openai-prod",
        "catalog@5",
    )


def test_an_unknown_model_says_how_to_register_one_outside_the_catalog() -> None:
    error = as_error(resolve(state_with(integration("openai-prod")), "my-finetune-v2"))

    assert error.http_status == 404 and error.code == "model_not_found"
    assert "POST /admin/v1/integrations/{slug}/custom-models" in error.message
