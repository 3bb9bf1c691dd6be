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

A service tier's discount is `Prices.factor` on the sum: the router sets it (and names it in the
price version, `…+flex`) on a target sent to the flex tier (the `:flex` model suffix).
"""

from __future__ import annotations

import enum
import functools
from decimal import Decimal

from keyrail_common.messages import Prices, Usage

_PER_TOKEN = Decimal(1_000_000)
_NOTHING = Decimal(0)


class CostStatus(enum.StrEnum):
    PRICED = "priced"  # cost_usd is exact
    UNPRICED = "unpriced"  # a needed price, or the usage, is unknown: cost_usd is NULL


@functools.lru_cache(maxsize=4096)
def price_decimal(price: float) -> Decimal:
    """The decimal a price was written as (the shortest text that reads back as this float).
    Cached: a deployment has a few hundred distinct prices, and every attempt reads several."""
    return Decimal(repr(price))


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
        (max(usage.prompt_tokens - cached - writes, 0), prices.input),
        (cached, cached_price if cached_price is not None else prices.input),
        (writes, write_price if write_price is not None else prices.input),
        (max(usage.completion_tokens - reasoning, 0), prices.output),
        (reasoning, reasoning_price),
    )
    total = _NOTHING
    for tokens, price in parts:
        if tokens > 0:  # a kind without tokens costs nothing, priced or not
            if price is None:
                return None
            total += tokens * price_decimal(price)
    if prices.factor != 1.0:
        total *= price_decimal(prices.factor)
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
