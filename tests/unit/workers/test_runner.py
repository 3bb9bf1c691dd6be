"""One attempt through the runner and the stream relay, over in-memory stand-ins of Vault and the upstream.

The runner fetches the credential, lets the adapter build the request, sends it and hands the
answer to the adapter or the relay; these tests check what comes out: exactly one answer to the
router, the frames for the ingress, and what the attempt recorder holds for the activity row.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import cast

import pytest

from keyrail_common.attempts import AttemptRecorder
from keyrail_common.failures import FailureClass
from keyrail_common.messages import (
    Prices,
    ProviderCall,
    ProviderResult,
    StreamChunk,
    StreamEnd,
    Target,
    Usage,
    stream_frame_decoder,
)
from keyrail_common.registry import load_registry
from keyrail_common.vault import CachedCredentials, CredentialStore
from keyrail_workers.adapters import ADAPTERS
from keyrail_workers.http_client import UpstreamConnectionError, UpstreamPool
from keyrail_workers.runner import AttemptRunner
from tests.support.contracts import FIXTURES

OPENAI = FIXTURES / "openai"
API_KEY = "sk-proj-RUNNERTEST0123456789abcdefXYZ"
PRICES = Prices(input=0.4, output=1.6, cached_input=0.1)
CHAT_RESPONSE = (OPENAI / "chat_response.json").read_bytes()
CHAT_STREAM = (OPENAI / "chat_stream_with_usage.sse").read_bytes()
MIDSTREAM_ERROR = (OPENAI / "stream_error_midstream.sse").read_bytes()
KEY_401 = (OPENAI / "error_401_invalid_api_key.json").read_bytes()


class FakeStore(CredentialStore):
    def __init__(self, secret: dict[str, object] | None) -> None:
        self.secret = secret

    async def read(self, path: str, version: int) -> dict[str, object]:
        if self.secret is None:
            raise RuntimeError(f"vault said no for {path} (a detail that must not reach the client)")
        return dict(self.secret)


@dataclass
class FakeResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    released: bool = False

    async def read(self) -> bytes:
        return self.body

    async def lines(self) -> AsyncIterator[bytes]:
        for line in self.body.splitlines(keepends=True):
            yield line

    def release(self) -> None:
        self.released = True


@dataclass
class FakeUpstream:
    response: FakeResponse | Exception
    sent: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    async def post(
        self, url: str, headers: dict[str, str], body: bytes, timeout_s: float, tls: object = None
    ) -> FakeResponse:
        self.sent.append((url, headers, body))
        if isinstance(self.response, Exception):
            raise self.response
        return self.response


@dataclass
class Outcome:
    replies: list[ProviderResult]
    frames: list[StreamChunk | StreamEnd]
    attempt: AttemptRecorder
    upstream: FakeUpstream


def call(stream: bool = False, adapter: str = "openai", provider: str = "openai") -> ProviderCall:
    now = time.time_ns()
    return ProviderCall(
        request_id="req_1",
        org_id="org_1",
        project_id="proj_a",
        attempt=1,
        fallback_position=0,
        target=Target(
            integration_id="int_1",
            provider=provider,
            provider_slug=f"{provider}-prod",
            adapter=adapter,
            model="gpt-4.1-mini",
            catalog_id=f"{provider}/gpt-4.1-mini",
            base_url="https://api.openai.com/v1",
            credential_ref=f"integrations/org_1/{provider}-prod",
            credential_version=1,
            prices=PRICES,
        ),
        body=json.dumps(
            {"model": f"{provider}-prod/gpt-4.1-mini", "messages": [], "stream": stream}
        ).encode(),
        received_ns=now,
        routed_ns=now,
        deadline_ns=now + 30_000_000_000,
        attempt_deadline_ns=now + 30_000_000_000,
        stream=stream,
        stream_inbox="_INBOX.ingress.stream" if stream else "",
    )


async def run(
    provider_call: ProviderCall,
    response: FakeResponse | Exception,
    secret: dict[str, object] | None = None,
    vault_fails: bool = False,
) -> Outcome:
    upstream = FakeUpstream(response)
    replies: list[ProviderResult] = []
    frames: list[StreamChunk | StreamEnd] = []

    async def publish(subject: str, data: bytes) -> None:
        assert subject == provider_call.stream_inbox
        frames.append(stream_frame_decoder.decode(data))

    async def reply(result: ProviderResult) -> None:
        replies.append(result)

    store = FakeStore(None if vault_fails else secret or {"api_key": API_KEY})
    runner = AttemptRunner(load_registry(), CachedCredentials(store), cast(UpstreamPool, upstream), publish)
    attempt = AttemptRecorder(provider_call)
    await runner.run(provider_call, attempt, reply)
    return Outcome(replies, frames, attempt, upstream)


# --- non-streaming ---------------------------------------------------------------------------------


async def test_a_response_is_the_answer_with_its_usage_and_cost() -> None:
    outcome = await run(call(), FakeResponse(200, CHAT_RESPONSE))

    [result] = outcome.replies
    assert (result.ok, result.http_status, result.body) == (True, 200, CHAT_RESPONSE)
    assert result.usage == Usage(prompt_tokens=96, completion_tokens=19)
    assert result.cost_usd == Decimal("0.0000688")  # (96 x 0.4 + 19 x 1.6) / 1e6
    [(url, headers, body)] = outcome.upstream.sent
    assert url == "https://api.openai.com/v1/chat/completions"
    assert headers["Authorization"] == f"Bearer {API_KEY}"
    assert json.loads(body)["model"] == "gpt-4.1-mini"
    assert outcome.upstream.response.released  # type: ignore[union-attr]
    assert outcome.attempt.row().status == "ok"


async def test_an_error_response_is_classified_and_scrubbed_of_the_credential() -> None:
    body = json.dumps(
        {"error": {"message": f"Incorrect API key provided: {API_KEY}", "code": "invalid_api_key"}}
    )

    outcome = await run(call(), FakeResponse(401, body.encode()))

    [result] = outcome.replies
    assert result.ok is False and result.error is not None
    assert (result.http_status, result.error.error_class) == (502, FailureClass.CREDENTIAL)
    assert API_KEY not in result.error.message
    assert "PUT /admin/v1/integrations/openai-prod/credentials" in result.error.message
    assert outcome.attempt.row().error_class == "credential"


async def test_custom_auth_headers_are_sent_and_scrubbed_from_errors() -> None:
    secret: dict[str, object] = {
        "api_key": API_KEY,
        "custom_auth_headers": {"X-Org-Token": "org-tok-77aa99bb"},
    }
    body = b'{"error": {"message": "bad X-Org-Token org-tok-77aa99bb"}}'

    outcome = await run(call(), FakeResponse(403, body), secret)

    [(_, headers, _)] = outcome.upstream.sent
    assert headers["X-Org-Token"] == "org-tok-77aa99bb"
    [result] = outcome.replies
    assert result.error is not None and "org-tok-77aa99bb" not in result.error.message


async def test_a_rate_limit_carries_the_upstreams_retry_delay() -> None:
    body = (OPENAI / "error_429_rate_limit.json").read_bytes()

    outcome = await run(call(), FakeResponse(429, body, {"retry-after": "7"}))

    [result] = outcome.replies
    assert result.error is not None
    assert (result.http_status, result.error.error_class, result.error.retry_after_ms) == (
        429,
        FailureClass.RATE_LIMIT,
        7000,
    )


async def test_an_unreachable_upstream_is_a_connection_failure() -> None:
    outcome = await run(call(), UpstreamConnectionError("connection refused"))

    [result] = outcome.replies
    assert result.error is not None
    assert (result.http_status, result.error.error_class) == (502, FailureClass.CONNECTION)
    assert "'openai-prod'" in result.error.message


async def test_a_credential_vault_cannot_read_fails_closed_without_detail() -> None:
    outcome = await run(call(), FakeResponse(200, CHAT_RESPONSE), vault_fails=True)

    [result] = outcome.replies
    assert result.error is not None
    assert (result.error.error_class, result.error.code) == (
        FailureClass.WORKER_ERROR,
        "credentials_unavailable",
    )
    assert "vault said no" not in result.error.message
    assert outcome.upstream.sent == []  # no other credential, no unauthenticated call


@pytest.mark.parametrize("adapter", ["anthropic", "nosuchadapter"])
async def test_an_adapter_this_worker_lacks_is_unsupported_before_any_call(
    adapter: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(ADAPTERS, adapter, raising=False)  # a worker of a version without it

    outcome = await run(call(adapter=adapter), FakeResponse(200, CHAT_RESPONSE))

    [result] = outcome.replies
    assert result.error is not None
    assert (result.error.error_class, result.error.code) == (
        FailureClass.UNSUPPORTED,
        "provider_adapter_unavailable",
    )
    assert outcome.upstream.sent == []


async def test_the_registry_quirks_of_the_provider_are_applied() -> None:
    provider_call = call(provider="groq")
    provider_call.body = json.dumps(
        {
            "model": "groq-prod/x",
            "messages": [{"role": "user", "content": "hi", "name": "a"}],
            "logprobs": True,
        }
    ).encode()

    outcome = await run(provider_call, FakeResponse(200, CHAT_RESPONSE))

    [(_, _, body)] = outcome.upstream.sent
    assert json.loads(body) == {"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize("status", [301, 307, 308])
async def test_a_redirect_is_not_a_success(status: int) -> None:
    response = FakeResponse(status, b"<html>Moved</html>", {"location": "https://elsewhere.example/v1/chat"})

    outcome = await run(call(), response)

    [result] = outcome.replies
    assert result.ok is False


# --- streaming ---------------------------------------------------------------------------------------


def chunks(frames: list[StreamChunk | StreamEnd]) -> list[StreamChunk]:
    return [f for f in frames if isinstance(f, StreamChunk)]


async def test_a_stream_relays_every_chunk_in_order_and_ends_with_usage_and_cost() -> None:
    outcome = await run(call(stream=True), FakeResponse(200, CHAT_STREAM))

    sent = chunks(outcome.frames)
    expected = [
        line[len(b"data: ") :]
        for line in CHAT_STREAM.splitlines()
        if line.startswith(b"data: ") and line != b"data: [DONE]"
    ][:-1]  # the usage chunk: the client did not ask for it
    assert [c.data for c in sent] == expected
    assert [c.seq for c in sent] == list(range(len(expected)))
    end = outcome.frames[-1]
    assert isinstance(end, StreamEnd)
    assert (end.chunks, end.error) == (len(expected), None)
    assert end.usage == Usage(prompt_tokens=11, completion_tokens=9)
    assert end.cost_usd == Decimal("0.0000188")  # (11 x 0.4 + 9 x 1.6) / 1e6
    [answer] = outcome.replies  # the router is answered once, at the first chunk
    assert answer.ok and answer.streaming
    assert outcome.attempt.first_content > 0
    assert outcome.attempt.row().status == "ok"


def _events(raw: bytes) -> list[bytes]:
    return [event + b"\n\n" for event in raw.split(b"\n\n") if event.strip()]


async def test_an_error_after_the_first_content_ends_the_stream_with_it() -> None:
    role, hello = _events(CHAT_STREAM)[:2]
    error = _events(MIDSTREAM_ERROR)[-1]
    outcome = await run(call(stream=True), FakeResponse(200, role + hello + error))

    assert len(chunks(outcome.frames)) == 2  # the held role chunk went out with the first content
    end = outcome.frames[-1]
    assert isinstance(end, StreamEnd) and end.error is not None
    assert end.error.error_class is FailureClass.STREAM_CUT
    assert "The server had an error" in end.error.message
    assert [r.ok for r in outcome.replies] == [True]
    assert outcome.attempt.row().error_class == "stream_cut"


async def test_an_error_after_only_the_role_preamble_goes_to_the_router_so_it_can_fall_back() -> None:
    outcome = await run(call(stream=True), FakeResponse(200, MIDSTREAM_ERROR))

    assert outcome.frames == []  # the role chunk was held back: nothing reached the client
    [result] = outcome.replies
    assert result.ok is False and result.error is not None
    assert result.error.error_class is FailureClass.STREAM_CUT
    assert "The server had an error" in result.error.message


async def test_an_error_before_any_chunk_goes_to_the_router_so_it_can_fall_back() -> None:
    body = b'data: {"error": {"message": "overloaded", "type": "server_error"}}\n\n'

    outcome = await run(call(stream=True), FakeResponse(200, body))

    assert outcome.frames == []
    [result] = outcome.replies
    assert result.ok is False and result.error is not None
    assert result.error.error_class is FailureClass.STREAM_CUT


async def test_a_stream_cut_before_done_ends_with_a_stream_cut() -> None:
    cut = CHAT_STREAM[: CHAT_STREAM.index(b"data: [DONE]")]

    outcome = await run(call(stream=True), FakeResponse(200, cut))

    end = outcome.frames[-1]
    assert isinstance(end, StreamEnd) and end.error is not None
    assert end.error.error_class is FailureClass.STREAM_CUT
    assert end.usage == Usage(prompt_tokens=11, completion_tokens=9)


async def test_an_empty_stream_is_a_failure_for_the_router() -> None:
    outcome = await run(call(stream=True), FakeResponse(200, b""))

    assert outcome.frames == []
    [result] = outcome.replies
    assert result.error is not None and result.error.error_class is FailureClass.STREAM_CUT


async def test_an_error_status_on_a_stream_is_classified_like_any_other() -> None:
    outcome = await run(call(stream=True), FakeResponse(401, KEY_401))

    assert outcome.frames == []
    [result] = outcome.replies
    assert result.error is not None and result.error.error_class is FailureClass.CREDENTIAL
    assert "sk-proj-****" not in result.error.message
