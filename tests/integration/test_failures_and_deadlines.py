"""The seams of the failure vocabulary, the registry and the deadline budget, on the real stack.

Each test is one promise: a stale credential is named as such, a rate limit's delay reaches the
client, a provider without a custom host goes to the registry's base URL, a pool without a
worker answers at once, a hanging target is abandoned in time for the next, and a message this
version cannot read is refused instead of hanging its sender.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import nats
import openai
import pytest

from keyrail_cli.mock_upstream import DEFAULT_REPLY
from tests.integration.conftest import MODEL, Tenant, provision
from tests.support.stack import KeyrailStack, MockUpstream

pytestmark = pytest.mark.integration


def _client(stack: KeyrailStack, tenant: Tenant) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stack.url}/v1", api_key=tenant.api_key, max_retries=0)


def _add_integration(stack: KeyrailStack, project_id: str, slug: str, **fields: object) -> None:
    body = {
        "name": slug,
        "provider": "openai",
        "provider_slug": slug,
        "project_scope": [project_id],
        "credentials": {"api_key": "sk-unused-by-the-mock"},
        "allow_http": True,
        "enabled_models": [MODEL],
        **fields,
    }
    response = stack.admin("POST", "/admin/v1/integrations", body)
    assert response.status_code == 201, response.text


def test_upstream_401_is_a_stale_credential_naming_the_slug_and_how_to_rotate_it(
    stack: KeyrailStack, upstream: MockUpstream
) -> None:
    tenant = provision(stack, upstream, "openai-stale-key")
    slug = "openai-stale-key"
    rotated = stack.change(
        "PUT",
        f"/admin/v1/integrations/{slug}/credentials",
        {"credentials": {"api_key": "sk-revoked-0000"}},
        of=f"/admin/v1/integrations/{slug}",
    )
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["set"] is True and "sk-revoked" not in rotated.text
    with pytest.raises(openai.APIStatusError) as caught:
        _client(stack, tenant).chat.completions.create(
            model=tenant.model, messages=[{"role": "user", "content": "hi"}]
        )
    error = caught.value
    assert error.status_code == 502  # the caller's key was fine: the gateway's stored one was not
    message = error.body["message"]  # type: ignore[index]
    assert "rejected the stored credential" in message and slug in message
    assert f"PUT /admin/v1/integrations/{slug}/credentials" in message
    request_id = error.response.headers["x-keyrail-request-id"]
    (attempt,) = [r for r in stack.activity_rows(request_id) if r["kind"] == "attempt"]
    assert attempt["error_class"] == "credential"
    # Rotating back to the key the upstream accepts fixes it from the very next request.
    restored = stack.change(
        "PUT",
        f"/admin/v1/integrations/{slug}/credentials",
        {"credentials": {"api_key": upstream.api_key}},
        of=f"/admin/v1/integrations/{slug}",
    )
    assert restored.status_code == 200 and restored.json()["version"] > rotated.json()["version"]
    reply = _client(stack, tenant).chat.completions.create(
        model=tenant.model, messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content == DEFAULT_REPLY


def test_rate_limit_retry_after_reaches_the_client(stack: KeyrailStack, tenant: Tenant) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        _client(stack, tenant).chat.completions.create(
            model=tenant.model,
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"mock": {"status": 429, "retry_after": 7}},
        )
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.body["code"] == "upstream_429"  # type: ignore[index]


def _worker_pid(stack: KeyrailStack) -> int:
    assert stack.process is not None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if parent == stack.process.pid and b"worker" in cmdline and b"keyrail_cli.main" in cmdline:
            return int(entry.name)
    raise AssertionError("no worker process under the stack")


@pytest.fixture
def killed_worker(stack: KeyrailStack) -> Iterator[None]:
    """The stack's worker SIGKILLed; the supervisor restarts it (after a 1 s backoff) meanwhile."""
    os.kill(_worker_pid(stack), signal.SIGKILL)
    time.sleep(0.1)  # the NATS server drops the dead connection's subscriptions as its socket closes
    yield
    stack.wait_healthy(60)


