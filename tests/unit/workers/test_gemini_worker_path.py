"""The Gemini adapter on the real worker path: `AttemptRunner` with a real `UpstreamPool` against a
local HTTP server that records what arrives and answers with the reference's fixtures.

What is checked is what crossed the wire: the exact request line, headers and body Keyrail sent
(the key in `x-goog-api-key` and nowhere in the URL), and the exact OpenAI answer, frames and
activity-row usage that came back. Vault is an in-memory stand-in, as in test_runner.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from keyrail_common.failures import FailureClass
from keyrail_common.messages import (
    Prices,
    ProviderCall,
    StreamChunk,
    StreamEnd,
    Usage,
)
from tests.support import worker_path
from tests.support.contracts import FIXTURES
from tests.support.openai_schema import validate_component
from tests.support.worker_path import Answer, LocalUpstream, Sent, local_upstream, run_attempt

GEMINI = FIXTURES / "gemini"
API_KEY = "AIzaSyWORKERPATH-0123456789abcdefghijklmn"
PRICES = Prices(input=0.3, output=2.5, cached_input=0.03)
PROMPT = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]}
GEMINI_PROMPT = {
    "systemInstruction": {"parts": [{"text": "Be brief."}]},
    "contents": [{"role": "user", "parts": [{"text": "Hello"}]}],
}


SSE = {"Content-Type": "text/event-stream"}


@pytest.fixture
async def upstream() -> AsyncIterator[LocalUpstream]:
    async with local_upstream(Answer()) as running:
        yield running


def provider_call(upstream: LocalUpstream, body: dict[str, Any], stream: bool = False) -> ProviderCall:
    return worker_path.provider_call(
        "gemini",
        "gemini",
        "gemini-2.5-flash",
        {"model": "gemini-prod/gemini-2.5-flash", **body, "stream": stream},
        upstream.url + "/v1beta",
        stream,
        slug="gemini-prod",
        prices=PRICES,
    )


async def run(call: ProviderCall) -> worker_path.Outcome:
    return await run_attempt(call, {"api_key": API_KEY})


def assert_sent(seen: Sent, path_qs: str, accept: str, body: dict[str, Any]) -> None:
    assert (seen.method, seen.path_qs) == ("POST", path_qs)
    assert API_KEY not in seen.path_qs and "key=" not in seen.path_qs
    headers = {k.lower(): v for k, v in seen.headers.items()}
    assert headers["x-goog-api-key"] == API_KEY
    assert headers["content-type"] == "application/json" and headers["accept"] == accept
    assert "authorization" not in headers
    assert json.loads(seen.body) == body


async def test_a_completion_sends_exactly_this_and_answers_exactly_that(upstream: LocalUpstream) -> None:
    upstream.answer.body = (GEMINI / "generate_content_response.json").read_bytes()
    before = int(time.time())

    outcome = await run(provider_call(upstream, {**PROMPT, "temperature": 0.5}))

    [seen] = upstream.sent
    assert_sent(
        seen,
        "/v1beta/models/gemini-2.5-flash:generateContent",
        "application/json",
        {**GEMINI_PROMPT, "generationConfig": {"temperature": 0.5}},
    )
    [result] = outcome.replies
    assert result.ok and result.http_status == 200
    answer = json.loads(result.body)
    validate_component("CreateChatCompletionResponse", answer)
    assert before <= answer.pop("created") <= time.time()  # when Keyrail answered
    assert answer == {
        "id": "x2RnaPOaKa6Nz7IPpJ2E-Ac",
        "object": "chat.completion",
        "model": "gemini-2.5-flash",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "The image is a single transparent pixel, so it shows nothing recognisable.",
                    "refusal": None,
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 271,
            "completion_tokens": 130,
            "total_tokens": 401,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 114},
        },
    }
    assert result.usage == Usage(prompt_tokens=271, completion_tokens=130, reasoning_tokens=114)
    assert result.cost_usd == Decimal("0.0004063")  # (271 x 0.3 + 130 x 2.5) / 1e6
    row = outcome.attempt.row()
    assert (
        row.provider,
        row.provider_slug,
        row.prompt_tokens,
        row.completion_tokens,
        row.reasoning_tokens,
    ) == (
        "gemini",
        "gemini-prod",
        271,
        130,
        114,
    )


async def test_a_stream_sends_exactly_this_and_relays_these_frames(upstream: LocalUpstream) -> None:
    upstream.answer.body, upstream.answer.headers = (GEMINI / "stream.sse").read_bytes(), SSE

    outcome = await run(
        provider_call(upstream, {**PROMPT, "stream_options": {"include_usage": True}}, stream=True)
    )

    [seen] = upstream.sent
    assert_sent(
        seen,
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        "text/event-stream",
        GEMINI_PROMPT,
    )
    *chunks, end = outcome.frames
    assert isinstance(end, StreamEnd) and end.error is None
    payloads = [json.loads(c.data) for c in chunks if isinstance(c, StreamChunk)]
    for payload in payloads:
        validate_component("CreateChatCompletionStreamResponse", payload)
    assert "".join(p["choices"][0]["delta"].get("content", "") for p in payloads if p["choices"]) == (
        "Hello! How can I help you today?"
    )
    assert [p["choices"][0]["finish_reason"] for p in payloads if p["choices"]][-1] == "stop"
    assert payloads[-1]["choices"] == [] and payloads[-1]["usage"]["completion_tokens"] == 37
    assert (end.chunks, end.usage) == (
        len(payloads),
        Usage(prompt_tokens=8, completion_tokens=37, reasoning_tokens=28),
    )
    [answer] = outcome.replies
    assert answer.ok and answer.streaming


async def test_a_blocked_prompt_is_a_400_content_filter_failure_naming_the_reason(
    upstream: LocalUpstream,
) -> None:
    upstream.answer.body = (GEMINI / "blocked_prompt_response.json").read_bytes()

    outcome = await run(provider_call(upstream, PROMPT))

    [result] = outcome.replies
    assert result.ok is False and result.error is not None
    assert (result.http_status, result.error.error_class, result.error.provider_code) == (
        400,
        FailureClass.CONTENT_FILTER,
        "SAFETY",
    )
    assert (
        "'gemini-prod'" in result.error.message
        and "content filter blocked the prompt" in result.error.message
    )
    assert "SAFETY" in result.error.message
    assert outcome.attempt.row().error_class == "content_filter"
    assert outcome.attempt.row().prompt_tokens == 12


async def test_a_blocked_prompt_in_a_stream_fails_before_any_frame(upstream: LocalUpstream) -> None:
    blocked = json.dumps(json.loads((GEMINI / "blocked_prompt_response.json").read_text()))
    upstream.answer.body, upstream.answer.headers = f"data: {blocked}\r\n\r\n".encode(), SSE

    outcome = await run(provider_call(upstream, PROMPT, stream=True))

    assert outcome.frames == []  # nothing reached the client
    [result] = outcome.replies
    assert result.error is not None and result.error.error_class is FailureClass.CONTENT_FILTER
    assert result.http_status == 400


async def test_a_stream_cut_before_the_finish_reason_ends_with_a_stream_cut(upstream: LocalUpstream) -> None:
    raw = (GEMINI / "stream.sse").read_bytes()
    upstream.answer.body, upstream.answer.headers = raw[: raw.rindex(b"data: ")], SSE

    outcome = await run(provider_call(upstream, PROMPT, stream=True))

    end = outcome.frames[-1]
    assert isinstance(end, StreamEnd) and end.error is not None
    assert end.error.error_class is FailureClass.STREAM_CUT
    assert outcome.attempt.row().error_class == "stream_cut"


async def test_an_error_keeps_googles_words_and_delay_but_never_the_key(upstream: LocalUpstream) -> None:
    raw = json.loads((GEMINI / "error_429_resource_exhausted.json").read_text())
    raw["error"]["message"] += f" (key {API_KEY})"  # an upstream that echoes the key
    upstream.answer.status, upstream.answer.body = 429, json.dumps(raw).encode()

    outcome = await run(provider_call(upstream, PROMPT))

    [result] = outcome.replies
    assert result.error is not None
    assert (result.http_status, result.error.error_class, result.error.retry_after_ms) == (
        429,
        FailureClass.RATE_LIMIT,
        38000,
    )
    assert "You exceeded your current quota" in result.error.message
    assert API_KEY not in result.error.message and API_KEY not in outcome.attempt.row().error_message


async def test_a_request_gemini_cannot_take_is_refused_before_any_call(upstream: LocalUpstream) -> None:
    body = {"messages": [{"role": "tool", "tool_call_id": "call_unknown", "content": "{}"}]}

    outcome = await run(provider_call(upstream, body))

    assert upstream.sent == []
    [result] = outcome.replies
    assert result.error is not None
    assert (result.http_status, result.error.error_class, result.error.param) == (
        400,
        FailureClass.CALLER_ERROR,
        "messages[0].tool_call_id",
    )
    assert result.error.code == "untranslatable_request"
    assert "Integration 'gemini-prod' cannot send this request" in result.error.message
