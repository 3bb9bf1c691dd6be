"""The admin API in the OpenAPI document: integrations, the activity log, the change history."""

from __future__ import annotations

from decimal import Decimal

from keyrail_common.failures import FailureClass
from keyrail_common.messages import CostGroupBy, SqlQuery
from keyrail_ingress.admin_types import (
    ActivityEntry,
    ActivityList,
    ChangeEntry,
    ChangeList,
    Circuit,
    CostGroup,
    CostReport,
    CostTokens,
    CredentialsSet,
    FieldChange,
    Integration,
    IntegrationHealth,
    IntegrationList,
    IntegrationPatch,
    NewCredentials,
    NewEnabledModels,
    NewIntegration,
    SqlResult,
)
from keyrail_ingress.openapi_admin import (
    EXAMPLE_KEY,
    EXAMPLE_PROJECT,
    EXAMPLE_PROJECT_ID,
    EXAMPLE_TS,
    EXAMPLE_USER,
    admin_operation,
    not_found_reply,
    path_parameter,
)
from keyrail_ingress.openapi_parts import (
    Operation,
    error_example,
    error_reply,
    json_reply,
    query_parameter,
    request_body,
)

AUDIT_503 = error_reply(
    "The audit service is not running (`audit_unavailable`), or its ClickHouse cannot be reached "
    "(`store_unavailable`: the activity rows wait in JetStream until it is).",
    error_example(
        503, "The audit service is not answering; start it with: keyrail audit", "audit_unavailable"
    ),
)
EXAMPLE_INTEGRATION = Integration(
    id="int_5d4c3b2a19087f6e",
    name="Local mock",
    provider="openai",
    provider_slug="openai-dev-mock",
    description="",
    project_scope="all",
    enabled_models=["gpt-4o-mini"],
    custom_host="http://127.0.0.1:9900/v1",
    api_format="openai",
    allow_http=True,
    credential_version=1,
    credential_fingerprint="…3f9a",
    disabled=False,
    version=21,
)
_SLUG = path_parameter("slug", "The integration's provider slug.", EXAMPLE_INTEGRATION.provider_slug)
_INTEGRATION_404 = not_found_reply(f"integration '{EXAMPLE_INTEGRATION.provider_slug}'", "/integrations")
_DISABLED_409 = error_reply(
    "The integration is disabled, or it changed since the version sent.",
    error_example(
        409,
        "Integration 'openai-dev-mock' is disabled and cannot change; create a new integration instead.",
        "integration_disabled",
    ),
)
EXAMPLE_ACTIVITY = ActivityEntry(
    request_id="req_6f1d0c2b3a4e5f60718293a4",
    kind="request",
    attempt=1,
    ts="2026-12-01T19:41:05.123000+00:00",
    org_id=EXAMPLE_PROJECT.org_id,
    project_id=EXAMPLE_PROJECT.id,
    api_key_id=EXAMPLE_KEY.id,
    provider="openai",
    provider_slug="openai-dev-mock",
    model="gpt-4o-mini",
    status="ok",
    http_status=200,
    error_class="",
    error_message="",
    latency_ms=3.412,
    ttft_ms=0.0,
    overhead_ms=0.912,
    prompt_tokens=9,
    completion_tokens=12,
    cached_tokens=0,
    reasoning_tokens=0,
    cost_usd=Decimal("0.0000086"),
    tags=["batch-eval"],
    fallback_position=0,
    stream=0,
    cache_write_tokens=0,
    usage_source="reported",
    cost_status="priced",
    price_version="catalog",
    credential_version=0,
    config_id="",
    virtual_model="",
)
EXAMPLE_COSTS = CostReport(
    group_by="slug",
    since="2026-11-01",
    until="2026-12-01",
    data=[
        CostGroup(
            key="openai-dev-mock",
            requests=1200,
            errors=6,
            error_rate=0.005,
            unpriced=0,
            tokens=CostTokens(prompt=96_000, completion=48_000, cached=12_000, cache_write=0, reasoning=0),
            cost_usd=Decimal("0.0432"),
        )
    ],
    next_cursor=None,
)
EXAMPLE_CHANGE = ChangeEntry(
    seq=22,
    ts=EXAMPLE_TS,
    actor=EXAMPLE_USER.id,
    aggregate="integration",
    aggregate_id=EXAMPLE_INTEGRATION.provider_slug,
    type="IntegrationUpdated",
    changes={"project_scope": FieldChange(before="all", after=[EXAMPLE_PROJECT_ID])},
)

