"""Exact cost of an attempt: decimal USD from a price list and the upstream's token usage.

Prices are USD per one million tokens, held as floats on the bus (`Prices`); each is read back as
the decimal its shortest text spells (`repr(2.5e-07)` is the `2.5e-07` the catalog JSON wrote), so
the sum of a month of rows is exact, not the float sum of a month of rounding errors.

Token kinds, in `Usage`'s semantics (`prompt_tokens` counts every input token, cache reads and
writes included; `reasoning_tokens` is part of `completion_tokens`):
- cached reads at `cached_input` (or `additional["cached_input"]`), else at the input price:
  a model without a cache price bills cache hits as ordinary input;
- cache writes at `cache_write` (or `additional["cache_write"]`), else at the input price;
- reasoning at `additional["reasoning"]` when the model prices it apart, else as output;
- the rest of the input at `input`, the rest of the output at `output`.
A kind with tokens whose price is unknown (None) makes the whole attempt unpriced (None, never
$0); a price of 0 is a real 0. Kinds `additional` names that `Usage` does not count cost nothing,
since no upstream reports tokens of them.

The flex tier's discount belongs here too, as a factor on the sum, once a target says which tier
it was sent to (the `:flex` model suffix, §3 of the SPEC); no target says so yet.
"""

from __future__ import annotations

import enum
from decimal import Decimal

from keyrail_common.messages import Prices, Usage

_PER_TOKEN = Decimal(1_000_000)


class CostStatus(enum.StrEnum):
    PRICED = "priced"  # cost_usd is exact
    UNPRICED = "unpriced"  # a needed price, or the usage, is unknown: cost_usd is NULL


def price_decimal(price: float) -> Decimal:
    """The decimal a price was written as (the shortest text that reads back as this float)."""
    return Decimal(repr(price))


def _per_million(tokens: int, price: float | None) -> Decimal | None:
    if tokens <= 0:
        return Decimal(0)
    if price is None:
        return None
    return tokens * price_decimal(price)


def attempt_cost(prices: Prices, usage: Usage) -> Decimal | None:
    """USD the upstream billed for this usage, or None when some token's price is unknown."""
    cached_price = (
        prices.cached_input if prices.cached_input is not None else prices.additional.get("cached_input")
    )
    write_price = (
        prices.cache_write if prices.cache_write is not None else prices.additional.get("cache_write")
    )
    reasoning_price = prices.additional.get("reasoning")
    cached = max(usage.cached_tokens, 0)
    writes = max(usage.cache_write_tokens, 0)
    reasoning = max(usage.reasoning_tokens, 0) if reasoning_price is not None else 0
    parts = (
        _per_million(max(usage.prompt_tokens - cached - writes, 0), prices.input),
        _per_million(cached, cached_price if cached_price is not None else prices.input),
        _per_million(writes, write_price if write_price is not None else prices.input),
        _per_million(max(usage.completion_tokens - reasoning, 0), prices.output),
        _per_million(reasoning, reasoning_price),
    )
    total = Decimal(0)
    for part in parts:
        if part is None:
            return None
        total += part
    return total / _PER_TOKEN


def total_cost(costs: list[Decimal | None]) -> Decimal | None:
    """A request's cost: the sum of its billed attempts' costs; unknown if any of them is."""
    total = Decimal(0)
    for cost in costs:
        if cost is None:
            return None
        total += cost
    return total


def cost_status(cost: Decimal | None) -> CostStatus:
    return CostStatus.UNPRICED if cost is None else CostStatus.PRICED
