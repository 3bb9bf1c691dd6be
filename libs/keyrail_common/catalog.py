"""The model catalog: routable `provider/model` ids, their schema family and list prices.

Shipped as `catalog.json` beside this module (seeded from the provider reference, §11).
"""

from __future__ import annotations

from importlib import resources

import msgspec

from keyrail_common.messages import Prices
from keyrail_common.registry import Operation

# A model string ending in this asks for the provider's flex tier (`flex_tier` models only).
FLEX_SUFFIX = ":flex"


class CatalogModel(msgspec.Struct, frozen=True):
    id: str
    provider: str
    model: str
    schema: str
    context_window: int
    input_price_per_mtok: float
    cached_input_price_per_mtok: float
    output_price_per_mtok: float
    operation: Operation = Operation.CHAT  # what the model answers: chat, or embeddings
    flex_tier: bool = False  # the provider offers a flex tier (OpenAI `service_tier: "flex"`)

    @property
    def prices(self) -> Prices:
        return Prices(
            input=self.input_price_per_mtok,
            output=self.output_price_per_mtok,
            cached_input=self.cached_input_price_per_mtok,
        )


class _CatalogFile(msgspec.Struct):
    source: str
    models: list[CatalogModel]


class Catalog:
    def __init__(self, models: list[CatalogModel]) -> None:
        self._by_id = {m.id: m for m in models}

    @classmethod
    def load_default(cls) -> Catalog:
        raw = resources.files("keyrail_common").joinpath("catalog.json").read_bytes()
        return cls(msgspec.json.decode(raw, type=_CatalogFile).models)

    def get(self, provider: str, model: str) -> CatalogModel | None:
        return self._by_id.get(f"{provider}/{model}")

    def with_model(self, model: str) -> list[CatalogModel]:
        """Every provider's entry for this model name (a bare model id)."""
        return [m for m in self._by_id.values() if m.model == model]

    def models_of(self, provider: str) -> list[CatalogModel]:
        return [m for m in self._by_id.values() if m.provider == provider]
