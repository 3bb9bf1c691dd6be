"""The Gemini stream translator, fed through `sse_events` exactly as the relay feeds it.

Gemini's `alt=sse` stream (each `data:` a whole GenerateContentResponse, CRLF framed, no
terminator) becomes OpenAI chunks: the role preamble held back until the first content, one
chunk per text part or function call, a finish chunk, a usage chunk only when asked. A body that
ends before the `finishReason` was cut off.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest

from keyrail_common.failures import FailureClass
from keyrail_common.messages import Dialect, Usage
from keyrail_common.registry import Operation
from keyrail_workers.adapters import ADAPTERS
from keyrail_workers.adapters.base import AdapterCall, StreamStep, UpstreamRequest
from keyrail_workers.adapters.gemini.stream import GeminiStreamTranslator
from keyrail_workers.sse import sse_events
from tests.support.contracts import FIXTURES
from tests.support.openai_schema import validate_component

GEMINI = FIXTURES / "gemini"
STREAM = (GEMINI / "stream.sse").read_bytes()
FUNCTION_CALL = (GEMINI / "function_call_response.json").read_bytes()
BLOCKED = (GEMINI / "blocked_prompt_response.json").read_bytes()
UNAVAILABLE = (GEMINI / "error_503_unavailable.json").read_bytes()
CREATED = 1764201600
SIGNATURE = "CtUCAVSoXO7example+thought+signature+FIXTURE+ONLY+base64=="


def translator(client_wants_usage: bool = False, candidates: int = 1) -> GeminiStreamTranslator:
    return GeminiStreamTranslator("gemini-2.5-flash", client_wants_usage, candidates, created=CREATED)


def sse(*chunks: bytes | dict[str, Any]) -> bytes:
    """One `data:` event per chunk (fixture files are pretty-printed: compacted onto one line)."""
    return b"".join(
        b"data: " + json.dumps(json.loads(c) if isinstance(c, bytes) else c).encode() + b"\r\n\r\n"
        for c in chunks
    )


async def _lines(items: Iterable[bytes]) -> AsyncIterator[bytes]:
    for item in items:
        yield item


async def relay(raw: bytes, reader: GeminiStreamTranslator) -> list[StreamStep]:
    """Feed a body as the relay does, stopping at an error step."""
    steps: list[StreamStep] = []
    async for event, data in sse_events(_lines(raw.splitlines(keepends=True))):
        step = reader.feed(event, data)
        steps.append(step)
        if step.error is not None:
            break
    return steps


def frames(steps: list[StreamStep]) -> list[dict[str, Any]]:
    out = [json.loads(frame) for step in steps for frame in step.frames]
    for chunk in out:
        validate_component("CreateChatCompletionStreamResponse", chunk)
    return out


def head(chunk: dict[str, Any]) -> tuple[Any, ...]:
    return chunk["id"], chunk["object"], chunk["created"], chunk["model"]


def one_chunk(
    parts: list[dict[str, Any]], finish: str | None = None, index: int = 0, **rest: Any
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": index}
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "responseId": "resp-1", **rest}


async def test_the_fixture_stream_becomes_these_chunks() -> None:
    reader = translator()

    steps = await relay(STREAM, reader)
    chunks = frames(steps)

    assert [s.content for s in steps] == [True, True, True]
    assert {head(c) for c in chunks} == {
        ("p3ZnaN7jBuGkz7IP2dDC0Qk", "chat.completion.chunk", CREATED, "gemini-2.5-flash")
    }
    assert [(c["choices"][0]["delta"], c["choices"][0]["finish_reason"]) for c in chunks] == [
        ({"role": "assistant", "content": ""}, None),  # the preamble, with the first content
        ({"content": "Hello"}, None),
        ({"content": "! How can I help"}, None),
        ({"content": " you today?"}, None),
        ({}, "stop"),
    ]
    assert [len(s.frames) for s in steps] == [2, 1, 2]
    assert all("usage" not in c for c in chunks)  # not asked for
    assert reader.usage == Usage(
        prompt_tokens=8, completion_tokens=37, reasoning_tokens=28
    )  # 9 + 28 thoughts
    assert reader.finish() is None


async def test_the_usage_chunk_comes_last_when_the_client_asked() -> None:
    reader = translator(client_wants_usage=True)

    chunks = frames(await relay(STREAM, reader))

    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {
        "prompt_tokens": 8,
        "completion_tokens": 37,
        "total_tokens": 45,  # Gemini's totalTokenCount
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 28},
    }


async def test_a_streamed_function_call_is_one_tool_call_chunk_with_the_plain_answers_id() -> None:
    reader = translator()
    plain = ADAPTERS["gemini"].parse_response(
        AdapterCall(Operation.CHAT, Dialect.OPENAI, "gemini-2.5-flash", b"{}", False, "https://x"),
        FUNCTION_CALL,
    )

    steps = await relay(sse(FUNCTION_CALL), reader)
    chunks = frames(steps)

    assert steps[0].content is True
    [tool_call] = json.loads(plain.body)["choices"][0]["message"]["tool_calls"]
    assert [(c["choices"][0]["delta"], c["choices"][0]["finish_reason"]) for c in chunks] == [
        ({"role": "assistant", "content": ""}, None),
        ({"tool_calls": [{"index": 0, **tool_call}]}, None),
        ({}, "tool_calls"),
    ]
    assert tool_call["id"].endswith("~" + SIGNATURE)  # the same id streamed or not, signature carried
    assert reader.usage == Usage(prompt_tokens=58, completion_tokens=113, reasoning_tokens=93)
    assert reader.finish() is None


async def test_parallel_calls_are_indexed_in_order() -> None:
    parts = [{"functionCall": {"name": "a", "args": {}}}, {"functionCall": {"name": "b", "args": {"x": 1}}}]

    chunks = frames(await relay(sse(one_chunk(parts, "STOP")), translator()))

    calls = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks[1:3]]
    assert [(c["index"], c["function"]["name"], c["function"]["arguments"]) for c in calls] == [
        (0, "a", "{}"),
        (1, "b", '{"x":1}'),
    ]
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_a_stream_cut_before_the_finish_reason_is_a_stream_cut() -> None:
    cut = STREAM[: STREAM.rindex(b"data: ")]
    reader = translator()

    steps = await relay(cut, reader)
    error = reader.finish()

    assert [len(s.frames) for s in steps] == [2, 1]
    assert error is not None and error.failure_class is FailureClass.STREAM_CUT
    assert "finishReason" in error.message
    assert reader.usage == Usage(prompt_tokens=8)  # the last usageMetadata seen


async def test_an_empty_body_is_a_stream_cut() -> None:
    reader = translator()

    assert await relay(b"", reader) == []
    error = reader.finish()
    assert error is not None and error.failure_class is FailureClass.STREAM_CUT
    assert reader.usage is None


async def test_an_in_band_error_is_an_error_step_classified_by_its_status() -> None:
    raw = STREAM[: STREAM.index(b"data: ", 10)] + sse(UNAVAILABLE)
    reader = translator()

    steps = await relay(raw, reader)

    assert len(steps) == 2 and len(steps[0].frames) == 2
    error = steps[1].error
    assert error is not None and steps[1].frames == [] and steps[1].content is False
    assert error.failure_class is FailureClass.OVERLOADED
    assert (error.upstream_status, error.provider_code) == (
        0,
        "UNAVAILABLE",
    )  # mid-stream, not an HTTP status
    assert error.message == "The model is overloaded. Please try again later."


def test_an_in_band_error_without_a_code_is_a_stream_cut() -> None:
    step = translator().feed("", b'{"error": {"message": "boom"}}')

    assert step.error is not None and step.error.failure_class is FailureClass.STREAM_CUT
    assert step.error.message == "boom"


async def test_a_blocked_prompt_in_a_stream_is_a_content_filter_error_before_any_frame() -> None:
    reader = translator(client_wants_usage=True)

    [step] = await relay(sse(BLOCKED), reader)

    assert step.frames == [] and step.content is False
    assert step.error is not None and step.error.failure_class is FailureClass.CONTENT_FILTER
    assert step.error.provider_code == "SAFETY" and "SAFETY" in step.error.message
    assert reader.usage == Usage(prompt_tokens=12)


@pytest.mark.parametrize("data", [b"not json", b"{", b'{"candidates": "nope"}'])
def test_an_undecodable_chunk_is_an_error_and_is_not_forwarded(data: bytes) -> None:
    step = translator(client_wants_usage=True).feed("", data)

    assert step.frames == [] and step.content is False
    assert step.error is not None and step.error.failure_class is FailureClass.STREAM_CUT


def test_the_preamble_waits_for_content_thoughts_and_usage_are_not_content() -> None:
    reader = translator()

    usage_only = reader.feed("", json.dumps({"usageMetadata": {"promptTokenCount": 3}}).encode())
    thought = reader.feed("", json.dumps(one_chunk([{"text": "hmm", "thought": True}])).encode())
    text = reader.feed("", json.dumps(one_chunk([{"text": "Hi"}], "STOP")).encode())

    assert (usage_only.frames, usage_only.content) == ([], False)
    assert (thought.frames, thought.content) == (
        [],
        False,
    )  # nothing reached the client: fallback still possible
    assert text.content is True
    assert [json.loads(f)["choices"][0]["delta"] for f in text.frames] == [
        {"role": "assistant", "content": ""},
        {"content": "Hi"},
        {},
    ]
    assert reader.usage == Usage(prompt_tokens=3)
    assert reader.finish() is None


def test_a_finish_without_content_still_opens_the_choice() -> None:
    step = translator().feed(
        "", json.dumps({"candidates": [{"finishReason": "SAFETY", "index": 0}]}).encode()
    )

    assert step.content is False
    assert [json.loads(f)["choices"][0] for f in step.frames] == [
        {"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None},
        {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "content_filter"},
    ]


def test_two_candidates_each_finish_and_the_usage_chunk_follows_the_last() -> None:
    reader = translator(client_wants_usage=True, candidates=2)
    usage = {"promptTokenCount": 4, "candidatesTokenCount": 2, "totalTokenCount": 6}

    first = reader.feed("", json.dumps(one_chunk([{"text": "a"}], "STOP", 0)).encode())
    cut = reader.finish()
    second = reader.feed(
        "", json.dumps(one_chunk([{"text": "b"}], "MAX_TOKENS", 1, usageMetadata=usage)).encode()
    )

    assert [json.loads(f)["choices"][0]["index"] for f in first.frames] == [0, 0, 0]
    assert cut is None  # every candidate seen so far had finished
    chunks = [json.loads(f) for f in second.frames]
    assert [c["choices"][0]["index"] for c in chunks[:3]] == [1, 1, 1]
    assert chunks[2]["choices"][0]["finish_reason"] == "length"
    assert chunks[3]["choices"] == [] and chunks[3]["usage"]["total_tokens"] == 6
    assert reader.finish() is None


def test_a_candidate_still_open_at_the_end_is_a_stream_cut() -> None:
    reader = translator(candidates=2)
    reader.feed(
        "",
        json.dumps(
            {
                "candidates": [
                    one_chunk([{"text": "a"}], "STOP")["candidates"][0],
                    one_chunk([{"text": "b"}], index=1)["candidates"][0],
                ]
            }
        ).encode(),
    )

    error = reader.finish()

    assert error is not None and error.failure_class is FailureClass.STREAM_CUT


def test_the_adapter_builds_the_translator_from_its_request() -> None:
    adapter = ADAPTERS["gemini"]
    call = AdapterCall(
        Operation.CHAT,
        Dialect.OPENAI,
        "gemini-2.5-flash",
        json.dumps(
            {
                "messages": [{"role": "user", "content": "hi"}],
                "n": 2,
                "stream_options": {"include_usage": True},
            }
        ).encode(),
        True,
        "https://generativelanguage.googleapis.com/v1beta",
    )
    built = adapter.build_request(call, {"api_key": "k"})
    assert isinstance(built, UpstreamRequest)
    reader = adapter.stream_translator(call, built)
    usage = {"promptTokenCount": 1, "candidatesTokenCount": 1}

    one = reader.feed("", json.dumps(one_chunk([{"text": "a"}], "STOP", 0, usageMetadata=usage)).encode())
    two = reader.feed("", json.dumps(one_chunk([{"text": "b"}], "STOP", 1, usageMetadata=usage)).encode())

    assert b'"choices":[]' not in b"".join(one.frames)  # n=2: the usage chunk waits for the second
    assert json.loads(two.frames[-1])["usage"]["total_tokens"] == 2
