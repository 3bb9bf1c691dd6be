"""The admin API in the OpenAPI document: what every admin operation shares, users and projects.

`admin_operation` builds an admin operation from its rule of the RBAC table: the access sentence
and the 403 (with a message produced by rbac.denial for a caller it refuses), the 401 and 500,
and for a change of an existing aggregate the `If-Match` parameter, the 428 and the 409. The
integrations, the activity log and the change history are in openapi_admin_integrations.py.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import Response

from keyrail_ingress.admin.command import stale, version_required
from keyrail_ingress.admin_types import (
    AdminToken,
    AdminTokenCreated,
    AdminTokenList,
    ApiKey,
    ApiKeyCreated,
    ApiKeyList,
    NewAdminToken,
    NewApiKey,
    NewProject,
    NewUser,
    Project,
    ProjectList,
    ProjectPatch,
    User,
    UserList,
    UserPatch,
)
from keyrail_ingress.auth import INVALID_ADMIN_TOKEN
from keyrail_ingress.openapi_parts import (
    ERROR_500,
    Content,
    Operation,
    Reply,
    bad_body_example,
    error_example,
    error_reply,
    json_reply,
    request_body,
)
from keyrail_ingress.rbac import RBAC, Rule, Scope, Target, access, authorize

EXAMPLE_ORG = "org_0a1b2c3d4e5f6a7b"
EXAMPLE_PROJECT_ID = "proj_3f2a9c1d5e6b7a80"
OTHER_PROJECT_ID = "proj_77aa1c2d3e4f5a6b"
EXAMPLE_TS = "2026-12-01T19:30:00Z"

ADMIN_401 = error_reply(
    "No admin token, or an unknown, revoked or expired one, or one of a disabled user.",
    error_example(401, INVALID_ADMIN_TOKEN, "invalid_token"),
)


@dataclass(frozen=True)
class _ExampleCaller:
    """A caller the 403 example is written for."""

    user_id: str = "user_1c2d3e4f5a6b7c8d"
    owner: bool = False
    project_roles: Mapping[str, str] = field(default_factory=dict)


# Tried in this order: the first one the rule refuses is the 403's example.
_EXAMPLE_CALLERS = (
    _ExampleCaller(project_roles={OTHER_PROJECT_ID: "developer"}),
    _ExampleCaller(project_roles={EXAMPLE_PROJECT_ID: "developer"}),
    _ExampleCaller(),
)
_EXAMPLE_TARGETS = {
    Scope.PROJECT: Target(projects=frozenset({EXAMPLE_PROJECT_ID}), label=f"project '{EXAMPLE_PROJECT_ID}'"),
    Scope.INTEGRATION: Target(
        projects=frozenset({EXAMPLE_PROJECT_ID}),
        label="a project in integration 'openai-dev-mock''s project_scope",
    ),
    Scope.MINE: Target(projects=None),
    Scope.IN_SCOPE: Target(
        projects=frozenset({EXAMPLE_PROJECT_ID}),
        label="a project in gateway config 'classifier-chain''s project_scope",
    ),
    Scope.WHOLE_SCOPE: Target(
        projects=frozenset({EXAMPLE_PROJECT_ID}),
        label="every project in gateway config 'classifier-chain''s project_scope",
    ),
    Scope.USER: Target(user_id="user_5e6f7a8b9c0d1e2f"),
}


def forbidden_reply(rule: Rule) -> Reply:
    target = _EXAMPLE_TARGETS.get(rule.scope, Target())
    for caller in _EXAMPLE_CALLERS:
        refusal = authorize(caller, rule, target)
        if refusal is not None:
            return error_reply(
                "The caller's roles do not allow this (the message names the role that would).",
                error_example(403, refusal, "forbidden"),
            )
    raise AssertionError(f"no example caller is refused {rule.permission}")


IF_MATCH: Mapping[str, Any] = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "description": "The version you read (`version` of the GET answer). Required, here or as "
    "`version` in the body: a change decided on an older version is refused (409).",
    "schema": {"type": "string"},
    "example": '"42"',
}


def path_parameter(name: str, description: str, example: str) -> Mapping[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
        "example": example,
    }


def admin_operation(
    method: str,
    path: str,
    operation_id: str,
    tag: str,
    summary: str,
    permission: str,
    ok: tuple[int, Reply],
    *,
    description: str = "",
    parameters: tuple[Mapping[str, Any], ...] = (),
    request: Content | None = None,
    errors: Mapping[int, Reply] | None = None,
    versioned: str = "",
) -> Operation:
    """An admin operation; `versioned`: the aggregate a change names the version of."""
    rule = RBAC[permission]
    responses: dict[int, Reply] = {
        ok[0]: ok[1],
        401: ADMIN_401,
        403: forbidden_reply(rule),
        500: ERROR_500,
    }
    if versioned:
        parameters = (*parameters, IF_MATCH)
        responses[409] = error_reply(
            f"The {versioned} changed since the version sent: nothing was applied.",
            _body_of(stale(versioned, 43, 42)),
        )
        responses[428] = error_reply(
            "No version: send `If-Match` or `version`.", _body_of(version_required(versioned))
        )
    responses.update(errors or {})
    access_text = f"**Access:** {access(rule)} (`{permission}`)."
    return Operation(
        method=method,
        path=path,
        operation_id=operation_id,
        tag=tag,
        summary=summary,
        description=f"{description}\n\n{access_text}" if description else access_text,
        auth="admin",
        parameters=parameters,
        request=request,
        responses=dict(sorted(responses.items())),
        permission=permission,
    )


def _body_of(response: Response) -> Any:
    """The body of an answer a handler's own function builds, as the example."""
    return json.loads(bytes(response.body))