def test_a_pool_without_a_running_worker_answers_503_at_once(
    stack: KeyrailStack, upstream: MockUpstream, killed_worker: None
) -> None:
    tenant = provision(stack, upstream, "openai-no-worker-a")
    _add_integration(stack, tenant.project_id, "openai-no-worker-b", custom_host=upstream.url)
    # A pinned model takes the router's single-target fast path; `openai/<model>` has two targets.
    models = {"fast path": tenant.model, "executor": f"openai/{MODEL}"}
    seen: dict[str, tuple[float, httpx.Response]] = {}
    deadline = time.monotonic() + 0.8  # the supervisor brings the worker back after its 1 s backoff
    while time.monotonic() < deadline and len(seen) < len(models):
        for path, model in models.items():
            started = time.monotonic()
            response = httpx.post(
                f"{stack.url}/v1/chat/completions",
                headers={"Authorization": f"Bearer {tenant.api_key}", "x-keyrail-timeout-ms": "5000"},
                json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
                timeout=30,
            )
            if response.status_code == 503:
                seen[path] = (time.monotonic() - started, response)
    assert set(seen) == set(models), f"no 503 while the worker was down: {seen}"
    for path, (elapsed, response) in seen.items():
        assert elapsed < 1.0, (path, elapsed)
        message = response.json()["error"]["message"]
        assert "No 'openai' provider worker is running" in message, message
        assert "keyrail worker --providers openai" in message, message
    rows = stack.activity_rows(seen["executor"][1].headers["x-keyrail-request-id"], expected=3)
    attempts = [r for r in rows if r["kind"] == "attempt"]
    # Both of this project's integrations were tried (others scoped to "all" may be too), none by a worker.
    assert {"openai-no-worker-a", "openai-no-worker-b"} <= {r["provider_slug"] for r in attempts}
    assert {r["error_class"] for r in attempts} == {"no_worker"}


def test_a_hanging_target_is_abandoned_in_time_for_the_next_to_answer(
    stack: KeyrailStack, upstream: MockUpstream, workdir: Path
) -> None:
    hanging = MockUpstream(None, workdir / "hanging-upstream.log", args=("--delay-ms", "600000")).start()
    try:
        tenant = provision(stack, upstream, "openai-deadline-b")
        _add_integration(stack, tenant.project_id, "openai-deadline-a", custom_host=hanging.url)
        started = time.monotonic()
        raw = _client(stack, tenant).chat.completions.with_raw_response.create(
            model=f"openai/{MODEL}",  # both integrations serve it; slug order tries the hanging one first
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-keyrail-timeout-ms": "3000"},
        )
        elapsed = time.monotonic() - started
    finally:
        hanging.stop()
    assert raw.parse().choices[0].message.content == DEFAULT_REPLY
    assert elapsed < 3.0, elapsed
    assert raw.headers["x-keyrail-provider-slug"] == "openai-deadline-b"
    assert raw.headers["x-keyrail-attempts"] == "2"
    rows = stack.activity_rows(raw.headers["x-keyrail-request-id"], expected=3)
    attempts = sorted((r for r in rows if r["kind"] == "attempt"), key=lambda r: r["attempt"])
    assert [(r["provider_slug"], r["error_class"]) for r in attempts] == [
        ("openai-deadline-a", "timeout"),
        ("openai-deadline-b", ""),
    ]
    # Half of the 3 s budget (one of two targets), measured from the worker: a little less than 1500 ms.
    assert 900 <= attempts[0]["latency_ms"] < 2000


def test_a_bad_timeout_header_is_400_naming_it(stack: KeyrailStack, tenant: Tenant) -> None:
    response = httpx.post(
        f"{stack.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {tenant.api_key}", "x-keyrail-timeout-ms": "soon"},
        json={"model": tenant.model, "messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "x-keyrail-timeout-ms"


class _OldTarget(msgspec.Struct):
    integration_id: str
    provider: str
    provider_slug: str
    family: str  # version 1 named the pool "family"
    model: str


class _OldProviderCall(msgspec.Struct):
    request_id: str
    target: _OldTarget
    v: int = 1


def test_messages_this_version_cannot_read_are_refused_not_left_hanging(stack: KeyrailStack) -> None:
    async def exchange() -> tuple[bytes, bytes]:
        nc = await nats.connect(stack.nats_url)
        try:
            old = _OldProviderCall("req_old", _OldTarget("int_x", "openai", "openai-x", "openai", MODEL))
            worker = await nc.request("keyrail.provider.openai", msgspec.msgpack.encode(old), timeout=5)
            router = await nc.request("keyrail.route", b"\x93garbage", timeout=5)
        finally:
            await nc.close()
        return worker.data, router.data

    worker_reply, router_reply = asyncio.run(exchange())
    for reply in (worker_reply, router_reply):
        answer = msgspec.msgpack.decode(reply)
        assert answer["ok"] is False and answer["error"]["error_class"] == "worker_error"
        assert "could not be decoded by this version" in answer["error"]["message"]
    metrics = httpx.get(f"http://127.0.0.1:{stack.base_port + 3}/metrics").text  # the worker's
    assert (
        'keyrail_bus_messages_refused_total{reason="undecodable",subject="keyrail.provider.openai"}'
        in metrics
    )