INTEGRATION_OPERATIONS: tuple[Operation, ...] = (
    admin_operation(
        "POST",
        "/admin/v1/integrations",
        "createIntegration",
        "Integrations",
        "Create an integration",
        "integration.create",
        (201, json_reply("The new integration (without its credentials).", Integration, EXAMPLE_INTEGRATION)),
        description="Attaches a provider account or an OpenAI-compatible endpoint. The credentials "
        "are written to Vault/OpenBao first, then the integration is published; they are never "
        "returned.",
        request=request_body(
            NewIntegration(
                name="Local mock",
                provider="openai",
                provider_slug="openai-dev-mock",
                credentials={"api_key": "sk-my-upstream-key"},
                project_scope="all",
                enabled_models=["gpt-4o-mini"],
                custom_host="http://127.0.0.1:9900/v1",
                allow_http=True,
            )
        ),
        errors={
            400: error_reply(
                "Invalid body or value (slug pattern, api_format, unknown provider, project or model, "
                "missing credentials.api_key, rejected custom_host); `param` names the field.",
                error_example(
                    400, "credentials.api_key is required.", "invalid_value", "credentials.api_key"
                ),
            ),
            409: error_reply(
                "The provider_slug is taken (by a disabled integration too).",
                error_example(
                    409, "provider_slug 'openai-dev-mock' is already taken.", "conflict", "provider_slug"
                ),
            ),
        },
    ),
    admin_operation(
        "GET",
        "/admin/v1/integrations",
        "listIntegrations",
        "Integrations",
        "List integrations",
        "integration.list",
        (
            200,
            json_reply(
                "The integrations the caller may see (without credentials).",
                IntegrationList,
                IntegrationList(data=[EXAMPLE_INTEGRATION], next_cursor=None),
            ),
        ),
    ),
    admin_operation(
        "GET",
        "/admin/v1/integrations/{slug}",
        "getIntegration",
        "Integrations",
        "Read an integration",
        "integration.read",
        (200, json_reply("The integration (without credentials).", Integration, EXAMPLE_INTEGRATION)),
        parameters=(_SLUG,),
        errors={404: _INTEGRATION_404},
    ),
    admin_operation(
        "GET",
        "/admin/v1/integrations/{slug}/health",
        "getIntegrationHealth",
        "Integrations",
        "Read the circuit breakers of an integration's models",
        "integration.read",
        (
            200,
            json_reply(
                "The circuits the routers hold for this integration (models not listed are closed).",
                IntegrationHealth,
                IntegrationHealth(
                    provider_slug="openai-dev-mock",
                    data=[
                        Circuit(
                            model="gpt-4o-mini",
                            state="open",
                            failures=5,
                            last_failure_class="upstream_5xx",
                            last_failure_message="upstream said 502: Bad Gateway",
                            last_failure_at="2026-12-01T19:30:04Z",
                            opened_at="2026-12-01T19:30:04Z",
                            next_probe_at="2026-12-01T19:30:34Z",
                        )
                    ],
                ),
            ),
        ),
        description="A target (integration + model) whose attempts fail in a row (rate limit, "
        "overload, 5xx, timeout, connection, rejected credential, quota: `KEYRAIL_BREAKER_FAILURES` "
        "within `KEYRAIL_BREAKER_WINDOW_S`) is skipped for `KEYRAIL_BREAKER_COOLDOWN_S`, then one "
        "probe request goes through: its success closes the circuit, its failure opens it again. "
        "The state is derived from the activity stream, so every router replica holds the same.",
        parameters=(_SLUG,),
        errors={
            404: _INTEGRATION_404,
            503: error_reply(
                "No router is answering.",
                error_example(
                    503, "No router is answering; start one with: keyrail router", "router_unavailable"
                ),
            ),
        },
    ),
    admin_operation(
        "PATCH",
        "/admin/v1/integrations/{slug}",
        "updateIntegration",
        "Integrations",
        "Change an integration",
        "integration.update",
        (200, json_reply("The integration as it is now.", Integration, EXAMPLE_INTEGRATION)),
        description="Absent fields stay as they are. `custom_host`, `api_format` and `allow_http` are "
        "checked together as at creation; new `custom_auth_headers` are written to Vault (a new "
        "credential version with the same credential). The provider and the slug cannot change: "
        "create a new integration instead.",
        parameters=(_SLUG,),
        request=request_body(IntegrationPatch(project_scope=[EXAMPLE_PROJECT_ID], version=21)),
        errors={
            400: error_reply(
                "Invalid body or value, or a field that cannot change (`provider`, `provider_slug`) or "
                "has its own call; `param` names it.",
                error_example(
                    400, IntegrationPatch.REFUSED_FIELDS["provider"], "immutable_field", "provider"
                ),
            ),
            404: _INTEGRATION_404,
            409: _DISABLED_409,
        },
        versioned="integration",
    ),
    admin_operation(
        "DELETE",
        "/admin/v1/integrations/{slug}",
        "disableIntegration",
        "Integrations",
        "Disable (delete) an integration",
        "integration.delete",
        (200, json_reply("The integration, disabled (again: no change).", Integration, EXAMPLE_INTEGRATION)),
        description="It is no longer routed: a request naming it gets `404 integration_disabled`. Its "
        "slug stays taken and its activity rows stay queryable.",
        parameters=(_SLUG,),
        errors={404: _INTEGRATION_404},
        versioned="integration",
    ),
    admin_operation(
        "PUT",
        "/admin/v1/integrations/{slug}/credentials",
        "rotateCredentials",
        "Integrations",
        "Rotate an integration's credentials",
        "integration.rotate_credentials",
        (
            200,
            json_reply(
                "The stored credential's new version.",
                CredentialsSet,
                CredentialsSet(set=True, version=2, updated_at=EXAMPLE_TS, fingerprint="…7c2e"),
            ),
        ),
        description="Writes the replacement to Vault/OpenBao as a new version; workers use it from the "
        "next request on. Rotate at the provider first, then here, then send a request to verify. "
        "The credential is never returned, only its version and the key's last four characters.",
        parameters=(_SLUG,),
        request=request_body(NewCredentials(credentials={"api_key": "sk-my-new-upstream-key"}, version=21)),
        errors={
            400: error_reply(
                "Invalid body or credential fields (the provider's); `param` names the field.",
                error_example(
                    400,
                    "credentials.api_key is required for 'openai'.",
                    "invalid_value",
                    "credentials.api_key",
                ),
            ),
            404: _INTEGRATION_404,
            409: _DISABLED_409,
        },
        versioned="integration",
    ),
    admin_operation(
        "PUT",
        "/admin/v1/integrations/{slug}/models",
        "setEnabledModels",
        "Integrations",
        "Set an integration's enabled models",
        "integration.set_models",
        (200, json_reply("The integration as it is now.", Integration, EXAMPLE_INTEGRATION)),
        description='A list of catalog models of the integration\'s provider, `"all"` or `"none"`. '
        "Routing follows from the next request on. A model outside the catalog is a custom model: "
        "register it with `POST /admin/v1/integrations/{slug}/custom-models` (it needs no enabling).",
        parameters=(_SLUG,),
        request=request_body(NewEnabledModels(enabled_models=["gpt-4o-mini", "gpt-4o"], version=21)),
        errors={
            400: error_reply(
                "A model that is not in the provider's catalog, or an invalid body.",
                error_example(
                    400,
                    "enabled_models names models not in the catalog for provider 'openai': gpt-unknown. "
                    "Enable catalog models only (GET /admin/v1/catalog?provider=openai lists them); register "
                    "any other model as a custom model with POST /admin/v1/integrations/openai-dev-mock/"
                    "custom-models (custom models need no enabling).",
                    "invalid_value",
                    "enabled_models",
                ),
            ),
            404: _INTEGRATION_404,
            409: _DISABLED_409,
        },
        versioned="integration",
    ),
)

