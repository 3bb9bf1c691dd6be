"""The admin API's request and response bodies (msgspec Structs).

The handlers in admin/ decode requests with these types and encode exactly these types as
responses; the OpenAPI document (openapi.py) is generated from them, so the docs cannot drift
from what the API accepts and returns. Request types forbid unknown fields: a typo is a 400
naming the field. Response fields have no defaults, so every field is always present.

Changes (`…Patch`) leave a field that is absent (UNSET) as it is. Each carries the `version`
the client read (or the `If-Match` header does): a change decided on an older version is a 409.
`REFUSED_FIELDS` lists fields a change may not carry, with the message that says what to do.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

ProjectScope = Annotated[
    Literal["all"] | list[str],
    Meta(description="`all` projects of the organisation, or a list of project ids."),
]
EnabledModels = Annotated[
    Literal["all", "none"] | list[str],
    Meta(description="Catalog models this integration serves: `all`, `none` or a list of names."),
]
NextCursor = Annotated[
    str | None,
    Meta(description="Pass it as `cursor` for the next page; null on the last (or only) page."),
]
ProjectRole = Literal["project_admin", "developer"]
ProjectRoles = Annotated[
    dict[str, ProjectRole],
    Meta(
        description="Project id -> the user's role in it, `project_admin` or `developer`.",
        examples=[{"proj_3f2a9c1d5e6b7a80": "project_admin", "proj_77aa1c2d3e4f5a6b": "developer"}],
    ),
]
Version = Annotated[
    int,
    Meta(
        ge=0,
        description="The aggregate's version (the stream sequence of its last change). A change "
        "names the version it was decided on, as `version` or `If-Match`.",
        examples=[42],
    ),
]
ExpectedVersion = Annotated[
    Annotated[int, Meta(ge=0)] | None,
    Meta(description="The `version` you read; or send it as the `If-Match` header."),
]
Timestamp = Annotated[str, Meta(description="ISO 8601, UTC.", examples=["2026-12-01T19:30:00Z"])]


# --- requests -----------------------------------------------------------------------------------


class NewProject(msgspec.Struct, forbid_unknown_fields=True):
    """Creates a project: the unit that API keys belong to and integrations are scoped to."""

    name: Annotated[str, Meta(description="Display name; must not be blank.", examples=["demo"])]


class ProjectPatch(msgspec.Struct, forbid_unknown_fields=True):
    """Renames and/or archives a project. An archived project's API keys are refused at once;
    `archived: false` restores them."""

    name: Annotated[str, Meta(description="The new name; must not be blank.")] | UnsetType = UNSET
    archived: bool | UnsetType = UNSET
    version: ExpectedVersion = None


class NewApiKey(msgspec.Struct, forbid_unknown_fields=True):
    """Issues a gateway API key (`kr-…`) for a project."""

    name: Annotated[str, Meta(description="A label for the key, e.g. where it is used.")] = "default"


class NewUser(msgspec.Struct, forbid_unknown_fields=True):
    """Creates a user. They authenticate with admin tokens (`POST …/users/{user_id}/tokens`)."""

    name: Annotated[str, Meta(description="Display name; must not be blank.", examples=["Ada"])]
    email: str = ""
    owner: Annotated[bool, Meta(description="Owner of the whole organisation.")] = False
    project_roles: ProjectRoles = msgspec.field(default_factory=dict)


class UserPatch(msgspec.Struct, forbid_unknown_fields=True):
    """Changes a user. `project_roles` replaces the whole map (send `{}` to remove every role)."""

    name: str | UnsetType = UNSET
    email: str | UnsetType = UNSET
    owner: bool | UnsetType = UNSET
    project_roles: ProjectRoles | UnsetType = UNSET
    disabled: (
        Annotated[
            bool,
            Meta(
                description="`false` re-enables a disabled user (their old tokens stay revoked), alone in "
                "its PATCH; disable with DELETE."
            ),
        ]
        | UnsetType
    ) = UNSET
    version: ExpectedVersion = None


class NewAdminToken(msgspec.Struct, forbid_unknown_fields=True):
    """Issues a personal admin token (`kra-…`) for a user."""

    name: Annotated[str, Meta(description="A label for the token, e.g. where it is used.")] = "default"
    expires_at: Annotated[
        Annotated[datetime, Meta(tz=True)] | None,
        Meta(description="When the token stops working (ISO 8601 with a time zone); null: until revoked."),
    ] = None


class IntegrationTls(msgspec.Struct, forbid_unknown_fields=True):
    """How the worker connects to this integration's https upstream (and token endpoint): stored
    in Vault with the credentials, checked when saved. Verification is always on."""

    ca_bundle_pem: Annotated[
        str,
        Meta(
            description="PEM CA certificates that replace the system trust store for this integration "
            "(an internal CA); empty: the system store."
        ),
    ] = ""
    client_cert_pem: Annotated[
        str, Meta(description="PEM client certificate (chain) for mutual TLS; with client_key_pem.")
    ] = ""
    client_key_pem: Annotated[
        str, Meta(description="The unencrypted PEM private key of client_cert_pem; never returned.")
    ] = ""


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
            "the provider's own (OpenAI's when the provider's cannot be self-hosted). A Vertex AI "
            "integration's custom host speaks `vertex` only, an Azure OpenAI one's `azure`. Without a "
            "custom host the provider's own format is used."
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
    tls: IntegrationTls | None = None


class IntegrationPatch(msgspec.Struct, forbid_unknown_fields=True):
    """Changes what may change about an integration; an absent field stays as it is. The provider
    and the slug never change, and the credentials and enabled models have their own calls."""

    REFUSED_FIELDS: ClassVar[dict[str, str]] = {
        "provider": "The provider of an integration cannot change: create a new integration with the "
        "other provider (POST /admin/v1/integrations) and disable this one.",
        "provider_slug": "An integration's provider_slug cannot change (model strings and the activity "
        "log name it): create a new integration with the new slug and disable this one.",
        "credentials": "Credentials are replaced with PUT /admin/v1/integrations/{slug}/credentials.",
        "enabled_models": "Enabled models are set with PUT /admin/v1/integrations/{slug}/models.",
    }

    name: str | UnsetType = UNSET
    description: str | UnsetType = UNSET
    project_scope: ProjectScope | UnsetType = UNSET
    custom_host: (
        Annotated[
            str,
            Meta(
                description="Base URL of the upstream API, validated as at creation; empty: the "
                "provider's own host."
            ),
        ]
        | UnsetType
    ) = UNSET
    api_format: str | UnsetType = UNSET
    allow_http: bool | UnsetType = UNSET
    disabled: (
        Annotated[
            bool,
            Meta(
                description="`false` re-enables a disabled integration (routed again as it was), alone in "
                "its PATCH; disable with DELETE."
            ),
        ]
        | UnsetType
    ) = UNSET
    custom_auth_headers: (
        Annotated[
            dict[str, str] | None,
            Meta(
                description="Replaces the extra upstream headers (in Vault: a new credential version); "
                "null or {} removes them."
            ),
        ]
        | UnsetType
    ) = UNSET
    version: ExpectedVersion = None


class NewCredentials(msgspec.Struct, forbid_unknown_fields=True):
    """A replacement credential: a new Vault version, used from the next request on."""

    credentials: Annotated[
        dict[str, Any], Meta(description="The provider's credential fields, as at creation.")
    ]
    custom_auth_headers: dict[str, str] | None = None
    tls: Annotated[IntegrationTls | None, Meta(description="Replaces the TLS options too; absent: none.")] = (
        None
    )
    version: ExpectedVersion = None


class NewEnabledModels(msgspec.Struct, forbid_unknown_fields=True):
    """Which catalog models of its provider an integration serves."""

    enabled_models: EnabledModels
    version: ExpectedVersion = None


# --- virtual models and gateway configs (SPEC §4a) ----------------------------------------------


class RetrySpec(msgspec.Struct, forbid_unknown_fields=True):
    """Retries of the same target: exponential backoff with jitter from `backoff_ms`, never sooner
    than the upstream's own retry delay, never past the request's deadline."""

    attempts: Annotated[int, Meta(ge=0, le=10, description="Retries after the first try.")] = 0
    backoff_ms: Annotated[int, Meta(ge=0, description="The first retry's delay; doubled each time.")] = 200


class TargetSpec(msgspec.Struct, forbid_unknown_fields=True):
    """A config's target: `provider_slug` + `model` (a catalog model enabled on that integration,
    `:flex` for its flex tier), or `config` (a nested config, which takes only a `weight`)."""

    provider_slug: str | None = None
    model: str | None = None
    config: Annotated[str | None, Meta(description="The id of a nested gateway config.")] = None
    weight: Annotated[float, Meta(description="`loadbalance`: a share of the traffic; > 0.")] = 1.0
    timeout_ms: Annotated[
        int, Meta(ge=0, description="Per attempt; 0: a share of what is left of the deadline.")
    ] = 0
    retry: RetrySpec | None = None
    override_params: Annotated[
        dict[str, Any],
        Meta(
            description="Merged into the client's body for this target (JSON merge patch).",
            examples=[{"temperature": 0}],
        ),
    ] = msgspec.field(default_factory=dict)


class WhenSpec(msgspec.Struct, forbid_unknown_fields=True):
    """Every field given must match: the request carries all these tags (`x-keyrail-tags` or
    `metadata.tags`), names this model string, streams or not."""

    tags: list[str] = msgspec.field(default_factory=list)
    model: str | None = None
    stream: bool | None = None


class ConditionSpec(msgspec.Struct, forbid_unknown_fields=True):
    """A `conditional` config's rule; the first that matches picks its target."""

    when: WhenSpec
    target: Annotated[int, Meta(description="Index into `targets`.")]


