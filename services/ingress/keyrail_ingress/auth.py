"""Authentication: gateway API keys on the data plane, admin tokens on the admin API."""

from __future__ import annotations

import time

from starlette.requests import Request

from keyrail_common.config_state import AdminTokenRecord, ApiKeyRecord, ConfigState, UserRecord
from keyrail_common.failures import ErrorInfo, FailureClass, failure
from keyrail_common.security import lookup_by_hash

INVALID_ADMIN_TOKEN = "Invalid or missing admin token. Send 'Authorization: Bearer <admin token>'."


def bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def api_key_for(state: ConfigState, request: Request) -> ApiKeyRecord | None:
    """A usable key only: revoked keys and those of archived projects are not in the lookup."""
    token = bearer(request)
    return lookup_by_hash(state.api_keys_by_hash, token) if token else None


def key_refusal(state: ConfigState, request: Request) -> ErrorInfo:
    """Why a gateway key that `api_key_for` did not find is refused (only ever after a miss)."""
    token = bearer(request)
    dormant = lookup_by_hash(state.dormant_keys_by_hash, token) if token else None
    if dormant is not None:
        return failure(
            FailureClass.SCOPE,
            f"This API key's project '{dormant.project_id}' is archived. An owner can restore it "
            f'(PATCH /admin/v1/projects/{dormant.project_id} with "archived": false).',
            code="project_archived",
        )
    return failure(
        FailureClass.UNAUTHENTICATED,
        "Invalid or missing API key. Send 'Authorization: Bearer kr-…'.",
        code="invalid_api_key",
    )


def admin_user_for(state: ConfigState, request: Request) -> tuple[UserRecord, AdminTokenRecord] | str:
    """The token's user and the token; or why it is refused (the 401's message).

    Revoked tokens and those of disabled users are not in the lookup; expiry is checked here,
    when the token is presented, so an expiring token needs no event.
    """
    presented = bearer(request)
    token = lookup_by_hash(state.admin_tokens_by_hash, presented) if presented else None
    user = state.users.get(token.user_id) if token is not None else None
    if token is None or user is None:
        return INVALID_ADMIN_TOKEN
    if token.expires_at is not None and token.expires_at <= time.time():
        expired = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(token.expires_at))
        return (
            f"This admin token expired at {expired}. Ask an owner for a new one "
            f"(POST /admin/v1/users/{user.user_id}/tokens)."
        )
    return user, token
