"""The model catalog: routable `provider/model` ids, their schema family and list prices.

The shipped `catalog.json` beside this module (seeded from the provider reference, §11) is the
seed; owners add or override entries with config events (CatalogEntrySet, CatalogEntryRemoved),
which every service's projection folds into its own `Catalog` (config_state.py), so the router,
the ingress and `GET /v1/models` all see the same catalog. A seeded entry can be overridden, and
removing the override brings the seeded one back; it cannot be removed itself (integrations list
it in enabled_models, custom models name it as their base model).
"""

from __future__ import annotations

import functools
from importlib import resources

import msgspec

from keyrail_common.config_events import CatalogEntryRemoved, CatalogEntrySet
from keyrail_common.messages import Prices
from keyrail_common.registry import Operation

# A model string ending in this asks for the provider's flex tier (`flex_tier` models only).
FLEX_SUFFIX = ":flex"
# OpenAI bills its flex tier at half the standard price ("Batch and Flex = 50% of Standard",
# contracts/providers/README.md §11); the price version of such a request ends in this.
FLEX_PRICE_FACTOR = 0.5
FLEX_PRICE_VERSION_SUFFIX = "+flex"


class CatalogModel(msgspec.Struct, frozen=True):
    id: str
    provider: str
    model: str
    schema: str  # the request/response schema family the model speaks (an adapter's wire format)
    # USD per 1M tokens; None (null in the file) is "no known price": unpriced, never $0.
    input_price_per_mtok: float | None = None
    cached_input_price_per_mtok: float | None = None
    output_price_per_mtok: float | None = None
    context_window: int | None = None  # None: the reference does not give it
    operation: Operation = Operation.CHAT  # what the model answers: chat, or embeddings
    flex_tier: bool = False  # the provider offers a flex tier (OpenAI `service_tier: "flex"`)
    cache_write_price_per_mtok: float | None = None
    additional_prices: dict[str, float] = {}  # further token kinds -> USD per 1M tokens
    source_date: str = ""  # when the price was taken from its source (the seed file's, by default)
    price_version: str = ""  # set for an owner's entry: `catalog@<event seq>`

    @property
    def prices(self) -> Prices:
        return Prices(
            input=self.input_price_per_mtok,
            output=self.output_price_per_mtok,
            cached_input=self.cached_input_price_per_mtok,
            cache_write=self.cache_write_price_per_mtok,
            additional=self.additional_prices,
            version=self.price_version or f"catalog:{self.source_date}",
        )


class _CatalogFile(msgspec.Struct):
    source: str
    models: list[CatalogModel]
    source_date: str = ""  # the date of the newest source the seed was taken from


@functools.cache
def seed_models() -> tuple[CatalogModel, ...]:
    """The shipped catalog, read once per process; each entry carries the file's source date
    unless it names its own."""
    raw = resources.files("keyrail_common").joinpath("catalog.json").read_bytes()
    parsed = msgspec.json.decode(raw, type=_CatalogFile)
    return tuple(
        m if m.source_date else msgspec.structs.replace(m, source_date=parsed.source_date)
        for m in parsed.models
    )


class Catalog:
    """The seed plus the owners' entries; `put` and `remove` are the projection's fold steps."""

    def __init__(self, models: tuple[CatalogModel, ...] | list[CatalogModel]) -> None:
        self._seed = {m.id: m for m in models}
        self._by_id = dict(self._seed)

    @classmethod
    def load_default(cls) -> Catalog:
        return cls(seed_models())

    def get(self, provider: str, model: str) -> CatalogModel | None:
        return self._by_id.get(f"{provider}/{model}")

    def by_id(self, catalog_id: str) -> CatalogModel | None:
        return self._by_id.get(catalog_id)

    def seeded(self, catalog_id: str) -> CatalogModel | None:
        """The shipped entry of this id, whether or not an owner overrides it."""
        return self._seed.get(catalog_id)

    def overridden(self, catalog_id: str) -> bool:
        """An owner's entry (added, or overriding the seed): what DELETE can remove."""
        entry = self._by_id.get(catalog_id)
        return entry is not None and entry is not self._seed.get(catalog_id)

    def all(self) -> list[CatalogModel]:
        return list(self._by_id.values())

    def with_model(self, model: str) -> list[CatalogModel]:
        """Every provider's entry for this model name (a bare model id)."""
        return [m for m in self._by_id.values() if m.model == model]

    def models_of(self, provider: str) -> list[CatalogModel]:
        return [m for m in self._by_id.values() if m.provider == provider]

    def apply(self, event: CatalogEntrySet | CatalogEntryRemoved, seq: int) -> None:
        """The projection's fold step. Removing an owner's entry brings a seeded one back."""
        match event:
            case CatalogEntrySet():
                self._by_id[event.catalog_id] = entry_of(event, seq)
            case CatalogEntryRemoved():
                seeded = self._seed.get(event.catalog_id)
                if seeded is not None:
                    self._by_id[event.catalog_id] = seeded
                else:
                    self._by_id.pop(event.catalog_id, None)


def entry_of(event: CatalogEntrySet, seq: int) -> CatalogModel:
    prices = event.prices
    return CatalogModel(
        id=event.catalog_id,
        provider=event.provider,
        model=event.model,
        schema=event.schema,
        context_window=event.context_window,
        input_price_per_mtok=prices.input,
        cached_input_price_per_mtok=prices.cached_input,
        output_price_per_mtok=prices.output,
        operation=event.operation,
        cache_write_price_per_mtok=prices.cache_write,
        additional_prices=dict(prices.additional),
        source_date=event.source_date,
        price_version=f"catalog@{seq}",
    )
