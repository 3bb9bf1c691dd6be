"""Exact costing (`keyrail_common.cost`): golden values per token kind, unpriced, real zeros, sums."""

from __future__ import annotations

import random
from decimal import Decimal

from keyrail_common.catalog import Catalog
from keyrail_common.cost import CostStatus, attempt_cost, cost_status, price_decimal, total_cost
from keyrail_common.messages import Prices, Usage

GPT_41 = Prices(input=2.0, output=8.0, cached_input=0.5, version="catalog")
# Anthropic-style: cache writes cost more than input, cache reads far less.
SONNET = Prices(input=3.0, output=15.0, cached_input=0.3, cache_write=3.75)


def test_cached_reads_at_the_cached_rate_and_the_rest_at_the_input_rate() -> None:
    usage = Usage(prompt_tokens=1_000_000, cached_tokens=400_000, completion_tokens=100_000)

    # 600k uncached x $2 + 400k cached x $0.5 + 100k output x $8, per million.
    assert attempt_cost(GPT_41, usage) == Decimal("2.2")


def test_cached_price_may_come_from_the_additional_token_pricing() -> None:
    prices = Prices(input=2.0, output=8.0, additional={"cached_input": 0.25})
    usage = Usage(prompt_tokens=1_000, cached_tokens=600, completion_tokens=10)

    assert attempt_cost(prices, usage) == Decimal("0.00103")  # (400x2 + 600x0.25 + 10x8) / 1e6


def test_without_a_cache_price_cache_hits_are_billed_as_input() -> None:
    prices = Prices(input=1.0, output=2.0)
    usage = Usage(prompt_tokens=1_000, cached_tokens=600, cache_write_tokens=100)

    assert attempt_cost(prices, usage) == Decimal("0.001")


def test_cache_writes_at_the_cache_write_rate() -> None:
    # Anthropic's usage normalised: 1,523 prompt tokens of which 12 read from and 1,000 written to
    # the cache: 511 x $3 + 12 x $0.3 + 1,000 x $3.75 + 24 x $15.
    usage = Usage(prompt_tokens=1_523, cached_tokens=12, cache_write_tokens=1_000, completion_tokens=24)

    assert attempt_cost(SONNET, usage) == Decimal("0.0056466")


def test_cache_write_price_may_come_from_the_additional_token_pricing() -> None:
    prices = Prices(input=3.0, output=15.0, additional={"cache_write": 6.0})
    usage = Usage(prompt_tokens=100, cache_write_tokens=100)

    assert attempt_cost(prices, usage) == Decimal("0.0006")


def test_reasoning_is_output_unless_priced_apart() -> None:
    usage = Usage(prompt_tokens=100, completion_tokens=1_000, reasoning_tokens=800)
    apart = Prices(input=2.0, output=8.0, additional={"reasoning": 12.0})

    assert attempt_cost(GPT_41, usage) == Decimal("0.0082")  # 100x2 + 1,000x8
    assert attempt_cost(apart, usage) == Decimal("0.0114")  # 100x2 + 200x8 + 800x12


def test_additional_kinds_usage_does_not_count_cost_nothing() -> None:
    prices = Prices(input=1.0, output=1.0, additional={"audio_input": 100.0})

    assert attempt_cost(prices, Usage(prompt_tokens=10, completion_tokens=10)) == Decimal("0.00002")


def test_an_unknown_price_with_tokens_is_unpriced_never_zero() -> None:
    usage = Usage(prompt_tokens=10, completion_tokens=5)

    assert attempt_cost(Prices(), usage) is None
    assert attempt_cost(Prices(input=1.0), usage) is None  # output unknown
    assert attempt_cost(Prices(input=1.0, output=2.0, additional={"cached_input": 0.5}), usage) is not None
    assert attempt_cost(Prices(output=1.0, cached_input=0.1), Usage(prompt_tokens=10, cached_tokens=10)) == (
        Decimal("0.000001")
    )
    assert cost_status(None) is CostStatus.UNPRICED


