"""The admin API's view of catalog entries and custom models: what a response shows, and what
the change history compares (admin/history.py)."""

from __future__ import annotations

import msgspec

from keyrail_common.catalog import CatalogModel
from keyrail_common.config_state import ConfigState
from keyrail_common.custom_models import CustomModelRecord
from keyrail_ingress.admin.views import iso
from keyrail_ingress.admin_model_types import CatalogEntry, CatalogPrices, CustomModel


def catalog_source(state: ConfigState, entry: CatalogModel) -> str:
    if not state.catalog.overridden(entry.id):
        return "seed"
    return "override" if state.catalog.seeded(entry.id) is not None else "owner"


def catalog_view(state: ConfigState, entry: CatalogModel) -> CatalogEntry:
    return CatalogEntry(
        id=entry.id,
        provider=entry.provider,
        model=entry.model,
        schema=entry.schema,
        context_window=entry.context_window,
        prices=msgspec.convert(entry.prices, CatalogPrices, from_attributes=True),
        source_date=entry.source_date,
        operation=entry.operation,
        source=catalog_source(state, entry),
        version=state.version("catalog", entry.id),
    )


def custom_model_view(state: ConfigState, custom: CustomModelRecord) -> CustomModel:
    model_id = f"{custom.provider_slug}/{custom.model_slug}"
    return CustomModel(
        id=model_id,
        provider_slug=custom.provider_slug,
        model_slug=custom.model_slug,
        base_model=custom.base_model,
        custom_host=custom.custom_host or None,
        input_price_per_mtok=custom.input_price_per_mtok,
        output_price_per_mtok=custom.output_price_per_mtok,
        additional_token_pricing=dict(custom.additional_token_pricing),
        price_version=custom.prices.version,
        created_at=iso(custom.created_at) or "",
        version=state.version("custommodel", model_id),
    )
