"""The provider registry: which providers exist, how to reach them, what their credentials are.

`providers.json` beside this module is the one list of providers (SPEC §2). The admin API
validates integrations against it, the router picks the worker pool and default base URL from it,
the worker pools and the CLI take their names from it, and the OpenAI-compatible providers'
parameter quirks are data here rather than code. `KEYRAIL_PROVIDERS_OVERRIDE` names a JSON file
of per-provider overrides (e.g. `{"groq": {"base_url": "https://egress.internal/groq/v1"}}`),
for regional endpoints or an egress gateway.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec

from keyrail_common.service_account import ServiceAccountError, check_location, parse_service_account


class Operation(enum.StrEnum):
    CHAT = "chat"
    EMBEDDINGS = "embeddings"
    MODELS = "models"


class CredentialKind(enum.StrEnum):
    STRING = "string"  # a non-empty string
    OBJECT = "object"  # a JSON object (e.g. a service-account key file)
    STRING_MAP = "string_map"  # an object of string -> non-empty string
    GOOGLE_SERVICE_ACCOUNT = "google_service_account"  # a service-account JSON key file (service_account.py)
    GOOGLE_LOCATION = "google_location"  # a Vertex AI region, `global`, `us` or `eu`


class CredentialField(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    kind: CredentialKind
    required: bool = True
    description: str = ""
    # False for configuration that travels with the key but names no secret (Azure's resource and
    # api-version): error messages may then say it instead of scrubbing it to "[redacted]".
    secret: bool = True
    # Keys of an object field that name no secret (a service account's project_id, client_email):
    # error messages may say them; every other string inside the object is scrubbed.
    public_keys: frozenset[str] = frozenset()


class Quirks(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How an OpenAI-compatible provider differs from OpenAI's own API."""

    drop_params: frozenset[str] = frozenset()  # parameters it rejects: dropped, not failed
    drop_message_fields: frozenset[str] = frozenset()  # per-message fields it rejects
    # Parameters only some of its models reject, by model-id prefix (xAI's reasoning models).
    model_drop_params: dict[str, frozenset[str]] = {}
    # The (low, high) it accepts `temperature` in; a value outside is clamped (MiniMax rejects 0).
    temperature_range: tuple[float, float] | None = None
    stream_usage: bool = True  # accepts stream_options.include_usage
    # A stream chunk's object carrying usage where the top-level `usage` is absent (Groq: `x_groq`).
    usage_envelope: str = ""
    auth_header: str = "Authorization"
    auth_scheme: str = "Bearer "


