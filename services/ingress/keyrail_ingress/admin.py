"""Admin API (`/admin/v1`): commands become config events; credentials go to Vault only.

Bodies are decoded with msgspec Structs that forbid unknown fields, so a typo is a 400 naming
the field rather than a silently ignored setting. Nothing is half-applied: the credential is
written to Vault first (an orphaned Vault version is harmless), then one event is appended.
"""

from __future__ import annotations

import re
import time
from typing import Any, Generic, TypeVar

import msgspec
from fastapi import APIRouter
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from starlette.requests import Request
from starlette.responses import Response

from keyrail_common import subjects
from keyrail_common.config_events import (
    ApiKeyIssued,
    CredentialsRotated,
    IntegrationCreated,
    IntegrationModelsSet,
    ProjectCreated,
    UserCreated,
)
from keyrail_common.hosts import HostRejected, validate_custom_host
from keyrail_common.messages import ActivityQuery, QueryResult, SqlQuery, encode
from keyrail_common.projection import ConcurrencyConflict
from keyrail_common.registry import CredentialError
from keyrail_common.security import hash_secret, new_api_key, new_id
from keyrail_common.vault import credential_path
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
from keyrail_ingress.auth import admin_user_for
from keyrail_ingress.context import IngressContext
from keyrail_ingress.responses import bad_body, error, json_response

router = APIRouter(prefix="/admin/v1")

SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
_query_result_decoder = msgspec.msgpack.Decoder(QueryResult)
T = TypeVar("T")


def _ctx(request: Request) -> IngressContext:
    ctx: IngressContext = request.app.state.ctx
    return ctx


def _owner(request: Request) -> UserCreated | Response:
    user = admin_user_for(_ctx(request).projection.state, request)
    if user is None:
        return error(
            401,
            "Invalid or missing admin token. Send 'Authorization: Bearer <admin token>'.",
            "invalid_token",
        )
    if user.role != "owner":
        return error(403, f"Role '{user.role}' may not do this; an owner can.", "forbidden")
    return user


async def _decode(request: Request, kind: type[T]) -> T | Response:
    try:
        return msgspec.json.decode(await request.body(), type=kind)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        return bad_body(exc)


def _project_view(p: ProjectCreated) -> Project:
    return Project(id=p.project_id, name=p.name, org_id=p.org_id)


def _integration_view(i: IntegrationCreated) -> Integration:
    """Everything about an integration except its credentials (never returned)."""
    return Integration(
        id=i.integration_id,
        name=i.name,
        provider=i.provider,
        provider_slug=i.provider_slug,
        description=i.description,
        project_scope=i.project_scope,
        enabled_models=i.enabled_models,
        custom_host=i.custom_host or None,
        api_format=i.api_format,
        allow_http=i.allow_http,
        credential_version=i.credential_version,
    )


def _activity_view(columns: list[str], row: list[object]) -> ActivityEntry:
    return msgspec.convert(dict(zip(columns, row, strict=True)), ActivityEntry)


@router.post("/projects")
async def create_project(request: Request) -> Response:
    user = _owner(request)
    if isinstance(user, Response):
        return user
    body = await _decode(request, NewProject)
    if isinstance(body, Response):
        return body
    if not body.name.strip():
        return error(400, "'name' must not be empty.", "invalid_value", "name")
    ctx = _ctx(request)
    project = ProjectCreated(project_id=new_id("proj"), org_id=user.org_id, name=body.name.strip())
    await ctx.publisher.publish("project", project.project_id, project, actor=user.user_id, expect_new=True)
    return json_response(_project_view(project), 201)


@router.get("/projects")
async def list_projects(request: Request) -> Response:
    user = _owner(request)
    if isinstance(user, Response):
        return user
    projects = _ctx(request).projection.state.projects.values()
    return json_response(ProjectList(data=[_project_view(p) for p in projects], next_cursor=None))


@router.post("/projects/{project_id}/keys")
async def create_api_key(request: Request, project_id: str) -> Response:
    user = _owner(request)
    if isinstance(user, Response):
        return user
    ctx = _ctx(request)
    if project_id not in ctx.projection.state.projects:
        return error(
            404, f"No project '{project_id}'. List projects with GET /admin/v1/projects.", "not_found"
        )
    body = await _decode(request, NewApiKey)
    if isinstance(body, Response):
        return body
    secret = new_api_key()
    issued = ApiKeyIssued(
        key_id=new_id("key"),
        org_id=user.org_id,
        project_id=project_id,
        name=body.name,
        key_hash=hash_secret(secret),
        key_prefix=secret[:7],
    )
    await ctx.publisher.publish("apikey", issued.key_id, issued, actor=user.user_id, expect_new=True)
    created = ApiKeyCreated(
        id=issued.key_id, name=issued.name, project_id=project_id, prefix=issued.key_prefix, key=secret
    )
    return json_response(created, 201)


