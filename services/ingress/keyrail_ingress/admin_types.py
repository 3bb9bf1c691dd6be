"""The admin API's request and response bodies (msgspec Structs).

The handlers in admin.py decode requests with these types and encode exactly these types as
responses; the OpenAPI document (openapi.py) is generated from them, so the docs cannot drift
from what the API accepts and returns. Request types forbid unknown fields: a typo is a 400
naming the field. Response fields have no defaults, so every field is always present.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

ProjectScope = Annotated[
    Literal["all"] | list[str],
    Meta(description="`all` projects of the organisation, or a list of project ids."),
]
EnabledModels = Annotated[
    Literal["all", "none"] | list[str],
    Meta(description="Catalog models this integration serves: `all`, `none` or a list of names."),
]
NextCursor = Annotated[str | None, Meta(description="Always null: every list is returned whole.")]


# --- requests -----------------------------------------------------------------------------------


class NewProject(msgspec.Struct, forbid_unknown_fields=True):
    """Creates a project: the unit that API keys belong to and integrations are scoped to."""

    name: Annotated[str, Meta(description="Display name; must not be blank.", examples=["demo"])]


class NewApiKey(msgspec.Struct, forbid_unknown_fields=True):
    """Issues a gateway API key (`kr-…`) for a project."""

    name: Annotated[str, Meta(description="A label for the key, e.g. where it is used.")] = "default"


class NewIntegration(msgspec.Struct, forbid_unknown_fields=True):
    """Attaches a provider account (your own key) or an OpenAI-compatible endpoint.

    The credentials go to Vault/OpenBao only: no response, event, log line or activity row
    ever contains them.
    """

    name: Annotated[str, Meta(description="Display name.")]
    provider: Annotated[
        str,
        Meta(
            description="A provider of the provider registry (e.g. `openai`, `groq`, `anthropic`, "
            "`azure`); a self-hosted server is any of them with a `custom_host`.",
            examples=["openai"],
        ),
    ]
    provider_slug: Annotated[
        str,
        Meta(
            description="Unique name of this integration, `^[a-z0-9][a-z0-9-]{1,62}$`; the "
            "`<provider-slug>/<model>` model string pins it.",
            examples=["openai-prod-general"],
        ),
    ]
    credentials: Annotated[
        dict[str, Any],
        Meta(
            description="Written to Vault only. The fields are the provider's (the registry's): "
            "`api_key` for most; Azure adds `resource_name`, `api_version` and `deployments`; Vertex "
            "takes `service_account_json` and `region`.",
            examples=[{"api_key": "sk-…"}],
        ),
    ]
    project_scope: ProjectScope = "all"
    enabled_models: EnabledModels = "all"
    custom_host: Annotated[
        str,
        Meta(description="Base URL of the upstream API (e.g. `https://my-endpoint.example/v1`)."),
    ] = ""
    api_format: Annotated[
        str,
        Meta(
            description="Wire format of a `custom_host`: `openai`, `anthropic` or `cohere`; by default "
            "the provider's own (OpenAI's when the provider's cannot be self-hosted). Without a custom "
            "host the provider's own format is used."
        ),
    ] = ""
    allow_http: Annotated[
        bool, Meta(description="Allow a plain-HTTP `custom_host` (local endpoints only).")
    ] = False
    description: str = ""
    custom_auth_headers: Annotated[
        dict[str, str] | None,
        Meta(description="Extra headers sent upstream; stored in Vault with the credentials."),
    ] = None


class NewCredentials(msgspec.Struct, forbid_unknown_fields=True):
    """A replacement credential: a new Vault version, used from the next request on."""

    credentials: Annotated[
        dict[str, Any], Meta(description="The provider's credential fields, as at creation.")
    ]
    custom_auth_headers: dict[str, str] | None = None


class NewEnabledModels(msgspec.Struct, forbid_unknown_fields=True):
    """Which catalog models of its provider an integration serves."""

    enabled_models: EnabledModels


# --- responses ----------------------------------------------------------------------------------


class CredentialsSet(msgspec.Struct):
    """The stored credential's metadata: never the credential itself."""

    set: bool
    version: Annotated[int, Meta(description="The new Vault version.")]
    updated_at: Annotated[str, Meta(examples=["2026-12-01T19:30:00Z"])]


class Project(msgspec.Struct):
    """A project."""

    id: Annotated[str, Meta(examples=["proj_3f2a9c1d5e6b7a80"])]
    name: str
    org_id: str


class ProjectList(msgspec.Struct):
    """Every project of the organisation."""

    data: list[Project]
    next_cursor: NextCursor


class ApiKeyCreated(msgspec.Struct):
    """A new gateway API key. `key` is shown only in this response: Keyrail stores its hash."""

    id: Annotated[str, Meta(examples=["key_9b8c7d6e5f4a3b2c"])]
    name: str
    project_id: str
    prefix: Annotated[str, Meta(description="The key's first characters, to recognise it later.")]
    key: Annotated[str, Meta(description="The secret: send it as `Authorization: Bearer kr-…`.")]


class Integration(msgspec.Struct):
    """An integration as the admin API shows it: everything except its credentials."""

    id: str
    name: str
    provider: str
    provider_slug: str
    description: str
    project_scope: ProjectScope
    enabled_models: EnabledModels
    custom_host: Annotated[str | None, Meta(description="null when the provider's default host is used.")]
    api_format: str
    allow_http: bool
    credential_version: Annotated[int, Meta(description="Version of the credentials in Vault.")]


class IntegrationList(msgspec.Struct):
    """Every integration of the organisation."""

    data: list[Integration]
    next_cursor: NextCursor


class ActivityEntry(msgspec.Struct):
    """One activity-log row: a `request` row per client request (written by the ingress) or an
    `attempt` row per upstream call (written by the provider worker)."""

    request_id: str
    kind: Annotated[str, Meta(description="`request` or `attempt`.")]
    attempt: Annotated[int, Meta(description="Attempt number; on a request row, the attempts made.")]
    ts: Annotated[str, Meta(description="When the gateway received the request (ISO 8601, UTC).")]
    org_id: str
    project_id: str
    api_key_id: str
    provider: str
    provider_slug: str
    model: str
    status: Annotated[str, Meta(description="`ok` or `error`.")]
    http_status: int
    error_class: Annotated[str, Meta(description="e.g. `upstream_5xx`, `timeout`, `scope`; empty when ok.")]
    error_message: str
    latency_ms: float
    ttft_ms: Annotated[float, Meta(description="Time to the first streamed chunk (streams only).")]
    overhead_ms: Annotated[float, Meta(description="Time Keyrail added on top of the upstream's.")]
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    cost_usd: float
    tags: list[str]
    fallback_position: int
    stream: Annotated[int, Meta(description="1 for a streamed request, else 0.")]
    cache_write_tokens: Annotated[int, Meta(description="Prompt tokens written to the provider's cache.")]
    usage_source: Annotated[
        str,
        Meta(
            description="`reported`: the tokens are the upstream's; `missing`: it answered without "
            "usage (the zeros are unknown, not free); empty: no upstream answered."
        ),
    ]


class ActivityList(msgspec.Struct):
    """Activity rows, newest first."""

    data: list[ActivityEntry]
    next_cursor: NextCursor


class SqlResult(msgspec.Struct):
    """The result of a read-only SQL query over the activity log."""

    columns: list[str]
    rows: Annotated[list[list[Any]], Meta(description="One list of values per row, in `columns` order.")]
    elapsed_ms: Annotated[float, Meta(description="Time the query took, seen from the ingress.")]