class AdapterInfo(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    available: bool  # false: listed so integrations can be saved, but no worker serves it yet
    description: str = ""


class ProviderEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    display_name: str
    adapter: str  # the wire format (a custom host may declare another: its api_format)
    base_url: str
    credentials: tuple[CredentialField, ...]
    operations: frozenset[Operation]
    quirks: Quirks = Quirks()
    media: bool = False  # a media-generation API (images, video): integrations, but no chat
    # Its custom host speaks only its own wire format, not one of `custom_host_formats`: its
    # credential is its own (Vertex's service account, Azure's api-key and deployment map, which
    # no other format's adapter can use).
    custom_host_own_format: bool = False


class _RegistryFile(msgspec.Struct, forbid_unknown_fields=True):
    custom_host_formats: tuple[str, ...]
    adapters: dict[str, AdapterInfo]
    providers: list[ProviderEntry]
    comment: str = ""


class RegistryError(ValueError):
    """The registry file (or an override) is inconsistent; raised at load time, never per request."""


class CredentialError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class ProviderRegistry:
    def __init__(
        self,
        providers: list[ProviderEntry],
        adapters: dict[str, AdapterInfo],
        custom_host_formats: tuple[str, ...],
    ) -> None:
        self._providers = {p.name: p for p in providers}
        self.adapters = adapters
        self.custom_host_formats = custom_host_formats
        self._check()

    def _check(self) -> None:
        if len(self._providers) == 0:
            raise RegistryError("the provider registry lists no providers")
        for fmt in self.custom_host_formats:
            if fmt not in self.adapters:
                raise RegistryError(f"custom host format '{fmt}' is not an adapter")
        for provider in self._providers.values():
            if provider.adapter not in self.adapters:
                raise RegistryError(f"provider '{provider.name}' names unknown adapter '{provider.adapter}'")
            if provider.custom_host_own_format and provider.adapter in self.custom_host_formats:
                raise RegistryError(
                    f"provider '{provider.name}' marks its own format '{provider.adapter}' for custom hosts, "
                    "which every custom host may already speak"
                )

    # -- lookups ---------------------------------------------------------------------------------

    def get(self, name: str) -> ProviderEntry | None:
        return self._providers.get(name)

    def names(self) -> list[str]:
        return sorted(self._providers)

    def entries(self) -> list[ProviderEntry]:
        return [self._providers[name] for name in self.names()]

    def adapter_for(self, provider: str, custom_host: str, api_format: str) -> str:
        """The wire format an integration speaks: its declared api_format on a custom host."""
        entry = self._providers[provider]
        return api_format if custom_host and api_format else entry.adapter

    def default_api_format(self, provider: str) -> str:
        """The api_format of a custom host that declares none: the provider's own when a custom host
        may speak it, else OpenAI's (the format most self-hosted servers speak)."""
        entry = self._providers[provider]
        own = entry.custom_host_own_format or entry.adapter in self.custom_host_formats
        return entry.adapter if own else "openai"

    def api_formats(self, provider: str) -> tuple[str, ...]:
        """The api_formats a custom host of this provider may declare."""
        entry = self._providers[provider]
        return (entry.adapter,) if entry.custom_host_own_format else self.custom_host_formats

    def is_available(self, adapter: str) -> bool:
        info = self.adapters.get(adapter)
        return info is not None and info.available

    def pools(self, available_only: bool = True) -> list[str]:
        """Worker pool names: one pool (NATS queue group) per adapter."""
        return sorted(a for a, info in self.adapters.items() if info.available or not available_only)

    # -- validation ------------------------------------------------------------------------------

    def validate_credentials(
        self, provider: str, credentials: dict[str, Any], allow_http: bool = False
    ) -> None:
        """Raise `CredentialError` naming the first field that is missing, unknown or of the wrong kind.

        Messages name fields only, never values: this text goes back to the caller. `allow_http`
        is the integration's: it also lets a service account's token_uri be plain http.
        """
        entry = self._providers[provider]
        known = {f.name: f for f in entry.credentials}
        for name in credentials:
            if name not in known:
                raise CredentialError(
                    f"credentials.{name}",
                    f"'{provider}' credentials have no field '{name}'; expected: {', '.join(known)}.",
                )
        for field in entry.credentials:
            value = credentials.get(field.name)
            if value is None:
                if field.required:
                    raise CredentialError(
                        f"credentials.{field.name}", f"credentials.{field.name} is required for '{provider}'."
                    )
                continue
            if field.kind in _CHECKED_KINDS:
                try:
                    _CHECKED_KINDS[field.kind](value, f"credentials.{field.name}", allow_http)
                except ServiceAccountError as exc:
                    raise CredentialError(exc.field, str(exc)) from None
            elif not _kind_ok(field.kind, value):
                raise CredentialError(
                    f"credentials.{field.name}",
                    f"credentials.{field.name} must be {_KIND_TEXT[field.kind]}.",
                )


_KIND_TEXT = {
    CredentialKind.STRING: "a non-empty string",
    CredentialKind.OBJECT: "a JSON object",
    CredentialKind.STRING_MAP: "an object mapping names to non-empty strings",
}


# Kinds whose check says which part of the value is wrong (raising ServiceAccountError).
_CHECKED_KINDS: dict[CredentialKind, Callable[[object, str, bool], object]] = {
    CredentialKind.GOOGLE_SERVICE_ACCOUNT: parse_service_account,
    CredentialKind.GOOGLE_LOCATION: lambda value, field, _allow_http: check_location(value, field),
}


def _kind_ok(kind: CredentialKind, value: object) -> bool:
    if kind is CredentialKind.STRING:
        return isinstance(value, str) and bool(value.strip())
    if kind is CredentialKind.OBJECT:
        return isinstance(value, dict) and bool(value)
    return isinstance(value, dict) and all(isinstance(v, str) and v.strip() for v in value.values())


def _apply_overrides(raw: dict[str, Any], overrides: dict[str, Any]) -> None:
    by_name = {p["name"]: p for p in raw["providers"]}
    for name, fields in overrides.items():
        if name not in by_name:
            raise RegistryError(f"override names unknown provider '{name}'")
        if not isinstance(fields, dict):
            raise RegistryError(f"override of '{name}' must be an object")
        if "name" in fields:
            raise RegistryError(f"an override cannot rename provider '{name}'")
        by_name[name].update(fields)


def load_registry(override_file: str = "") -> ProviderRegistry:
    """The shipped registry, with the operator's overrides (a JSON file) applied."""
    raw: dict[str, Any] = msgspec.json.decode(
        resources.files("keyrail_common").joinpath("providers.json").read_bytes()
    )
    if override_file:
        try:
            overrides = msgspec.json.decode(Path(override_file).read_bytes())
        except (OSError, msgspec.DecodeError) as exc:
            raise RegistryError(f"cannot read provider overrides {override_file}: {exc}") from exc
        if not isinstance(overrides, dict):
            raise RegistryError(f"provider overrides {override_file} must be a JSON object")
        _apply_overrides(raw, overrides)
    try:
        parsed = msgspec.convert(raw, type=_RegistryFile)
    except msgspec.ValidationError as exc:
        raise RegistryError(f"invalid provider registry: {exc}") from exc
    return ProviderRegistry(parsed.providers, parsed.adapters, parsed.custom_host_formats)
