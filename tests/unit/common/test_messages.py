"""Cost accounting: `Prices.cost_usd` over token usage (USD per one million tokens)."""

from __future__ import annotations

import pytest

from keyrail_common.catalog import Catalog
from keyrail_common.messages import Prices, Usage

GPT_41 = Prices(input=2.0, output=8.0, cached_input=0.5)


def test_cached_tokens_are_priced_at_the_cached_rate_and_the_rest_at_the_input_rate() -> None:
    usage = Usage(prompt_tokens=1_000_000, cached_tokens=400_000, completion_tokens=100_000)

    # 600k uncached x $2 + 400k cached x $0.5 + 100k output x $8, per million.
    assert GPT_41.cost_usd(usage) == pytest.approx(1.2 + 0.2 + 0.8)


def test_without_cached_tokens_every_prompt_token_is_input() -> None:
    usage = Usage(prompt_tokens=1_500, completion_tokens=500)

    assert GPT_41.cost_usd(usage) == pytest.approx((1_500 * 2.0 + 500 * 8.0) / 1_000_000)


def test_fully_cached_prompt_costs_only_the_cached_rate() -> None:
    usage = Usage(prompt_tokens=10_000, cached_tokens=10_000)

    assert GPT_41.cost_usd(usage) == pytest.approx(10_000 * 0.5 / 1_000_000)


def test_reasoning_tokens_are_part_of_completion_tokens_and_not_billed_twice() -> None:
    with_reasoning = Usage(prompt_tokens=100, completion_tokens=1_000, reasoning_tokens=800)
    without = Usage(prompt_tokens=100, completion_tokens=1_000)

    assert GPT_41.cost_usd(with_reasoning) == GPT_41.cost_usd(without)


def test_cached_count_above_prompt_count_never_gives_negative_input_cost() -> None:
    usage = Usage(prompt_tokens=100, cached_tokens=150)

    assert GPT_41.cost_usd(usage) == pytest.approx(150 * 0.5 / 1_000_000)
    assert GPT_41.cost_usd(usage) >= 0


def test_zero_usage_and_zero_prices_cost_nothing() -> None:
    assert GPT_41.cost_usd(Usage()) == 0.0
    assert Prices().cost_usd(Usage(prompt_tokens=10**6, completion_tokens=10**6, cached_tokens=10)) == 0.0


def test_cost_of_the_openai_chat_fixture_at_catalog_prices() -> None:
    entry = Catalog.load_default().get("openai", "gpt-4.1-mini")
    assert entry is not None

    # Usage of fixtures/openai/chat_response.json.
    cost = entry.prices.cost_usd(Usage(prompt_tokens=96, completion_tokens=19))

    assert cost == pytest.approx((96 * 0.4 + 19 * 1.6) / 1_000_000)


def test_catalog_prices_map_the_per_mtok_columns() -> None:
    entry = Catalog.load_default().get("openai", "gpt-4o")
    assert entry is not None

    assert entry.prices == Prices(
        input=entry.input_price_per_mtok,
        output=entry.output_price_per_mtok,
        cached_input=entry.cached_input_price_per_mtok,
        version="catalog:2026-11-17",  # a shipped entry's price is named by the seed's source date
    )
