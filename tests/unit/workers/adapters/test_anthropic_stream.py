"""The Anthropic stream translator, fed through `sse_events` exactly as the relay feeds it (§4.3).

Every chunk it makes must validate against OpenAI's CreateChatCompletionStreamResponse, and the
official `openai` SDK's own accumulator must read the stream into the right completion. The
commit point is checked event by event: nothing leaves before the first text or tool call.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk

from keyrail_common.failures import FailureClass
from keyrail_common.messages import Usage
from keyrail_workers.adapters.base import StreamStep, StreamTranslator, UpstreamRequest
from keyrail_workers.sse import sse_events
from tests.support.openai_schema import validate_component
from tests.unit.workers.adapters.anthropic_support import ADAPTER, ANTHROPIC, call

STREAM_FIXTURES = sorted(ANTHROPIC.glob("*.sse"))
RAW = {path.name: path.read_bytes() for path in STREAM_FIXTURES}  # read up front: the tests are async
CHAT = RAW["messages_stream.sse"]
TOOLS = RAW["tool_use_stream.sse"]
THINKING = RAW["thinking_stream.sse"]
MIDSTREAM_ERROR = RAW["stream_error_overloaded.sse"]
COMPLETE = ["messages_stream.sse", "thinking_stream.sse", "tool_use_stream.sse"]
CALL = call({"messages": [{"role": "user", "content": "hi"}]}, stream=True)


def translator(client_wants_usage: bool = False) -> StreamTranslator:
    request = UpstreamRequest(
        "POST", "https://x/v1/messages", {}, b"{}", client_wants_usage=client_wants_usage
    )
    return ADAPTER.stream_translator(CALL, request)


async def _lines(items: Iterable[bytes]) -> AsyncIterator[bytes]:
    for item in items:
        yield item


async def relay(raw: bytes, reader: StreamTranslator) -> list[tuple[str, StreamStep]]:
    """Feed an upstream body as the relay does: stop at an error or at the terminal event."""
    steps: list[tuple[str, StreamStep]] = []
    async for event, data in sse_events(_lines(raw.splitlines(keepends=True))):
        step = reader.feed(event, data)
        steps.append((event, step))
        if step.error is not None or step.done:
            break
    return steps


def frames_of(steps: list[tuple[str, StreamStep]]) -> list[dict[str, Any]]:
    return [json.loads(frame) for _, step in steps for frame in step.frames]


def sse(*events: tuple[str, dict[str, Any]]) -> bytes:
    return b"".join(
        f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode() for kind, data in events
    )


START = (
    "message_start",
    {"message": {"id": "msg_1", "model": "claude-x", "usage": {"input_tokens": 5, "output_tokens": 1}}},
)
STOP: tuple[str, dict[str, Any]] = ("message_stop", {})


def text_block(index: int) -> tuple[str, dict[str, Any]]:
    return ("content_block_start", {"index": index, "content_block": {"type": "text", "text": ""}})


def text_delta(index: int, text: str) -> tuple[str, dict[str, Any]]:
    return ("content_block_delta", {"index": index, "delta": {"type": "text_delta", "text": text}})


def end(stop_reason: str, output_tokens: int) -> tuple[str, dict[str, Any]]:
    return (
        "message_delta",
        {"delta": {"stop_reason": stop_reason}, "usage": {"output_tokens": output_tokens}},
    )


def final_completion(chunks: list[dict[str, Any]]) -> Any:
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    for chunk in chunks:
        state.handle_chunk(ChatCompletionChunk.model_validate(chunk))
    return state.get_final_completion()


# --- every fixture -------------------------------------------------------------------------------


def test_there_are_stream_fixtures() -> None:
    assert {
        "messages_stream.sse",
        "tool_use_stream.sse",
        "thinking_stream.sse",
        "stream_error_overloaded.sse",
    } <= set(RAW)


@pytest.mark.parametrize("client_wants_usage", [False, True], ids=["usage-hidden", "usage-asked"])
@pytest.mark.parametrize("name", sorted(RAW))
async def test_every_chunk_is_valid_openai_and_nothing_leaves_before_the_first_content(
    name: str, client_wants_usage: bool
) -> None:
    steps = await relay(RAW[name], translator(client_wants_usage))

    committed = False
    for _, step in steps:
        for frame in step.frames:
            validate_component("CreateChatCompletionStreamResponse", json.loads(frame))
        if step.content and not committed:
            committed = True
            # The held role chunk goes out with the first content, in the same step.
            first = json.loads(step.frames[0])
            assert first["choices"][0]["delta"] == {"role": "assistant", "content": ""}
        elif not committed and not step.done:
            assert step.frames == [], "a frame went out before any content"
    assert committed
    chunks = frames_of(steps)
    assert len({chunk["id"] for chunk in chunks}) == 1 and len({chunk["created"] for chunk in chunks}) == 1
    assert all(chunk["model"] == "claude-sonnet-4-5-20250929" for chunk in chunks)
    usage_chunks = [chunk for chunk in chunks if chunk["choices"] == []]
    assert len(usage_chunks) == (1 if client_wants_usage and name in COMPLETE else 0)


@pytest.mark.parametrize("name", COMPLETE)
async def test_a_complete_stream_ends_with_one_finish_chunk_then_done(name: str) -> None:
    reader = translator()

    steps = await relay(RAW[name], reader)

    assert steps[-1][0] == "message_stop" and steps[-1][1].done
    assert not any(step.done for _, step in steps[:-1]) and all(step.error is None for _, step in steps)
    finishes = [c["choices"][0]["finish_reason"] for c in frames_of(steps) if c["choices"]]
    assert finishes[-1] is not None and finishes[:-1] == [None] * (len(finishes) - 1)
    assert reader.finish() is None


# --- text, tools, thinking -----------------------------------------------------------------------


async def test_a_text_stream_is_its_deltas_its_finish_and_its_usage() -> None:
    reader = translator(client_wants_usage=True)

    steps = await relay(CHAT, reader)

    events = [event for event, _ in steps]
    assert events == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * 4,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert [step.content for _, step in steps[:7]] == [False, False, False, True, True, True, True]
    chunks = frames_of(steps)
    assert [c["choices"][0]["delta"] for c in chunks[:5]] == [
        {"role": "assistant", "content": ""},
        {"content": "Hello"},
        {"content": "! How can"},
        {"content": " I help you"},
        {"content": " today?"},
    ]
    assert chunks[5]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert chunks[6]["choices"] == [] and chunks[6]["usage"] == {
        "prompt_tokens": 25,
        "completion_tokens": 12,
        "total_tokens": 37,
        "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    assert chunks[0]["id"] == "msg_01Hq8pXgTwBcVq2bKc9YmZ3e"
    assert reader.usage == Usage(prompt_tokens=25, completion_tokens=12)
    completion = final_completion(chunks)
    assert completion.choices[0].message.content == "Hello! How can I help you today?"
    assert completion.choices[0].finish_reason == "stop"


async def test_the_usage_chunk_is_hidden_unless_asked_but_usage_is_always_recorded() -> None:
    reader = translator(client_wants_usage=False)

    steps = await relay(CHAT, reader)

    assert all(c["choices"] for c in frames_of(steps))
    assert steps[-1][1].frames == [] and steps[-1][1].done
    assert reader.usage == Usage(prompt_tokens=25, completion_tokens=12)


async def test_a_tool_use_stream_is_tool_call_deltas_the_sdk_reads_into_a_call() -> None:
    steps = await relay(TOOLS, translator())

    chunks = frames_of(steps)
    tool_deltas = [
        c["choices"][0]["delta"]["tool_calls"] for c in chunks if c["choices"][0]["delta"].get("tool_calls")
    ]
    assert tool_deltas[0] == [
        {
            "index": 0,
            "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
            "type": "function",
            "function": {"name": "get_weather", "arguments": ""},
        }
    ]
    # The empty first fragment is not sent; the others are, in order, as the arguments.
    assert [d[0]["function"]["arguments"] for d in tool_deltas[1:]] == [
        '{"city": "Par',
        'is", "unit": ',
        '"celsius"}',
    ]
    assert all(d[0]["index"] == 0 and "id" not in d[0] for d in tool_deltas[1:])
    completion = final_completion(chunks)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "I'll check the weather in Paris."
    [tool_call] = choice.message.tool_calls or []
    assert (tool_call.id, tool_call.function.name) == ("toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather")
    assert json.loads(tool_call.function.arguments) == {"city": "Paris", "unit": "celsius"}


async def test_tool_calls_are_numbered_by_call_not_by_anthropics_block_index() -> None:
    def tool(index: int, name: str, arguments: str) -> list[tuple[str, dict[str, Any]]]:
        block = {"type": "tool_use", "id": f"toolu_{name}", "name": name, "input": {}}
        delta = {"type": "input_json_delta", "partial_json": arguments}
        return [
            ("content_block_start", {"index": index, "content_block": block}),
            ("content_block_delta", {"index": index, "delta": delta}),
            ("content_block_stop", {"index": index}),
        ]

    raw = sse(
        START,
        text_block(0),
        text_delta(0, "Two calls."),
        *tool(1, "weather", '{"city":"Paris"}'),
        *tool(2, "time", '{"tz":"CET"}'),
        end("tool_use", 30),
        STOP,
    )

    completion = final_completion(frames_of(await relay(raw, translator())))

    calls = completion.choices[0].message.tool_calls or []
    assert [(c.id, c.function.name, c.function.arguments) for c in calls] == [
        ("toolu_weather", "weather", '{"city":"Paris"}'),
        ("toolu_time", "time", '{"tz":"CET"}'),
    ]


async def test_a_stream_that_only_calls_a_tool_commits_at_the_call() -> None:
    block = {"type": "tool_use", "id": "toolu_1", "name": "now", "input": {}}
    raw = sse(START, ("content_block_start", {"index": 0, "content_block": block}), end("tool_use", 3), STOP)

    steps = await relay(raw, translator())

    assert [step.content for _, step in steps] == [False, True, False, False]
    role, call_chunk = (json.loads(f) for f in steps[1][1].frames)
    assert role["choices"][0]["delta"]["role"] == "assistant"
    assert call_chunk["choices"][0]["delta"]["tool_calls"][0]["function"] == {"name": "now", "arguments": ""}


async def test_thinking_is_not_sent_but_its_tokens_are_counted() -> None:
    reader = translator(client_wants_usage=True)

    steps = await relay(THINKING, reader)

    # Thinking block and its deltas (events 1-4) send nothing and are not the commit point.
    assert [step.content for _, step in steps[:6]] == [False] * 6
    assert all(step.frames == [] for _, step in steps[:6])
    chunks = frames_of(steps)
    assert (
        "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
        == "27 \u00d7 453 = 12,231."
    )
    assert reader.usage == Usage(prompt_tokens=40, completion_tokens=64, reasoning_tokens=48)
    assert chunks[-1]["usage"]["completion_tokens_details"] == {"reasoning_tokens": 48}


async def test_cache_counts_of_message_start_and_counts_message_delta_repeats_are_combined() -> None:
    start = {
        "message": {
            "id": "msg_1",
            "model": "claude-x",
            "usage": {
                "input_tokens": 10,
                "cache_creation_input_tokens": 200,
                "cache_read_input_tokens": 3000,
                "output_tokens": 1,
            },
        }
    }
    # Newer API versions repeat the input counts in message_delta; a count it leaves out stays.
    delta = {"delta": {"stop_reason": "end_turn"}, "usage": {"input_tokens": 12, "output_tokens": 40}}
    raw = sse(("message_start", start), text_block(0), text_delta(0, "ok"), ("message_delta", delta), STOP)
    reader = translator()

    await relay(raw, reader)

    assert reader.usage == Usage(
        prompt_tokens=12 + 200 + 3000, completion_tokens=40, cached_tokens=3000, cache_write_tokens=200
    )


# --- finish reasons, empty and odd streams ---------------------------------------------------------


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("max_tokens", "length"),
        ("stop_sequence", "stop"),
        ("refusal", "content_filter"),
        ("tool_use", "tool_calls"),
    ],
)
async def test_the_finish_chunk_carries_the_mapped_stop_reason(stop_reason: str, finish_reason: str) -> None:
    raw = sse(START, text_block(0), text_delta(0, "x"), end(stop_reason, 2), STOP)

    chunks = frames_of(await relay(raw, translator()))

    assert chunks[-1]["choices"][0]["finish_reason"] == finish_reason


async def test_a_stream_without_content_still_sends_its_role_and_finish_at_the_end() -> None:
    raw = sse(START, ("ping", {}), end("max_tokens", 0), STOP)

    steps = await relay(raw, translator())

    assert [len(step.frames) for _, step in steps] == [0, 0, 2, 0]
    assert not any(step.content for _, step in steps)  # no content: no commit point either
    role, finish = frames_of(steps)
    assert role["choices"][0]["delta"]["role"] == "assistant"
    assert finish["choices"][0]["finish_reason"] == "length"


async def test_message_stop_without_message_delta_still_finishes_the_choice() -> None:
    steps = await relay(sse(START, text_block(0), text_delta(0, "x"), STOP), translator())

    assert frames_of(steps)[-1]["choices"][0]["finish_reason"] == "stop"
    assert steps[-1][1].done


def test_pings_block_stops_and_unknown_events_produce_nothing() -> None:
    reader = translator()
    reader.feed("message_start", json.dumps({"type": "message_start", **START[1]}).encode())

    for event, data in [
        ("ping", {"type": "ping"}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("a_new_event", {"type": "a_new_event", "payload": [1, 2]}),
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "citations_delta"}},
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 4,
                "delta": {"type": "input_json_delta", "partial_json": "{"},
            },
        ),
    ]:
        step = reader.feed(event, json.dumps(data).encode())
        assert (step.frames, step.content, step.error, step.done) == ([], False, None, False), event


@pytest.mark.parametrize("data", [b"not json", b"{", b'{"type": "message_start", "message": 3}'])
def test_an_undecodable_event_is_an_error_and_is_not_forwarded(data: bytes) -> None:
    step = translator().feed("message_start", data)

    assert step.frames == [] and step.error is not None
    assert step.error.failure_class is FailureClass.STREAM_CUT and "undecodable" in step.error.message


# --- errors and cuts -----------------------------------------------------------------------------


async def test_an_overload_before_any_content_is_an_error_with_nothing_sent() -> None:
    overloaded = ("error", {"error": {"type": "overloaded_error", "message": "Overloaded"}})
    reader = translator(client_wants_usage=True)

    steps = await relay(sse(START, ("ping", {}), overloaded), reader)

    assert frames_of(steps) == []  # the router may still fall back
    error = steps[-1][1].error
    assert error is not None
    assert (error.failure_class, error.provider_code, error.message) == (
        FailureClass.OVERLOADED,
        "overloaded_error",
        "Overloaded",
    )
    assert error.upstream_status == 0
    assert reader.usage == Usage(prompt_tokens=5, completion_tokens=1)


async def test_an_overload_after_content_is_an_error_step_after_the_content() -> None:
    reader = translator()

    steps = await relay(MIDSTREAM_ERROR, reader)

    assert [event for event, _ in steps] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "error",
    ]
    assert steps[2][1].content and len(steps[2][1].frames) == 2
    error = steps[3][1].error
    assert error is not None and error.failure_class is FailureClass.OVERLOADED
    assert steps[3][1].frames == []
    assert reader.usage == Usage(prompt_tokens=18, completion_tokens=1)  # what arrived still counts


@pytest.mark.parametrize(
    ("error", "failure_class"),
    [
        ({"type": "api_error", "message": "Internal"}, FailureClass.UPSTREAM_5XX),
        ({"type": "rate_limit_error", "message": "slow down"}, FailureClass.RATE_LIMIT),
        (
            {"type": "invalid_request_error", "message": "prompt is too long: 1 > 0"},
            FailureClass.CONTEXT_LENGTH,
        ),
        ({"type": "a_type_added_later", "message": "?"}, FailureClass.STREAM_CUT),
        ({}, FailureClass.STREAM_CUT),
    ],
)
def test_in_band_error_types_are_classified(error: dict[str, Any], failure_class: FailureClass) -> None:
    step = translator().feed("error", json.dumps({"type": "error", "error": error}).encode())

    assert step.error is not None and step.error.failure_class is failure_class
    assert step.error.message == error.get("message", "stream error")


async def test_a_stream_cut_before_message_stop_is_a_stream_cut() -> None:
    cut = CHAT[: CHAT.index(b"event: message_stop")]
    reader = translator()

    steps = await relay(cut, reader)
    finished = reader.finish()

    assert not any(step.done for _, step in steps)
    assert finished is not None and finished.failure_class is FailureClass.STREAM_CUT
    assert "message_stop" in finished.message
    assert reader.usage == Usage(prompt_tokens=25, completion_tokens=12)


def test_an_empty_stream_is_a_stream_cut_with_no_usage() -> None:
    reader = translator()

    finished = reader.finish()

    assert finished is not None and finished.failure_class is FailureClass.STREAM_CUT
    assert reader.usage is None