def _credentials_error(exc: CredentialError) -> Response:
    return error(400, str(exc), "invalid_value", exc.field)


def _validate_integration(ctx: IngressContext, body: NewIntegration) -> Response | tuple[str, str]:
    """The normalised (custom host, api format), or the 400 that names what is wrong."""
    registry = ctx.registry
    if not SLUG_PATTERN.match(body.provider_slug):
        return error(
            400,
            "provider_slug must match ^[a-z0-9][a-z0-9-]{1,62}$ (e.g. openai-prod-general).",
            "invalid_value",
            "provider_slug",
        )
    provider = registry.get(body.provider)
    if provider is None:
        return error(
            400,
            f"Unknown provider '{body.provider}'. Known: {', '.join(registry.names())}; a self-hosted "
            "server is any of them with a custom_host and its api_format.",
            "invalid_value",
            "provider",
        )
    if body.custom_host:
        api_format = body.api_format or registry.default_api_format(body.provider)
        if api_format not in registry.custom_host_formats:
            formats = ", ".join(registry.custom_host_formats)
            return error(400, f"api_format must be one of {formats}.", "invalid_value", "api_format")
    else:
        api_format = provider.adapter
        if body.api_format and body.api_format != api_format:
            return error(
                400,
                f"api_format applies to custom hosts only; '{body.provider}' speaks '{api_format}'.",
                "invalid_value",
                "api_format",
            )
    try:
        registry.validate_credentials(body.provider, body.credentials)
    except CredentialError as exc:
        return _credentials_error(exc)
    if isinstance(body.project_scope, list):
        unknown = [p for p in body.project_scope if p not in ctx.projection.state.projects]
        if unknown:
            return error(
                400, f"Unknown project ids in project_scope: {unknown}", "invalid_value", "project_scope"
            )
    if not body.custom_host:
        return "", api_format
    try:
        return validate_custom_host(body.custom_host, body.allow_http), api_format
    except HostRejected as exc:
        return error(400, str(exc), "invalid_value", "custom_host")


@router.post("/integrations")
async def create_integration(request: Request) -> Response:
    user = _owner(request)
    if isinstance(user, Response):
        return user
    body = await _decode(request, NewIntegration)
    if isinstance(body, Response):
        return body
    ctx = _ctx(request)
    valid = _validate_integration(ctx, body)
    if isinstance(valid, Response):
        return valid
    custom_host, api_format = valid
    if body.provider_slug in ctx.projection.state.integrations:
        return error(
            409, f"provider_slug '{body.provider_slug}' is already taken.", "conflict", "provider_slug"
        )
    path = credential_path(user.org_id, body.provider_slug)
    version = await ctx.credentials.write(path, _vault_secret(body.credentials, body.custom_auth_headers))
    integration = IntegrationCreated(
        integration_id=new_id("int"),
        org_id=user.org_id,
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
    )
    try:
        await ctx.publisher.publish(
            "integration", body.provider_slug, integration, actor=user.user_id, expect_new=True
        )
    except ConcurrencyConflict:
        return error(
            409, f"provider_slug '{body.provider_slug}' is already taken.", "conflict", "provider_slug"
        )
    return json_response(_integration_view(integration), 201)


@router.get("/integrations")
async def list_integrations(request: Request) -> Response:
    user = _owner(request)
    if isinstance(user, Response):
        return user
    integrations = _ctx(request).projection.state.integrations.values()
    return json_response(IntegrationList(data=[_integration_view(i) for i in integrations], next_cursor=None))


def _integration_or_404(ctx: IngressContext, slug: str) -> IntegrationCreated | Response:
    integration = ctx.projection.state.integrations.get(slug)
    if integration is None:
        return error(404, f"No integration '{slug}'. List them with GET /admin/v1/integrations.", "not_found")
    return integration


class _IntegrationCommand(Generic[T]):
    """An owner's change to one integration: who, the integration, and the decoded body."""

    def __init__(self, user: UserCreated, ctx: IngressContext, integration: IntegrationCreated, body: T):
        self.user, self.ctx, self.integration, self.body = user, ctx, integration, body


