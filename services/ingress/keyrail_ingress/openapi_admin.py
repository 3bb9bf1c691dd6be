"""The admin API's operations in the OpenAPI document (`/admin/v1/...`)."""

from __future__ import annotations

from keyrail_common.messages import SqlQuery
from keyrail_ingress.admin_types import (
    ActivityEntry,
    ActivityList,
    ApiKeyCreated,
    CredentialsSet,
    Integration,
    IntegrationList,
    NewApiKey,
    NewCredentials,
    NewEnabledModels,
    NewIntegration,
    NewProject,
    Project,
    ProjectList,
    SqlResult,
)
from keyrail_ingress.openapi_parts import (
    Operation,
    admin_errors,
    bad_body_example,
    error_example,
    error_reply,
    json_reply,
    query_parameter,
    request_body,
)

AUDIT_503 = error_reply(
    "The audit service is not running.",
    error_example(
        503, "The audit service is not answering; start it with: keyrail audit", "audit_unavailable"
    ),
)


EXAMPLE_PROJECT = Project(id="proj_3f2a9c1d5e6b7a80", name="demo", org_id="org_0a1b2c3d4e5f6a7b")
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
)
_SLUG_PARAMETER = {
    "name": "slug",
    "in": "path",
    "required": True,
    "description": "The integration's provider slug.",
    "schema": {"type": "string"},
    "example": EXAMPLE_INTEGRATION.provider_slug,
}
_INTEGRATION_404 = error_example(
    404, "No integration 'openai-dev-mock'. List them with GET /admin/v1/integrations.", "not_found"
)
EXAMPLE_ACTIVITY = ActivityEntry(
    request_id="req_6f1d0c2b3a4e5f60718293a4",
    kind="request",
    attempt=1,
    ts="2026-12-01T19:41:05.123000+00:00",
    org_id=EXAMPLE_PROJECT.org_id,
    project_id=EXAMPLE_PROJECT.id,
    api_key_id="key_9b8c7d6e5f4a3b2c",
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
    cost_usd=0.0000086,
    tags=["batch-eval"],
    fallback_position=0,
    stream=0,
)

