"""Authentication: gateway API keys on the data plane, admin tokens on the admin API."""

from __future__ import annotations

from starlette.requests import Request

from keyrail_common.config_events import ApiKeyIssued, UserCreated
from keyrail_common.projection import ConfigState
from keyrail_common.security import lookup_by_hash


def bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def api_key_for(state: ConfigState, request: Request) -> ApiKeyIssued | None:
    token = bearer(request)
    return lookup_by_hash(state.api_keys_by_hash, token) if token else None


def admin_user_for(state: ConfigState, request: Request) -> UserCreated | None:
    token = bearer(request)
    return lookup_by_hash(state.users_by_token_hash, token) if token else None
