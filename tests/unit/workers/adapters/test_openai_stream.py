"""The OpenAI stream translator, fed through `sse_events` exactly as the relay feeds it.

Chunks pass byte for byte; the translator only finds content (the commit point), usage, in-band
errors and the terminal `[DONE]`, and hides the usage chunk a client did not ask for.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from keyrail_common.failures import FailureClass
from keyrail_common.messages import Dialect, Usage
from keyrail_common.registry import Operation, Quirks, load_registry
from keyrail_workers.adapters import ADAPTERS
from keyrail_workers.adapters.base import AdapterCall, StreamStep, StreamTranslator, UpstreamRequest
from keyrail_workers.sse import sse_events
from tests.support.contracts import FIXTURES

ADAPTER = ADAPTERS["openai"]
OPENAI = FIXTURES / "openai"
STREAM_FIXTURES = sorted([*OPENAI.glob("*.sse"), *(FIXTURES / "openai_compatible").glob("*.sse")])
RAW = {path: path.read_bytes() for path in STREAM_FIXTURES}  # read up front: the tests are async
CHAT = RAW[OPENAI / "chat_stream_with_usage.sse"]
TOOLS = RAW[OPENAI / "tool_calls_stream.sse"]
MIDSTREAM_ERROR = RAW[OPENAI / "stream_error_midstream.sse"]
CALL = AdapterCall(
    operation=Operation.CHAT,
    dialect=Dialect.OPENAI,
    model="gpt-4.1-mini",
    body=b"{}",
    stream=True,
    base_url="https://api.openai.com/v1",
)


def translator(client_wants_usage: bool) -> StreamTranslator:
    request = UpstreamRequest(
        method="POST",
        url="https://x/chat/completions",
        headers={},
        body=b"{}",
        client_wants_usage=client_wants_usage,
    )
    return ADAPTER.stream_translator(CALL, request)


async def _lines(items: Iterable[bytes]) -> AsyncIterator[bytes]:
    for item in items:
        yield item


async def relay(raw: bytes, reader: StreamTranslator) -> list[tuple[bytes, StreamStep]]:
    """Feed an upstream body to the translator as the relay does: stop at an error or at `[DONE]`."""
    steps: list[tuple[bytes, StreamStep]] = []
    async for event, data in sse_events(_lines(raw.splitlines(keepends=True))):
        step = reader.feed(event, data)
        steps.append((data, step))
        if step.error is not None or step.done:
            break
    return steps


def data_lines(raw: bytes) -> list[bytes]:
    return [line[len(b"data: ") :] for line in raw.splitlines() if line.startswith(b"data: ")]


def has_content(chunk: dict[str, Any]) -> bool:
    return any(
        bool((choice.get("delta") or {}).get("content"))
        or bool((choice.get("delta") or {}).get("tool_calls"))
        for choice in chunk.get("choices") or []
    )


def test_there_are_stream_fixtures() -> None:
    names = {p.name for p in STREAM_FIXTURES}
    assert {"chat_stream_with_usage.sse", "tool_calls_stream.sse", "stream_error_midstream.sse"} <= names


@pytest.mark.parametrize("client_wants_usage", [False, True], ids=["usage-hidden", "usage-asked"])
@pytest.mark.parametrize("path", STREAM_FIXTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
async def test_fixture_streams_through_the_translator(path: Path, client_wants_usage: bool) -> None:
    raw = RAW[path]
    reader = translator(client_wants_usage)

    steps = await relay(raw, reader)

    expected_usage: Usage | None = None
    ended = False
    held: list[bytes] = []  # the preamble before the first content: sent with it, byte for byte
    committed = False
    for (data, step), payload in zip(steps, data_lines(raw), strict=False):
        assert data == payload  # sse_events hands over each payload as it was
        if payload == b"[DONE]":
            assert step.done and step.frames == held and step.error is None
            ended = True
            continue
        chunk = json.loads(payload)
        if "error" in chunk:
            assert step.error is not None and step.frames == []
            continue
        usage_only = chunk.get("choices") == [] and chunk.get("usage") is not None
        if usage_only and not client_wants_usage:
            expected: list[bytes] = []
        elif committed:
            expected = [payload]
        elif has_content(chunk):
            expected, held, committed = [*held, payload], [], True
        else:
            expected = []
            held.append(payload)
        assert step.frames == expected, payload
        assert step.content is has_content(chunk), payload
        assert step.done is False and step.error is None
        if chunk.get("usage"):
            expected_usage = Usage(
                prompt_tokens=chunk["usage"]["prompt_tokens"],
                completion_tokens=chunk["usage"]["completion_tokens"],
                cached_tokens=(chunk["usage"].get("prompt_tokens_details") or {}).get("cached_tokens", 0),
                reasoning_tokens=(chunk["usage"].get("completion_tokens_details") or {}).get(
                    "reasoning_tokens", 0
                ),
            )
    assert reader.usage == expected_usage
    assert ended is (b"data: [DONE]" in raw)
    finished = reader.finish()
    assert (finished is None) is ended
    if not ended:
        assert finished is not None and finished.failure_class is FailureClass.STREAM_CUT


async def test_chat_stream_content_flags_usage_and_suppressed_usage_chunk() -> None:
    reader = translator(client_wants_usage=False)

    steps = [step for _, step in await relay(CHAT, reader)]

    assert len(steps) == 12  # 11 chunks, then [DONE]
    # Role chunk with content "" is not a token; "Hello" (chunk 1) is the first; the finish chunk is not.
    assert [s.content for s in steps[:11]] == [False] + [True] * 8 + [False, False]
    # The role chunk is held back and sent with the first content (the commit point).
    assert [len(s.frames) for s in steps[:11]] == [0, 2] + [1] * 8 + [0]
    assert all(s.error is None for s in steps)
    assert steps[-1].done and not any(s.done for s in steps[:-1])
    assert reader.usage == Usage(prompt_tokens=11, completion_tokens=9)
    assert reader.finish() is None


async def test_usage_chunk_is_forwarded_when_the_client_asked_for_it() -> None:
    reader = translator(client_wants_usage=True)
    raw = CHAT

    data, usage_step = (await relay(raw, reader))[10]

    assert usage_step.frames == [data]
    assert b'"choices":[]' in data
    assert usage_step.content is False
    assert reader.usage == Usage(prompt_tokens=11, completion_tokens=9)


async def test_usage_is_none_until_the_usage_chunk_arrives() -> None:
    reader = translator(client_wants_usage=False)

    for payload in data_lines(CHAT)[:10]:
        reader.feed("", payload)
        assert reader.usage is None


def test_usage_on_a_chunk_that_still_has_choices_is_recorded_and_forwarded() -> None:
    # Some OpenAI-compatible providers attach usage to the final content chunk instead.
    chunk = {
        "choices": [{"index": 0, "delta": {"content": "end"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 4}},
    }
    data = json.dumps(chunk).encode()
    reader = translator(client_wants_usage=False)

    step = reader.feed("", data)

    assert step.frames == [data] and step.content is True
    assert reader.usage == Usage(prompt_tokens=5, completion_tokens=2, cached_tokens=4)


def test_reasoning_tokens_in_stream_usage() -> None:
    chunk = {
        "choices": [],
        "usage": {
            "prompt_tokens": 50,
            "completion_tokens": 400,
            "completion_tokens_details": {"reasoning_tokens": 320},
        },
    }
    reader = translator(client_wants_usage=False)

    reader.feed("", json.dumps(chunk).encode())

    assert reader.usage == Usage(prompt_tokens=50, completion_tokens=400, reasoning_tokens=320)


GROQ_FINAL_CHUNK = {
    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
    "x_groq": {"id": "req_01", "usage": {"prompt_tokens": 44, "completion_tokens": 8, "queue_time": 0.01}},
}


def test_usage_in_the_registrys_usage_envelope_is_read_where_top_level_usage_is_absent() -> None:
    call = msgspec.structs.replace(CALL, quirks=load_registry().get("groq").quirks)  # type: ignore[union-attr]
    request = UpstreamRequest(method="POST", url="https://x/chat/completions", headers={}, body=b"{}")
    reader = ADAPTER.stream_translator(call, request)
    data = json.dumps(GROQ_FINAL_CHUNK).encode()

    reader.feed("", data)

    assert reader.usage == Usage(prompt_tokens=44, completion_tokens=8)


def test_top_level_usage_wins_over_the_envelope_and_no_envelope_is_read_without_the_quirk() -> None:
    call = msgspec.structs.replace(CALL, quirks=Quirks(usage_envelope="x_groq"))
    request = UpstreamRequest(method="POST", url="https://x/chat/completions", headers={}, body=b"{}")
    both = {**GROQ_FINAL_CHUNK, "usage": {"prompt_tokens": 1, "completion_tokens": 2}}
    enveloped = ADAPTER.stream_translator(call, request)
    plain = translator(client_wants_usage=False)

    enveloped.feed("", json.dumps(both).encode())
    plain.feed("", json.dumps(GROQ_FINAL_CHUNK).encode())

    assert enveloped.usage == Usage(prompt_tokens=1, completion_tokens=2)
    assert plain.usage is None


async def test_tool_call_fragments_count_as_content_and_no_usage_is_invented() -> None:
    reader = translator(client_wants_usage=False)

    steps = [step for _, step in await relay(TOOLS, reader)]

    # The first chunk already carries tool_calls (with content null): that is the first token.
    assert [s.content for s in steps[:7]] == [True] * 6 + [False]
    assert all(len(s.frames) == 1 and s.error is None for s in steps[:7])
    assert steps[7].done
    assert reader.usage is None


async def test_midstream_error_is_an_error_step() -> None:
    reader = translator(client_wants_usage=False)

    (_, first), (_, second) = await relay(MIDSTREAM_ERROR, reader)

    assert first.error is None and first.content is False and first.frames == []  # preamble held back
    assert second.error is not None
    assert second.frames == []
    assert second.error.failure_class is FailureClass.STREAM_CUT
    assert second.error.provider_code == "server_error"
    assert second.error.message.startswith("The server had an error while processing your request")
    assert second.error.upstream_status == 0
    assert reader.usage is None


@pytest.mark.parametrize(
    ("error", "failure_class"),
    [
        ({"message": "too long", "code": "context_length_exceeded"}, FailureClass.CONTEXT_LENGTH),
        ({"message": "no credit", "type": "insufficient_quota"}, FailureClass.QUOTA),
        ({"message": "filtered", "code": "content_filter"}, FailureClass.CONTENT_FILTER),
        ({"message": "odd", "code": 500}, FailureClass.STREAM_CUT),
        ({}, FailureClass.STREAM_CUT),
    ],
)
def test_in_band_error_codes_are_classified(error: dict[str, Any], failure_class: FailureClass) -> None:
    step = translator(client_wants_usage=False).feed("", json.dumps({"error": error}).encode())

    assert step.error is not None
    assert step.error.failure_class is failure_class
    assert step.error.message == error.get("message", "stream error")
    assert step.frames == [] and step.content is False


@pytest.mark.parametrize("data", [b"not json", b"{", b'{"choices": "nope"}'])
def test_undecodable_chunk_is_an_error_and_is_not_forwarded(data: bytes) -> None:
    step = translator(client_wants_usage=True).feed("", data)

    assert step.frames == []
    assert step.content is False
    assert step.error is not None and step.error.failure_class is FailureClass.STREAM_CUT
    assert "undecodable" in step.error.message


async def test_a_stream_cut_before_done_is_a_stream_cut() -> None:
    raw = CHAT
    cut = raw[: raw.index(b"data: [DONE]")]
    reader = translator(client_wants_usage=False)

    steps = await relay(cut, reader)
    finished = reader.finish()

    assert len(steps) == 11 and not any(step.done for _, step in steps)
    assert finished is not None
    assert finished.failure_class is FailureClass.STREAM_CUT
    assert "[DONE]" in finished.message
    assert reader.usage == Usage(prompt_tokens=11, completion_tokens=9)  # what arrived still counts


def test_an_empty_stream_is_a_stream_cut() -> None:
    finished = translator(client_wants_usage=False).finish()

    assert finished is not None and finished.failure_class is FailureClass.STREAM_CUT


def test_done_is_terminal_and_not_forwarded() -> None:
    reader = translator(client_wants_usage=False)

    step = reader.feed("", b"[DONE]")

    assert (step.done, step.frames, step.content, step.error) == (True, [], False, None)
    assert reader.finish() is None
