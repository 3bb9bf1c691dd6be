"""The admin API's view of the projection's records: what a response shows, and what the change
history compares. Nothing secret is in a record except hashes, and no view copies those."""

from __future__ import annotations

import time

from keyrail_common.config_events import IntegrationCreated
from keyrail_common.config_state import (
    AdminTokenRecord,
    ApiKeyRecord,
    ConfigState,
    ProjectRecord,
    UserRecord,
)
from keyrail_ingress.admin_types import AdminToken, ApiKey, Integration, Project, User


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def user_view(state: ConfigState, user: UserRecord) -> User:
    return User(
        id=user.user_id,
        name=user.name,
        email=user.email,
        owner=user.owner,
        project_roles=dict(sorted(user.project_roles.items())),
        disabled=user.disabled,
        created_at=iso(user.created_at) or "",
        version=state.version("user", user.user_id),
    )


def token_view(state: ConfigState, token: AdminTokenRecord) -> AdminToken:
    return AdminToken(
        id=token.token_id,
        user_id=token.user_id,
        name=token.name,
        prefix=token.token_prefix,
        created_at=iso(token.created_at) or "",
        expires_at=iso(token.expires_at),
        revoked=token.revoked,
        version=state.version("admintoken", token.token_id),
    )


def project_view(state: ConfigState, project: ProjectRecord) -> Project:
    return Project(
        id=project.project_id,
        name=project.name,
        org_id=project.org_id,
        archived=project.archived,
        version=state.version("project", project.project_id),
    )


def key_view(state: ConfigState, key: ApiKeyRecord, last_used_at: str | None = None) -> ApiKey:
    return ApiKey(
        id=key.key_id,
        name=key.name,
        project_id=key.project_id,
        prefix=key.key_prefix,
        created_by=key.created_by,
        created_at=iso(key.created_at) or "",
        last_used_at=last_used_at,
        revoked=key.revoked,
        version=state.version("apikey", key.key_id),
    )


def integration_view(state: ConfigState, i: IntegrationCreated) -> Integration:
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
        credential_fingerprint=i.credential_fingerprint or None,
        disabled=i.provider_slug in state.disabled_integrations,
        version=state.version("integration", i.provider_slug),
    )