ACTIVITY_OPERATIONS: tuple[Operation, ...] = (
    admin_operation(
        "GET",
        "/admin/v1/activity",
        "listActivity",
        "Activity",
        "Read the activity log",
        "activity.read",
        (
            200,
            json_reply(
                "The matching rows.", ActivityList, ActivityList(data=[EXAMPLE_ACTIVITY], next_cursor=None)
            ),
        ),
        description="Rows of the activity log, newest first: one `request` row per client request and "
        "one `attempt` row per upstream call. Rows appear once the audit service has written them "
        "(usually within a second or two). Pages follow the order (ts, request_id, kind, attempt), "
        "newest first; `next_cursor` (null on the last page) asks for the next one, with the same "
        "filters. A project role sees its own projects' rows only.",
        parameters=(
            query_parameter(
                "request_id",
                "Only the rows of this request (its `x-keyrail-request-id`).",
                {"type": "string"},
                EXAMPLE_ACTIVITY.request_id,
            ),
            query_parameter(
                "project_id", "Only this project's rows.", {"type": "string"}, EXAMPLE_PROJECT.id
            ),
            query_parameter(
                "provider_slug",
                "Only the rows of this integration (a provider slug).",
                {"type": "string"},
                "openai-dev-mock",
            ),
            query_parameter(
                "model", "Only rows served by this upstream model.", {"type": "string"}, "gpt-4o-mini"
            ),
            query_parameter("status", "Only `ok` or only `error` rows.", {"enum": ["ok", "error"]}, "error"),
            query_parameter(
                "failure_class",
                "Only rows that failed this way (the failure vocabulary's class).",
                {"enum": [c.value for c in FailureClass]},
                "rate_limit",
            ),
            query_parameter("tag", "Only rows carrying this tag.", {"type": "string"}, "batch-eval"),
            query_parameter(
                "since",
                "Rows at or after this time: ISO 8601 (UTC unless it names a zone) or Unix seconds.",
                {"type": "string"},
                "2026-12-01T00:00:00Z",
            ),
            query_parameter(
                "until",
                "Rows before this time, written like `since`.",
                {"type": "string"},
                "2026-12-02T00:00:00Z",
            ),
            query_parameter(
                "limit",
                "Rows per page, 1 to 1000.",
                {"type": "integer", "default": 100, "minimum": 1, "maximum": 1000},
                100,
            ),
            query_parameter(
                "cursor",
                "The `next_cursor` of the previous page: the rows after its last one.",
                {"type": "string"},
                "lM8AAAGa23TvY7tyZXFfMDE5YWRlZjAxMjM0NTY3ODlhYmNkZWanYXR0ZW1wdAE",
            ),
        ),
        errors={
            400: error_reply(
                "A filter is not valid (named in `param`), or a parameter is unknown.",
                error_example(
                    400, "'status' must be one of error, ok; got 'failed'.", "invalid_value", "status"
                ),
            ),
            503: AUDIT_503,
        },
    ),
    admin_operation(
        "GET",
        "/admin/v1/costs",
        "getCosts",
        "Activity",
        "Cost per integration, model, project, day or tag",
        "costs.read",
        (200, json_reply("One entry per group, in key order.", CostReport, EXAMPLE_COSTS)),
        description="Client requests (request rows), tokens by kind, exact cost, unpriced requests and "
        "the error rate per group, over whole UTC days, from the daily rollups the audit service keeps "
        "as rows arrive. A project role sees its own projects' requests only.",
        parameters=(
            query_parameter(
                "group_by",
                "What a group is: an integration (`slug`), upstream `model`, `project`, `day` or `tag` "
                '(an untagged request counts under the tag ""; a request with two tags in both).',
                {"enum": [g.value for g in CostGroupBy]},
                "slug",
            ),
            query_parameter(
                "since",
                "The first day counted (its UTC day): ISO 8601 or Unix seconds. Default: 29 days ago.",
                {"type": "string"},
                "2026-11-01",
            ),
            query_parameter(
                "until",
                "The first day not counted, written like `since`. Default: through today.",
                {"type": "string"},
                "2026-12-01",
            ),
        ),
        errors={
            400: error_reply(
                "`group_by` missing or not one of the groups, a bad time, or an unknown parameter.",
                error_example(
                    400,
                    "'group_by' must be one of day, model, project, slug, tag; got 'provider'.",
                    "invalid_value",
                    "group_by",
                ),
            ),
            503: AUDIT_503,
        },
    ),
    admin_operation(
        "POST",
        "/admin/v1/sql",
        "runSql",
        "Activity",
        "Run read-only SQL over the activity log",
        "sql.query",
        (
            200,
            json_reply(
                "The columns and rows.",
                SqlResult,
                SqlResult(
                    columns=["provider_slug", "count()", "sum(cost_usd)"],
                    rows=[["openai-dev-mock", 42, "0.00036"]],
                    elapsed_ms=4.21,
                ),
            ),
        ),
        description="What `keyrail sql` calls. The query runs with ClickHouse's `readonly` setting; "
        "the table is `keyrail.activity` (use `FINAL`).",
        request=request_body(
            SqlQuery(
                sql="SELECT provider_slug, count(), sum(cost_usd) FROM keyrail.activity FINAL "
                "GROUP BY provider_slug"
            )
        ),
        errors={
            400: error_reply(
                "Invalid body, or the query failed (syntax, unknown column, not read-only).",
                error_example(400, "Code: 62. DB::Exception: Syntax error: …", "query_failed"),
            ),
            503: AUDIT_503,
        },
    ),
    admin_operation(
        "GET",
        "/admin/v1/events",
        "listEvents",
        "Activity",
        "Read the change history",
        "events.read",
        (
            200,
            json_reply(
                "The matching changes, newest first.",
                ChangeList,
                ChangeList(data=[EXAMPLE_CHANGE], next_cursor=None),
            ),
        ),
        description="Who changed what and when: one entry per change of the configuration, with the "
        "fields it changed, before and after. Never a secret: credentials, tokens and keys are not "
        "fields of what the admin API shows (a rotation shows as `credential_version`). A project "
        "role sees the changes of its projects, their keys and the integrations in their scope.",
        parameters=(
            query_parameter(
                "aggregate",
                "`user`, `admintoken`, `project`, `apikey`, `integration` or `org`, optionally with `/<id>`.",
                {"type": "string"},
                "integration/openai-dev-mock",
            ),
            query_parameter(
                "actor", "Only the changes of this user id.", {"type": "string"}, EXAMPLE_USER.id
            ),
            query_parameter(
                "since",
                "Only changes at or after this time: ISO 8601 or Unix seconds.",
                {"type": "string"},
                "2026-12-01T00:00:00Z",
            ),
            query_parameter(
                "limit", "At most this many (1 to 1000).", {"type": "integer", "default": 100}, 100
            ),
            query_parameter(
                "cursor",
                "The `next_cursor` of the previous page: the changes older than it.",
                {"type": "string"},
                "kSo",
            ),
        ),
        errors={
            400: error_reply(
                "A parameter is malformed; `param` names it.",
                error_example(
                    400,
                    "'since' must be ISO 8601 (2026-12-01T19:30:00Z) or Unix seconds.",
                    "invalid_value",
                    "since",
                ),
            ),
        },
    ),
)
