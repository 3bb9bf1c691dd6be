"""Custom models in the projection: what the router resolves `<slug>/<model_slug>` to.

A custom model's prices are its own, with a version naming the event that set them
(`custom:<slug>/<model_slug>@<seq>`), so an activity row can say what it was costed with. They
are built once when the event is applied, not per request.
"""

from __future__ import annotations

import msgspec

from keyrail_common.config_events import CustomModelRegistered, CustomModelRemoved, CustomModelUpdated
from keyrail_common.messages import Prices

_OWN_FIELDS = ("cached_input", "cache_write")


class CustomModelRecord(msgspec.Struct, frozen=True):
    provider_slug: str
    model_slug: str
    base_model: str  # a catalog id: the schema (and so the adapter) it speaks
    custom_host: str
    input_price_per_mtok: float | None
    output_price_per_mtok: float | None
    additional_token_pricing: dict[str, float]
    prices: Prices
    created_at: float
    created_by: str


def custom_prices(event: CustomModelRegistered, seq: int) -> Prices:
    """The model's own prices: `cached_input` and `cache_write` of the additional token pricing
    are Prices' own fields, every other kind stays in `additional`."""
    pricing = event.additional_token_pricing
    return Prices(
        input=event.input_price_per_mtok,
        output=event.output_price_per_mtok,
        cached_input=pricing.get("cached_input"),
        cache_write=pricing.get("cache_write"),
        additional={k: v for k, v in pricing.items() if k not in _OWN_FIELDS},
        version=f"custom:{event.custom_model_id}@{seq}",
    )


class CustomModels:
    """By provider slug, then model slug: the router's lookup is two dictionary accesses."""

    def __init__(self) -> None:
        self._by_slug: dict[str, dict[str, CustomModelRecord]] = {}

    def get(self, provider_slug: str, model_slug: str) -> CustomModelRecord | None:
        models = self._by_slug.get(provider_slug)
        return models.get(model_slug) if models is not None else None

    def of(self, provider_slug: str) -> list[CustomModelRecord]:
        """The integration's custom models, by model slug."""
        models = self._by_slug.get(provider_slug, {})
        return [models[m] for m in sorted(models)]

    def all(self) -> list[CustomModelRecord]:
        return [m for slug in sorted(self._by_slug) for m in self.of(slug)]

    def apply(
        self,
        event: CustomModelRegistered | CustomModelRemoved,
        seq: int,
        ts: float,
        actor: str,
    ) -> None:
        models = self._by_slug.setdefault(event.provider_slug, {})
        match event:
            case CustomModelRemoved():
                models.pop(event.model_slug, None)
            case CustomModelUpdated():
                current = models.get(event.model_slug)
                if current is not None:
                    models[event.model_slug] = self._record(
                        event, seq, current.created_at, current.created_by
                    )
            case CustomModelRegistered():
                models[event.model_slug] = self._record(event, seq, ts, actor)

    @staticmethod
    def _record(
        event: CustomModelRegistered, seq: int, created_at: float, created_by: str
    ) -> CustomModelRecord:
        return CustomModelRecord(
            provider_slug=event.provider_slug,
            model_slug=event.model_slug,
            base_model=event.base_model,
            custom_host=event.custom_host,
            input_price_per_mtok=event.input_price_per_mtok,
            output_price_per_mtok=event.output_price_per_mtok,
            additional_token_pricing=dict(event.additional_token_pricing),
            prices=custom_prices(event, seq),
            created_at=created_at,
            created_by=created_by,
        )
