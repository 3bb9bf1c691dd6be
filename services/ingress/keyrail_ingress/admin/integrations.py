"""`/admin/v1/integrations`: provider accounts and endpoints; their credentials go to Vault only.

Nothing is half-applied: every check runs first, then the credential is written to Vault (an
orphaned Vault version, left when the event append then loses a race, is never referenced and
harmless), then one event is appended. The provider and the slug of an integration never change;
deleting one disables it: it is no longer routed, its slug stays taken, its activity stays.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from msgspec import UnsetType
from starlette.responses import Response

from keyrail_common.config_events import (
    CredentialsRotated,
    IntegrationCreated,
    IntegrationDisabled,
    IntegrationEnabled,
    IntegrationModelsSet,
    IntegrationUpdated,
)
from keyrail_common.config_state import ConfigState
from keyrail_common.projection import ConcurrencyConflict
from keyrail_common.registry import ProviderEntry
from keyrail_common.security import new_id
from keyrail_common.vault import credential_path
from keyrail_ingress.admin.command import Command, Loaded, admin_route, given, not_found, reenabling
from keyrail_ingress.admin.integration_checks import (
    check_credentials,
    check_endpoint,
    check_models,
    check_provider,
    check_scope,
    check_slug,
    check_tls,
    credential_fingerprint,
    vault_secret,
)
from keyrail_ingress.admin.views import integration_view, iso
from keyrail_ingress.admin_types import (
    CredentialsSet,
    IntegrationList,
    IntegrationPatch,
    NewCredentials,
    NewEnabledModels,
    NewIntegration,
)
from keyrail_ingress.rbac import Target
from keyrail_ingress.responses import error, json_response


def load_integration(state: ConfigState, params: Mapping[str, str]) -> Loaded[IntegrationCreated] | Response:
    slug = params["slug"]
    integration = state.integration(slug)
    if integration is None:
        return not_found(f"integration '{slug}'", "/integrations")
    scope = integration.project_scope
    target = Target(
        projects=None if scope == "all" else frozenset(scope),
        label=f"a project in integration '{slug}''s project_scope",
    )
    return Loaded(integration, target, ("integration", slug))


def _taken(slug: str) -> Response:
    return error(409, f"provider_slug '{slug}' is already taken.", "conflict", "provider_slug")


def _disabled(c: Command[IntegrationCreated, Any]) -> Response | None:
    slug = c.record.provider_slug
    if slug not in c.state.disabled_integrations:
        return None
    return error(
        409,
        f"Integration '{slug}' is disabled and cannot change. Re-enable it first: PATCH "
        f'/admin/v1/integrations/{slug} with {{"disabled": false}}.',
        "integration_disabled",
    )


def _provider(c: Command[IntegrationCreated, Any]) -> ProviderEntry:
    provider = c.ctx.registry.get(c.record.provider)
    assert provider is not None, "an integration's provider is checked at creation"
    return provider


@admin_route("POST", "/integrations", "integration.create", body=NewIntegration)
async def create_integration(c: Command[None, NewIntegration]) -> Response:
    body, ctx = c.body, c.ctx
    refused = check_slug(body.provider_slug)
    if refused is not None:
        return refused
    provider = check_provider(ctx.registry, body.provider)
    if isinstance(provider, Response):
        return provider
    endpoint = check_endpoint(ctx.registry, provider, body.custom_host, body.api_format, body.allow_http)
    if isinstance(endpoint, Response):
        return endpoint
    for refusal in (
        check_credentials(ctx.registry, body.provider, body.credentials, body.allow_http),
        check_tls(body.tls),
        check_scope(c.state, body.project_scope),
        check_models(c.state.catalog, body.provider, body.enabled_models),
    ):
        if refusal is not None:
            return refusal
    if c.state.integration(body.provider_slug) is not None:
        return _taken(body.provider_slug)
    custom_host, api_format = endpoint
    path = credential_path(c.org_id, body.provider_slug)
    version = await ctx.credentials.write(
        path, vault_secret(body.credentials, body.custom_auth_headers, body.tls)
    )
    integration = IntegrationCreated(
        integration_id=new_id("int"),
        org_id=c.org_id,
        name=body.name,
        provider=body.provider,
        provider_slug=body.provider_slug,
        project_scope=body.project_scope,
        enabled_models=body.enabled_models,
        credential_ref=path,
        credential_version=version,
        api_format=api_format,
        custom_host=custom_host,
        allow_http=body.allow_http,
        description=body.description,
        credential_fingerprint=credential_fingerprint(provider, body.credentials),
    )
    try:
        await c.publish(integration, new=True)
    except ConcurrencyConflict:
        return _taken(body.provider_slug)
    return json_response(integration_view(c.state, integration), 201)


@admin_route("GET", "/integrations", "integration.list")
async def list_integrations(c: Command[None, None]) -> Response:
    """An owner sees every integration; anyone else those in the scope of one of their projects."""
    shown = [
        i
        for i in (*c.state.integrations.values(), *c.state.disabled_integrations.values())
        if c.sees(i.project_scope)
    ]
    shown.sort(key=lambda i: i.provider_slug)
    return json_response(
        IntegrationList(data=[integration_view(c.state, i) for i in shown], next_cursor=None)
    )


@admin_route("GET", "/integrations/{slug}", "integration.read", load=load_integration)
async def get_integration(c: Command[IntegrationCreated, None]) -> Response:
    return json_response(integration_view(c.state, c.record))


@admin_route(
    "PATCH",
    "/integrations/{slug}",
    "integration.update",
    load=load_integration,
    body=IntegrationPatch,
    versioned=True,
)
async def update_integration(c: Command[IntegrationCreated, IntegrationPatch]) -> Response:
    """Changes what may change; the endpoint (host, format, allow_http) is checked as at creation."""
    current, patch = c.record, c.body
    slug = current.provider_slug
    enable = reenabling(patch, slug in c.state.disabled_integrations, "integration", f"/integrations/{slug}")
    if isinstance(enable, Response):
        return enable
    if enable:
        await c.publish(IntegrationEnabled(provider_slug=slug))
        return json_response(integration_view(c.state, c.state.integrations[slug]))
    name = given(patch.name, current.name).strip()
    if not name:
        return error(400, "'name' must not be blank.", "invalid_value", "name")
    scope = given(patch.project_scope, current.project_scope)
    host = given(patch.custom_host, current.custom_host)
    # A kept custom host keeps its format; a dropped one falls back to the provider's own.
    api_format = given(patch.api_format, current.api_format if host else "")
    allow_http = given(patch.allow_http, current.allow_http)
    endpoint = check_endpoint(c.ctx.registry, _provider(c), host, api_format, allow_http)
    if isinstance(endpoint, Response):
        return endpoint
    refused = check_scope(c.state, scope)
    if refused is not None:
        return refused
    credential_version = current.credential_version
    if not isinstance(patch.custom_auth_headers, UnsetType):
        # The headers live with the credential in Vault: a new version with the same credential.
        stored = await c.ctx.credentials.read(current.credential_ref, current.credential_version)
        stored.pop("custom_auth_headers", None)
        secret = vault_secret(stored, patch.custom_auth_headers)
        credential_version = await c.ctx.credentials.write(current.credential_ref, secret)
    event = IntegrationUpdated(
        provider_slug=current.provider_slug,
        name=name,
        description=given(patch.description, current.description),
        project_scope=scope,
        custom_host=endpoint[0],
        api_format=endpoint[1],
        allow_http=allow_http,
        credential_version=credential_version,
    )
    if any(getattr(current, f) != getattr(event, f) for f in event.__struct_fields__):
        await c.publish(event)  # a change that changes nothing is no event (and no new version)
    return json_response(integration_view(c.state, c.state.integrations[current.provider_slug]))


@admin_route("DELETE", "/integrations/{slug}", "integration.delete", load=load_integration, versioned=True)
async def disable_integration(c: Command[IntegrationCreated, None]) -> Response:
    """Disables it: requests naming it get `integration_disabled`; its activity rows stay."""
    slug = c.record.provider_slug
    if slug not in c.state.disabled_integrations:
        await c.publish(IntegrationDisabled(provider_slug=slug))
    return json_response(integration_view(c.state, c.state.disabled_integrations[slug]))


@admin_route(
    "PUT",
    "/integrations/{slug}/credentials",
    "integration.rotate_credentials",
    load=load_integration,
    body=NewCredentials,
    versioned=True,
)
async def rotate_credentials(c: Command[IntegrationCreated, NewCredentials]) -> Response:
    """Replace the stored credential (a new Vault version); workers use it from the next request."""
    refused = (
        _disabled(c)
        or check_credentials(c.ctx.registry, c.record.provider, c.body.credentials, c.record.allow_http)
        or check_tls(c.body.tls)
    )
    if refused is not None:
        return refused
    secret = vault_secret(c.body.credentials, c.body.custom_auth_headers, c.body.tls)
    version = await c.ctx.credentials.write(c.record.credential_ref, secret)
    fingerprint = credential_fingerprint(_provider(c), c.body.credentials)
    rotated = CredentialsRotated(
        provider_slug=c.record.provider_slug, credential_version=version, credential_fingerprint=fingerprint
    )
    await c.publish(rotated)
    updated_at = iso(time.time()) or ""
    return json_response(
        CredentialsSet(set=True, version=version, updated_at=updated_at, fingerprint=fingerprint or None)
    )


@admin_route(
    "PUT",
    "/integrations/{slug}/models",
    "integration.set_models",
    load=load_integration,
    body=NewEnabledModels,
    versioned=True,
)
async def set_enabled_models(c: Command[IntegrationCreated, NewEnabledModels]) -> Response:
    """Which catalog models of the provider the integration serves: a list, "all" or "none"."""
    refused = _disabled(c) or check_models(
        c.state.catalog, c.record.provider, c.body.enabled_models, c.record.provider_slug
    )
    if refused is not None:
        return refused
    slug = c.record.provider_slug
    await c.publish(IntegrationModelsSet(provider_slug=slug, enabled_models=c.body.enabled_models))
    return json_response(integration_view(c.state, c.state.integrations[slug]))