async def _integration_command(
    request: Request, slug: str, kind: type[T]
) -> _IntegrationCommand[T] | Response:
    user = _owner(request)
    if isinstance(user, Response):
        return user
    ctx = _ctx(request)
    integration = _integration_or_404(ctx, slug)
    if isinstance(integration, Response):
        return integration
    body = await _decode(request, kind)
    if isinstance(body, Response):
        return body
    return _IntegrationCommand(user, ctx, integration, body)


def _vault_secret(credentials: dict[str, Any], custom_auth_headers: dict[str, str] | None) -> dict[str, Any]:
    """What Vault stores for an integration: its credential fields and its custom auth headers."""
    secret: dict[str, Any] = dict(credentials)
    if custom_auth_headers:
        secret["custom_auth_headers"] = custom_auth_headers
    return secret


@router.put("/integrations/{slug}/credentials")
async def rotate_credentials(request: Request, slug: str) -> Response:
    """Replace the stored credential (a new Vault version); workers use it from the next request."""
    command = await _integration_command(request, slug, NewCredentials)
    if isinstance(command, Response):
        return command
    ctx, integration, body, user = command.ctx, command.integration, command.body, command.user
    try:
        ctx.registry.validate_credentials(integration.provider, body.credentials)
    except CredentialError as exc:
        return _credentials_error(exc)
    secret = _vault_secret(body.credentials, body.custom_auth_headers)
    version = await ctx.credentials.write(integration.credential_ref, secret)
    rotated = CredentialsRotated(provider_slug=slug, credential_version=version)
    await ctx.publisher.publish("integration", slug, rotated, actor=user.user_id)
    updated_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return json_response(CredentialsSet(set=True, version=version, updated_at=updated_at))


@router.put("/integrations/{slug}/models")
async def set_enabled_models(request: Request, slug: str) -> Response:
    """Which catalog models of the provider the integration serves: a list, "all" or "none"."""
    command = await _integration_command(request, slug, NewEnabledModels)
    if isinstance(command, Response):
        return command
    ctx, integration, body, user = command.ctx, command.integration, command.body, command.user
    if isinstance(body.enabled_models, list):
        unknown = [m for m in body.enabled_models if ctx.catalog.get(integration.provider, m) is None]
        if unknown:
            return error(
                400,
                f"Not in the catalog for provider '{integration.provider}': {', '.join(unknown)}.",
                "invalid_value",
                "enabled_models",
            )
    event = IntegrationModelsSet(provider_slug=slug, enabled_models=body.enabled_models)
    await ctx.publisher.publish("integration", slug, event, actor=user.user_id)
    return json_response(_integration_view(ctx.projection.state.integrations[slug]))


async def _ask_audit(ctx: IngressContext, subject: str, payload: bytes) -> QueryResult | Response:
    try:
        reply = await ctx.nc.request(subject, payload, timeout=30)
    except (NoRespondersError, NatsTimeout):
        return error(
            503, "The audit service is not answering; start it with: keyrail audit", "audit_unavailable"
        )
    result = _query_result_decoder.decode(reply.data)
    if result.error:
        return error(400, result.error, "query_failed")
    return result


@router.get("/activity")
async def activity(request: Request) -> Response:
    user = _owner(request)
    if isinstance(user, Response):
        return user
    params = request.query_params
    try:
        limit = int(params.get("limit", "100"))
    except ValueError:
        return error(400, "'limit' must be an integer.", "invalid_value", "limit")
    query = ActivityQuery(
        org_id=user.org_id,
        request_id=params.get("request_id", ""),
        project_id=params.get("project", ""),
        provider_slug=params.get("slug", ""),
        limit=limit,
    )
    result = await _ask_audit(_ctx(request), subjects.AUDIT_ACTIVITY_QUERY, encode(query))
    if isinstance(result, Response):
        return result
    rows = [_activity_view(result.columns, row) for row in result.rows]
    return json_response(ActivityList(data=rows, next_cursor=None))


@router.post("/sql")
async def sql(request: Request) -> Response:
    """Read-only SQL over the activity log (what `keyrail sql` calls on the embedded default)."""
    user = _owner(request)
    if isinstance(user, Response):
        return user
    body = await _decode(request, SqlQuery)
    if isinstance(body, Response):
        return body
    started = time.perf_counter()
    result = await _ask_audit(_ctx(request), subjects.AUDIT_SQL, encode(body))
    if isinstance(result, Response):
        return result
    elapsed_ms = round((time.perf_counter() - started) * 1000, 3)
    return json_response(SqlResult(columns=result.columns, rows=result.rows, elapsed_ms=elapsed_ms))
