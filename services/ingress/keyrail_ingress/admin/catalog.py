"""`/admin/v1/catalog`: the routable models and their list prices, as configuration.

The shipped catalog is the seed; an owner's PUT adds an entry or overrides a shipped one (a
`CatalogEntrySet` event, so every service's projection sees it), DELETE removes the owner's
entry: an added model leaves the catalog, an overridden shipped one gets its shipped values
back. A shipped entry itself is never removed (integrations enable it by name, custom models
name it as their base), and neither is an entry a custom model or an integration still names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import msgspec
from starlette.responses import Response

from keyrail_common.catalog import CatalogModel, entry_of
from keyrail_common.config_events import CatalogEntryRemoved, CatalogEntrySet, CatalogPrices
from keyrail_common.config_state import ConfigState
from keyrail_ingress.admin.command import Command, Loaded, admin_route, not_found
from keyrail_ingress.admin.model_views import catalog_view
from keyrail_ingress.admin_model_types import CatalogEntryBody, CatalogList, CatalogRemoval
from keyrail_ingress.rbac import Target
from keyrail_ingress.responses import error, json_response

# A model name becomes part of a NATS subject (the catalog entry's aggregate): no empty token
# (`..`, a trailing `.`), no wildcard, no space.
MODEL_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_:@/-]|\.(?=[A-Za-z0-9_:@/-])){0,127}$")


def load_entry(state: ConfigState, params: Mapping[str, str]) -> Loaded[CatalogModel | None]:
    """The entry, or None for an id not in the catalog (a PUT then adds it)."""
    catalog_id = f"{params['provider']}/{params['model']}"
    return Loaded(state.catalog.by_id(catalog_id), Target(), ("catalog", catalog_id))


@admin_route("GET", "/catalog", "catalog.list")
async def list_catalog(c: Command[None, None]) -> Response:
    provider = c.request.query_params.get("provider", "")
    if provider and c.ctx.registry.get(provider) is None:
        return error(
            400,
            f"Unknown provider '{provider}'. Known: {', '.join(c.ctx.registry.names())}.",
            "invalid_value",
            "provider",
        )
    entries = c.state.catalog.models_of(provider) if provider else c.state.catalog.all()
    return json_response(CatalogList(data=[catalog_view(c.state, e) for e in entries], next_cursor=None))


def _check(c: Command[CatalogModel | None, CatalogEntryBody], provider: str, model: str) -> Response | None:
    registry = c.ctx.registry
    if registry.get(provider) is None:
        return error(
            400,
            f"Unknown provider '{provider}'. Known: {', '.join(registry.names())}.",
            "invalid_value",
            "provider",
        )
    if not MODEL_NAME.match(model):
        return error(
            400,
            "The model name must be letters, digits and -_.:@/, start with a letter or digit, hold no "
            "'..' and end in no '.', at most 128 characters.",
            "invalid_value",
            "model",
        )
    if c.body.schema not in registry.adapters:
        return error(
            400,
            f"Unknown schema '{c.body.schema}'. Known: {', '.join(sorted(registry.adapters))}.",
            "invalid_value",
            "schema",
        )
    return None


@admin_route(
    "PUT",
    "/catalog/{provider}/{model:path}",
    "catalog.set",
    load=load_entry,
    body=CatalogEntryBody,
    versioned=True,
)
async def set_entry(c: Command[CatalogModel | None, CatalogEntryBody]) -> Response:
    """Adds the entry, or replaces it whole (an existing one needs the version you read)."""
    provider, model = c.request.path_params["provider"], c.request.path_params["model"]
    refused = _check(c, provider, model)
    if refused is not None:
        return refused
    body = c.body
    event = CatalogEntrySet(
        catalog_id=f"{provider}/{model}",
        provider=provider,
        model=model,
        schema=body.schema,
        context_window=body.context_window,
        prices=msgspec.convert(body.prices, CatalogPrices, from_attributes=True),
        operation=body.operation,
        source_date=body.source_date,
    )
    current = c.record
    unchanged = (
        current is not None
        and c.state.catalog.overridden(current.id)
        and msgspec.structs.replace(entry_of(event, 0), price_version=current.price_version) == current
    )
    if not unchanged:
        await c.publish(event)  # a change that changes nothing is no event (and no new version)
    entry = c.state.catalog.by_id(event.catalog_id)
    assert entry is not None
    return json_response(catalog_view(c.state, entry))


def _users(state: ConfigState, entry: CatalogModel) -> list[str]:
    """Who names the entry: custom models with it as base model, integrations enabling it."""
    names = [
        f"custom model {m.provider_slug}/{m.model_slug}"
        for m in state.custom_models.all()
        if m.base_model == entry.id
    ]
    names += [
        f"integration {i.provider_slug} (enabled_models)"
        for i in state.integrations.values()
        if i.provider == entry.provider
        and isinstance(i.enabled_models, list)
        and entry.model in i.enabled_models
    ]
    return names


@admin_route("DELETE", "/catalog/{provider}/{model:path}", "catalog.delete", load=load_entry, versioned=True)
async def remove_entry(c: Command[CatalogModel | None, None]) -> Response:
    entry = c.record
    if entry is None:
        params = c.request.path_params
        return not_found(f"catalog entry '{params['provider']}/{params['model']}'", "/catalog")
    catalog = c.state.catalog
    if not catalog.overridden(entry.id):
        return error(
            409,
            f"'{entry.id}' is a shipped catalog entry and cannot be removed; override its values "
            f"with PUT /admin/v1/catalog/{entry.id}, or stop serving it with "
            "PUT /admin/v1/integrations/{slug}/models.",
            "seeded_entry",
        )
    if catalog.seeded(entry.id) is None:
        users = _users(c.state, entry)
        if users:
            return error(
                409,
                f"'{entry.id}' is still named by {', '.join(users)}; change those first.",
                "entry_in_use",
            )
    await c.publish(CatalogEntryRemoved(catalog_id=entry.id))
    restored = catalog.by_id(entry.id)
    return json_response(
        CatalogRemoval(id=entry.id, restored=catalog_view(c.state, restored) if restored else None)
    )
