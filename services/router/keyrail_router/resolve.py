"""Where a model string goes: `resolve_targets` turns a request into an ordered target list.

Pure functions over the config projection (which holds the catalog and the custom models);
scope is enforced here, for every request, whatever the admin API allowed.
"""

from __future__ import annotations

from keyrail_common.catalog import CatalogModel
from keyrail_common.config_events import IntegrationCreated
from keyrail_common.custom_models import CustomModelRecord
from keyrail_common.failures import ErrorInfo, FailureClass, failure
from keyrail_common.messages import Target
from keyrail_common.projection import ConfigState
from keyrail_common.registry import Operation, ProviderRegistry
from keyrail_common.routable import in_scope, model_enabled


class Resolver:
    """The provider registry a router resolves against (loaded once at start); the catalog is
    configuration, in the projection's state."""

    def __init__(self, registry: ProviderRegistry) -> None:
        self.registry = registry


def _target(integration: IntegrationCreated, resolver: Resolver, entry: CatalogModel) -> Target:
    model = entry.model
    provider = resolver.registry.get(integration.provider)
    return Target(
        integration_id=integration.integration_id,
        provider=integration.provider,
        provider_slug=integration.provider_slug,
        adapter=resolver.registry.adapter_for(
            integration.provider, integration.custom_host, integration.api_format
        ),
        model=model,
        catalog_id=entry.id,
        base_url=integration.custom_host or (provider.base_url if provider else ""),
        credential_ref=integration.credential_ref,
        credential_version=integration.credential_version,
        prices=entry.prices,
    )


def _custom_target(
    integration: IntegrationCreated, resolver: Resolver, custom: CustomModelRecord, base: CatalogModel
) -> Target:
    """A custom model: its own host speaks the base model's schema; without one it goes where the
    integration goes, in the integration's format (which the admin API checked speaks that schema)."""
    provider = resolver.registry.get(integration.provider)
    if custom.custom_host:
        adapter, base_url = base.schema, custom.custom_host
    else:
        adapter = resolver.registry.adapter_for(
            integration.provider, integration.custom_host, integration.api_format
        )
        base_url = integration.custom_host or (provider.base_url if provider else "")
    return Target(
        integration_id=integration.integration_id,
        provider=integration.provider,
        provider_slug=integration.provider_slug,
        adapter=adapter,
        model=custom.model_slug,
        catalog_id=base.id,
        base_url=base_url,
        credential_ref=integration.credential_ref,
        credential_version=integration.credential_version,
        prices=custom.prices,
    )


def _custom(
    resolver: Resolver,
    state: ConfigState,
    integration: IntegrationCreated,
    custom: CustomModelRecord,
    operation: Operation,
) -> list[Target] | ErrorInfo:
    base = state.catalog.by_id(custom.base_model)
    if base is None:  # the admin API refuses to remove a base model; a replay of old events might not
        return failure(
            FailureClass.NOT_FOUND,
            f"Custom model '{integration.provider_slug}/{custom.model_slug}' names base model "
            f"'{custom.base_model}', which is no longer in the catalog. An owner can change its "
            f"base_model with PATCH /admin/v1/integrations/{integration.provider_slug}/custom-models/"
            f"{custom.model_slug}.",
            code="model_not_found",
            param="model",
        )
    wrong_endpoint = _wrong_endpoint(base, operation)
    if wrong_endpoint is not None:
        return wrong_endpoint
    return [_custom_target(integration, resolver, custom, base)]


_ENDPOINTS = {Operation.CHAT: "POST /v1/chat/completions", Operation.EMBEDDINGS: "POST /v1/embeddings"}


def _wrong_endpoint(entry: CatalogModel, operation: Operation) -> ErrorInfo | None:
    if entry.operation is operation:
        return None
    return failure(
        FailureClass.BAD_REQUEST,
        f"'{entry.id}' is a{'n' if entry.operation is Operation.EMBEDDINGS else ''} "
        f"{entry.operation.value} model: call {_ENDPOINTS.get(entry.operation, entry.operation.value)}.",
        code="wrong_endpoint_for_model",
        param="model",
    )


def _not_offered(resolver: Resolver, provider_name: str, what: str, operation: Operation) -> ErrorInfo | None:
    """The provider offers no such operation at all (e.g. chat on a media-generation provider)."""
    provider = resolver.registry.get(provider_name)
    if provider is None or operation in provider.operations:
        return None
    kind = "a media-generation provider, not a chat provider" if provider.media else "a provider"
    return failure(
        FailureClass.UNSUPPORTED,
        f"{what} is {provider.display_name}: {kind}, and it does not offer {operation.value} "
        "through Keyrail.",
        code="operation_not_supported",
        param="model",
    )


