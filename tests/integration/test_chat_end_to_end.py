"""One request, streaming and not, through ingress → router → worker → upstream → audit."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import httpx
import openai
import pytest

from keyrail_cli.mock_upstream import DEFAULT_REPLY
from keyrail_common.registry import load_registry
from tests.integration.conftest import Tenant
from tests.support.openai_schema import validate_component
from tests.support.stack import KeyrailStack

pytestmark = pytest.mark.integration

PROMPT = "count these five words please"
REPLY_TOKENS = len(DEFAULT_REPLY.split())


def _check_rows(rows: list[dict], tenant: Tenant, stream: bool) -> None:
    kinds = {row["kind"]: row for row in rows}
    assert set(kinds) == {"request", "attempt"}
    for row in kinds.values():
        assert row["provider_slug"] == tenant.slug
        assert row["provider"] == "openai"
        assert row["model"] == "gpt-4o-mini"
        assert row["project_id"] == tenant.project_id
        assert row["status"] == "ok" and row["http_status"] == 200
        assert row["prompt_tokens"] == 5
        assert row["completion_tokens"] == REPLY_TOKENS
        assert row["stream"] == int(stream)
        assert row["latency_ms"] > 0
        assert Decimal(row["cost_usd"]) == (5 * Decimal("0.15") + REPLY_TOKENS * Decimal("0.6")) / 1_000_000
        assert row["cost_status"] == "priced"
    if stream:
        assert kinds["request"]["ttft_ms"] > 0 and kinds["attempt"]["ttft_ms"] > 0


def test_chat_completion_with_openai_sdk_reaches_upstream_and_activity_log(
    stack: KeyrailStack, tenant: Tenant, client: openai.OpenAI
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=tenant.model, messages=[{"role": "user", "content": PROMPT}]
    )
    completion = raw.parse()
    validate_component("CreateChatCompletionResponse", json.loads(raw.http_response.text))
    assert completion.choices[0].message.content == DEFAULT_REPLY
    assert completion.usage is not None and completion.usage.prompt_tokens == 5
    assert raw.headers["x-keyrail-provider-slug"] == tenant.slug
    assert raw.headers["x-keyrail-model"] == "gpt-4o-mini"
    assert raw.headers["x-keyrail-attempts"] == "1"
    assert float(raw.headers["x-keyrail-overhead-ms"]) >= 0
    request_id = raw.headers["x-keyrail-request-id"]
    _check_rows(stack.activity_rows(request_id), tenant, stream=False)


def test_streaming_with_usage_through_openai_sdk(
    stack: KeyrailStack, tenant: Tenant, client: openai.OpenAI
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=tenant.model,
        messages=[{"role": "user", "content": PROMPT}],
        stream=True,
        stream_options={"include_usage": True},
    )
    request_id = raw.headers["x-keyrail-request-id"]
    assert raw.headers["x-keyrail-provider-slug"] == tenant.slug
    chunks = list(raw.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == DEFAULT_REPLY
    usage = [c.usage for c in chunks if c.usage is not None]
    assert len(usage) == 1 and usage[0].completion_tokens == REPLY_TOKENS
    _check_rows(stack.activity_rows(request_id), tenant, stream=True)


@pytest.mark.parametrize("include_usage", [True, False])
def test_every_stream_chunk_validates_against_openai_schema(
    stack: KeyrailStack, tenant: Tenant, include_usage: bool
) -> None:
    body = {
        "model": tenant.model,
        "messages": [{"role": "user", "content": PROMPT}],
        "stream": True,
        "stream_options": {"include_usage": include_usage},
    }
    headers = {"Authorization": f"Bearer {tenant.api_key}"}
    with httpx.stream(
        "POST", f"{stack.url}/v1/chat/completions", json=body, headers=headers, timeout=30
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    payloads = [json.loads(e) for e in events[:-1]]
    for payload in payloads:
        validate_component("CreateChatCompletionStreamResponse", payload)
    usage_chunks = [p for p in payloads if p.get("usage")]
    # We always ask the upstream for usage (for the activity log) but forward it only when asked.
    assert len(usage_chunks) == (1 if include_usage else 0)
    _check_rows(stack.activity_rows(response.headers["x-keyrail-request-id"]), tenant, stream=True)


def test_api_v1_alias_serves_the_same_endpoint(stack: KeyrailStack, tenant: Tenant) -> None:
    client = openai.OpenAI(base_url=f"{stack.url}/api/v1", api_key=tenant.api_key, max_retries=0)
    completion = client.chat.completions.create(
        model=tenant.model, messages=[{"role": "user", "content": "hi"}]
    )
    assert completion.choices[0].message.content == DEFAULT_REPLY


def test_healthz_and_metrics(stack: KeyrailStack) -> None:
    health = httpx.get(f"{stack.url}/healthz")
    assert health.status_code == 200
    # `keyrail up` starts a worker pool for every adapter the registry has available.
    pools = {f"worker.{pool}" for pool in load_registry().pools()}
    assert "worker.openai" in pools
    assert set(health.json()["components"]) == {"router", "audit", *pools}
    # The audit service reports its ingestion backlog (rows in JetStream not yet in ClickHouse).
    audit = health.json()["detail"]["audit"]
    assert audit["store"] == "ok" and isinstance(audit["backlog"], int)
    deadline = time.monotonic() + 15  # every row written: nothing left behind in JetStream
    while httpx.get(f"{stack.url}/healthz").json()["detail"]["audit"]["backlog"] != 0:
        assert time.monotonic() < deadline
        time.sleep(0.5)
    metrics = httpx.get(f"{stack.url}/metrics").text
    assert "keyrail_ingress_requests_total" in metrics
    expected = (
        (1, "keyrail_audit_rows_written_total"),
        (1, "keyrail_audit_backlog_messages"),
        (2, "keyrail_router_requests_total"),
        (3, "keyrail_worker"),
    )
    for offset, name in expected:
        assert name in httpx.get(f"http://127.0.0.1:{stack.base_port + offset}/metrics").text


def test_client_that_leaves_mid_stream_is_logged_as_disconnected(stack: KeyrailStack, tenant: Tenant) -> None:
    body = {
        "model": tenant.model,
        "messages": [{"role": "user", "content": PROMPT}],
        "stream": True,
        "mock": {"chunk_delay_ms": 200},
    }
    headers = {"Authorization": f"Bearer {tenant.api_key}"}
    with httpx.stream(
        "POST", f"{stack.url}/v1/chat/completions", json=body, headers=headers, timeout=30
    ) as response:
        request_id = response.headers["x-keyrail-request-id"]
        lines = response.iter_lines()
        assert next(lines).startswith("data: ")
    # Leaving the block closed the connection after the first chunk.
    rows = stack.activity_rows(request_id, expected=2)
    (request_row,) = [r for r in rows if r["kind"] == "request"]
    assert request_row["http_status"] == 499 and request_row["error_class"] == "client_disconnected"
    # The worker stopped reading the upstream too, well before the stream's ~1.6 s would have ended.
    (attempt_row,) = [r for r in rows if r["kind"] == "attempt"]
    assert attempt_row["error_class"] == "client_disconnected" and attempt_row["http_status"] == 499
    assert attempt_row["latency_ms"] < 1000
    assert httpx.get(f"{stack.url}/healthz").status_code == 200
