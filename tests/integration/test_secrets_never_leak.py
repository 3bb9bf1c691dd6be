"""Keys and provider credentials appear nowhere but Vault and worker memory.

Searched: every message of both JetStream streams, the whole `keyrail up` log, every ClickHouse
row, every admin response, and every file in the data dir (OpenBao's raft store holds the
credential only encrypted by its barrier).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import nats
import openai
import pytest

from keyrail_common import subjects
from tests.integration.conftest import MODEL, PROVIDER_KEY, Tenant
from tests.support.control_plane import api_key, created, integration_body, member, project
from tests.support.stack import OWNER_TOKEN, KeyrailStack, MockUpstream
from tests.support.stored import stored_files

pytestmark = pytest.mark.integration

WRONG_PROVIDER_KEY = "sk-wrong-provider-key-3c5e9a1f7b2d4e6a"
CUSTOM_HEADER_VALUE = "hdr-secret-91f2c3d4e5a6b7c8"


async def stream_messages(nats_url: str) -> list[bytes]:
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

    messages = asyncio.run(stream_messages(stack.nats_url))
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
    for path, content in stored_files(Path(stack.data_dir)):
        scanned += 1
        for secret in secrets:
            assert secret.encode() not in content, f"{secret[:6]}… found in {path}"
    assert scanned > 10


def test_no_token_credential_or_header_value_in_admin_responses_or_the_change_history(
    stack: KeyrailStack, upstream: MockUpstream
) -> None:
    """Every control-plane flow with a secret in it; then every admin read, as every role. A
    secret is in the one response that creates it, and nowhere else: not in any other answer,
    the change history, the config stream, the log or the data dir."""
    project_id = project(stack, "secrets")
    creations: list[tuple[str, str]] = []  # (the response, the secret it alone may show)
    admin_token = created(stack.admin("POST", "/admin/v1/users/user_owner/tokens", {"name": "spare"}))
    creations.append((json.dumps(admin_token), admin_token["token"]))
    dev = member(stack, "secret keeper", {project_id: "developer"})
    key = api_key(stack, project_id)
    creations.append((json.dumps(key), key["key"]))
    values = {
        "provider key": "sk-secret-cp-" + "7c1d" * 6,
        "header at creation": "hdr-created-0a9b8c7d6e",
        "rotated key": "sk-rotated-cp-" + "4e2f" * 6,
        "header at rotation": "hdr-rotated-1f2e3d4c5b",
        "header by patch": "hdr-patched-6a5b4c3d2e",
    }
    texts = []
    body = integration_body(upstream, "openai-secrets", [project_id])
    body["credentials"] = {"api_key": values["provider key"]}
    body["custom_auth_headers"] = {"X-Org-Token": values["header at creation"]}
    texts.append(stack.admin("POST", "/admin/v1/integrations", body).text)
    path = "/admin/v1/integrations/openai-secrets"
    rotation = {
        "credentials": {"api_key": values["rotated key"]},
        "custom_auth_headers": {"X-Org-Token": values["header at rotation"]},
    }
    rotated = stack.change("PUT", f"{path}/credentials", rotation, of=path)
    assert rotated.json()["fingerprint"] == "…4e2f"  # four characters, never more of the key
    assert stack.admin("GET", path).json()["credential_fingerprint"] == "…4e2f"
    texts.append(rotated.text)
    patch = {"custom_auth_headers": {"X-Org-Token": values["header by patch"]}}
    texts.append(stack.change("PATCH", path, patch, of=path).text)
    refused = stack.change("PATCH", path, {"custom_host": "http://169.254.169.254/", **patch}, of=path)
    assert refused.status_code == 400
    texts.append(refused.text)
    reads = [
        "/admin/v1/users",
        "/admin/v1/users/user_owner/tokens",
        f"/admin/v1/users/{dev.user_id}",
        f"/admin/v1/users/{dev.user_id}/tokens",
        "/admin/v1/projects",
        f"/admin/v1/projects/{project_id}",
        f"/admin/v1/projects/{project_id}/keys",
        "/admin/v1/integrations",
        path,
        "/admin/v1/events?limit=1000",
        "/admin/v1/events?aggregate=integration/openai-secrets",
        "/admin/v1/activity?limit=1000",
    ]
    for token in (OWNER_TOKEN, dev.token):
        for read in reads:
            answer = stack.admin("GET", read, token=token)
            assert answer.status_code in (200, 403), answer.text
            texts.append(answer.text)
    history = stack.admin("GET", "/admin/v1/events?aggregate=integration/openai-secrets").json()["data"]
    assert {"IntegrationCreated", "CredentialsRotated", "IntegrationUpdated"} <= {e["type"] for e in history}

    secrets = [admin_token["token"], dev.token, key["key"], *values.values()]
    assert all(len(s) > 15 for s in secrets)  # real values, not something found by chance
    for text in texts:
        for secret in secrets:
            assert secret not in text
    for text, own in creations:
        assert [s for s in secrets if s in text] == [own]
    blob = b"\n".join(asyncio.run(stream_messages(stack.nats_url)))
    log = stack.log_path.read_bytes()
    for secret in secrets:
        assert secret.encode() not in blob and secret.encode() not in log
    for stored, content in stored_files(Path(stack.data_dir)):
        for secret in secrets:
            assert secret.encode() not in content, f"{secret[:6]}… found in {stored}"