class AliasTarget(msgspec.Struct, forbid_unknown_fields=True):
    """Where a virtual model goes: `provider_slug` + `model`, or `config`."""

    provider_slug: str | None = None
    model: str | None = None
    config: str | None = None


Strategy = Literal["fallback", "loadbalance", "conditional"]
FallbackOnList = Annotated[
    list[int | str] | None,
    Meta(
        description="Upstream statuses (400-599) and failure classes (e.g. `timeout`, `connection`) "
        "after which the next target is tried; null: 429, 5xx, 529, timeout, connection, 401/403. "
        "A caller error (400, 413, 422, context length) never falls back."
    ),
]


class VirtualModelBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    project_scope: ProjectScope = "all"
    target: AliasTarget


class NewVirtualModel(VirtualModelBody, kw_only=True):
    """Creates an alias: a model string that routes to an integration + model or a config."""

    alias: Annotated[
        str,
        Meta(
            description="The model string clients send, `^[a-z0-9][a-z0-9._-]{0,63}$`.",
            examples=["classifier"],
        ),
    ]


class VirtualModelChange(VirtualModelBody, kw_only=True):
    """Replaces a virtual model's scope and target (the alias is the path's)."""

    version: ExpectedVersion = None


class GatewayConfigBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    project_scope: ProjectScope = "all"
    strategy: Strategy
    targets: list[TargetSpec]
    fallback_on: FallbackOnList = None
    conditions: list[ConditionSpec] = msgspec.field(default_factory=list)
    default_target: Annotated[
        int, Meta(description="`conditional`: the target when no condition matches.")
    ] = 0


