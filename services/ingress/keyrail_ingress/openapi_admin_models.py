"""The admin API in the OpenAPI document: the model catalog and custom models."""

from __future__ import annotations

from keyrail_common.registry import Operation as ModelOperation
from keyrail_ingress.admin_model_types import (
    CatalogEntry,
    CatalogEntryBody,
    CatalogList,
    CatalogPrices,
    CatalogPricesBody,
    CatalogRemoval,
    CustomModel,
    CustomModelList,
    CustomModelPatch,
    NewCustomModel,
)
from keyrail_ingress.openapi_admin import EXAMPLE_TS, admin_operation, not_found_reply, path_parameter
from keyrail_ingress.openapi_admin_integrations import EXAMPLE_INTEGRATION
from keyrail_ingress.openapi_parts import (
    Operation,
    error_example,
    error_reply,
    json_reply,
    query_parameter,
    request_body,
)

_SLUG_VALUE = EXAMPLE_INTEGRATION.provider_slug
EXAMPLE_CUSTOM_MODEL = CustomModel(
    id=f"{_SLUG_VALUE}/ft-classifier-v3",
    provider_slug=_SLUG_VALUE,
    model_slug="ft-classifier-v3",
    base_model="openai/gpt-4o-mini",
    custom_host=None,
    input_price_per_mtok=0.3,
    output_price_per_mtok=1.2,
    additional_token_pricing={"cached_input": 0.15},
    price_version=f"custom:{_SLUG_VALUE}/ft-classifier-v3@57",
    created_at=EXAMPLE_TS,
    version=57,
)
EXAMPLE_CATALOG_ENTRY = CatalogEntry(
    id="openai/gpt-4o-mini",
    provider="openai",
    model="gpt-4o-mini",
    schema="openai",
    context_window=128000,
    prices=CatalogPrices(
        input=0.15,
        output=0.6,
        cached_input=0.075,
        cache_write=None,
        additional={},
        version="catalog:2026-11-17",
    ),
    source_date="2026-11-17",
    operation=ModelOperation.CHAT,
    source="seed",
    version=0,
)
_SLUG = path_parameter("slug", "The integration's provider slug.", _SLUG_VALUE)
_MODEL_SLUG = path_parameter("model_slug", "The custom model's slug.", EXAMPLE_CUSTOM_MODEL.model_slug)
_PROVIDER = path_parameter("provider", "A provider of the provider registry.", "openai")
_MODEL = path_parameter("model", "The model name as the provider knows it (may hold `/`).", "gpt-4o-mini")
_INTEGRATION_404 = not_found_reply(f"integration '{_SLUG_VALUE}'", "/integrations")
_CUSTOM_404 = not_found_reply(
    f"custom model 'ft-classifier-v3' on integration '{_SLUG_VALUE}'",
    f"/integrations/{_SLUG_VALUE}/custom-models",
)
_CATALOG_404 = not_found_reply("catalog entry 'openai/gpt-unknown'", "/catalog")
_CUSTOM_400 = error_reply(
    "Invalid body or value (model_slug pattern, a base_model not in the catalog or of a schema the host "
    "does not speak, a negative price, a rejected custom_host, an unknown field); `param` names it.",
    error_example(
        400,
        "base_model 'openai/gpt-unknown' is not in the catalog: name a catalog id '<provider>/<model>' whose "
        "schema the model speaks (GET /admin/v1/catalog lists them).",
        "invalid_value",
        "base_model",
    ),
)
_DISABLED_409 = error_reply(
    "The integration is disabled, or the custom model changed since the version sent.",
    error_example(
        409,
        f"Integration '{_SLUG_VALUE}' is disabled and cannot change; create a new integration instead.",
        "integration_disabled",
    ),
)
_CATALOG_400 = error_reply(
    "Unknown provider or schema, a malformed model name, a negative price, a context window that is not "
    "positive, an unknown field; `param` names it.",
    error_example(400, "Unknown schema 'openia'. Known: anthropic, openai, …", "invalid_value", "schema"),
)

