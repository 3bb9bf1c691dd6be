"""Credential storage in Vault / OpenBao (KV v2). The only place secrets are written or read.

hvac is synchronous, so calls run in a worker thread; the provider workers cache what they read
(by reference and version) so Vault is not on the hot path after the first request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import hvac

from keyrail_common.settings import Settings

T = TypeVar("T")


def vault_client(settings: Settings) -> hvac.Client:
    """A client authenticated with a token, a token file or AppRole (production)."""
    client = hvac.Client(url=settings.vault_addr, timeout=10)
    if settings.vault_role_id:
        client.auth.approle.login(role_id=settings.vault_role_id, secret_id=settings.vault_secret_id)
    elif settings.vault_token:
        client.token = settings.vault_token
    else:
        client.token = Path(settings.vault_token_file).read_text().strip()
    return client


def credential_path(org_id: str, provider_slug: str) -> str:
    return f"integrations/{org_id}/{provider_slug}"


class CredentialStore:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: hvac.Client | None = None

    def _kv(self) -> hvac.api.secrets_engines.KvV2:
        if self._client is None:
            self._client = vault_client(self._settings)
        return self._client.secrets.kv.v2

    def _with_fresh_login(self, call: Callable[[], T]) -> T:
        """Run `call`; on 403 (an expired or revoked token) log in again once and retry."""
        try:
            return call()
        except hvac.exceptions.Forbidden:
            self._client = None
            return call()

    def _write(self, path: str, secret: dict[str, object]) -> int:
        mount = self._settings.vault_kv_mount
        response = self._with_fresh_login(
            lambda: self._kv().create_or_update_secret(path=path, secret=secret, mount_point=mount)
        )
        return int(response["data"]["version"])

    def _read(self, path: str, version: int) -> dict[str, object]:
        mount = self._settings.vault_kv_mount
        response = self._with_fresh_login(
            lambda: self._kv().read_secret_version(
                path=path, version=version, mount_point=mount, raise_on_deleted_version=True
            )
        )
        return dict(response["data"]["data"])

    async def write(self, path: str, secret: dict[str, object]) -> int:
        """Store a new version of a credential; returns the version number."""
        return await asyncio.to_thread(self._write, path, secret)

    async def read(self, path: str, version: int) -> dict[str, object]:
        return await asyncio.to_thread(self._read, path, version)


class CachedCredentials:
    """Worker-side cache: one Vault read per (reference, version), then memory only.

    Holds one version per reference: a rotation (a higher version in the calls) replaces the old
    credential in memory instead of keeping it beside the new one.
    """

    def __init__(self, store: CredentialStore) -> None:
        self._store = store
        self._cache: dict[str, tuple[int, dict[str, object]]] = {}
        self._reading: dict[tuple[str, int], asyncio.Future[dict[str, object]]] = {}

    async def get(self, path: str, version: int) -> dict[str, object]:
        cached = self._cache.get(path)
        if cached is not None and cached[0] == version:
            return cached[1]
        # Concurrent first requests for one version share one Vault read.
        reading = self._reading.get((path, version))
        if reading is None:
            reading = asyncio.ensure_future(self._store.read(path, version))
            self._reading[(path, version)] = reading
            reading.add_done_callback(lambda _: self._reading.pop((path, version), None))
        secret = await asyncio.shield(reading)
        current = self._cache.get(path)
        if current is None or current[0] <= version:
            self._cache[path] = (version, secret)
        return secret
