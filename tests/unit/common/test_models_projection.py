"""The catalog and custom models in `ConfigState.apply`: the shipped seed, owners' entries and
overrides, custom models with their own prices, and the same state from the same events."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from keyrail_common.catalog import Catalog, seed_models
from keyrail_common.config_events import (
    CatalogEntryRemoved,
    CatalogEntrySet,
    CatalogPrices,
    ConfigEnvelope,
    ConfigEvent,
    CustomModelRegistered,
    CustomModelRemoved,
    CustomModelUpdated,
    aggregate_of,
    decode_envelope,
    encode_envelope,
)
from keyrail_common.config_state import ConfigState, EventMeta
from keyrail_common.cost import attempt_cost
from keyrail_common.messages import Prices, Usage
from keyrail_common.registry import Operation


def state_of(*events: ConfigEvent) -> ConfigState:
    state = ConfigState()
    for seq, event in enumerate(events, start=1):
        key = "{}.{}".format(*aggregate_of(event))
        state.apply(event, EventMeta(seq=seq, aggregate_key=key, actor="user_owner", ts=float(seq)))
    return state


def entry_set(catalog_id: str, input_price: float | None = 1.0, **extra: object) -> CatalogEntrySet:
    provider, _, model = catalog_id.partition("/")
    return CatalogEntrySet(
        catalog_id=catalog_id,
        provider=provider,
        model=model,
        schema="openai",
        context_window=64000,
        prices=CatalogPrices(input=input_price, output=4.0, additional={"reasoning": 12.0}),
        source_date="2026-12-01",
        **extra,  # type: ignore[arg-type]
    )


def custom(model_slug: str = "ft-v3", **extra: object) -> CustomModelRegistered:
    fields: dict[str, object] = {
        "provider_slug": "openai-prod",
        "model_slug": model_slug,
        "base_model": "openai/gpt-4o-mini",
        "input_price_per_mtok": 0.3,
        "output_price_per_mtok": 1.2,
        "additional_token_pricing": {"cached_input": 0.15, "reasoning": 12.0},
        **extra,
    }
    return msgspec.convert(fields, CustomModelRegistered)


def test_a_new_state_holds_the_shipped_catalog_with_its_source_date_as_price_version() -> None:
    state = ConfigState()
    shipped = seed_models()
    assert state.catalog.all() == list(shipped)
    entry = state.catalog.get("openai", "gpt-4o-mini")
    assert entry is not None and entry.source_date == "2026-11-17"
    assert entry.prices == Prices(input=0.15, output=0.6, cached_input=0.075, version="catalog:2026-11-17")
    assert not state.catalog.overridden(entry.id)


def test_an_owner_entry_is_added_overrides_a_shipped_one_and_removing_it_restores_the_seed() -> None:
    added = entry_set("openai/gpt-owner-1")
    override = entry_set("openai/gpt-4o-mini", input_price=0.12)
    state = state_of(added, override)

    new = state.catalog.get("openai", "gpt-owner-1")
    assert new is not None and state.catalog.overridden(new.id) and state.catalog.seeded(new.id) is None
    assert new.prices == Prices(input=1.0, output=4.0, additional={"reasoning": 12.0}, version="catalog@1")
    assert state.catalog.all()[-1] == new  # appended after the shipped entries
    overridden = state.catalog.get("openai", "gpt-4o-mini")
    assert (
        overridden is not None
        and overridden.prices.input == 0.12
        and overridden.prices.version == "catalog@2"
    )
    assert overridden.context_window == 64000 and overridden.source_date == "2026-12-01"
    assert [m.id for m in state.catalog.models_of("openai")].count("openai/gpt-4o-mini") == 1
    assert state.version("catalog", "openai/gpt-4o-mini") == 2

    state.apply(CatalogEntryRemoved(catalog_id="openai/gpt-4o-mini"), EventMeta(seq=3))
    state.apply(CatalogEntryRemoved(catalog_id="openai/gpt-owner-1"), EventMeta(seq=4))
    assert state.catalog.get("openai", "gpt-4o-mini") == Catalog.load_default().get("openai", "gpt-4o-mini")
    assert state.catalog.get("openai", "gpt-owner-1") is None
    assert state.catalog.all() == list(seed_models())


def test_an_unpriced_owner_entry_stays_unpriced_not_zero() -> None:
    state = state_of(entry_set("groq/llama-owner", input_price=None, operation=Operation.EMBEDDINGS))
    entry = state.catalog.get("groq", "llama-owner")
    assert entry is not None and entry.prices.input is None and entry.operation is Operation.EMBEDDINGS


def test_one_state_catalog_change_does_not_leak_into_another_state() -> None:
    changed = state_of(entry_set("openai/gpt-4o-mini", input_price=9.0))
    fresh = ConfigState()
    entry = fresh.catalog.get("openai", "gpt-4o-mini")
    assert entry is not None and entry.input_price_per_mtok == 0.15
    assert changed.catalog.get("openai", "gpt-4o-mini") != entry


def test_a_custom_model_carries_its_own_prices_named_by_its_event() -> None:
    state = state_of(custom())
    record = state.custom_models.get("openai-prod", "ft-v3")
    assert record is not None
    assert record.base_model == "openai/gpt-4o-mini" and record.created_by == "user_owner"
    # cached_input is Prices' own field; the other kinds stay additional.
    assert record.prices == Prices(
        input=0.3,
        output=1.2,
        cached_input=0.15,
        additional={"reasoning": 12.0},
        version="custom:openai-prod/ft-v3@1",
    )
    cost = attempt_cost(record.prices, Usage(prompt_tokens=1000, completion_tokens=500, cached_tokens=200))
    assert cost == (800 * Decimal("0.3") + 200 * Decimal("0.15") + 500 * Decimal("1.2")) / 1_000_000
    assert state.version("custommodel", "openai-prod/ft-v3") == 1


def test_a_custom_model_with_a_price_of_zero_is_free_and_without_prices_is_unpriced() -> None:
    state = state_of(
        custom("free", input_price_per_mtok=0.0, output_price_per_mtok=0.0, additional_token_pricing={}),
        custom(
            "unpriced", input_price_per_mtok=None, output_price_per_mtok=None, additional_token_pricing={}
        ),
    )
    free, unpriced = state.custom_models.of("openai-prod")
    assert (free.model_slug, free.prices.input, free.prices.output) == ("free", 0.0, 0.0)
    assert (unpriced.model_slug, unpriced.prices.input, unpriced.prices.output) == ("unpriced", None, None)


def test_a_custom_model_update_replaces_its_fields_and_keeps_its_creation() -> None:
    registered = custom()
    updated = CustomModelUpdated(
        provider_slug="openai-prod",
        model_slug="ft-v3",
        base_model="openai/gpt-4.1-mini",
        custom_host="https://ft.example.com/v1",
        input_price_per_mtok=0.5,
        output_price_per_mtok=None,
    )
    state = state_of(registered, updated)
    record = state.custom_models.get("openai-prod", "ft-v3")
    assert record is not None and record.created_at == 1.0
    assert (record.base_model, record.custom_host) == ("openai/gpt-4.1-mini", "https://ft.example.com/v1")
    assert record.prices == Prices(input=0.5, version="custom:openai-prod/ft-v3@2")
    assert state.version("custommodel", "openai-prod/ft-v3") == 2


def test_a_removed_custom_model_is_gone_and_can_be_registered_again() -> None:
    state = state_of(custom(), CustomModelRemoved(provider_slug="openai-prod", model_slug="ft-v3"))
    assert state.custom_models.get("openai-prod", "ft-v3") is None and state.custom_models.all() == []
    assert state.version("custommodel", "openai-prod/ft-v3") == 2
    state.apply(
        custom(input_price_per_mtok=0.9), EventMeta(seq=3, aggregate_key="custommodel.openai-prod/ft-v3")
    )
    again = state.custom_models.get("openai-prod", "ft-v3")
    assert again is not None and again.prices.input == 0.9


def test_the_events_round_trip_and_replaying_them_gives_the_same_state() -> None:
    events: list[ConfigEvent] = [
        entry_set("openai/gpt-owner-1"),
        entry_set("openai/gpt-4o-mini", input_price=0.12),
        custom(),
        custom("other"),
        CustomModelRemoved(provider_slug="openai-prod", model_slug="other"),
        CatalogEntryRemoved(catalog_id="openai/gpt-owner-1"),
    ]
    decoded = [
        decode_envelope(encode_envelope(ConfigEnvelope(event=e, actor="user_owner", ts=1.0))).event
        for e in events
    ]
    assert decoded == events
    first, second = state_of(*events), state_of(*decoded)
    assert first.catalog.all() == second.catalog.all()
    assert first.custom_models.all() == second.custom_models.all()
    assert first.versions == second.versions


def test_catalog_and_custom_model_events_have_their_own_aggregates() -> None:
    assert aggregate_of(entry_set("groq/openai/gpt-oss-120b")) == ("catalog", "groq/openai/gpt-oss-120b")
    assert aggregate_of(custom()) == ("custommodel", "openai-prod/ft-v3")
    removed = CustomModelRemoved(provider_slug="openai-prod", model_slug="ft-v3")
    assert aggregate_of(removed) == ("custommodel", "openai-prod/ft-v3")
