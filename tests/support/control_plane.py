"""Helpers for the control-plane tests: users with roles and tokens, and looks at what is stored
(the config stream's last sequence, an integration's Vault versions) to prove nothing was."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import hvac
import nats

from keyrail_common import subjects
from tests.support.stack import KeyrailStack, MockUpstream


@dataclass(frozen=True)
class Member:
    user_id: str
    token: str


def created(response: Any) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def project(stack: KeyrailStack, name: str) -> str:
    return str(created(stack.admin("POST", "/admin/v1/projects", {"name": name}))["id"])


def member(
    stack: KeyrailStack, name: str, roles: dict[str, str] | None = None, owner: bool = False
) -> Member:
    """A user with these project roles (`{"proj_…": "developer"}`) and one admin token."""
    body = {"name": name, "owner": owner, "project_roles": roles or {}}
    user = created(stack.admin("POST", "/admin/v1/users", body))
    token = created(stack.admin("POST", f"/admin/v1/users/{user['id']}/tokens", {"name": name}))
    return Member(user_id=user["id"], token=token["token"])


def api_key(stack: KeyrailStack, project_id: str) -> dict[str, Any]:
    return created(stack.admin("POST", f"/admin/v1/projects/{project_id}/keys", {"name": "tests"}))


def integration_body(upstream: MockUpstream, slug: str, scope: Any, **extra: Any) -> dict[str, Any]:
    return {
        "name": slug,
        "provider": "openai",
        "provider_slug": slug,
        "project_scope": scope,
        "credentials": {"api_key": upstream.api_key},
        "custom_host": upstream.url,
        "allow_http": True,
        "enabled_models": ["gpt-4o-mini"],
        **extra,
    }


def integration(stack: KeyrailStack, upstream: MockUpstream, slug: str, scope: Any, **extra: Any) -> None:
    created(stack.admin("POST", "/admin/v1/integrations", integration_body(upstream, slug, scope, **extra)))


def config_last_seq(stack: KeyrailStack) -> int:
    """The config stream's last sequence: unchanged means no event was appended."""

    async def last() -> int:
        nc = await nats.connect(stack.nats_url)
        try:
            info = await nc.jetstream().stream_info(subjects.CONFIG_STREAM)
            return int(info.state.last_seq)
        finally:
            await nc.close()

    return asyncio.run(last())


def vault(stack: KeyrailStack) -> hvac.Client:
    token = (stack.data_dir / "openbao" / "root-token").read_text().strip()
    return hvac.Client(url=f"http://127.0.0.1:{stack.base_port + 6}", token=token)


def vault_version(stack: KeyrailStack, slug: str) -> int:
    """The current Vault version of an integration's secret; 0 when it was never written."""
    try:
        metadata = vault(stack).secrets.kv.v2.read_secret_metadata(
            path=f"integrations/org_default/{slug}", mount_point="keyrail"
        )
    except hvac.exceptions.InvalidPath:
        return 0
    return int(metadata["data"]["current_version"])


def vault_secret(stack: KeyrailStack, slug: str, version: int) -> dict[str, Any]:
    secret = vault(stack).secrets.kv.v2.read_secret_version(
        path=f"integrations/org_default/{slug}",
        version=version,
        mount_point="keyrail",
        raise_on_deleted_version=True,
    )
    data: dict[str, Any] = secret["data"]["data"]
    return data
