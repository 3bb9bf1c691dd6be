"""The shipped catalog as seeded from the provider reference (§11): every chat provider of the
registry has models, prices the reference lists are kept, and the ones it does not are unpriced."""

from __future__ import annotations

import msgspec
import pytest

from keyrail_common.catalog import Catalog
from keyrail_common.messages import Prices
from keyrail_common.registry import Operation, load_registry

CATALOG = Catalog.load_default()
REGISTRY = load_registry()
# Every provider that answers chat and has a worker, except Vertex (its own adapter, not built here).
CHAT_PROVIDERS = sorted(
    e.name
    for e in REGISTRY.entries()
    if Operation.CHAT in e.operations and REGISTRY.is_available(e.adapter) and e.name != "vertex"
)


def test_the_openai_compatible_family_is_among_the_chat_providers() -> None:
    family = {e.name for e in REGISTRY.entries() if e.adapter == "openai"}
    assert len(family) == 11 and family <= set(CHAT_PROVIDERS)


@pytest.mark.parametrize("provider", CHAT_PROVIDERS)
def test_every_chat_provider_has_catalog_chat_models(provider: str) -> None:
    models = [m for m in CATALOG.models_of(provider) if m.operation is Operation.CHAT]
    assert models, f"{provider} has no chat model in catalog.json"
    assert all(m.id == f"{provider}/{m.model}" for m in models)


@pytest.mark.parametrize(
    ("provider", "model", "prices"),
    [
        ("fireworks", "accounts/fireworks/models/kimi-k3", Prices(input=3.0, output=15.0, cached_input=0.3)),
        ("xai", "grok-4.20-0309-reasoning", Prices(input=1.25, output=2.5, cached_input=0.2)),
        (
            "perplexity",
            "sonar-pro",
            Prices(input=3.0, output=15.0, cached_input=3.0),
        ),  # no cached rate: input's
        ("moonshot", "kimi-k2.7-code", Prices(input=0.95, output=4.0, cached_input=0.19)),
        ("nebius", "deepseek-ai/DeepSeek-R1-0528-fast", Prices(input=2.0, output=6.0, cached_input=2.0)),
    ],
)
def test_listed_prices_are_the_references(provider: str, model: str, prices: Prices) -> None:
    entry = CATALOG.get(provider, model)
    assert entry is not None and entry.prices == msgspec.structs.replace(prices, version="catalog:2026-11-17")


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("baseten", "openai/gpt-oss-120b"),
        ("minimax", "MiniMax-M2.7-highspeed"),
        ("fireworks", "accounts/fireworks/models/kimi-k2p6"),
        ("azure", "gpt-4o"),  # the reference collected no Azure prices
        ("vertex", "text-embedding-005"),  # nor Vertex's ("Vertex AI prices Gemini separately")
    ],
)
def test_a_model_the_reference_names_without_a_price_is_unpriced_not_free(provider: str, model: str) -> None:
    entry = CATALOG.get(provider, model)
    assert entry is not None
    assert entry.prices == Prices(input=None, output=None, cached_input=None, version="catalog:2026-11-17")
    assert entry.context_window is None or entry.context_window > 0


def test_vertex_serves_googles_embedding_models_in_its_own_schema() -> None:
    models = {m.model: m for m in CATALOG.models_of("vertex") if m.operation is Operation.EMBEDDINGS}
    assert set(models) == {"text-embedding-005", "text-multilingual-embedding-002", "gemini-embedding-001"}
    # `vertex`, not `gemini`: `:predict` is Vertex's API, which no Gemini integration could serve.
    assert {m.schema for m in models.values()} == {"vertex"}
