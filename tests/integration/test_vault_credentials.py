"""Credentials live in the real OpenBao (KV v2), versioned, and survive token expiry."""

from __future__ import annotations

import asyncio

import hvac
import msgspec
import pytest

from keyrail_common.settings import load_settings
from keyrail_common.vault import CredentialStore, credential_path
from tests.integration.conftest import PROVIDER_KEY, Tenant
from tests.support.stack import KeyrailStack

pytestmark = pytest.mark.integration


def test_credential_store_logs_in_again_when_its_token_stops_working(
    stack: KeyrailStack, tenant: Tenant
) -> None:
    settings = msgspec.structs.replace(
        load_settings(),
        vault_addr=f"http://127.0.0.1:{stack.base_port + 6}",
        vault_token="",
        vault_token_file=str(stack.data_dir / "openbao" / "root-token"),
    )
    store = CredentialStore(settings)
    store._client = hvac.Client(url=settings.vault_addr, token="s.expired-or-revoked")  # as after a TTL
    secret = asyncio.run(store.read(credential_path("org_default", tenant.slug), 1))
    assert secret["api_key"] == PROVIDER_KEY
    token_file = stack.data_dir / "openbao" / "root-token"
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert (stack.data_dir / "openbao" / "init.json").stat().st_mode & 0o777 == 0o600