class NewGatewayConfig(GatewayConfigBody, kw_only=True):
    """Creates a routing policy; clients use it with `x-keyrail-config: <id>` or a virtual model."""

    id: Annotated[str, Meta(description="`^[a-z0-9][a-z0-9-]{1,62}$`.", examples=["classifier-chain"])]


class GatewayConfigChange(GatewayConfigBody, kw_only=True):
    """Replaces a gateway config whole (the id is the path's)."""

    version: ExpectedVersion = None


# --- responses ----------------------------------------------------------------------------------


class CredentialsSet(msgspec.Struct):
    """The stored credential's metadata: never the credential itself."""

    set: bool
    version: Annotated[int, Meta(description="The new Vault version.")]
    updated_at: Annotated[str, Meta(examples=["2026-12-01T19:30:00Z"])]
    fingerprint: Annotated[
        str | None, Meta(description="`…` and the key's last four characters.", examples=["…3f9a"])
    ]


class Project(msgspec.Struct):
    """A project."""

    id: Annotated[str, Meta(examples=["proj_3f2a9c1d5e6b7a80"])]
    name: str
    org_id: str
    archived: Annotated[bool, Meta(description="Its API keys are refused while archived.")]
    version: Version


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


class ApiKey(msgspec.Struct):
    """A gateway API key as listed: never its secret."""

    id: Annotated[str, Meta(examples=["key_9b8c7d6e5f4a3b2c"])]
    name: str
    project_id: str
    prefix: Annotated[str, Meta(description="The key's first characters, to recognise it.")]
    created_by: Annotated[str, Meta(description="The user id that created it.")]
    created_at: Timestamp
    last_used_at: Annotated[
        str | None,
        Meta(
            description="The newest request made with it, from the activity log (so a few seconds "
            "behind, and null when the audit service does not answer); null when never used."
        ),
    ]
    revoked: bool
    version: Version


