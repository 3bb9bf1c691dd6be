"""`/admin/v1/users`: users, their roles, and their personal admin tokens.

A token is shown once, when it is issued; the projection keeps its hash. The organisation is
never left without a usable owner: demoting or disabling the last owner, or revoking the last
owner token, is refused (409), since nothing but a new data dir could undo it. Those changes are
decided on every owner and token at once, so they append expecting the whole configuration
unchanged (`decided_on_all`): two owners demoting each other at the same moment cannot both pass.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime

from starlette.responses import Response

from keyrail_common.config_events import (
    AdminTokenIssued,
    AdminTokenRevoked,
    ProjectRole,
    UserCreatedV2,
    UserDisabled,
    UserEnabled,
    UserUpdated,
)
from keyrail_common.config_state import AdminTokenRecord, ConfigState, UserRecord
from keyrail_common.security import hash_secret, new_admin_token, new_id
from keyrail_ingress.admin.command import Command, Loaded, admin_route, given, not_found, reenabling
from keyrail_ingress.admin.views import iso, token_view, user_view
from keyrail_ingress.admin_types import (
    AdminTokenCreated,
    AdminTokenList,
    NewAdminToken,
    NewUser,
    UserList,
    UserPatch,
)
from keyrail_ingress.rbac import Target
from keyrail_ingress.responses import error, json_response

TOKEN_PREFIX_CHARS = 8  # `kra-` and 4 characters: enough to tell tokens apart in a list


def load_user(state: ConfigState, params: Mapping[str, str]) -> Loaded[UserRecord] | Response:
    user = state.users.get(params["user_id"])
    if user is None:
        return not_found(f"user '{params['user_id']}'", "/users")
    return Loaded(user, Target(user_id=user.user_id), ("user", user.user_id))


def load_token(state: ConfigState, params: Mapping[str, str]) -> Loaded[AdminTokenRecord] | Response:
    user = load_user(state, params)
    if isinstance(user, Response):
        return user
    token = state.admin_tokens.get(params["token_id"])
    if token is None or token.user_id != user.record.user_id:
        return not_found(f"token '{params['token_id']}' of this user", f"/users/{user.record.user_id}/tokens")
    return Loaded(token, user.target, ("admintoken", token.token_id))


def _unknown_projects(state: ConfigState, roles: Mapping[str, ProjectRole]) -> Response | None:
    unknown = sorted(p for p in roles if p not in state.projects)
    if unknown:
        return error(
            400, f"Unknown project ids in project_roles: {unknown}", "invalid_value", "project_roles"
        )
    return None


def _blank(name: str) -> Response:
    return error(400, "'name' must not be blank.", "invalid_value", "name")


def _usable_owner_tokens(state: ConfigState) -> list[AdminTokenRecord]:
    now = time.time()
    owners = {u.user_id for u in state.owners()}
    return [
        t
        for t in state.admin_tokens_by_hash.values()
        if t.user_id in owners and (t.expires_at is None or t.expires_at > now)
    ]


def _last_owner(what: str) -> Response:
    return error(
        409,
        f"{what} would leave the organisation without an owner who can sign in. Make another user "
        "an owner (with a token) first.",
        "last_owner",
    )


@admin_route("POST", "/users", "user.create", body=NewUser)
async def create_user(c: Command[None, NewUser]) -> Response:
    name = c.body.name.strip()
    if not name:
        return _blank(name)
    unknown = _unknown_projects(c.state, c.body.project_roles)
    if unknown is not None:
        return unknown
    event = UserCreatedV2(
        user_id=new_id("user"),
        org_id=c.org_id,
        name=name,
        email=c.body.email.strip(),
        owner=c.body.owner,
        project_roles=dict(c.body.project_roles),
    )
    await c.publish(event, new=True)
    return json_response(user_view(c.state, c.state.users[event.user_id]), 201)


@admin_route("GET", "/users", "user.list")
async def list_users(c: Command[None, None]) -> Response:
    users = sorted(c.state.users.values(), key=lambda u: (u.created_at, u.user_id))
    return json_response(UserList(data=[user_view(c.state, u) for u in users], next_cursor=None))


@admin_route("GET", "/users/{user_id}", "user.read", load=load_user)
async def get_user(c: Command[UserRecord, None]) -> Response:
    return json_response(user_view(c.state, c.record))


@admin_route("PATCH", "/users/{user_id}", "user.update", load=load_user, body=UserPatch, versioned=True)
async def update_user(c: Command[UserRecord, UserPatch]) -> Response:
    user, patch = c.record, c.body
    enable = reenabling(patch, user.disabled, "user", f"/users/{user.user_id}")
    if isinstance(enable, Response):
        return enable
    if enable:
        await c.publish(UserEnabled(user_id=user.user_id))
        return json_response(user_view(c.state, c.state.users[user.user_id]))
    name = given(patch.name, user.name).strip()
    if not name:
        return _blank(name)
    roles = dict(given(patch.project_roles, user.project_roles))
    unknown = _unknown_projects(c.state, roles)
    if unknown is not None:
        return unknown
    event = UserUpdated(
        user_id=user.user_id,
        name=name,
        email=given(patch.email, user.email).strip(),
        owner=given(patch.owner, user.owner),
        project_roles=roles,
    )
    demotes_owner = user.owner and not event.owner
    if demotes_owner and not _other_owner_can_sign_in(c.state, user.user_id):
        return _last_owner(f"Taking owner from '{user.user_id}'")
    unchanged = (user.name, user.email, user.owner, user.project_roles)
    if (event.name, event.email, event.owner, event.project_roles) != unchanged:
        # A change that changes nothing is no event (and no new version).
        await c.publish(event, decided_on_all=demotes_owner)
    return json_response(user_view(c.state, c.state.users[user.user_id]))


def _other_owner_can_sign_in(state: ConfigState, user_id: str) -> bool:
    return any(t.user_id != user_id for t in _usable_owner_tokens(state))


@admin_route("DELETE", "/users/{user_id}", "user.delete", load=load_user, versioned=True)
async def disable_user(c: Command[UserRecord, None]) -> Response:
    """Disables the user (their tokens stop working); they stay in the change history."""
    user = c.record
    if not user.disabled:
        if user.owner and not _other_owner_can_sign_in(c.state, user.user_id):
            return _last_owner(f"Disabling '{user.user_id}'")
        await c.publish(UserDisabled(user_id=user.user_id), decided_on_all=user.owner)
    return json_response(user_view(c.state, c.state.users[user.user_id]))


def _expiry(expires_at: datetime | None) -> float | Response | None:
    if expires_at is None:
        return None
    expires = expires_at.timestamp()
    if expires <= time.time():
        return error(400, "'expires_at' must be in the future.", "invalid_value", "expires_at")
    return expires


@admin_route("POST", "/users/{user_id}/tokens", "admin_token.create", load=load_user, body=NewAdminToken)
async def create_token(c: Command[UserRecord, NewAdminToken]) -> Response:
    user = c.record
    if user.disabled:
        return error(409, f"User '{user.user_id}' is disabled; it gets no tokens.", "user_disabled")
    expires = _expiry(c.body.expires_at)
    if isinstance(expires, Response):
        return expires
    secret = new_admin_token()
    event = AdminTokenIssued(
        token_id=new_id("tok"),
        user_id=user.user_id,
        name=c.body.name,
        token_hash=hash_secret(secret),
        token_prefix=secret[:TOKEN_PREFIX_CHARS],
        expires_at=expires,
    )
    await c.publish(event, new=True)
    created = AdminTokenCreated(
        id=event.token_id,
        user_id=user.user_id,
        name=event.name,
        prefix=event.token_prefix,
        expires_at=iso(expires),
        token=secret,
    )
    return json_response(created, 201)


@admin_route("GET", "/users/{user_id}/tokens", "admin_token.list", load=load_user)
async def list_tokens(c: Command[UserRecord, None]) -> Response:
    tokens = sorted(
        (t for t in c.state.admin_tokens.values() if t.user_id == c.record.user_id),
        key=lambda t: (t.created_at, t.token_id),
    )
    return json_response(AdminTokenList(data=[token_view(c.state, t) for t in tokens], next_cursor=None))


@admin_route(
    "DELETE", "/users/{user_id}/tokens/{token_id}", "admin_token.revoke", load=load_token, versioned=True
)
async def revoke_token(c: Command[AdminTokenRecord, None]) -> Response:
    token = c.record
    if not token.revoked:
        if [t.token_id for t in _usable_owner_tokens(c.state)] == [token.token_id]:
            return _last_owner(f"Revoking '{token.token_id}', the last owner token,")
        owner_token = token.user_id in {u.user_id for u in c.state.owners()}
        await c.publish(
            AdminTokenRevoked(token_id=token.token_id, user_id=token.user_id), decided_on_all=owner_token
        )
    return json_response(token_view(c.state, c.state.admin_tokens[token.token_id]))
