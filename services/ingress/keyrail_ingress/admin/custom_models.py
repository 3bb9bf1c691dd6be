"""`/admin/v1/integrations/{slug}/custom-models`: models an integration serves beyond the catalog.

A custom model is its own aggregate (`custommodel.<slug>/<model_slug>`), so registering the same
model slug twice is refused by JetStream even when two owners race. Every check runs before the
one event is appended; a refused request leaves nothing behind.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from msgspec import UnsetType
from starlette.responses import Response

from keyrail_common.config_events import (
    CustomModelRegistered,
    CustomModelRemoved,
    CustomModelUpdated,
    IntegrationCreated,
)
from keyrail_common.config_state import ConfigState
from keyrail_common.custom_models import CustomModelRecord
from keyrail_common.hosts import HostRejected, validate_custom_host
from keyrail_common.projection import ConcurrencyConflict
from keyrail_common.registry import ProviderRegistry
from keyrail_ingress.admin.command import Command, Loaded, admin_route, given, not_found
from keyrail_ingress.admin.integrations import load_integration
from keyrail_ingress.admin.model_views import custom_model_view
from keyrail_ingress.admin_model_types import CustomModelList, CustomModelPatch, NewCustomModel
from keyrail_ingress.responses import error, json_response

# Part of a NATS subject (the aggregate) and of a URL path segment: no `/`, no empty token.
MODEL_SLUG = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_:@-]|\.(?=[A-Za-z0-9_:@-])){0,127}$")


def _invalid(message: str, param: str) -> Response:
    return error(400, message, "invalid_value", param)


def load_custom_model(
    state: ConfigState, params: Mapping[str, str]
) -> Loaded[tuple[IntegrationCreated, CustomModelRecord]] | Response:
    loaded = load_integration(state, params)
    if isinstance(loaded, Response):
        return loaded
    slug, model_slug = params["slug"], params["model_slug"]
    custom = state.custom_models.get(slug, model_slug)
    if custom is None:
        return not_found(
            f"custom model '{model_slug}' on integration '{slug}'", f"/integrations/{slug}/custom-models"
        )
    return Loaded((loaded.record, custom), loaded.target, ("custommodel", f"{slug}/{model_slug}"))


def spoken_schemas(
    state: ConfigState, registry: ProviderRegistry, integration: IntegrationCreated
) -> set[str]:
    """The schemas the integration's own endpoint speaks: a custom host its api_format; the
    provider's host (or a custom host speaking the provider's own format, Vertex's) its adapter's
    and those of the provider's catalog models (Azure's adapter speaks OpenAI's schema)."""
    adapter = registry.adapter_for(integration.provider, "", "")
    if integration.custom_host and integration.api_format != adapter:
        return {integration.api_format}
    return {adapter, *(m.schema for m in state.catalog.models_of(integration.provider))}


def check_model(
    state: ConfigState,
    registry: ProviderRegistry,
    integration: IntegrationCreated,
    base_model: str,
    custom_host: str,
) -> str | Response:
    """The normalised custom host, or the 400 naming the field: the base model is in the catalog and
    its schema is one the model's host (its own, else the integration's) speaks."""
    base = state.catalog.by_id(base_model)
    if base is None:
        return _invalid(
            f"base_model '{base_model}' is not in the catalog: name a catalog id '<provider>/<model>' "
            "whose schema the model speaks (GET /admin/v1/catalog lists them).",
            "base_model",
        )
    if custom_host:
        if base.schema not in registry.custom_host_formats:
            return _invalid(
                f"base_model '{base_model}' speaks '{base.schema}', which a custom host cannot speak "
                f"(one of {', '.join(registry.custom_host_formats)}).",
                "base_model",
            )
        try:
            return validate_custom_host(custom_host, integration.allow_http)
        except HostRejected as exc:
            return _invalid(str(exc), "custom_host")
    spoken = spoken_schemas(state, registry, integration)
    if base.schema not in spoken:
        return _invalid(
            f"base_model '{base_model}' speaks '{base.schema}', but integration "
            f"'{integration.provider_slug}' speaks {', '.join(sorted(spoken))}: choose a base model of "
            "that schema, or give the model a custom_host that speaks it.",
            "base_model",
        )
    return ""


def _disabled(state: ConfigState, integration: IntegrationCreated) -> Response | None:
    slug = integration.provider_slug
    if slug not in state.disabled_integrations:
        return None
    return error(
        409,
        f"Integration '{slug}' is disabled and cannot change; create a new integration instead.",
        "integration_disabled",
    )


def _taken(slug: str, model_slug: str) -> Response:
    return error(
        409,
        f"Integration '{slug}' already has a custom model '{model_slug}'; change it with "
        f"PATCH /admin/v1/integrations/{slug}/custom-models/{model_slug}.",
        "conflict",
        "model_slug",
    )