def _pinned(
    resolver: Resolver,
    state: ConfigState,
    project_id: str,
    integration: IntegrationCreated,
    model: str,
    operation: Operation,
) -> list[Target] | ErrorInfo:
    slug = integration.provider_slug
    if not in_scope(integration, project_id):
        return failure(
            FailureClass.SCOPE,
            f"Integration '{slug}' is not in the scope of this API key's project ({project_id}). "
            f"An owner can add the project to the integration's project_scope.",
            code="integration_out_of_scope",
            param="model",
        )
    not_offered = _not_offered(resolver, integration.provider, f"Integration '{slug}'", operation)
    if not_offered is not None:
        return not_offered
    custom = state.custom_models.get(slug, model)
    if custom is not None:
        return _custom(resolver, state, integration, custom, operation)
    entry = state.catalog.get(integration.provider, model)
    if entry is None:
        return failure(
            FailureClass.NOT_FOUND,
            f"Model '{model}' is neither in the catalog for provider '{integration.provider}' nor a custom "
            f"model of '{slug}' (GET /v1/models lists what this key can route). An owner can register "
            f"it with POST /admin/v1/integrations/{slug}/custom-models.",
            code="model_not_found",
            param="model",
        )
    wrong_endpoint = _wrong_endpoint(entry, operation)
    if wrong_endpoint is not None:
        return wrong_endpoint
    if not model_enabled(integration, model):
        return failure(
            FailureClass.SCOPE,
            f"Model '{model}' is not enabled on integration '{slug}'. "
            f"An owner can enable it with PUT /admin/v1/integrations/{slug}/models.",
            code="model_not_enabled",
            param="model",
        )
    return [_target(integration, resolver, entry)]


def _disabled(slug: str, param: str = "model") -> ErrorInfo:
    return failure(
        FailureClass.NOT_FOUND,
        f"Integration '{slug}' is disabled (an owner deleted it, and can re-enable it); use another "
        "integration. Its activity stays readable in the activity log.",
        code="integration_disabled",
        param=param,
    )


def resolve_targets(
    resolver: Resolver,
    state: ConfigState,
    project_id: str,
    model_string: str,
    pinned_slug: str = "",
    operation: Operation = Operation.CHAT,
) -> list[Target] | ErrorInfo:
    """Ordered targets for a request, or the error the client should get."""
    if pinned_slug:
        integration = state.integrations.get(pinned_slug)
        if pinned_slug in state.disabled_integrations:
            return _disabled(pinned_slug, "x-keyrail-provider")
        if integration is None:
            return failure(
                FailureClass.NOT_FOUND,
                f"No integration with provider slug '{pinned_slug}'.",
                code="provider_not_found",
                param="x-keyrail-provider",
            )
        # The header pins the integration; the body may still say `<slug>/<model>` or `<provider>/<model>`.
        model = model_string
        for prefix in (f"{pinned_slug}/", f"{integration.provider}/"):
            model = model.removeprefix(prefix)
        return _pinned(resolver, state, project_id, integration, model, operation)

    prefix, sep, model = model_string.partition("/")
    if sep and prefix in state.disabled_integrations:
        return _disabled(prefix)
    if sep and prefix in state.integrations:
        return _pinned(resolver, state, project_id, state.integrations[prefix], model, operation)

    not_offered = _not_offered(resolver, prefix, f"'{prefix}'", operation) if sep else None
    if not_offered is not None:
        return not_offered
    entry = state.catalog.get(prefix, model) if sep else None
    # A bare catalog model id (`gpt-4o-mini`, as IDE plugins send it), or one whose own name has a
    # slash (Groq's `openai/gpt-oss-120b`): every provider's catalog entry of that name.
    entries = [entry] if entry is not None else state.catalog.with_model(model_string)
    if entries:
        return _through_catalog(resolver, state, project_id, model_string, entries, operation)
    return failure(
        FailureClass.NOT_FOUND,
        f"Unknown model '{model_string}'. Use '<provider-slug>/<model>' to pin an integration, "
        f"'<provider>/<model>' or a bare catalog model id (GET /v1/models lists what this key can route). "
        "A model outside the catalog is routed as '<provider-slug>/<model_slug>' once an owner registers "
        "it with POST /admin/v1/integrations/{slug}/custom-models.",
        code="model_not_found",
        param="model",
    )


def _through_catalog(
    resolver: Resolver,
    state: ConfigState,
    project_id: str,
    model_string: str,
    entries: list[CatalogModel],
    operation: Operation,
) -> list[Target] | ErrorInfo:
    """Every in-scope integration that serves one of these catalog entries, in slug order."""
    wrong_endpoint = _wrong_endpoint(entries[0], operation)
    if wrong_endpoint is not None:
        return wrong_endpoint
    by_provider = {e.provider: e for e in entries}
    candidates = [
        (i, by_provider[i.provider])
        for i in state.integrations.values()
        if i.provider in by_provider
        and model_enabled(i, by_provider[i.provider].model)
        and in_scope(i, project_id)
    ]
    if not candidates:
        providers = ", ".join(f"'{p}'" for p in sorted(by_provider))
        return failure(
            FailureClass.SCOPE,
            f"'{model_string}' is in the catalog, but no integration in this project's scope serves it. "
            f"Create an integration for provider {providers} with this model enabled, "
            "or widen its project_scope.",
            code="no_integration_in_scope",
            param="model",
        )
    return [_target(i, resolver, entry) for i, entry in sorted(candidates, key=lambda c: c[0].provider_slug)]


def unavailable(resolver: Resolver, target: Target, operation: Operation) -> ErrorInfo | None:
    """Why this target cannot be attempted in this version at all, or None when it can."""
    registry = resolver.registry
    if not registry.is_available(target.adapter):
        return failure(
            FailureClass.UNSUPPORTED,
            f"'{target.provider_slug}' speaks the '{target.adapter}' wire format, whose adapter is not "
            "available in this version of Keyrail.",
            code="provider_adapter_unavailable",
        )
    return None
