"""What a project can route: the scope rules the router enforces per request, and the model list
`GET /v1/models` answers from them (so the list can never promise what the router refuses)."""

from __future__ import annotations

from collections.abc import Iterator

from keyrail_common.catalog import CatalogModel
from keyrail_common.config_events import IntegrationCreated
from keyrail_common.custom_models import CustomModelRecord
from keyrail_common.projection import ConfigState


def in_scope(integration: IntegrationCreated, project_id: str) -> bool:
    return integration.project_scope == "all" or project_id in integration.project_scope


def model_enabled(integration: IntegrationCreated, model: str) -> bool:
    enabled = integration.enabled_models
    return enabled == "all" or (isinstance(enabled, list) and model in enabled)


def _in_scope(state: ConfigState, project_id: str) -> Iterator[IntegrationCreated]:
    for slug in sorted(state.integrations):
        integration = state.integrations[slug]
        if in_scope(integration, project_id):
            yield integration


def routable_models(
    state: ConfigState, project_id: str
) -> Iterator[tuple[str, CatalogModel, IntegrationCreated]]:
    """(model string, catalog entry, integration) for every enabled catalog model of every in-scope
    integration, as `<provider-slug>/<model>`; in slug order, then catalog order."""
    for integration in _in_scope(state, project_id):
        for entry in state.catalog.models_of(integration.provider):
            if model_enabled(integration, entry.model):
                yield f"{integration.provider_slug}/{entry.model}", entry, integration


def routable_custom_models(
    state: ConfigState, project_id: str
) -> Iterator[tuple[str, CustomModelRecord, IntegrationCreated]]:
    """(model string, custom model, integration) for every custom model of every in-scope
    integration, as `<provider-slug>/<model_slug>`; in slug order, then model slug order."""
    for integration in _in_scope(state, project_id):
        for custom in state.custom_models.of(integration.provider_slug):
            yield f"{integration.provider_slug}/{custom.model_slug}", custom, integration