def test_an_unknown_price_of_a_kind_without_tokens_is_not_needed() -> None:
    assert attempt_cost(Prices(input=2.0), Usage(prompt_tokens=500)) == Decimal("0.001")


def test_a_price_of_zero_is_a_real_zero() -> None:
    cost = attempt_cost(Prices(input=0.0, output=0.0), Usage(prompt_tokens=10**6, completion_tokens=10**6))

    assert cost == Decimal(0) and cost is not None
    assert cost_status(cost) is CostStatus.PRICED


def test_cached_count_above_prompt_count_never_gives_negative_input_cost() -> None:
    assert attempt_cost(GPT_41, Usage(prompt_tokens=100, cached_tokens=150)) == Decimal("0.000075")


def test_prices_are_read_as_the_decimals_they_were_written_as() -> None:
    assert price_decimal(0.1) == Decimal("0.1")
    assert price_decimal(2.5e-07) == Decimal("2.5E-7")
    # 0.1 + 0.2 in floats is 0.30000000000000004; three tokens at 0.1 are exactly 0.3 here.
    assert attempt_cost(Prices(input=0.1), Usage(prompt_tokens=3)) == Decimal("3E-7")


def test_a_month_of_rows_sums_exactly() -> None:
    rng = random.Random(11)
    prices = Prices(input=0.15, output=0.6, cached_input=0.075)
    usages = [
        Usage(
            prompt_tokens=(p := rng.randint(1, 5_000)),
            cached_tokens=rng.randint(0, p),
            completion_tokens=rng.randint(1, 900),
        )
        for _ in range(50_000)
    ]
    costs = [attempt_cost(prices, u) for u in usages]

    # The same sum in integers (thousandths of a dollar per million tokens): no rounding at all.
    exact_units = sum(
        (u.prompt_tokens - u.cached_tokens) * 150 + u.cached_tokens * 75 + u.completion_tokens * 600
        for u in usages
    )
    assert total_cost(costs) == Decimal(exact_units) / Decimal(10**9)


def test_the_flex_tier_costs_half_of_every_token_kind() -> None:
    flex = Prices(input=0.25, output=2.0, cached_input=0.025, factor=0.5, version="catalog+flex")
    usage = Usage(prompt_tokens=1_000, cached_tokens=400, completion_tokens=300)

    # (600 x $0.25 + 400 x $0.025 + 300 x $2) / 1e6 = $0.00076 standard; half of it on flex.
    assert attempt_cost(flex, usage) == Decimal("0.00038")
    assert attempt_cost(Prices(input=0.25, output=None, factor=0.5), usage) is None  # still unpriced


def test_a_request_costs_the_sum_of_its_attempts_and_is_unpriced_if_one_is() -> None:
    assert total_cost([Decimal("0.1"), Decimal(0), Decimal("0.2")]) == Decimal("0.3")
    assert total_cost([Decimal("0.1"), None]) is None
    assert total_cost([]) == Decimal(0)


def test_cost_of_the_openai_chat_fixture_at_catalog_prices() -> None:
    entry = Catalog.load_default().get("openai", "gpt-4.1-mini")
    assert entry is not None

    # Usage of fixtures/openai/chat_response.json.
    cost = attempt_cost(entry.prices, Usage(prompt_tokens=96, completion_tokens=19))

    assert cost == (96 * Decimal("0.4") + 19 * Decimal("1.6")) / 1_000_000


def test_catalog_prices_map_the_per_mtok_columns() -> None:
    entry = Catalog.load_default().get("openai", "gpt-4o")
    assert entry is not None

    assert entry.prices == Prices(
        input=entry.input_price_per_mtok,
        output=entry.output_price_per_mtok,
        cached_input=entry.cached_input_price_per_mtok,
        version="catalog:2026-11-17",  # a shipped entry's price is named by the seed's source date
    )
