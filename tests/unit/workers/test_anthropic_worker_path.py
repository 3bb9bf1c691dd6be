"""An Anthropic attempt through the real worker path: AttemptRunner, the pooled UpstreamPool and
the stream relay, against a local HTTP server that speaks Anthropic Messages from the fixtures.

The server records what Keyrail sent (URL, every header, the body), so these tests check the
exact request on the wire and the exact OpenAI-format answer the runner gives the router and
the ingress. Only Vault is a stand-in (the credential store); nothing else is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from keyrail_common.attempts import AttemptRecorder
from keyrail_common.failures import FailureClass, may_fall_back
from keyrail_common.messages import (
    Prices,
    ProviderResult,
    StreamChunk,
    StreamEnd,
    Usage,
)
from tests.support.openai_schema import validate_component
from tests.support.worker_path import Answer, Sent, local_upstream, provider_call, run_attempt
from tests.unit.workers.adapters.anthropic_support import ANTHROPIC, OPENAI_MESSAGES_REQUEST, fixture

API_KEY = "sk-ant-api03-WORKERPATH0123456789abcdefXYZ"
ORG_TOKEN = "org-tok-5f4e3d2c1b"
PRICES = Prices(input=3.0, output=15.0, cached_input=0.3)
SLUG = "anthropic-prod"


SECRET: dict[str, object] = {"api_key": API_KEY, "custom_auth_headers": {"X-Org-Token": ORG_TOKEN}}
SSE = {"Content-Type": "text/event-stream"}


@dataclass
class Outcome:
    replies: list[ProviderResult]
    frames: list[StreamChunk | StreamEnd]
    attempt: AttemptRecorder
    sent: Sent

    @property
    def chunks(self) -> list[dict[str, Any]]:
        return [json.loads(f.data) for f in self.frames if isinstance(f, StreamChunk)]

    @property
    def end(self) -> StreamEnd:
        end = self.frames[-1]
        assert isinstance(end, StreamEnd)
        return end


async def run(answer: Answer, body: dict[str, Any], stream: bool = False) -> Outcome:
    async with local_upstream(answer) as upstream:
        call = provider_call(
            "anthropic",
            "anthropic",
            "claude-sonnet-4-5",
            body,
            upstream.url,
            stream,
            slug=SLUG,
            prices=PRICES,
        )
        outcome = await run_attempt(call, SECRET)
    [sent] = upstream.sent
    return Outcome(outcome.replies, outcome.frames, outcome.attempt, sent)


def expected_headers(sent: Sent, stream: bool) -> dict[str, str]:
    return {
        "host": sent.headers["host"],
        "content-length": str(len(sent.body)),
        "x-api-key": API_KEY,
        "anthropic-version": "2023-06-01",
        "content-type": "application/json",
        "accept": "text/event-stream" if stream else "application/json",
        "x-org-token": ORG_TOKEN,  # the integration's custom header, kept
    }


STREAM_BODY = {
    "model": "anthropic/claude-sonnet-4-5",
    "messages": [{"role": "user", "content": "hi"}],
    "stream": True,
}


async def test_a_request_goes_out_exactly_as_anthropic_wants_and_comes_back_as_openai() -> None:
    script = Answer(body=(ANTHROPIC / "messages_response.json").read_bytes())

    outcome = await run(script, OPENAI_MESSAGES_REQUEST)

    sent = outcome.sent
    assert (sent.method, sent.path_qs) == ("POST", "/v1/messages")
    assert sent.headers == expected_headers(sent, stream=False)
    assert sent.headers["host"].startswith("127.0.0.1:")
    assert json.loads(sent.body) == fixture("messages_request.json")
    [result] = outcome.replies
    assert (result.ok, result.http_status, result.provider_slug) == (True, 200, SLUG)
    answer = json.loads(result.body)
    validate_component("CreateChatCompletionResponse", answer)
    assert isinstance(answer.pop("created"), int)
    assert answer == {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "object": "chat.completion",
        "model": "claude-sonnet-4-5-20250929",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": fixture("messages_response.json")["content"][0]["text"],
                    "refusal": None,
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 1535,
            "completion_tokens": 24,
            "total_tokens": 1559,
            "prompt_tokens_details": {"cached_tokens": 12, "cache_write_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }
    assert result.usage == Usage(prompt_tokens=1535, completion_tokens=24, cached_tokens=12)
    assert result.cost_usd == Decimal("0.0049326")  # (1523 x 3 + 12 x 0.3 + 24 x 15) / 1e6
    row = outcome.attempt.row()
    assert (row.status, row.provider, row.prompt_tokens, row.completion_tokens, row.cached_tokens) == (
        "ok",
        "anthropic",
        1535,
        24,
        12,
    )


async def test_a_streamed_tool_call_goes_to_the_ingress_as_openai_chunks_with_usage() -> None:
    script = Answer(headers=SSE, events=True, body=(ANTHROPIC / "tool_use_stream.sse").read_bytes())
    body = {**STREAM_BODY, "stream_options": {"include_usage": True}}

    outcome = await run(script, body, stream=True)

    sent = outcome.sent
    assert sent.path_qs == "/v1/messages" and sent.headers == expected_headers(sent, stream=True)
    assert json.loads(sent.body) == {
        "model": "claude-sonnet-4-5",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 4096,
        "stream": True,
    }
    chunks = outcome.chunks
    for chunk in chunks:
        validate_component("CreateChatCompletionStreamResponse", chunk)
    assert [c["choices"][0]["delta"] if c["choices"] else c["usage"] for c in chunks] == [
        {"role": "assistant", "content": ""},
        {"content": "I'll check the weather"},
        {"content": " in Paris."},
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                }
            ]
        },
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "Par'}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": 'is", "unit": '}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '"celsius"}'}}]},
        {},
        {
            "prompt_tokens": 472,
            "completion_tokens": 89,
            "total_tokens": 561,
            "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    ]
    assert chunks[7]["choices"][0]["finish_reason"] == "tool_calls"
    assert [f.seq for f in outcome.frames if isinstance(f, StreamChunk)] == list(range(9))
    assert (outcome.end.chunks, outcome.end.error) == (9, None)
    assert outcome.end.usage == Usage(prompt_tokens=472, completion_tokens=89)
    [answer] = outcome.replies  # the router is answered once, at the first chunk
    assert answer.ok and answer.streaming
    assert outcome.attempt.first_content > 0


async def test_an_overload_inside_a_200_before_content_goes_to_the_router_for_a_fallback() -> None:
    overloaded = (
        b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    )
    start = (ANTHROPIC / "messages_stream.sse").read_bytes().split(b"\n\n")[0] + b"\n\n"
    script = Answer(
        headers=SSE, events=True, body=start + b'event: ping\ndata: {"type":"ping"}\n\n' + overloaded
    )

    outcome = await run(script, STREAM_BODY, stream=True)

    assert outcome.frames == []  # nothing reached the client
    [result] = outcome.replies
    assert result.ok is False and result.error is not None
    assert (result.error.error_class, result.error.provider_code) == (
        FailureClass.OVERLOADED,
        "overloaded_error",
    )
    assert result.error.message == f"Upstream '{SLUG}' failed mid-stream: Overloaded"
    assert may_fall_back(result.error)
    assert outcome.attempt.row().error_class == "overloaded"


async def test_an_overload_after_content_ends_the_clients_stream_with_it() -> None:
    script = Answer(headers=SSE, events=True, body=(ANTHROPIC / "stream_error_overloaded.sse").read_bytes())

    outcome = await run(script, STREAM_BODY, stream=True)

    assert [c["choices"][0]["delta"] for c in outcome.chunks] == [
        {"role": "assistant", "content": ""},
        {"content": "Sure, here"},
    ]
    error = outcome.end.error
    assert error is not None and error.error_class is FailureClass.OVERLOADED
    assert [r.ok for r in outcome.replies] == [True]  # the router had its answer at the first chunk
    row = outcome.attempt.row()
    assert (row.error_class, row.prompt_tokens, row.completion_tokens) == ("overloaded", 18, 1)


async def test_a_stream_that_ends_without_message_stop_is_cut() -> None:
    raw = (ANTHROPIC / "messages_stream.sse").read_bytes()
    script = Answer(headers=SSE, events=True, body=raw[: raw.index(b"event: message_stop")])

    outcome = await run(script, STREAM_BODY, stream=True)

    assert len(outcome.chunks) == 6  # role, four deltas, finish
    assert outcome.end.error is not None and outcome.end.error.error_class is FailureClass.STREAM_CUT
    assert outcome.end.usage == Usage(prompt_tokens=25, completion_tokens=12)


async def test_a_rate_limit_carries_anthropics_retry_after() -> None:
    recorded = fixture("rate_limit_headers_429.json")
    headers = {"Content-Type": "application/json", **recorded["headers"]}
    script = Answer(status=429, body=(ANTHROPIC / "error_429_rate_limit.json").read_bytes(), headers=headers)

    outcome = await run(script, OPENAI_MESSAGES_REQUEST)

    [result] = outcome.replies
    assert result.error is not None
    assert (result.http_status, result.error.error_class, result.error.retry_after_ms) == (
        429,
        FailureClass.RATE_LIMIT,
        17000,
    )
    assert result.error.message.startswith(f"Upstream '{SLUG}' answered HTTP 429: This request would exceed")


async def test_an_upstream_that_echoes_the_key_and_the_custom_header_is_scrubbed() -> None:
    echo = {
        "type": "error",
        "error": {"type": "authentication_error", "message": f"bad {API_KEY} / {ORG_TOKEN}"},
    }
    script = Answer(status=401, body=json.dumps(echo).encode())

    outcome = await run(script, OPENAI_MESSAGES_REQUEST)

    assert outcome.sent.headers["x-api-key"] == API_KEY  # the secrets really were sent
    [result] = outcome.replies
    assert result.error is not None and result.error.error_class is FailureClass.CREDENTIAL
    assert API_KEY not in result.error.message and ORG_TOKEN not in result.error.message
    assert f"PUT /admin/v1/integrations/{SLUG}/credentials" in result.error.message
    row = outcome.attempt.row()
    assert API_KEY not in row.error_message and ORG_TOKEN not in row.error_message
