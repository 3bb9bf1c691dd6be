"""The admin API's bodies for the catalog and custom models (msgspec Structs), as admin_types.py
does for the rest: requests forbid unknown fields, prices are non-negative numbers where given,
and a missing (or null) price is "unpriced", never 0."""

from __future__ import annotations

from typing import Annotated, ClassVar

import msgspec
from msgspec import UNSET, Meta, UnsetType

from keyrail_common.registry import Operation
from keyrail_ingress.admin_types import ExpectedVersion, NextCursor, Timestamp, Version

Price = Annotated[float, Meta(ge=0, description="USD per 1M tokens; 0 is a real price of nothing.")]
MaybePrice = Annotated[Price | None, Meta(description="USD per 1M tokens; null: unpriced.")]
TokenPricing = Annotated[
    dict[Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]{0,63}$")], Price],
    Meta(
        description="Token kind -> USD per 1M tokens, for kinds beyond input and output "
        "(`cached_input`, `cache_write`, `reasoning`, …).",
        examples=[{"cached_input": 0.15, "reasoning": 12}],
    ),
]
CustomHost = Annotated[
    str,
    Meta(
        description="This model's own base URL (it speaks the base model's schema there), checked "
        "like an integration's custom host and under the integration's `allow_http`; empty: the "
        "integration's host."
    ),
]
BaseModel = Annotated[
    str,
    Meta(
        description="A catalog id `<provider>/<model>` whose request/response schema the model speaks "
        "(it selects the adapter, never the price).",
        examples=["openai/gpt-4o-mini"],
    ),
]


# --- the catalog --------------------------------------------------------------------------------


class CatalogPricesBody(msgspec.Struct, forbid_unknown_fields=True):
    """USD per 1M tokens; an absent or null price is unpriced."""

    input: MaybePrice = None
    output: MaybePrice = None
    cached_input: MaybePrice = None
    cache_write: MaybePrice = None
    additional: TokenPricing = msgspec.field(default_factory=dict)


class CatalogEntryBody(msgspec.Struct, forbid_unknown_fields=True):
    """Adds a catalog entry, or overrides the shipped one of the same id (all of it)."""

    schema: Annotated[
        str,
        Meta(
            description="The wire format the model speaks: an adapter of the provider registry "
            "(`openai`, `anthropic`, `gemini`, …).",
            examples=["openai"],
        ),
    ]
    context_window: Annotated[int, Meta(gt=0, description="Tokens.", examples=[128000])]
    prices: CatalogPricesBody
    operation: Annotated[Operation, Meta(description="What the model answers.")] = Operation.CHAT
    source_date: Annotated[
        str, Meta(pattern=r"^(\d{4}-\d{2}-\d{2})?$", description="When the prices were taken (YYYY-MM-DD).")
    ] = ""
    version: ExpectedVersion = None


class CatalogPrices(msgspec.Struct):
    """USD per 1M tokens (null: unpriced), and which price this is."""

    input: float | None
    output: float | None
    cached_input: float | None
    cache_write: float | None
    additional: dict[str, float]
    version: Annotated[
        str,
        Meta(
            description="`catalog:<source_date>` for a shipped entry, `catalog@<seq>` for an owner's.",
            examples=["catalog:2026-11-17"],
        ),
    ]


class CatalogEntry(msgspec.Struct):
    """A routable catalog model."""

    id: Annotated[str, Meta(examples=["openai/gpt-4o-mini"])]
    provider: str
    model: str
    schema: str
    context_window: Annotated[int | None, Meta(description="Tokens; null where the source gives none.")]
    prices: CatalogPrices
    source_date: str
    operation: Operation
    source: Annotated[
        str,
        Meta(description="`seed` (shipped), `override` (an owner's values for a shipped id) or `owner`."),
    ]
    version: Annotated[int, Meta(ge=0, description="0 for a shipped entry no owner changed.")]


class CatalogRemoval(msgspec.Struct):
    """What a DELETE left: an added entry is gone, an overridden shipped one is shipped again."""

    id: str
    restored: Annotated[
        CatalogEntry | None, Meta(description="The shipped entry now in force; null: the id is gone.")
    ]


class CatalogList(msgspec.Struct):
    """The catalog, in catalog order."""

    data: list[CatalogEntry]
    next_cursor: NextCursor


# --- custom models ------------------------------------------------------------------------------


class NewCustomModel(msgspec.Struct, forbid_unknown_fields=True):
    """Registers a model an integration serves beyond the catalog: routed as
    `<provider-slug>/<model_slug>` from the moment the call returns."""

    model_slug: Annotated[
        str,
        Meta(
            description="Unique within the integration; the model id the upstream is sent. Letters, "
            "digits and `-_.:@`, starting with a letter or digit, no `..`, at most 128 characters.",
            examples=["ft-classifier-v3"],
        ),
    ]
    base_model: BaseModel
    custom_host: CustomHost = ""
    input_price_per_mtok: MaybePrice = None
    output_price_per_mtok: MaybePrice = None
    additional_token_pricing: TokenPricing = msgspec.field(default_factory=dict)


class CustomModelPatch(msgspec.Struct, forbid_unknown_fields=True):
    """Changes a custom model; an absent field stays as it is, a null price becomes unpriced."""

    REFUSED_FIELDS: ClassVar[dict[str, str]] = {
        "model_slug": "A custom model's model_slug cannot change (model strings and the activity log "
        "name it): register a new one and remove this one.",
    }

    base_model: BaseModel | UnsetType = UNSET
    custom_host: CustomHost | UnsetType = UNSET
    input_price_per_mtok: MaybePrice | UnsetType = UNSET
    output_price_per_mtok: MaybePrice | UnsetType = UNSET
    additional_token_pricing: TokenPricing | UnsetType = UNSET
    version: ExpectedVersion = None


class CustomModel(msgspec.Struct):
    """A custom model of an integration."""

    id: Annotated[str, Meta(description="The model string that routes to it.", examples=["azure-prod/ft-v3"])]
    provider_slug: str
    model_slug: str
    base_model: str
    custom_host: str | None
    input_price_per_mtok: float | None
    output_price_per_mtok: float | None
    additional_token_pricing: dict[str, float]
    price_version: Annotated[
        str,
        Meta(
            description="Names these prices in the activity log: `custom:<id>@<seq>`.",
            examples=["custom:azure-prod/ft-v3@57"],
        ),
    ]
    created_at: Timestamp
    version: Version


class CustomModelList(msgspec.Struct):
    """An integration's custom models, by model slug."""

    data: list[CustomModel]
    next_cursor: NextCursor
