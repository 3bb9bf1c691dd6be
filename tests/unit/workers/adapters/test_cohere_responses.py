"""The Cohere adapter's answers, streams and errors over the fixtures on disk (reference §8, §1.1,
§1.2): OpenAI's shapes out, `tokens` (not `billed_units`) as usage, failed generations as errors,
content events as the stream's commit point."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from keyrail_common.failures import FailureClass
from keyrail_common.messages import Dialect, Usage
from keyrail_common.registry import Operation
from keyrail_workers.adapters.base import (
    AdapterCall,
    ParsedResponse,
    StreamTranslator,
    UpstreamRequest,
)
from keyrail_workers.adapters.cohere import CohereAdapter
from keyrail_workers.upstream_errors import upstream_failure
from tests.support.adapters import feed, frames
from tests.support.contracts import FIXTURES
from tests.support.openai_schema import validate_component

ADAPTER = CohereAdapter()
COHERE = FIXTURES / "cohere"
RAW = {p.name: p.read_bytes() for p in COHERE.iterdir()}
STREAM = RAW["stream.sse"]
TOOL_STREAM = RAW["tool_call_stream.sse"]
MODEL = "command-a-03-2025"
CALL = AdapterCall(
    operation=Operation.CHAT,
    dialect=Dialect.OPENAI,
    model=MODEL,
    body=b"{}",
    stream=False,
    base_url="https://x",
)


def parsed(body: bytes) -> ParsedResponse:
    result = ADAPTER.parse_response(CALL, body)
    assert isinstance(result, ParsedResponse), result
    return result


def answer(body: bytes) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(parsed(body).body)
    return decoded


def translator(client_wants_usage: bool = False) -> StreamTranslator:
    request = UpstreamRequest("POST", "https://x/v2/chat", {}, b"{}", client_wants_usage=client_wants_usage)
    return ADAPTER.stream_translator(CALL, request)


def with_reason(name: str, reason: str) -> bytes:
    body = json.loads(RAW[name])
    body["finish_reason"] = reason
    return json.dumps(body).encode()


# --- answers -------------------------------------------------------------------------------------------


def test_a_text_answer_is_an_openai_chat_completion() -> None:
    before = int(time.time())
    result = parsed(RAW["chat_response.json"])

    body = json.loads(result.body)
    validate_component("CreateChatCompletionResponse", body)
    assert before <= body.pop("created") <= time.time()
    assert body == {
        "id": "c14c80c3-18eb-4519-9460-6c92edd8cfb4",
        "object": "chat.completion",
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "A large language model (LLM) is a neural network trained on huge amounts of "
                    "text to understand and generate language.",
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
    # §1.2: `tokens` counts what the model read and wrote (498 in); `billed_units` (12 in) does not.
    assert result.usage == Usage(prompt_tokens=498, completion_tokens=26)


def test_a_tool_call_answer_has_openai_tool_calls_and_no_content() -> None:
    result = parsed(RAW["tool_call_response.json"])

    body = json.loads(result.body)
    validate_component("CreateChatCompletionResponse", body)
    [choice] = body["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"] == {
        "role": "assistant",
        "content": None,  # the tool_plan has no OpenAI field: dropped
        "refusal": None,
        "tool_calls": [
            {
                "id": "get_weather_1byjy32y4hvq",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"location":"Toronto"}'},
            }
        ],
    }
    assert result.usage == Usage(prompt_tokens=913, completion_tokens=81)


@pytest.mark.parametrize(
    ("reason", "expected"),
    [("COMPLETE", "stop"), ("STOP_SEQUENCE", "stop"), ("MAX_TOKENS", "length"), ("TOOL_CALL", "tool_calls")],
)
def test_finish_reasons(reason: str, expected: str) -> None:
    assert answer(with_reason("chat_response.json", reason))["choices"][0]["finish_reason"] == expected


@pytest.mark.parametrize(
    ("reason", "failure_class", "client_status"),
    [("ERROR", FailureClass.UPSTREAM_5XX, 502), ("TIMEOUT", FailureClass.TIMEOUT, 504)],
)
def test_a_failed_generation_is_an_error_not_a_choice(
    reason: str, failure_class: FailureClass, client_status: int
) -> None:
    parsed_answer = ADAPTER.parse_response(CALL, with_reason("chat_response.json", reason))

    error = parsed_answer.error
    assert error is not None and parsed_answer.usage is not None  # the tokens were spent all the same
    assert (error.failure_class, error.provider_code) == (failure_class, reason)
    client = upstream_failure("cohere-host", error, [])
    assert client.http_status == client_status
    assert f"finish_reason {reason}" in client.message


def test_usage_falls_back_to_billed_units_only_when_tokens_are_missing() -> None:
    body = json.loads(RAW["chat_response.json"])
    body["usage"] = {"billed_units": {"input_tokens": 12, "output_tokens": 24}, "cached_tokens": 4}

    assert parsed(json.dumps(body).encode()).usage == Usage(
        prompt_tokens=12, completion_tokens=24, cached_tokens=4
    )


def test_cached_tokens_are_a_subset_of_the_prompt() -> None:
    body = json.loads(RAW["chat_response.json"])
    body["usage"]["cached_tokens"] = 400

    result = parsed(json.dumps(body).encode())

    assert result.usage == Usage(prompt_tokens=498, completion_tokens=26, cached_tokens=400)
    assert json.loads(result.body)["usage"]["prompt_tokens_details"] == {"cached_tokens": 400}


def test_an_answer_without_usage_reports_none() -> None:
    body = json.loads(RAW["chat_response.json"])
    del body["usage"]

    result = parsed(json.dumps(body).encode())

    assert result.usage is None and "usage" not in json.loads(result.body)


def test_an_undecodable_answer_is_an_upstream_failure() -> None:
    error = ADAPTER.parse_response(CALL, b"<html>gateway</html>").error

    assert error is not None and error.failure_class is FailureClass.UPSTREAM_5XX


# --- streams -------------------------------------------------------------------------------------------


def chunks(sent: list[bytes]) -> list[dict[str, Any]]:
    decoded = [json.loads(frame) for frame in sent]
    for chunk in decoded:
        validate_component("CreateChatCompletionStreamResponse", chunk)
    return decoded


@pytest.mark.parametrize("client_wants_usage", [False, True])
async def test_a_text_stream(client_wants_usage: bool) -> None:
    reader = translator(client_wants_usage)

    steps = await feed(STREAM, reader)

    out = chunks(frames(steps))
    assert {c["id"] for c in out} == {"29f14a5a-11de-4cae-9800-25e4747408ea"}  # message-start's id
    assert {c["model"] for c in out} == {MODEL}
    assert out[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in out if c["choices"])
    assert text == "LLMs are neural networks trained on text."
    finish = [c for c in out if c["choices"] and c["choices"][0]["finish_reason"]]
    assert [c["choices"][0]["finish_reason"] for c in finish] == ["stop"]
    usage_chunks = [c for c in out if not c["choices"]]
    if client_wants_usage:
        assert [c["usage"] for c in usage_chunks] == [
            {
                "prompt_tokens": 71,
                "completion_tokens": 10,
                "total_tokens": 81,
                "prompt_tokens_details": {"cached_tokens": 0},
            }
        ]
    else:
        assert usage_chunks == []
    assert reader.usage == Usage(prompt_tokens=71, completion_tokens=10)  # tokens, not billed_units (5/9)
    assert steps[-1].done and reader.finish() is None


async def test_only_content_commits_the_stream() -> None:
    steps = await feed(STREAM, translator())

    # message-start and content-start send nothing: the role chunk waits for the first text.
    assert [bool(s.frames) for s in steps[:3]] == [False, False, True]
    assert [s.content for s in steps] == [False, False, *[True] * 9, False, False]


async def test_a_tool_call_stream() -> None:
    steps = await feed(TOOL_STREAM, translator())

    out = chunks(frames(steps))
    assert not any(s.frames for s in steps[:7])  # message-start and six tool-plan deltas: nothing
    assert out[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    fragments = [
        c["choices"][0]["delta"]["tool_calls"] for c in out if c["choices"][0]["delta"].get("tool_calls")
    ]
    assert fragments[0] == [
        {
            "index": 0,
            "id": "get_weather_nsz5zm3w56q3",
            "type": "function",
            "function": {"name": "get_weather", "arguments": ""},
        }
    ]
    assert all(f[0]["index"] == 0 and set(f[0]) == {"index", "function"} for f in fragments[1:])
    arguments = "".join(f[0]["function"]["arguments"] for f in fragments)
    assert json.loads(arguments) == {"location": "Toronto"}
    assert out[-1]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "tool_calls"}
    assert steps[-1].done


async def test_two_streamed_tool_calls_get_their_own_openai_indexes() -> None:
    start = json.loads(TOOL_STREAM.split(b"\n\n")[7].split(b"data: ", 1)[1])
    second = json.loads(json.dumps(start).replace("get_weather_nsz5zm3w56q3", "get_weather_2"))
    second["index"] = 1
    reader = translator()
    reader.feed("", b'{"type":"message-start","id":"m1"}')
    reader.feed("", json.dumps(start).encode())
    step = reader.feed("", json.dumps(second).encode())
    delta = reader.feed(
        "",
        b'{"type":"tool-call-delta","index":1,"delta":{"message":{"tool_calls":{"function":{"arguments":"{}"}}}}}',
    )

    assert json.loads(step.frames[0])["choices"][0]["delta"]["tool_calls"][0]["index"] == 1
    assert json.loads(delta.frames[0])["choices"][0]["delta"]["tool_calls"][0] == {
        "index": 1,
        "function": {"arguments": "{}"},
    }


@pytest.mark.parametrize(
    ("reason", "failure_class"), [("ERROR", FailureClass.UPSTREAM_5XX), ("TIMEOUT", FailureClass.TIMEOUT)]
)
async def test_a_failed_generation_in_the_stream_is_an_error_step(
    reason: str, failure_class: FailureClass
) -> None:
    end = (
        b'event: message-end\ndata: {"type":"message-end",'
        b'"delta":{"finish_reason":"%s","error":"model crashed"}}\n\n'
    )
    cut_at = STREAM.index(b"event: content-end")

    steps = await feed(STREAM[:cut_at] + end % reason.encode(), translator())

    error = steps[-1].error
    assert error is not None and error.failure_class is failure_class
    assert "model crashed" in error.message and reason in error.message


async def test_a_failure_before_any_content_sends_the_client_nothing() -> None:
    # So the relay answers the router with the failure and it may still fall back.
    body = STREAM[: STREAM.index(b"event: content-delta")]
    body += b'data: {"type":"message-end","delta":{"finish_reason":"ERROR"}}\n\n'

    steps = await feed(body, translator())

    assert frames(steps) == [] and steps[-1].error is not None


async def test_a_stream_cut_before_message_end_is_a_stream_cut() -> None:
    reader = translator()

    steps = await feed(STREAM[: STREAM.index(b"event: message-end")], reader)

    assert not any(s.done or s.error for s in steps)
    cut = reader.finish()
    assert cut is not None and cut.failure_class is FailureClass.STREAM_CUT


async def test_done_before_message_end_is_a_stream_cut() -> None:
    steps = await feed(STREAM[: STREAM.index(b"event: message-end")] + b"data: [DONE]\n\n", translator())

    assert steps[-1].error is not None and steps[-1].error.failure_class is FailureClass.STREAM_CUT


def test_done_after_message_end_is_the_end() -> None:
    reader = translator()
    reader.feed("message-end", b'{"type":"message-end","delta":{"finish_reason":"COMPLETE"}}')

    assert reader.feed("", b"[DONE]").done and reader.finish() is None


@pytest.mark.parametrize(
    "data",
    [
        b"{not json",
        b'{"type":"tool-call-delta","index":3,"delta":{"message":{"tool_calls":{"function":{"arguments":"x"}}}}}',
    ],
    ids=["undecodable", "delta-before-start"],
)
def test_a_broken_event_is_a_stream_cut(data: bytes) -> None:
    step = translator().feed("", data)

    assert step.error is not None and step.error.failure_class is FailureClass.STREAM_CUT


def test_the_event_name_is_used_when_the_data_has_no_type() -> None:
    reader = translator()
    step = reader.feed("content-delta", b'{"index":0,"delta":{"message":{"content":{"text":"hi"}}}}')

    assert step.content and json.loads(step.frames[-1])["choices"][0]["delta"] == {"content": "hi"}


# --- errors -------------------------------------------------------------------------------------------

F = FailureClass


@pytest.mark.parametrize(
    ("headers", "expected"), [({"retry-after": "12"}, 12.0), ({"retry-after-ms": "1500"}, 1.5), ({}, 0.0)]
)
def test_a_429_carries_the_retry_delay(headers: dict[str, str], expected: float) -> None:
    assert ADAPTER.classify_error(429, headers, RAW["error_429.json"]).retry_after_s == expected


@pytest.mark.parametrize(
    ("status", "failure_class"),
    [
        (403, F.CREDENTIAL),
        (404, F.MODEL_ACCESS),
        (422, F.CALLER_ERROR),
        (498, F.CALLER_ERROR),  # Cohere: a deny-listed token, not Groq's capacity 498
        (499, F.CALLER_ERROR),
        (500, F.UPSTREAM_5XX),
        (501, F.UPSTREAM_5XX),
        (503, F.OVERLOADED),
        (504, F.TIMEOUT),
    ],
)
def test_statuses_the_sdk_handles(status: int, failure_class: FailureClass) -> None:
    body = json.dumps({"id": "x", "message": f"status {status}"}).encode()

    assert ADAPTER.classify_error(status, {}, body).failure_class is failure_class


def test_an_overload_honours_retry_after_and_a_non_json_body_is_kept_as_text() -> None:
    error = ADAPTER.classify_error(503, {"retry-after": "3"}, b"upstream connect error\n")

    assert (error.failure_class, error.retry_after_s, error.message) == (
        F.OVERLOADED,
        3.0,
        "upstream connect error",
    )