class ApiKeyList(msgspec.Struct):
    """A project's API keys, revoked ones included."""

    data: list[ApiKey]
    next_cursor: NextCursor


class User(msgspec.Struct):
    """A user and their roles."""

    id: Annotated[str, Meta(examples=["user_5e6f7a8b9c0d1e2f"])]
    name: str
    email: str
    owner: bool
    project_roles: ProjectRoles
    disabled: Annotated[bool, Meta(description="A disabled user's tokens are refused.")]
    created_at: Timestamp
    version: Version


class UserList(msgspec.Struct):
    """Every user of the organisation, disabled ones included."""

    data: list[User]
    next_cursor: NextCursor


class AdminTokenCreated(msgspec.Struct):
    """A new admin token. `token` is shown only in this response: Keyrail stores its hash."""

    id: Annotated[str, Meta(examples=["tok_0a1b2c3d4e5f6a7b"])]
    user_id: str
    name: str
    prefix: str
    expires_at: Annotated[str | None, Meta(description="null: until revoked.")]
    token: Annotated[str, Meta(description="The secret: send it as `Authorization: Bearer kra-…`.")]


class AdminToken(msgspec.Struct):
    """An admin token as listed: never its secret."""

    id: Annotated[str, Meta(examples=["tok_0a1b2c3d4e5f6a7b"])]
    user_id: str
    name: str
    prefix: Annotated[str, Meta(description="The token's first characters (empty for the first owner's).")]
    created_at: Timestamp
    expires_at: str | None
    revoked: bool
    version: Version


class AdminTokenList(msgspec.Struct):
    """A user's admin tokens, revoked ones included."""

    data: list[AdminToken]
    next_cursor: NextCursor


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
    credential_fingerprint: Annotated[
        str | None,
        Meta(
            description="`…` and the last four characters of the stored key, to tell keys apart; "
            "null when the key is too short to show any of it.",
            examples=["…3f9a"],
        ),
    ]
    disabled: Annotated[bool, Meta(description="Deleted: no longer routed; its activity stays.")]
    version: Version


class IntegrationList(msgspec.Struct):
    """The integrations the caller may see: every one for an owner, those in scope of their
    projects for anyone else; disabled ones included."""

    data: list[Integration]
    next_cursor: NextCursor


class VirtualModel(msgspec.Struct):
    """A virtual model."""

    alias: str
    project_scope: ProjectScope
    target: AliasTarget
    version: Version


class VirtualModelList(msgspec.Struct):
    """The virtual models the caller may see: every one for an owner, those in scope of their
    projects for anyone else."""

    data: list[VirtualModel]
    next_cursor: NextCursor


class GatewayConfig(msgspec.Struct):
    """A gateway config."""

    id: str
    project_scope: ProjectScope
    strategy: Strategy
    targets: list[TargetSpec]
    fallback_on: FallbackOnList
    conditions: list[ConditionSpec]
    default_target: int
    version: Version


class GatewayConfigList(msgspec.Struct):
    """The gateway configs the caller may see, by id."""

    data: list[GatewayConfig]
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
    cost_usd: Annotated[
        Decimal | None,
        Meta(
            description="Exact USD, as a decimal string; null when unpriced (a price or the usage "
            "is unknown), never a guessed 0. A request row's cost is the sum of its billed attempts."
        ),
    ]
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
    cost_status: Annotated[
        str, Meta(description="`priced` or `unpriced`; empty on rows written before exact costing.")
    ]
    price_version: Annotated[str, Meta(description="Which price the cost was computed with.")]
    credential_version: Annotated[
        int, Meta(description="Attempt rows: the integration's credential version the call used; else 0.")
    ]
    config_id: Annotated[str, Meta(description="The gateway config that routed the request; empty: none.")]
    virtual_model: Annotated[str, Meta(description="The virtual model alias the request named; empty: none.")]