def not_found_reply(what: str, listing: str) -> Reply:
    return error_reply(
        f"No such {what.split(' ')[0]}.",
        error_example(404, f"No {what}. List them with GET /admin/v1{listing}.", "not_found"),
    )


def bad_request(description: str, kind: type, body: bytes) -> Reply:
    return error_reply(description, bad_body_example(kind, body))


# --- examples -----------------------------------------------------------------------------------

EXAMPLE_PROJECT = Project(id=EXAMPLE_PROJECT_ID, name="demo", org_id=EXAMPLE_ORG, archived=False, version=12)
EXAMPLE_USER = User(
    id="user_5e6f7a8b9c0d1e2f",
    name="Ada",
    email="ada@example.com",
    owner=False,
    project_roles={EXAMPLE_PROJECT_ID: "project_admin", OTHER_PROJECT_ID: "developer"},
    disabled=False,
    created_at=EXAMPLE_TS,
    version=14,
)
EXAMPLE_TOKEN = AdminToken(
    id="tok_0a1b2c3d4e5f6a7b",
    user_id=EXAMPLE_USER.id,
    name="laptop",
    prefix="kra-Zx9q",
    created_at=EXAMPLE_TS,
    expires_at="2027-06-01T00:00:00Z",
    revoked=False,
    version=15,
)
EXAMPLE_KEY = ApiKey(
    id="key_9b8c7d6e5f4a3b2c",
    name="laptop",
    project_id=EXAMPLE_PROJECT_ID,
    prefix="kr-Qx3v",
    created_by=EXAMPLE_USER.id,
    created_at=EXAMPLE_TS,
    last_used_at="2026-12-01T19:41:05Z",
    revoked=False,
    version=13,
)
_USER = path_parameter("user_id", "The user's id.", EXAMPLE_USER.id)
_TOKEN = path_parameter("token_id", "The admin token's id.", EXAMPLE_TOKEN.id)
_PROJECT = path_parameter("project_id", "The project's id.", EXAMPLE_PROJECT_ID)
_KEY = path_parameter("key_id", "The API key's id.", EXAMPLE_KEY.id)
_USER_404 = not_found_reply(f"user '{EXAMPLE_USER.id}'", "/users")
_PROJECT_404 = not_found_reply(f"project '{EXAMPLE_PROJECT_ID}'", "/projects")
_LAST_OWNER = error_reply(
    "The change would leave no owner who can sign in (or, with a version, the user changed since).",
    error_example(
        409,
        f"Disabling '{EXAMPLE_USER.id}' would leave the organisation without an owner who can sign in. "
        "Make another user an owner (with a token) first.",
        "last_owner",
    ),
)

