"""What a project can route: the scope rules the router enforces per request, and the model list
`GET /v1/models` answers from them (so the list can never promise what the router refuses)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal, Protocol

from keyrail_common.catalog import Catalog, CatalogModel
from keyrail_common.config_events import IntegrationCreated
from keyrail_common.projection import ConfigState

# The request header that names the gateway config to route by.
CONFIG_HEADER = "x-keyrail-config"


class Scoped(Protocol):
    """A record scoped to projects: an integration, a virtual model, a gateway config."""

    @property
    def project_scope(self) -> Literal["all"] | list[str]: ...


def in_scope(record: Scoped, project_id: str) -> bool:
    return record.project_scope == "all" or project_id in record.project_scope


def model_enabled(integration: IntegrationCreated, model: str) -> bool:
    enabled = integration.enabled_models
    return enabled == "all" or (isinstance(enabled, list) and model in enabled)


def routable_models(
    state: ConfigState, catalog: Catalog, project_id: str
) -> Iterator[tuple[str, CatalogModel, IntegrationCreated]]:
    """(model string, catalog entry, integration) for every enabled catalog model of every in-scope
    integration, as `<provider-slug>/<model>`; in slug order, then catalog order."""
    for slug in sorted(state.integrations):
        integration = state.integrations[slug]
        if not in_scope(integration, project_id):
            continue
        for entry in catalog.models_of(integration.provider):
            if model_enabled(integration, entry.model):
                yield f"{slug}/{entry.model}", entry, integration
