"""The checks an integration's settings pass, at creation and at every change alike.

Each returns the 400 that names the field at fault (or the normalised value); none writes
anything, so the handlers run them all before the first Vault write or event.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import msgspec
from starlette.responses import Response

from keyrail_common.catalog import Catalog
from keyrail_common.config_state import ConfigState
from keyrail_common.hosts import HostRejected, validate_custom_host
from keyrail_common.registry import CredentialError, ProviderEntry, ProviderRegistry
from keyrail_common.tls import TlsOptions, TlsOptionsError, tls_context
from keyrail_ingress.admin_types import IntegrationTls
from keyrail_ingress.responses import error

SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


def _invalid(message: str, param: str) -> Response:
    return error(400, message, "invalid_value", param)


def check_slug(slug: str) -> Response | None:
    if SLUG_PATTERN.match(slug):
        return None
    return _invalid(
        "provider_slug must match ^[a-z0-9][a-z0-9-]{1,62}$ (e.g. openai-prod-general).", "provider_slug"
    )


def check_provider(registry: ProviderRegistry, name: str) -> ProviderEntry | Response:
    provider = registry.get(name)
    if provider is not None:
        return provider
    return _invalid(
        f"Unknown provider '{name}'. Known: {', '.join(registry.names())}; a self-hosted server is any "
        "of them with a custom_host and its api_format.",
        "provider",
    )


def check_endpoint(
    registry: ProviderRegistry, provider: ProviderEntry, custom_host: str, api_format: str, allow_http: bool
) -> tuple[str, str] | Response:
    """The normalised (custom host, api format): a custom host speaks its declared format (by
    default the provider's own when it can be self-hosted, else OpenAI's; only its own for a
    provider whose credential no other format takes, Vertex's); without one, the provider's host
    speaks the provider's format."""
    if not custom_host:
        if api_format and api_format != provider.adapter:
            return _invalid(
                f"api_format applies to custom hosts only; '{provider.name}' speaks '{provider.adapter}'.",
                "api_format",
            )
        return "", provider.adapter
    chosen = api_format or registry.default_api_format(provider.name)
    allowed = registry.api_formats(provider.name)
    if chosen not in allowed:
        if provider.custom_host_own_format:
            return _invalid(
                f"A '{provider.name}' custom_host speaks '{provider.adapter}' only (its credentials are "
                f"its own): leave api_format out or set it to '{provider.adapter}'.",
                "api_format",
            )
        return _invalid(f"api_format must be one of {', '.join(allowed)}.", "api_format")
    try:
        return validate_custom_host(custom_host, allow_http), chosen
    except HostRejected as exc:
        return _invalid(str(exc), "custom_host")


def check_credentials(
    registry: ProviderRegistry, provider: str, credentials: dict[str, Any], allow_http: bool
) -> Response | None:
    try:
        registry.validate_credentials(provider, credentials, allow_http)
    except CredentialError as exc:
        return _invalid(str(exc), exc.field)
    return None


def check_scope(state: ConfigState, scope: Literal["all"] | list[str]) -> Response | None:
    if not isinstance(scope, list):
        return None
    unknown = [p for p in scope if p not in state.projects]
    if unknown:
        return _invalid(f"Unknown project ids in project_scope: {unknown}", "project_scope")
    return None


def check_models(
    catalog: Catalog, provider: str, enabled: Literal["all", "none"] | list[str], slug: str = ""
) -> Response | None:
    """Only catalog models of the provider; anything else is a custom model, registered on its own
    route (once the integration exists: `slug` is empty while it is being created)."""
    if not isinstance(enabled, list):
        return None
    unknown = [m for m in enabled if catalog.get(provider, m) is None]
    if unknown:
        where = f"/admin/v1/integrations/{slug or '<provider_slug>'}/custom-models"
        return _invalid(
            f"enabled_models names models not in the catalog for provider '{provider}': "
            f"{', '.join(unknown)}. Enable catalog models only (GET /admin/v1/catalog?provider={provider} "
            f"lists them); register any other model as a custom model with POST {where}"
            f"{'' if slug else ' once the integration exists'} (custom models need no enabling).",
            "enabled_models",
        )
    return None


def check_tls(tls: IntegrationTls | None) -> Response | None:
    """The TLS options make a verifying context (the worker builds the same one); the 400 names the
    field, never its PEM."""
    if tls is None:
        return None
    try:
        tls_context(TlsOptions(**msgspec.structs.asdict(tls)))
    except TlsOptionsError as exc:
        field, message = exc.as_integration_field()
        return _invalid(message, field)
    return None


_FINGERPRINT_CHARS = 4


def credential_fingerprint(provider: ProviderEntry, credentials: dict[str, Any]) -> str:
    """`…` and the last four characters of the credential's key, as provider consoles show them,
    so an operator can tell which key is stored; "" when the key is too short to give any away.
    (A service-account key is told by the id of its private key, which is no secret.)"""
    for field in provider.credentials:
        value = credentials.get(field.name)
        if isinstance(value, dict):
            value = value.get("private_key_id")
        if field.secret and isinstance(value, str):
            return f"…{value[-_FINGERPRINT_CHARS:]}" if len(value) >= 4 * _FINGERPRINT_CHARS else ""
    return ""


def vault_secret(
    credentials: dict[str, Any], custom_auth_headers: dict[str, str] | None, tls: IntegrationTls | None = None
) -> dict[str, Any]:
    """What Vault stores for an integration: its credential fields, its custom auth headers and
    its TLS options (the worker reads them all in one credential read)."""
    secret: dict[str, Any] = dict(credentials)
    if custom_auth_headers:
        secret["custom_auth_headers"] = custom_auth_headers
    options = {name: pem for name, pem in msgspec.structs.asdict(tls).items() if pem} if tls else {}
    if options:
        secret["tls"] = options
    return secret