ADMIN_OPERATIONS: tuple[Operation, ...] = (
    Operation(
        method="POST",
        path="/admin/v1/projects",
        operation_id="createProject",
        tag="Projects",
        summary="Create a project",
        auth="admin",
        request=request_body(NewProject(name="demo")),
        responses={
            201: json_reply("The new project.", Project, EXAMPLE_PROJECT),
            **admin_errors(
                e400=error_reply(
                    "Invalid body (unknown or missing field, blank name); `param` names the field.",
                    bad_body_example(NewProject, b'{"nmae": "demo"}'),
                )
            ),
        },
    ),
    Operation(
        method="GET",
        path="/admin/v1/projects",
        operation_id="listProjects",
        tag="Projects",
        summary="List projects",
        auth="admin",
        responses={
            200: json_reply(
                "Every project.", ProjectList, ProjectList(data=[EXAMPLE_PROJECT], next_cursor=None)
            ),
            **admin_errors(),
        },
    ),
    Operation(
        method="POST",
        path="/admin/v1/projects/{project_id}/keys",
        operation_id="createApiKey",
        tag="Projects",
        summary="Create a gateway API key",
        description="The secret `key` is in this response only; Keyrail keeps its hash. Send it as "
        "`Authorization: Bearer kr-…` to the data plane.",
        auth="admin",
        parameters=(
            {
                "name": "project_id",
                "in": "path",
                "required": True,
                "description": "The project the key belongs to.",
                "schema": {"type": "string"},
                "example": EXAMPLE_PROJECT.id,
            },
        ),
        request=request_body(NewApiKey(name="laptop")),
        responses={
            201: json_reply(
                "The new key, with its secret.",
                ApiKeyCreated,
                ApiKeyCreated(
                    id="key_9b8c7d6e5f4a3b2c",
                    name="laptop",
                    project_id=EXAMPLE_PROJECT.id,
                    prefix="kr-Qx3v",
                    key="kr-Qx3v…",
                ),
            ),
            **admin_errors(
                e400=error_reply(
                    "Invalid body; `param` names the field.",
                    bad_body_example(NewApiKey, b'{"name": 7}'),
                ),
                e404=error_reply(
                    "No such project.",
                    error_example(
                        404,
                        f"No project '{EXAMPLE_PROJECT.id}'. List projects with GET /admin/v1/projects.",
                        "not_found",
                    ),
                ),
            ),
        },
    ),
    Operation(
        method="POST",
        path="/admin/v1/integrations",
        operation_id="createIntegration",
        tag="Integrations",
        summary="Create an integration",
        description="Attaches a provider account or an OpenAI-compatible endpoint. The credentials "
        "are written to Vault/OpenBao first, then the integration is published; they are never "
        "returned.",
        auth="admin",
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
        responses={
            201: json_reply(
                "The new integration (without its credentials).", Integration, EXAMPLE_INTEGRATION
            ),
            **admin_errors(
                e400=error_reply(
                    "Invalid body or value (slug pattern, api_format, unknown provider or project, "
                    "missing credentials.api_key, rejected custom_host); `param` names the field.",
                    error_example(
                        400, "credentials.api_key is required.", "invalid_value", "credentials.api_key"
                    ),
                ),
                e409=error_reply(
                    "The provider_slug is taken.",
                    error_example(
                        409, "provider_slug 'openai-dev-mock' is already taken.", "conflict", "provider_slug"
                    ),
                ),
            ),
        },
    ),
    Operation(
        method="GET",
        path="/admin/v1/integrations",
        operation_id="listIntegrations",
        tag="Integrations",
        summary="List integrations",
        auth="admin",
        responses={
            200: json_reply(
                "Every integration (without credentials).",
                IntegrationList,
                IntegrationList(data=[EXAMPLE_INTEGRATION], next_cursor=None),
            ),
            **admin_errors(),
        },
    ),
    Operation(
        method="PUT",
        path="/admin/v1/integrations/{slug}/credentials",
        operation_id="rotateCredentials",
        tag="Integrations",
        summary="Rotate an integration's credentials",
        description="Writes the replacement to Vault/OpenBao as a new version; workers use it from the "
        "next request on. Rotate at the provider first, then here, then send a request to verify. "
        "The credential is never returned, only its version.",
        auth="admin",
        parameters=(_SLUG_PARAMETER,),
        request=request_body(NewCredentials(credentials={"api_key": "sk-my-new-upstream-key"})),
        responses={
            200: json_reply(
                "The stored credential's new version.",
                CredentialsSet,
                CredentialsSet(set=True, version=2, updated_at="2026-12-01T19:30:00Z"),
            ),
            **admin_errors(
                e400=error_reply(
                    "Invalid body or credential fields (the provider's); `param` names the field.",
                    error_example(
                        400,
                        "credentials.api_key is required for 'openai'.",
                        "invalid_value",
                        "credentials.api_key",
                    ),
                ),
                e404=error_reply("No such integration.", _INTEGRATION_404),
            ),
        },
    ),
    Operation(
        method="PUT",
        path="/admin/v1/integrations/{slug}/models",
        operation_id="setEnabledModels",
        tag="Integrations",
        summary="Set an integration's enabled models",
        description='A list of catalog models of the integration\'s provider, `"all"` or `"none"`. '
        "Routing follows from the next request on.",
        auth="admin",
        parameters=(_SLUG_PARAMETER,),
        request=request_body(NewEnabledModels(enabled_models=["gpt-4o-mini", "gpt-4o"])),
        responses={
            200: json_reply("The integration as it is now.", Integration, EXAMPLE_INTEGRATION),
            **admin_errors(
                e400=error_reply(
                    "A model that is not in the provider's catalog, or an invalid body.",
                    error_example(
                        400,
                        "Not in the catalog for provider 'openai': gpt-unknown.",
                        "invalid_value",
                        "enabled_models",
                    ),
                ),
                e404=error_reply("No such integration.", _INTEGRATION_404),
            ),
        },
    ),
    Operation(
        method="GET",
        path="/admin/v1/activity",
        operation_id="listActivity",
        tag="Activity",
        summary="Read the activity log",
        description="Rows of the organisation's activity log, newest first: one `request` row per "
        "client request and one `attempt` row per upstream call. Rows appear once the audit "
        "service has written them (usually within a second).",
        auth="admin",
        parameters=(
            query_parameter(
                "request_id",
                "Only the rows of this request (its `x-keyrail-request-id`).",
                {"type": "string"},
                EXAMPLE_ACTIVITY.request_id,
            ),
            query_parameter(
                "project", "Only this project's rows (a project id).", {"type": "string"}, EXAMPLE_PROJECT.id
            ),
            query_parameter(
                "slug",
                "Only this integration's rows (a provider slug).",
                {"type": "string"},
                "openai-dev-mock",
            ),
            query_parameter(
                "limit",
                "At most this many rows; values outside 1 to 1000 are clamped.",
                {"type": "integer", "default": 100},
                100,
            ),
        ),
        responses={
            200: json_reply(
                "The matching rows.", ActivityList, ActivityList(data=[EXAMPLE_ACTIVITY], next_cursor=None)
            ),
            **admin_errors(
                e400=error_reply(
                    "`limit` is not an integer.",
                    error_example(400, "'limit' must be an integer.", "invalid_value", "limit"),
                ),
                e503=AUDIT_503,
            ),
        },
    ),
    Operation(
        method="POST",
        path="/admin/v1/sql",
        operation_id="runSql",
        tag="Activity",
        summary="Run read-only SQL over the activity log",
        description="What `keyrail sql` calls. The query runs with ClickHouse's `readonly` setting; "
        "the table is `keyrail.activity` (use `FINAL`).",
        auth="admin",
        request=request_body(
            SqlQuery(
                sql="SELECT provider_slug, count(), sum(cost_usd) FROM keyrail.activity FINAL "
                "GROUP BY provider_slug"
            )
        ),
        responses={
            200: json_reply(
                "The columns and rows.",
                SqlResult,
                SqlResult(
                    columns=["provider_slug", "count()", "sum(cost_usd)"],
                    rows=[["openai-dev-mock", 42, 0.00036]],
                    elapsed_ms=4.21,
                ),
            ),
            **admin_errors(
                e400=error_reply(
                    "Invalid body, or the query failed (syntax, unknown column, not read-only).",
                    error_example(400, "Code: 62. DB::Exception: Syntax error: …", "query_failed"),
                ),
                e503=AUDIT_503,
            ),
        },
    ),
)
