"""`/admin/v1/projects`: projects and their gateway API keys.

Archiving a project takes its keys out of the data plane's lookup (config_state.py), so every
ingress refuses them as soon as its projection has the event, within milliseconds; restoring it
puts back the keys that were not revoked. A key's secret is shown once, at creation.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.responses import Response

from keyrail_common.config_events import ApiKeyIssued, ApiKeyRevoked, ProjectCreated, ProjectUpdated
from keyrail_common.config_state import ApiKeyRecord, ConfigState, ProjectRecord
from keyrail_common.security import hash_secret, new_api_key, new_id
from keyrail_ingress.admin.audit import last_used
from keyrail_ingress.admin.command import Command, Loaded, admin_route, given, not_found
from keyrail_ingress.admin.views import key_view, project_view
from keyrail_ingress.admin_types import (
    ApiKeyCreated,
    ApiKeyList,
    NewApiKey,
    NewProject,
    ProjectList,
    ProjectPatch,
)
from keyrail_ingress.rbac import Target
from keyrail_ingress.responses import error, json_response

KEY_PREFIX_CHARS = 7  # `kr-` and 4 characters


def load_project(state: ConfigState, params: Mapping[str, str]) -> Loaded[ProjectRecord] | Response:
    project_id = params["project_id"]
    project = state.projects.get(project_id)
    if project is None:
        return not_found(f"project '{project_id}'", "/projects")
    target = Target(projects=frozenset({project_id}), label=f"project '{project_id}'")
    return Loaded(project, target, ("project", project_id))


def load_key(state: ConfigState, params: Mapping[str, str]) -> Loaded[ApiKeyRecord] | Response:
    project = load_project(state, params)
    if isinstance(project, Response):
        return project
    key = state.api_keys.get(params["key_id"])
    if key is None or key.project_id != project.record.project_id:
        return not_found(
            f"API key '{params['key_id']}' in this project", f"/projects/{project.record.project_id}/keys"
        )
    return Loaded(key, project.target, ("apikey", key.key_id))


def _blank_name() -> Response:
    return error(400, "'name' must not be blank.", "invalid_value", "name")


@admin_route("POST", "/projects", "project.create", body=NewProject)
async def create_project(c: Command[None, NewProject]) -> Response:
    name = c.body.name.strip()
    if not name:
        return _blank_name()
    event = ProjectCreated(project_id=new_id("proj"), org_id=c.org_id, name=name)
    await c.publish(event, new=True)
    return json_response(project_view(c.state, c.state.projects[event.project_id]), 201)


@admin_route("GET", "/projects", "project.list")
async def list_projects(c: Command[None, None]) -> Response:
    visible = c.visible()
    projects = [p for p in c.state.projects.values() if visible is None or p.project_id in visible]
    return json_response(ProjectList(data=[project_view(c.state, p) for p in projects], next_cursor=None))


@admin_route("GET", "/projects/{project_id}", "project.read", load=load_project)
async def get_project(c: Command[ProjectRecord, None]) -> Response:
    return json_response(project_view(c.state, c.record))


@admin_route(
    "PATCH", "/projects/{project_id}", "project.update", load=load_project, body=ProjectPatch, versioned=True
)
async def update_project(c: Command[ProjectRecord, ProjectPatch]) -> Response:
    project, patch = c.record, c.body
    name = given(patch.name, project.name).strip()
    if not name:
        return _blank_name()
    archived = given(patch.archived, project.archived)
    if (name, archived) != (project.name, project.archived):
        await c.publish(ProjectUpdated(project_id=project.project_id, name=name, archived=archived))
    return json_response(project_view(c.state, c.state.projects[project.project_id]))


@admin_route("POST", "/projects/{project_id}/keys", "api_key.create", load=load_project, body=NewApiKey)
async def create_api_key(c: Command[ProjectRecord, NewApiKey]) -> Response:
    project = c.record
    if project.archived:
        return error(
            409,
            f"Project '{project.project_id}' is archived: its keys would be refused. Restore it first "
            f'(PATCH /admin/v1/projects/{project.project_id} with "archived": false).',
            "project_archived",
        )
    secret = new_api_key()
    issued = ApiKeyIssued(
        key_id=new_id("key"),
        org_id=c.org_id,
        project_id=project.project_id,
        name=c.body.name,
        key_hash=hash_secret(secret),
        key_prefix=secret[:KEY_PREFIX_CHARS],
    )
    await c.publish(issued, new=True)
    created = ApiKeyCreated(
        id=issued.key_id, name=issued.name, project_id=issued.project_id, prefix=issued.key_prefix, key=secret
    )
    return json_response(created, 201)


@admin_route("GET", "/projects/{project_id}/keys", "api_key.list", load=load_project)
async def list_api_keys(c: Command[ProjectRecord, None]) -> Response:
    keys = sorted(
        (k for k in c.state.api_keys.values() if k.project_id == c.record.project_id),
        key=lambda k: (k.created_at, k.key_id),
    )
    used = await last_used(c.ctx, c.org_id, [k.key_id for k in keys])
    views = [key_view(c.state, k, used.get(k.key_id)) for k in keys]
    return json_response(ApiKeyList(data=views, next_cursor=None))


@admin_route(
    "DELETE", "/projects/{project_id}/keys/{key_id}", "api_key.revoke", load=load_key, versioned=True
)
async def revoke_api_key(c: Command[ApiKeyRecord, None]) -> Response:
    """Every ingress refuses the key once its projection has the event (the stream is followed live)."""
    key = c.record
    if not key.revoked:
        await c.publish(ApiKeyRevoked(key_id=key.key_id))
    used = await last_used(c.ctx, c.org_id, [key.key_id])
    return json_response(key_view(c.state, c.state.api_keys[key.key_id], used.get(key.key_id)))
