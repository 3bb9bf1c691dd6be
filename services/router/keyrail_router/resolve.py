"""Where a model string goes: `resolve_targets` turns a request into an ordered target list.

Pure functions over the config projection and the catalog; scope is enforced here, for every
request, whatever the admin API allowed.
"""

from __future__ import annotations

from keyrail_common.catalog import Catalog
from keyrail_common.config_events import IntegrationCreated
from keyrail_common.errors import make_error
from keyrail_common.messages import ErrorInfo, Prices, Target
from keyrail_common.projection import ConfigState

# Providers that speak OpenAI's chat-completions wire format natively, served by the "openai" pool.
OPENAI_FAMILY = {
    "openai",
    "groq",
    "deepinfra",
    "together",
    "fireworks",
    "xai",
    "perplexity",
    "baseten",
    "minimax",
    "moonshot",
    "nebius",
}


def family_for(integration: IntegrationCreated) -> str:
    """The worker pool for an integration: custom hosts speak their declared api_format."""
    if integration.custom_host:
        return integration.api_format
    return "openai" if integration.provider in OPENAI_FAMILY else integration.provider


def in_scope(integration: IntegrationCreated, project_id: str) -> bool:
    return integration.project_scope == "all" or project_id in integration.project_scope


def model_enabled(integration: IntegrationCreated, model: str) -> bool:
    enabled = integration.enabled_models
    return enabled == "all" or (isinstance(enabled, list) and model in enabled)


def _target(integration: IntegrationCreated, catalog: Catalog, model: str) -> Target:
    entry = catalog.get(integration.provider, model)
    return Target(
        integration_id=integration.integration_id,
        provider=integration.provider,
        provider_slug=integration.provider_slug,
        family=family_for(integration),
        model=model,
        catalog_id=entry.id if entry else f"{integration.provider}/{model}",
        base_url=integration.custom_host,
        credential_ref=integration.credential_ref,
        credential_version=integration.credential_version,
        prices=entry.prices if entry else Prices(),
    )


def _pinned(
    state: ConfigState, catalog: Catalog, project_id: str, integration: IntegrationCreated, model: str
) -> list[Target] | ErrorInfo:
    slug = integration.provider_slug
    if not in_scope(integration, project_id):
        return make_error(
            403,
            f"Integration '{slug}' is not in the scope of this API key's project ({project_id}). "
            f"An owner can add the project to the integration's project_scope.",
            code="integration_out_of_scope",
            param="model",
            error_class="scope",
        )
    if catalog.get(integration.provider, model) is None:
        return make_error(
            404,
            f"Model '{model}' is not in the catalog for provider '{integration.provider}'. Register it as a "
            f"custom model: POST /admin/v1/integrations/{slug}/custom-models, or add a catalog entry.",
            code="model_not_found",
            param="model",
            error_class="not_found",
        )
    if not model_enabled(integration, model):
        return make_error(
            403,
            f"Model '{model}' is not enabled on integration '{slug}'. "
            f"Enable it with PUT /admin/v1/integrations/{slug}/models.",
            code="model_not_enabled",
            param="model",
            error_class="scope",
        )
    return [_target(integration, catalog, model)]


def resolve_targets(
    state: ConfigState, catalog: Catalog, project_id: str, model_string: str, pinned_slug: str = ""
) -> list[Target] | ErrorInfo:
    """Ordered targets for a request, or the error the client should get."""
    if pinned_slug:
        integration = state.integrations.get(pinned_slug)
        if integration is None:
            return make_error(
                404,
                f"No integration with provider slug '{pinned_slug}'.",
                "provider_not_found",
                "x-keyrail-provider",
            )
        # The header pins the integration; the body may still say `<slug>/<model>` or `<provider>/<model>`.
        model = model_string
        for prefix in (f"{pinned_slug}/", f"{integration.provider}/"):
            model = model.removeprefix(prefix)
        return _pinned(state, catalog, project_id, integration, model)

    prefix, sep, model = model_string.partition("/")
    if sep and prefix in state.integrations:
        return _pinned(state, catalog, project_id, state.integrations[prefix], model)

    if sep and catalog.get(prefix, model) is not None:
        candidates = [
            i
            for i in state.integrations.values()
            if i.provider == prefix and model_enabled(i, model) and in_scope(i, project_id)
        ]
        if not candidates:
            return make_error(
                403,
                f"'{model_string}' is in the catalog, but no integration in this project's scope serves it. "
                f"Create an integration for provider '{prefix}' with this model enabled, "
                "or widen its project_scope.",
                code="no_integration_in_scope",
                param="model",
                error_class="scope",
            )
        return [_target(i, catalog, model) for i in sorted(candidates, key=lambda i: i.provider_slug)]

    return make_error(
        404,
        f"Unknown model '{model_string}'. Use '<provider-slug>/<model>' to pin an integration, or "
        f"'<provider>/<model>' with a catalog model (GET /v1/models lists what this key can route).",
        code="model_not_found",
        param="model",
        error_class="not_found",
    )
