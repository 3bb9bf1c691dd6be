"""The OpenAI-compatible family through the real worker path, one parametrised test per behaviour:
for every provider the registry serves with the OpenAI adapter, what reached a local server (URL,
headers, body with that provider's quirks applied) and what came back to the client."""

from __future__ import annotations

import json
from typing import Any

import pytest

from keyrail_common.catalog import Catalog
from keyrail_common.messages import Usage
from keyrail_common.registry import Operation, load_registry
from tests.support.adapters import data_lines, expected_openai_body
from tests.support.contracts import FIXTURES
from tests.support.worker_path import Answer, json_request_headers, local_upstream, provider_call, run_attempt

REGISTRY = load_registry()
CATALOG = Catalog.load_default()
FAMILY = sorted(e.name for e in REGISTRY.entries() if e.adapter == "openai")
API_KEY = "sk-family-WORKERPATH-0123456789abcdef"
# Every parameter some provider of the family drops or changes, beside OpenAI's fixture request.
REQUEST: dict[str, Any] = {
    **json.loads((FIXTURES / "openai" / "chat_request.json").read_bytes()),
    "temperature": 0,
    "n": 1,
    "logprobs": True,
    "stop": ["END"],
    "tools": json.loads((FIXTURES / "openai" / "tool_calls_request.json").read_bytes())["tools"],
}
# The provider's own response fixture where the reference has one (Groq's timings, Perplexity's citations).
RESPONSES = {
    p.name.removesuffix("_chat_response.json"): p
    for p in FIXTURES.glob("openai_compatible/*_chat_response.json")
}
STREAM = (FIXTURES / "openai" / "chat_stream_with_usage.sse").read_bytes()


def first_chat_model(provider: str) -> str:
    return next(m.model for m in CATALOG.models_of(provider) if m.operation is Operation.CHAT)


def test_the_family_has_its_response_fixtures() -> None:
    assert {"groq", "perplexity"} <= set(RESPONSES) <= set(FAMILY)


@pytest.mark.parametrize("provider", FAMILY)
async def test_an_answer_reaches_the_base_url_with_the_providers_quirks_and_returns_unchanged(
    provider: str,
) -> None:
    response = (RESPONSES.get(provider) or FIXTURES / "openai" / "chat_response.json").read_bytes()
    model = first_chat_model(provider)
    body = {**REQUEST, "model": f"{provider}-test/{model}"}
    async with local_upstream(Answer(body=response)) as upstream:
        outcome = await run_attempt(
            provider_call(provider, "openai", model, body, upstream.url + "/v1"), {"api_key": API_KEY}
        )

    [sent] = upstream.sent
    assert (sent.method, sent.path_qs) == ("POST", "/v1/chat/completions")
    assert sent.headers == json_request_headers(upstream, sent, {"authorization": f"Bearer {API_KEY}"})
    entry = REGISTRY.get(provider)
    assert entry is not None
    assert json.loads(sent.body) == expected_openai_body(body, entry.quirks, model, stream=False)
    [result] = outcome.replies
    assert (result.ok, result.http_status, result.body) == (True, 200, response)
    wire_usage = json.loads(response)["usage"]
    assert result.usage is not None
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (
        wire_usage["prompt_tokens"],
        wire_usage["completion_tokens"],
    )


@pytest.mark.parametrize("provider", FAMILY)
async def test_a_stream_asks_for_usage_relays_the_chunks_and_hides_the_usage_chunk(provider: str) -> None:
    model = first_chat_model(provider)
    body = {
        "model": f"{provider}-test/{model}",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
    }
    async with local_upstream(Answer(body=STREAM, headers={"Content-Type": "text/event-stream"})) as upstream:
        outcome = await run_attempt(
            provider_call(provider, "openai", model, body, upstream.url + "/v1", stream=True),
            {"api_key": API_KEY},
        )

    [sent] = upstream.sent
    assert json.loads(sent.body)["stream_options"] == {"include_usage": True}
    assert sent.headers["accept"] == "text/event-stream"
    chunks = data_lines(STREAM)
    assert outcome.chunks == chunks[:-2]  # without the usage chunk (not asked for) and [DONE]
    assert outcome.end is not None and outcome.end.error is None
    wire_usage = json.loads(chunks[-2])["usage"]
    assert outcome.attempt.usage == Usage(
        prompt_tokens=wire_usage["prompt_tokens"], completion_tokens=wire_usage["completion_tokens"]
    )
