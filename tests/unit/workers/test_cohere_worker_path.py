"""Cohere through the real worker path: `AttemptRunner` + `UpstreamPool` against a local server that
records exactly what Keyrail sent and answers with the Cohere fixtures; the client gets OpenAI."""

from __future__ import annotations

import json
from typing import Any

from keyrail_common.failures import FailureClass
from keyrail_common.messages import Usage
from tests.support.contracts import FIXTURES
from tests.support.openai_schema import validate_component
from tests.support.worker_path import Answer, json_request_headers, local_upstream, provider_call, run_attempt

COHERE = FIXTURES / "cohere"
API_KEY = "co-WORKERPATH-0123456789abcdef"
SECRET: dict[str, object] = {"api_key": API_KEY}
MODEL = "command-a-03-2025"
SSE = {"Content-Type": "text/event-stream"}
MESSAGES = [{"role": "user", "content": "What is an LLM? One sentence."}]


def cohere_call(url: str, stream: bool = False, **body: Any) -> Any:
    # Any provider record with a custom host may declare the cohere format: here, openai's.
    return provider_call(
        "openai",
        "cohere",
        MODEL,
        {"model": f"openai-test/{MODEL}", "messages": MESSAGES, **body},
        url,
        stream,
    )


async def test_an_answer_is_sent_as_cohere_and_returned_as_openai() -> None:
    answer = (COHERE / "chat_response.json").read_bytes()
    async with local_upstream(Answer(body=answer)) as upstream:
        outcome = await run_attempt(cohere_call(upstream.url, max_tokens=200, temperature=0.3), SECRET)

    [sent] = upstream.sent
    assert (sent.method, sent.path_qs) == ("POST", "/v2/chat")
    assert sent.headers == json_request_headers(upstream, sent, {"authorization": f"Bearer {API_KEY}"})
    expected = {"model": MODEL, "messages": MESSAGES, "max_tokens": 200, "temperature": 0.3, "stream": False}
    assert sent.body == json.dumps(expected, separators=(",", ":")).encode()
    [result] = outcome.replies
    assert (result.ok, result.http_status) == (True, 200)
    body = json.loads(result.body)
    validate_component("CreateChatCompletionResponse", body)
    del body["created"]
    assert body == {
        "id": "c14c80c3-18eb-4519-9460-6c92edd8cfb4",
        "object": "chat.completion",
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "A large language model (LLM) is a neural network trained on huge amounts "
                    "of text to understand and generate language.",
                    "refusal": None,
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 498,
            "completion_tokens": 26,
            "total_tokens": 524,
            "prompt_tokens_details": {"cached_tokens": 0},
        },
    }
    assert result.usage == Usage(prompt_tokens=498, completion_tokens=26)


async def test_a_tool_call_stream_is_relayed_as_openai_chunks() -> None:
    stream = (COHERE / "tool_call_stream.sse").read_bytes()
    async with local_upstream(Answer(body=stream, headers=SSE)) as upstream:
        outcome = await run_attempt(
            cohere_call(upstream.url, stream=True, stream_options={"include_usage": True}), SECRET
        )

    [sent] = upstream.sent
    assert json.loads(sent.body) == {"model": MODEL, "messages": MESSAGES, "stream": True}
    assert sent.headers["accept"] == "text/event-stream"
    chunks = [json.loads(c) for c in outcome.chunks]
    for chunk in chunks:
        validate_component("CreateChatCompletionStreamResponse", chunk)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert deltas[1]["tool_calls"][0]["function"]["name"] == "get_weather"
    arguments = "".join(d["tool_calls"][0]["function"]["arguments"] for d in deltas if "tool_calls" in d)
    assert json.loads(arguments) == {"location": "Toronto"}
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["prompt_tokens"] == 913
    assert outcome.end is not None and outcome.end.error is None
    assert outcome.end.usage == Usage(prompt_tokens=913, completion_tokens=81)


async def test_a_failed_generation_is_a_502_for_the_router_not_an_answer() -> None:
    failed = json.loads((COHERE / "chat_response.json").read_bytes())
    failed["finish_reason"] = "ERROR"
    async with local_upstream(Answer(body=json.dumps(failed).encode())) as upstream:
        outcome = await run_attempt(cohere_call(upstream.url), SECRET)

    [result] = outcome.replies
    assert result.ok is False and result.error is not None
    assert (result.http_status, result.error.error_class) == (502, FailureClass.UPSTREAM_5XX)
    assert "finish_reason ERROR" in result.error.message


async def test_a_stream_that_fails_before_content_goes_back_to_the_router() -> None:
    body = (
        b'event: message-start\ndata: {"type":"message-start","id":"m1"}\n\n'
        b'event: message-end\ndata: {"type":"message-end","delta":{"finish_reason":"TIMEOUT"}}\n\n'
    )
    async with local_upstream(Answer(body=body, headers=SSE)) as upstream:
        outcome = await run_attempt(cohere_call(upstream.url, stream=True), SECRET)

    assert outcome.chunks == [] and outcome.end is None  # nothing reached the client: it may fall back
    [result] = outcome.replies
    assert result.error is not None and result.error.error_class is FailureClass.TIMEOUT


async def test_an_unsupported_request_never_reaches_the_host() -> None:
    async with local_upstream(Answer()) as upstream:
        outcome = await run_attempt(cohere_call(upstream.url, n=3), SECRET)

    assert upstream.sent == []
    [result] = outcome.replies
    assert result.error is not None
    assert (result.http_status, result.error.error_class, result.error.code) == (
        400,
        FailureClass.UNSUPPORTED,
        "unsupported_for_cohere",
    )


async def test_a_rejected_key_is_scrubbed_and_names_the_rotation() -> None:
    rejected = json.dumps({"id": "x", "message": f"invalid api token {API_KEY}"}).encode()
    async with local_upstream(Answer(status=401, body=rejected)) as upstream:
        outcome = await run_attempt(cohere_call(upstream.url), SECRET)

    [result] = outcome.replies
    assert result.error is not None and result.error.error_class is FailureClass.CREDENTIAL
    assert API_KEY not in result.error.message
    assert "PUT /admin/v1/integrations/openai-test/credentials" in result.error.message