USER_OPERATIONS: tuple[Operation, ...] = (
    admin_operation(
        "POST",
        "/admin/v1/users",
        "createUser",
        "Users",
        "Create a user",
        "user.create",
        (201, json_reply("The new user.", User, EXAMPLE_USER)),
        description="Roles: `owner` for the whole organisation, and per project `project_admin` or "
        "`developer`. The user signs in with admin tokens (`POST /admin/v1/users/{user_id}/tokens`).",
        request=request_body(
            NewUser(name="Ada", email="ada@example.com", project_roles=dict(EXAMPLE_USER.project_roles))
        ),
        errors={
            400: bad_request(
                "Invalid body (unknown field, blank name, unknown project or role); `param` names it.",
                NewUser,
                b'{"name": "Ada", "project_roles": {"proj_x": "admin"}}',
            )
        },
    ),
    admin_operation(
        "GET",
        "/admin/v1/users",
        "listUsers",
        "Users",
        "List users",
        "user.list",
        (200, json_reply("Every user.", UserList, UserList(data=[EXAMPLE_USER], next_cursor=None))),
    ),
    admin_operation(
        "GET",
        "/admin/v1/users/{user_id}",
        "getUser",
        "Users",
        "Read a user",
        "user.read",
        (200, json_reply("The user.", User, EXAMPLE_USER)),
        parameters=(_USER,),
        errors={404: _USER_404},
    ),
    admin_operation(
        "PATCH",
        "/admin/v1/users/{user_id}",
        "updateUser",
        "Users",
        "Change a user or their roles",
        "user.update",
        (200, json_reply("The user as it is now.", User, EXAMPLE_USER)),
        description="Absent fields stay as they are; `project_roles` replaces the whole map.",
        parameters=(_USER,),
        request=request_body(UserPatch(project_roles={EXAMPLE_PROJECT_ID: "developer"}, version=14)),
        errors={
            400: bad_request("Invalid body; `param` names the field.", UserPatch, b'{"owner": "yes"}'),
            404: _USER_404,
            409: _LAST_OWNER,
        },
        versioned="user",
    ),
    admin_operation(
        "DELETE",
        "/admin/v1/users/{user_id}",
        "disableUser",
        "Users",
        "Disable a user",
        "user.delete",
        (200, json_reply("The user, disabled (again: no change).", User, EXAMPLE_USER)),
        description="Every token of theirs stops working at once. The user stays in the change "
        "history as the actor of what they did.",
        parameters=(_USER,),
        errors={404: _USER_404, 409: _LAST_OWNER},
        versioned="user",
    ),
    admin_operation(
        "POST",
        "/admin/v1/users/{user_id}/tokens",
        "createAdminToken",
        "Users",
        "Issue an admin token",
        "admin_token.create",
        (
            201,
            json_reply(
                "The new token, with its secret (shown only here).",
                AdminTokenCreated,
                AdminTokenCreated(
                    id=EXAMPLE_TOKEN.id,
                    user_id=EXAMPLE_USER.id,
                    name="laptop",
                    prefix="kra-Zx9q",
                    expires_at=EXAMPLE_TOKEN.expires_at,
                    token="kra-Zx9q…",
                ),
            ),
        ),
        description="A personal admin token, `Authorization: Bearer kra-…`, acting with the user's "
        "roles. Keyrail keeps only its hash. `expires_at` is optional.",
        parameters=(_USER,),
        request=Content({"name": "laptop", "expires_at": "2027-06-01T00:00:00Z"}, NewAdminToken),
        errors={
            400: error_reply(
                "Invalid body or `expires_at` in the past.",
                error_example(400, "'expires_at' must be in the future.", "invalid_value", "expires_at"),
            ),
            404: _USER_404,
            409: error_reply(
                "The user is disabled.",
                error_example(
                    409, f"User '{EXAMPLE_USER.id}' is disabled; it gets no tokens.", "user_disabled"
                ),
            ),
        },
    ),
    admin_operation(
        "GET",
        "/admin/v1/users/{user_id}/tokens",
        "listAdminTokens",
        "Users",
        "List a user's admin tokens",
        "admin_token.list",
        (
            200,
            json_reply(
                "The tokens, never their secrets.",
                AdminTokenList,
                AdminTokenList(data=[EXAMPLE_TOKEN], next_cursor=None),
            ),
        ),
        parameters=(_USER,),
        errors={404: _USER_404},
    ),
    admin_operation(
        "DELETE",
        "/admin/v1/users/{user_id}/tokens/{token_id}",
        "revokeAdminToken",
        "Users",
        "Revoke an admin token",
        "admin_token.revoke",
        (200, json_reply("The token, revoked (again: no change).", AdminToken, EXAMPLE_TOKEN)),
        description="Refused at once by every ingress. The last owner token cannot be revoked.",
        parameters=(_USER, _TOKEN),
        errors={
            404: not_found_reply(
                f"token '{EXAMPLE_TOKEN.id}' of this user", f"/users/{EXAMPLE_USER.id}/tokens"
            ),
            409: _LAST_OWNER,
        },
        versioned="admintoken",
    ),
)