class ActivityList(msgspec.Struct):
    """Activity rows, newest first."""

    data: list[ActivityEntry]
    next_cursor: Annotated[
        str | None,
        Meta(description="Opaque: send it as `cursor` (same filters) for the next page; null on the last."),
    ]


class CostTokens(msgspec.Struct):
    """Tokens by kind, in OpenAI's semantics: `prompt` counts cache reads and writes too,
    `completion` counts reasoning too."""

    prompt: int
    completion: int
    cached: int
    cache_write: int
    reasoning: int


class CostGroup(msgspec.Struct):
    """One group of a cost report: its client requests over the period."""

    key: Annotated[str, Meta(description="The slug, model, project id, day (YYYY-MM-DD) or tag.")]
    requests: int
    errors: Annotated[int, Meta(description="Requests answered with an error.")]
    error_rate: Annotated[float, Meta(description="errors / requests.")]
    unpriced: Annotated[
        int,
        Meta(description="Requests with no known price or usage: not in `cost_usd`, never counted as $0."),
    ]
    tokens: CostTokens
    cost_usd: Annotated[Decimal, Meta(description="Exact USD of the priced requests, as a decimal string.")]


class CostReport(msgspec.Struct):
    """Cost per group over whole UTC days, from the daily rollups."""

    group_by: Annotated[str, Meta(description="`slug`, `model`, `project`, `day` or `tag`.")]
    since: Annotated[str, Meta(description="The first day counted (YYYY-MM-DD, UTC).")]
    until: Annotated[str | None, Meta(description="The first day not counted; null: through today.")]
    data: list[CostGroup]
    next_cursor: NextCursor


class SqlResult(msgspec.Struct):
    """The result of a read-only SQL query over the activity log."""

    columns: list[str]
    rows: Annotated[list[list[Any]], Meta(description="One list of values per row, in `columns` order.")]
    elapsed_ms: Annotated[float, Meta(description="Time the query took, seen from the ingress.")]


class FieldChange(msgspec.Struct):
    """One field's value before and after a change (null before a creation)."""

    before: Any
    after: Any


class ChangeEntry(msgspec.Struct):
    """One change of the configuration: who, what, when, and the non-secret fields it changed.
    Secrets never appear: the aggregates as the admin API shows them hold none."""

    seq: Annotated[int, Meta(description="The change's stream sequence: the aggregate's new version.")]
    ts: Timestamp
    actor: Annotated[str, Meta(description="The user id that made the change, or `bootstrap`.")]
    aggregate: Annotated[
        str,
        Meta(
            description="`user`, `admintoken`, `project`, `apikey`, `integration`, `virtualmodel`, "
            "`gatewayconfig` or `org`."
        ),
    ]
    aggregate_id: str
    type: Annotated[
        str, Meta(description="The event, e.g. `IntegrationUpdated`.", examples=["ProjectUpdated"])
    ]
    changes: Annotated[
        dict[str, FieldChange],
        Meta(description="The fields whose value changed; `version` is left out (it always does)."),
    ]


class ChangeList(msgspec.Struct):
    """Changes, newest first; `next_cursor` fetches the older ones (null on the last page)."""

    data: list[ChangeEntry]
    next_cursor: NextCursor


class Circuit(msgspec.Struct):
    """One model's circuit breaker on this integration."""

    model: str
    state: Annotated[
        Literal["closed", "open", "half_open"],
        Meta(description="`open`: skipped until `next_probe_at`; `half_open`: one probe may go through."),
    ]
    failures: Annotated[int, Meta(description="The current run of failures that count towards it.")]
    last_failure_class: Annotated[str, Meta(examples=["upstream_5xx"])]
    last_failure_message: str
    last_failure_at: str | None
    opened_at: str | None
    next_probe_at: str | None


class IntegrationHealth(msgspec.Struct):
    """The circuit breakers of an integration's models, as the routers hold them. A model that is
    not listed had no failure that counts in the breaker window: its circuit is closed."""

    provider_slug: str
    data: list[Circuit]
