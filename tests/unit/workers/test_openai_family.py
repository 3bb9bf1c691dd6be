"""The OpenAI-family adapter: upstream request building, usage extraction and stream inspection."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from keyrail_common.messages import Usage
from keyrail_workers.providers.openai_family import (
    GENERIC,
    SPECS,
    OpenAIStreamReader,
    build_chat_request,
    response_usage,
    spec_for,
)
from tests.support.contracts import FIXTURES

OPENAI = FIXTURES / "openai"
API_KEY = "sk-test-0123456789abcdefghij"


def fixture_body(name: str) -> bytes:
    return (OPENAI / name).read_bytes()


def sse_payloads(path: Path) -> list[bytes]:
    """Every `data:` payload of a fixture stream, without the `[DONE]` sentinel (the worker stops there)."""
    payloads = [
        line[len(b"data: ") :] for line in path.read_bytes().splitlines() if line.startswith(b"data: ")
    ]
    return [p for p in payloads if p != b"[DONE]"]


def build(
    provider: str = "openai",
    body: dict[str, Any] | None = None,
    *,
    base_url: str = "",
    model: str = "gpt-4.1-mini",
    stream: bool = False,
) -> tuple[Any, dict[str, Any]]:
    payload = body if body is not None else {"model": "openai-prod/gpt-4.1-mini", "messages": []}
    request = build_chat_request(
        spec_for(provider), base_url, API_KEY, model, json.dumps(payload).encode(), stream
    )
    return request, json.loads(request.body)


# --- build_chat_request ----------------------------------------------------------------------------


def test_non_streaming_request_replaces_only_the_model_and_keeps_every_other_field() -> None:
    original = json.loads(fixture_body("chat_request.json"))
    original["model"] = "openai-prod-chat/gpt-4.1-mini"

    request, sent = build("openai", dict(original), model="gpt-4.1-mini")

    assert sent == {**original, "model": "gpt-4.1-mini"}
    assert request.url == "https://api.openai.com/v1/chat/completions"
    assert request.headers == {
        "Authorization": f"Bearer {API_KEY}",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    assert request.client_wants_usage is False
    assert "stream_options" not in sent


def test_unknown_fields_pass_through_to_openai_family_upstreams() -> None:
    body = {
        "model": "x",
        "messages": [{"role": "user", "content": "hi", "name": "alice"}],
        "reasoning_effort": "low",
        "verbosity": "high",
        "some_vendor_extension": {"nested": [1, 2]},
        "logprobs": True,
    }

    _, sent = build("openai", dict(body), model="gpt-5")

    assert sent == {**body, "model": "gpt-5"}


def test_groq_drops_the_parameters_it_rejects_and_keeps_the_rest() -> None:
    body = {
        "model": "groq-prod/llama-3.3-70b-versatile",
        "messages": [{"role": "user", "content": "hi"}],
        "logprobs": True,
        "top_logprobs": 3,
        "logit_bias": {"1234": -100},
        "temperature": 0.3,
        "seed": 7,
    }

    request, sent = build("groq", body, model="llama-3.3-70b-versatile")

    assert sent == {
        "model": "llama-3.3-70b-versatile",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.3,
        "seed": 7,
    }
    assert request.url == "https://api.groq.com/openai/v1/chat/completions"


def test_groq_drops_message_names_it_rejects() -> None:
    body = {"model": "x", "messages": [{"role": "user", "content": "hi", "name": "alice"}]}

    _, sent = build("groq", body, model="llama-3.3-70b-versatile")

    assert sent["messages"] == [{"role": "user", "content": "hi"}]


def test_perplexity_drops_tools_and_tool_choice() -> None:
    body = json.loads(fixture_body("tool_calls_request.json"))

    request, sent = build("perplexity", body, model="sonar")

    assert "tools" not in sent and "tool_choice" not in sent
    assert sent["parallel_tool_calls"] is True
    assert sent["messages"] == body["messages"]
    assert request.url == "https://api.perplexity.ai/chat/completions"


def test_openai_keeps_parameters_groq_would_drop() -> None:
    body = {"model": "x", "messages": [], "logprobs": True, "top_logprobs": 2, "logit_bias": {"1": 1}}

    _, sent = build("openai", dict(body), model="gpt-4.1")

    assert sent == {**body, "model": "gpt-4.1"}


def test_stream_without_stream_options_asks_for_usage_but_client_did_not() -> None:
    request, sent = build("openai", {"model": "x", "messages": [], "stream": True}, stream=True)

    assert sent["stream_options"] == {"include_usage": True}
    assert request.client_wants_usage is False
    assert request.headers["Accept"] == "text/event-stream"
    assert sent["stream"] is True


@pytest.mark.parametrize(
    ("stream_options", "client_wants_usage", "expected_options"),
    [
        (None, False, {"include_usage": True}),
        ({}, False, {"include_usage": True}),
        ({"include_usage": False}, False, {"include_usage": True}),
        ({"include_usage": True}, True, {"include_usage": True}),
        (
            {"include_usage": False, "include_obfuscation": False},
            False,
            {"include_usage": True, "include_obfuscation": False},
        ),
        ({"include_obfuscation": False}, False, {"include_usage": True, "include_obfuscation": False}),
    ],
)
@pytest.mark.parametrize("provider", ["openai", "groq", "together"])
def test_stream_forces_include_usage_while_remembering_what_the_client_asked(
    provider: str, stream_options: Any, client_wants_usage: bool, expected_options: dict[str, Any]
) -> None:
    body = {"model": "x", "messages": [], "stream": True, "stream_options": stream_options}

    request, sent = build(provider, body, stream=True)

    assert request.client_wants_usage is client_wants_usage
    assert sent["stream_options"] == expected_options


# Base URLs from provider reference §2 and §3 (Nebius is written there with a trailing slash).
REFERENCE_BASE_URLS = {
    "openai": "https://api.openai.com/v1",
    "groq": "https://api.groq.com/openai/v1",
    "deepinfra": "https://api.deepinfra.com/v1/openai",
    "together": "https://api.together.xyz/v1",
    "fireworks": "https://api.fireworks.ai/inference/v1",
    "xai": "https://api.x.ai/v1",
    "perplexity": "https://api.perplexity.ai",
    "baseten": "https://inference.baseten.co/v1",
    "minimax": "https://api.minimax.io/v1",
    "moonshot": "https://api.moonshot.ai/v1",
    "nebius": "https://api.tokenfactory.nebius.com/v1/",
}


def test_every_reference_provider_has_a_spec() -> None:
    assert set(SPECS) == set(REFERENCE_BASE_URLS)


@pytest.mark.parametrize("provider", sorted(REFERENCE_BASE_URLS))
def test_default_url_is_the_provider_base_url_plus_chat_completions(provider: str) -> None:
    request, _ = build(provider)

    assert request.url == REFERENCE_BASE_URLS[provider].rstrip("/") + "/chat/completions"
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"


@pytest.mark.parametrize(
    ("provider", "base_url", "expected"),
    [
        ("openai", "https://llm.example.com/v1", "https://llm.example.com/v1/chat/completions"),
        ("openai", "https://llm.example.com/v1/", "https://llm.example.com/v1/chat/completions"),
        ("groq", "http://127.0.0.1:8080/openai/v1", "http://127.0.0.1:8080/openai/v1/chat/completions"),
        ("some-custom", "https://vllm.internal:8443/v1//", "https://vllm.internal:8443/v1/chat/completions"),
    ],
)
def test_custom_base_url_wins_over_the_spec_default(provider: str, base_url: str, expected: str) -> None:
    request, _ = build(provider, base_url=base_url)

    assert request.url == expected


def test_unknown_provider_uses_the_generic_bearer_spec() -> None:
    assert spec_for("my-vllm") is GENERIC
    assert GENERIC.drop_params == frozenset()

    request, _ = build("my-vllm", base_url="https://vllm.example.com/v1")

    assert request.headers["Authorization"] == f"Bearer {API_KEY}"


def test_custom_auth_headers_are_forwarded() -> None:
    request = build_chat_request(
        spec_for("openai"),
        "https://gw.example.com/v1",
        API_KEY,
        "gpt-4.1",
        b'{"model": "x", "messages": []}',
        False,
        {"x-gateway-token": "gw-123", "x-team": "ml"},
    )

    assert request.headers == {
        "x-gateway-token": "gw-123",
        "x-team": "ml",
        "Authorization": f"Bearer {API_KEY}",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }


def test_custom_headers_do_not_override_auth_content_type_or_accept() -> None:
    custom = {"Authorization": "Bearer attacker", "Content-Type": "text/plain", "Accept": "*/*"}

    request = build_chat_request(
        spec_for("groq"), "", API_KEY, "llama", b'{"model": "x", "messages": []}', True, custom
    )

    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "text/event-stream"


@pytest.mark.parametrize("custom", [None, {}])
def test_no_custom_headers_means_only_the_standard_three(custom: dict[str, str] | None) -> None:
    request = build_chat_request(spec_for("openai"), "", API_KEY, "m", b'{"messages": []}', False, custom)

    assert set(request.headers) == {"Authorization", "Content-Type", "Accept"}


# --- response_usage ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (OPENAI / "chat_response.json", Usage(prompt_tokens=96, completion_tokens=19)),
        (OPENAI / "tool_calls_response.json", Usage(prompt_tokens=81, completion_tokens=52)),
        (OPENAI / "embeddings_response.json", Usage(prompt_tokens=8)),
        (
            FIXTURES / "openai_compatible" / "groq_chat_response.json",
            Usage(prompt_tokens=44, completion_tokens=8),
        ),
        (
            FIXTURES / "openai_compatible" / "perplexity_chat_response.json",
            Usage(prompt_tokens=9, completion_tokens=14),
        ),
    ],
    ids=lambda value: value.name if isinstance(value, Path) else None,
)
def test_response_usage_of_fixture_responses(path: Path, expected: Usage) -> None:
    assert response_usage(path.read_bytes()) == expected


def test_response_usage_reads_cached_and_reasoning_tokens() -> None:
    body = {
        "id": "chatcmpl-1",
        "choices": [],
        "usage": {
            "prompt_tokens": 2000,
            "completion_tokens": 300,
            "total_tokens": 2300,
            "prompt_tokens_details": {"cached_tokens": 1536, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 256},
        },
    }

    assert response_usage(json.dumps(body).encode()) == Usage(
        prompt_tokens=2000, completion_tokens=300, cached_tokens=1536, reasoning_tokens=256
    )


@pytest.mark.parametrize(
    "body",
    [
        b'{"id": "chatcmpl-1", "choices": []}',
        b'{"usage": null}',
        (OPENAI / "error_429_rate_limit.json").read_bytes(),
        b"<html>502 Bad Gateway</html>",
        b"",
    ],
    ids=["no-usage", "null-usage", "error-body", "html", "empty"],
)
def test_response_usage_is_none_when_there_is_none(body: bytes) -> None:
    assert response_usage(body) is None


# --- OpenAIStreamReader ----------------------------------------------------------------------------

STREAM_FIXTURES = ["chat_stream_with_usage.sse", "tool_calls_stream.sse", "stream_error_midstream.sse"]


@pytest.mark.parametrize("client_wants_usage", [False, True])
@pytest.mark.parametrize("name", STREAM_FIXTURES)
def test_every_fixture_chunk_is_forwarded_except_a_usage_chunk_nobody_asked_for(
    name: str, client_wants_usage: bool
) -> None:
    reader = OpenAIStreamReader(client_wants_usage)

    for data in sse_payloads(OPENAI / name):
        verdict = reader.read(data)
        usage_only = json.loads(data).get("choices") == [] and "usage" in json.loads(data)
        assert verdict.forward is (client_wants_usage or not usage_only), data


def test_chat_stream_content_flags_usage_and_suppressed_usage_chunk() -> None:
    payloads = sse_payloads(OPENAI / "chat_stream_with_usage.sse")
    reader = OpenAIStreamReader(client_wants_usage=False)

    verdicts = [reader.read(data) for data in payloads]

    assert len(verdicts) == 11
    # Role chunk with content "" is not a token; "Hello" (chunk 1) is the first; the finish chunk is not.
    assert [v.has_content for v in verdicts] == [False] + [True] * 8 + [False, False]
    assert [v.forward for v in verdicts] == [True] * 10 + [False]
    assert all(v.error is None for v in verdicts)
    assert reader.usage == Usage(prompt_tokens=11, completion_tokens=9)


def test_usage_chunk_is_forwarded_when_the_client_asked_for_it() -> None:
    reader = OpenAIStreamReader(client_wants_usage=True)

    verdicts = [reader.read(data) for data in sse_payloads(OPENAI / "chat_stream_with_usage.sse")]

    assert verdicts[-1].forward is True
    assert verdicts[-1].has_content is False
    assert reader.usage == Usage(prompt_tokens=11, completion_tokens=9)


def test_usage_is_none_until_the_usage_chunk_arrives() -> None:
    reader = OpenAIStreamReader(client_wants_usage=False)

    for data in sse_payloads(OPENAI / "chat_stream_with_usage.sse")[:-1]:
        reader.read(data)
        assert reader.usage is None


def test_usage_on_a_chunk_that_still_has_choices_is_recorded_and_forwarded() -> None:
    # Some OpenAI-compatible providers attach usage to the final content chunk instead.
    chunk = {
        "choices": [{"index": 0, "delta": {"content": "end"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 4}},
    }
    reader = OpenAIStreamReader(client_wants_usage=False)

    verdict = reader.read(json.dumps(chunk).encode())

    assert verdict.forward is True and verdict.has_content is True
    assert reader.usage == Usage(prompt_tokens=5, completion_tokens=2, cached_tokens=4)


def test_tool_call_fragments_count_as_content_and_no_usage_is_invented() -> None:
    reader = OpenAIStreamReader(client_wants_usage=False)

    verdicts = [reader.read(data) for data in sse_payloads(OPENAI / "tool_calls_stream.sse")]

    # The first chunk already carries tool_calls (with content null): that is the first token.
    assert [v.has_content for v in verdicts] == [True] * 6 + [False]
    assert all(v.forward and v.error is None for v in verdicts)
    assert reader.usage is None


def test_midstream_error_is_detected() -> None:
    reader = OpenAIStreamReader(client_wants_usage=False)
    first, second = (reader.read(data) for data in sse_payloads(OPENAI / "stream_error_midstream.sse"))

    assert first.error is None and first.has_content is False
    assert second.error is not None
    assert second.error["type"] == "server_error"
    assert second.error["message"].startswith("The server had an error while processing your request")
    assert second.has_content is False
    assert reader.usage is None


@pytest.mark.parametrize("data", [b"not json", b"{", b'{"choices": "nope"}'])
def test_undecodable_chunk_is_an_error_and_is_not_forwarded(data: bytes) -> None:
    verdict = OpenAIStreamReader(client_wants_usage=True).read(data)

    assert verdict.forward is False
    assert verdict.has_content is False
    assert verdict.error == {"message": "undecodable upstream chunk"}