CUSTOM_MODEL_OPERATIONS: tuple[Operation, ...] = (
    admin_operation(
        "POST",
        "/admin/v1/integrations/{slug}/custom-models",
        "registerCustomModel",
        "Custom models",
        "Register a custom model",
        "custom_model.create",
        (201, json_reply("The new custom model.", CustomModel, EXAMPLE_CUSTOM_MODEL)),
        description="Routed as `<provider-slug>/<model_slug>` from the moment the call returns, through "
        "the adapter of the base model's schema, to its own `custom_host` or the integration's host; "
        "the upstream is sent `model_slug`. Its prices are its own (absent: unpriced; 0: free), never "
        "the base model's. Custom models need no enabling.",
        parameters=(_SLUG,),
        request=request_body(
            NewCustomModel(
                model_slug="ft-classifier-v3",
                base_model="openai/gpt-4o-mini",
                input_price_per_mtok=0.3,
                output_price_per_mtok=1.2,
                additional_token_pricing={"cached_input": 0.15},
            )
        ),
        errors={
            400: _CUSTOM_400,
            404: _INTEGRATION_404,
            409: error_reply(
                "The integration already has a custom model of this slug, or it is disabled.",
                error_example(
                    409,
                    f"Integration '{_SLUG_VALUE}' already has a custom model 'ft-classifier-v3'; change it "
                    f"with PATCH /admin/v1/integrations/{_SLUG_VALUE}/custom-models/ft-classifier-v3.",
                    "conflict",
                    "model_slug",
                ),
            ),
        },
    ),
    admin_operation(
        "GET",
        "/admin/v1/integrations/{slug}/custom-models",
        "listCustomModels",
        "Custom models",
        "List an integration's custom models",
        "custom_model.list",
        (
            200,
            json_reply(
                "Its custom models, by model slug.",
                CustomModelList,
                CustomModelList(data=[EXAMPLE_CUSTOM_MODEL], next_cursor=None),
            ),
        ),
        parameters=(_SLUG,),
        errors={404: _INTEGRATION_404},
    ),
    admin_operation(
        "GET",
        "/admin/v1/integrations/{slug}/custom-models/{model_slug}",
        "getCustomModel",
        "Custom models",
        "Read a custom model",
        "custom_model.read",
        (200, json_reply("The custom model.", CustomModel, EXAMPLE_CUSTOM_MODEL)),
        parameters=(_SLUG, _MODEL_SLUG),
        errors={404: _CUSTOM_404},
    ),
    admin_operation(
        "PATCH",
        "/admin/v1/integrations/{slug}/custom-models/{model_slug}",
        "updateCustomModel",
        "Custom models",
        "Change a custom model",
        "custom_model.update",
        (200, json_reply("The custom model as it is now.", CustomModel, EXAMPLE_CUSTOM_MODEL)),
        description="Absent fields stay as they are; a null price becomes unpriced. The next request "
        "after the call returns uses the new values. The model slug cannot change.",
        parameters=(_SLUG, _MODEL_SLUG),
        request=request_body(CustomModelPatch(output_price_per_mtok=1.5, version=57)),
        errors={400: _CUSTOM_400, 404: _CUSTOM_404, 409: _DISABLED_409},
        versioned="custommodel",
    ),
    admin_operation(
        "DELETE",
        "/admin/v1/integrations/{slug}/custom-models/{model_slug}",
        "removeCustomModel",
        "Custom models",
        "Remove a custom model",
        "custom_model.delete",
        (200, json_reply("The custom model as it was.", CustomModel, EXAMPLE_CUSTOM_MODEL)),
        description="No longer routed from the moment the call returns; its activity rows stay.",
        parameters=(_SLUG, _MODEL_SLUG),
        errors={404: _CUSTOM_404},
        versioned="custommodel",
    ),
)

CATALOG_OPERATIONS: tuple[Operation, ...] = (
    admin_operation(
        "GET",
        "/admin/v1/catalog",
        "listCatalog",
        "Catalog",
        "List the model catalog",
        "catalog.list",
        (
            200,
            json_reply(
                "Every catalog entry (of one provider with `provider`): the shipped ones and the owners'.",
                CatalogList,
                CatalogList(data=[EXAMPLE_CATALOG_ENTRY], next_cursor=None),
            ),
        ),
        parameters=(
            query_parameter("provider", "Only this provider's entries.", {"type": "string"}, "openai"),
        ),
        errors={
            400: error_reply(
                "An unknown provider.",
                error_example(
                    400, "Unknown provider 'opnai'. Known: anthropic, …", "invalid_value", "provider"
                ),
            )
        },
    ),
    admin_operation(
        "PUT",
        "/admin/v1/catalog/{provider}/{model}",
        "setCatalogEntry",
        "Catalog",
        "Add or override a catalog entry",
        "catalog.set",
        (200, json_reply("The entry as it is now.", CatalogEntry, EXAMPLE_CATALOG_ENTRY)),
        description="Adds `<provider>/<model>`, or replaces it whole: every service routes and prices with "
        "it from the next request on (its prices' version becomes `catalog@<seq>`). A new id needs no "
        "version; an existing one (shipped ones are at version 0) needs the version you read.",
        parameters=(_PROVIDER, _MODEL),
        request=request_body(
            CatalogEntryBody(
                schema="openai",
                context_window=128000,
                prices=CatalogPricesBody(input=0.12, output=0.5, cached_input=0.06),
                source_date="2026-12-01",
                version=0,
            )
        ),
        errors={400: _CATALOG_400},
        versioned="catalog entry",
    ),
    admin_operation(
        "DELETE",
        "/admin/v1/catalog/{provider}/{model}",
        "removeCatalogEntry",
        "Catalog",
        "Remove an owner's catalog entry",
        "catalog.delete",
        (
            200,
            json_reply(
                "What is left: the shipped entry an override hid, or nothing.",
                CatalogRemoval,
                CatalogRemoval(id=EXAMPLE_CATALOG_ENTRY.id, restored=EXAMPLE_CATALOG_ENTRY),
            ),
        ),
        description="An owner-added entry leaves the catalog (refused while a custom model or an "
        "integration names it); an override is dropped and the shipped values are back. A shipped "
        "entry itself cannot be removed (409): override it, or stop serving it per integration.",
        parameters=(_PROVIDER, _MODEL),
        errors={
            404: _CATALOG_404,
            409: error_reply(
                "A shipped entry, an entry still in use, or a stale version.",
                error_example(
                    409,
                    "'openai/gpt-4o-mini' is a shipped catalog entry and cannot be removed; override its "
                    "values with PUT /admin/v1/catalog/openai/gpt-4o-mini, or stop serving it with "
                    "PUT /admin/v1/integrations/{slug}/models.",
                    "seeded_entry",
                ),
            ),
        },
        versioned="catalog entry",
    ),
)