PROJECT_OPERATIONS: tuple[Operation, ...] = (
    admin_operation(
        "POST",
        "/admin/v1/projects",
        "createProject",
        "Projects",
        "Create a project",
        "project.create",
        (201, json_reply("The new project.", Project, EXAMPLE_PROJECT)),
        request=request_body(NewProject(name="demo")),
        errors={
            400: bad_request(
                "Invalid body (unknown or missing field, blank name); `param` names the field.",
                NewProject,
                b'{"nmae": "demo"}',
            )
        },
    ),
    admin_operation(
        "GET",
        "/admin/v1/projects",
        "listProjects",
        "Projects",
        "List projects",
        "project.list",
        (
            200,
            json_reply(
                "The projects the caller may see (every one for an owner).",
                ProjectList,
                ProjectList(data=[EXAMPLE_PROJECT], next_cursor=None),
            ),
        ),
    ),
    admin_operation(
        "GET",
        "/admin/v1/projects/{project_id}",
        "getProject",
        "Projects",
        "Read a project",
        "project.read",
        (200, json_reply("The project.", Project, EXAMPLE_PROJECT)),
        parameters=(_PROJECT,),
        errors={404: _PROJECT_404},
    ),
    admin_operation(
        "PATCH",
        "/admin/v1/projects/{project_id}",
        "updateProject",
        "Projects",
        "Rename, archive or restore a project",
        "project.update",
        (200, json_reply("The project as it is now.", Project, EXAMPLE_PROJECT)),
        description="An archived project's API keys are refused by every ingress at once; "
        '`"archived": false` restores the keys that were not revoked.',
        parameters=(_PROJECT,),
        request=request_body(ProjectPatch(archived=True, version=12)),
        errors={
            400: bad_request("Invalid body; `param` names the field.", ProjectPatch, b'{"archived": "yes"}'),
            404: _PROJECT_404,
        },
        versioned="project",
    ),
    admin_operation(
        "POST",
        "/admin/v1/projects/{project_id}/keys",
        "createApiKey",
        "Projects",
        "Create a gateway API key",
        "api_key.create",
        (
            201,
            json_reply(
                "The new key, with its secret.",
                ApiKeyCreated,
                ApiKeyCreated(
                    id=EXAMPLE_KEY.id,
                    name="laptop",
                    project_id=EXAMPLE_PROJECT_ID,
                    prefix="kr-Qx3v",
                    key="kr-Qx3v…",
                ),
            ),
        ),
        description="The secret `key` is in this response only; Keyrail keeps its hash. Send it as "
        "`Authorization: Bearer kr-…` to the data plane.",
        parameters=(_PROJECT,),
        request=request_body(NewApiKey(name="laptop")),
        errors={
            400: bad_request("Invalid body; `param` names the field.", NewApiKey, b'{"name": 7}'),
            404: _PROJECT_404,
            409: error_reply(
                "The project is archived.",
                error_example(
                    409,
                    f"Project '{EXAMPLE_PROJECT_ID}' is archived: its keys would be refused. Restore it "
                    f'first (PATCH /admin/v1/projects/{EXAMPLE_PROJECT_ID} with "archived": false).',
                    "project_archived",
                ),
            ),
        },
    ),
    admin_operation(
        "GET",
        "/admin/v1/projects/{project_id}/keys",
        "listApiKeys",
        "Projects",
        "List a project's API keys",
        "api_key.list",
        (
            200,
            json_reply(
                "The keys (never their secrets), revoked ones included.",
                ApiKeyList,
                ApiKeyList(data=[EXAMPLE_KEY], next_cursor=None),
            ),
        ),
        description="`last_used_at` comes from the activity log (the newest request row of the key), "
        "so Keyrail writes nothing per request for it; it trails by the audit service's batching (a "
        "few seconds) and is null when the audit service does not answer within 2 s.",
        parameters=(_PROJECT,),
        errors={404: _PROJECT_404},
    ),
    admin_operation(
        "DELETE",
        "/admin/v1/projects/{project_id}/keys/{key_id}",
        "revokeApiKey",
        "Projects",
        "Revoke a gateway API key",
        "api_key.revoke",
        (200, json_reply("The key, revoked (again: no change).", ApiKey, EXAMPLE_KEY)),
        description="Every ingress refuses the key as soon as its projection has the event "
        "(milliseconds: each follows the stream live).",
        parameters=(_PROJECT, _KEY),
        errors={
            404: not_found_reply(
                f"API key '{EXAMPLE_KEY.id}' in this project", f"/projects/{EXAMPLE_PROJECT_ID}/keys"
            )
        },
        versioned="apikey",
    ),
)
