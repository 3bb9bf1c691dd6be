"""Keys and provider credentials appear nowhere but Vault and worker memory.

Searched: every message of both JetStream streams, the whole `keyrail up` log, every ClickHouse
row, every admin response, and every file in the data dir (OpenBao's raft store holds the
credential only encrypted by its barrier).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import nats
import openai
import pytest

from keyrail_common import subjects
from tests.integration.conftest import MODEL, PROVIDER_KEY, Tenant
from tests.support.stack import KeyrailStack, MockUpstream

pytestmark = pytest.mark.integration

WRONG_PROVIDER_KEY = "sk-wrong-provider-key-3c5e9a1f7b2d4e6a"
CUSTOM_HEADER_VALUE = "hdr-secret-91f2c3d4e5a6b7c8"


async def _stream_messages(nats_url: str) -> list[bytes]:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    found: list[bytes] = []
    for stream in (subjects.CONFIG_STREAM, subjects.ACTIVITY_STREAM):
        info = await js.stream_info(stream)
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            message = await js.get_msg(stream, seq)
            found.append(
                (message.subject or "").encode() + (message.data or b"") + repr(message.headers).encode()
            )
    await nc.close()
    return found


def _exercise(stack: KeyrailStack, upstream: MockUpstream, tenant: Tenant) -> list[str]:
    """Traffic of every kind; returns the admin responses' text."""
    texts = []
    wrong = stack.admin(
        "POST",
        "/admin/v1/integrations",
        {
            "name": "wrong key",
            "provider": "openai",
            "provider_slug": "openai-wrong-key",
            "credentials": {"api_key": WRONG_PROVIDER_KEY},
            "custom_auth_headers": {"X-Org-Token": CUSTOM_HEADER_VALUE},
            "custom_host": upstream.url,
            "allow_http": True,
            "enabled_models": [MODEL],
        },
    )
    assert wrong.status_code == 201
    texts.append(wrong.text)
    client = openai.OpenAI(base_url=f"{stack.url}/v1", api_key=tenant.api_key, max_retries=0)
    client.chat.completions.create(model=tenant.model, messages=[{"role": "user", "content": "hello"}])
    list(
        client.chat.completions.create(
            model=tenant.model, messages=[{"role": "user", "content": "hello"}], stream=True
        )
    )
    # The upstream rejects the wrong key: the error must not carry it back.
    rejected = httpx.post(
        f"{stack.url}/v1/chat/completions",
        json={"model": f"openai-wrong-key/{MODEL}", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {tenant.api_key}"},
        timeout=30,
    )
    assert rejected.status_code == 502, rejected.text
    texts.append(rejected.text)
    stack.activity_rows(rejected.headers["x-keyrail-request-id"])
    for path in ("/admin/v1/integrations", "/admin/v1/projects", "/admin/v1/activity?limit=1000"):
        response = stack.admin("GET", path)
        assert response.status_code == 200
        texts.append(response.text)
    rows = stack.admin("POST", "/admin/v1/sql", {"sql": "SELECT * FROM keyrail.activity"})
    assert rows.status_code == 200 and len(rows.json()["rows"]) >= 4
    texts.append(rows.text)
    return texts


def test_no_secret_in_streams_logs_clickhouse_admin_responses_or_data_dir(
    stack: KeyrailStack, upstream: MockUpstream, tenant: Tenant
) -> None:
    secrets = [tenant.api_key, PROVIDER_KEY, WRONG_PROVIDER_KEY, CUSTOM_HEADER_VALUE]
    texts = _exercise(stack, upstream, tenant)
    # The checks below must be able to fail: the key material is really where we look from.
    assert tenant.api_key.startswith("kr-") and len(tenant.api_key) > 30

    for text in texts:
        for secret in secrets:
            assert secret not in text

    messages = asyncio.run(_stream_messages(stack.nats_url))
    assert len(messages) >= 6
    blob = b"\n".join(messages)
    assert b"openai-wrong-key" in blob  # the search sees real events...
    for secret in secrets:
        assert secret.encode() not in blob  # ...and none carries a secret

    log = stack.log_path.read_bytes()
    assert b"request_id" in log
    for secret in secrets:
        assert secret.encode() not in log

    scanned = 0
    for path in Path(stack.data_dir).rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            scanned += 1
            for secret in secrets:
                assert secret.encode() not in content, f"{secret[:6]}… found in {path}"
    assert scanned > 10