@admin_route(
    "POST",
    "/integrations/{slug}/custom-models",
    "custom_model.create",
    load=load_integration,
    body=NewCustomModel,
)
async def register_custom_model(c: Command[IntegrationCreated, NewCustomModel]) -> Response:
    integration, body, state = c.record, c.body, c.state
    slug = integration.provider_slug
    refused = _disabled(state, integration)
    if refused is not None:
        return refused
    if not MODEL_SLUG.match(body.model_slug):
        return _invalid(
            "model_slug must be letters, digits and -_.:@, start with a letter or digit, hold no '..' "
            "and end in no '.', at most 128 characters (e.g. ft-classifier-v3).",
            "model_slug",
        )
    if state.catalog.get(integration.provider, body.model_slug) is not None:
        return _invalid(
            f"'{body.model_slug}' is a catalog model of provider '{integration.provider}': enable it "
            f"with PUT /admin/v1/integrations/{slug}/models instead, or choose another model_slug.",
            "model_slug",
        )
    if state.custom_models.get(slug, body.model_slug) is not None:
        return _taken(slug, body.model_slug)
    host = check_model(state, c.ctx.registry, integration, body.base_model, body.custom_host)
    if isinstance(host, Response):
        return host
    event = CustomModelRegistered(
        provider_slug=slug,
        model_slug=body.model_slug,
        base_model=body.base_model,
        custom_host=host,
        input_price_per_mtok=body.input_price_per_mtok,
        output_price_per_mtok=body.output_price_per_mtok,
        additional_token_pricing=dict(body.additional_token_pricing),
    )
    try:
        # A model slug removed before is registered again on top of its old events.
        await c.ctx.publisher.publish(
            event,
            actor=c.caller.user_id,
            expected_version=state.version("custommodel", event.custom_model_id),
        )
    except ConcurrencyConflict:
        return _taken(slug, body.model_slug)
    custom = state.custom_models.get(slug, body.model_slug)
    assert custom is not None
    return json_response(custom_model_view(state, custom), 201)


@admin_route("GET", "/integrations/{slug}/custom-models", "custom_model.list", load=load_integration)
async def list_custom_models(c: Command[IntegrationCreated, None]) -> Response:
    models = c.state.custom_models.of(c.record.provider_slug)
    return json_response(
        CustomModelList(data=[custom_model_view(c.state, m) for m in models], next_cursor=None)
    )


_ONE = "/integrations/{slug}/custom-models/{model_slug}"


@admin_route("GET", _ONE, "custom_model.read", load=load_custom_model)
async def get_custom_model(c: Command[tuple[IntegrationCreated, CustomModelRecord], None]) -> Response:
    return json_response(custom_model_view(c.state, c.record[1]))


@admin_route(
    "PATCH", _ONE, "custom_model.update", load=load_custom_model, body=CustomModelPatch, versioned=True
)
async def update_custom_model(
    c: Command[tuple[IntegrationCreated, CustomModelRecord], CustomModelPatch],
) -> Response:
    integration, current = c.record
    patch, state = c.body, c.state
    refused = _disabled(state, integration)
    if refused is not None:
        return refused
    base_model = given(patch.base_model, current.base_model)
    host = check_model(
        state, c.ctx.registry, integration, base_model, given(patch.custom_host, current.custom_host)
    )
    if isinstance(host, Response):
        return host
    pricing = patch.additional_token_pricing
    event = CustomModelUpdated(
        provider_slug=current.provider_slug,
        model_slug=current.model_slug,
        base_model=base_model,
        custom_host=host,
        input_price_per_mtok=given(patch.input_price_per_mtok, current.input_price_per_mtok),
        output_price_per_mtok=given(patch.output_price_per_mtok, current.output_price_per_mtok),
        additional_token_pricing=dict(
            current.additional_token_pricing if isinstance(pricing, UnsetType) else pricing
        ),
    )
    unchanged = all(getattr(current, f) == getattr(event, f) for f in event.__struct_fields__)
    if not unchanged:
        await c.publish(event)  # a change that changes nothing is no event (and no new version)
    updated = state.custom_models.get(current.provider_slug, current.model_slug)
    assert updated is not None
    return json_response(custom_model_view(state, updated))


@admin_route("DELETE", _ONE, "custom_model.delete", load=load_custom_model, versioned=True)
async def remove_custom_model(c: Command[tuple[IntegrationCreated, CustomModelRecord], None]) -> Response:
    """No longer routed from the moment the call returns; its activity rows stay."""
    _, current = c.record
    await c.publish(CustomModelRemoved(provider_slug=current.provider_slug, model_slug=current.model_slug))
    return json_response(custom_model_view(c.state, current))  # as it was, at the version of its removal
