"""Anthropic `Message` → OpenAI `chat.completion` (reference §4.2), finish reasons (§1.1), usage (§1.2).

Golden values come from the fixtures; every body is checked against OpenAI's own
CreateChatCompletionResponse schema and read back with the official `openai` SDK.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai.types.chat import ChatCompletion

from keyrail_common.messages import Usage
from keyrail_workers.adapters.anthropic.response import FINISH_REASONS, UndecodableResponse
from tests.support.openai_schema import validate_component
from tests.unit.workers.adapters.anthropic_support import ADAPTER, ANTHROPIC, call, fixture

CALL = call({"messages": [{"role": "user", "content": "hi"}]})
RESPONSE_FIXTURES = ["messages_response.json", "tool_use_response.json"]


def parse(message: dict[str, Any]) -> tuple[dict[str, Any], Usage | None]:
    parsed = ADAPTER.parse_response(CALL, json.dumps(message).encode())
    return json.loads(parsed.body), parsed.usage


@pytest.mark.parametrize("name", RESPONSE_FIXTURES)
def test_every_response_fixture_is_a_valid_openai_completion(name: str) -> None:
    parsed = ADAPTER.parse_response(CALL, (ANTHROPIC / name).read_bytes())

    body = json.loads(parsed.body)
    validate_component("CreateChatCompletionResponse", body)
    ChatCompletion.model_validate(body)  # and the SDK reads it


def test_a_text_message_is_the_completion_with_its_cache_usage() -> None:
    body, usage = parse(fixture("messages_response.json"))

    assert isinstance(body.pop("created"), int)
    assert body == {
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
        # input 1523 + cache reads 12 + cache writes 0: OpenAI's prompt counts every input token.
        "usage": {
            "prompt_tokens": 1535,
            "completion_tokens": 24,
            "total_tokens": 1559,
            "prompt_tokens_details": {"cached_tokens": 12, "cache_write_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }
    assert usage == Usage(prompt_tokens=1535, completion_tokens=24, cached_tokens=12)


def test_a_tool_use_message_is_a_tool_call_with_its_input_as_json_arguments() -> None:
    body, usage = parse(fixture("tool_use_response.json"))

    [choice] = body["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "I'll check the current weather in Paris."
    [tool_call] = choice["message"]["tool_calls"]
    assert tool_call["id"] == "toolu_01A09q90qw90lq917835lq9" and tool_call["type"] == "function"
    assert tool_call["function"]["name"] == "get_weather"
    assert json.loads(tool_call["function"]["arguments"]) == {"city": "Paris", "unit": "celsius"}
    assert usage == Usage(prompt_tokens=412, completion_tokens=71)


def test_tool_calls_alone_have_a_null_content_and_keep_their_order() -> None:
    message = fixture("tool_use_response.json")
    second = {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}}
    message["content"] = [message["content"][1], second]

    body, _ = parse(message)

    reply = body["choices"][0]["message"]
    assert reply["content"] is None
    assert [(c["id"], c["function"]["arguments"]) for c in reply["tool_calls"]] == [
        ("toolu_01A09q90qw90lq917835lq9", '{"city":"Paris","unit":"celsius"}'),
        ("toolu_2", "{}"),
    ]
    validate_component("CreateChatCompletionResponse", body)


def test_cache_writes_and_thinking_are_counted_in_openais_semantics() -> None:
    message = fixture("messages_response.json")
    message["content"] = [
        {"type": "thinking", "thinking": "Let me see.", "signature": "sig"},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "text", "text": "Done."},
    ]
    message["usage"] = {
        "input_tokens": 100,
        "cache_creation_input_tokens": 2000,
        "cache_read_input_tokens": 300,
        "output_tokens": 500,
        "output_tokens_details": {"thinking_tokens": 420},
    }

    body, usage = parse(message)

    assert body["choices"][0]["message"]["content"] == "Done."  # thinking is not the answer
    assert usage == Usage(
        prompt_tokens=2400,
        completion_tokens=500,
        cached_tokens=300,
        reasoning_tokens=420,
        cache_write_tokens=2000,
    )
    assert body["usage"] == {
        "prompt_tokens": 2400,
        "completion_tokens": 500,
        "total_tokens": 2900,
        "prompt_tokens_details": {"cached_tokens": 300, "cache_write_tokens": 2000},
        "completion_tokens_details": {"reasoning_tokens": 420},
    }
    validate_component("CreateChatCompletionResponse", body)


def test_null_cache_counts_are_zero() -> None:
    message = fixture("messages_response.json")
    message["usage"] = {
        "input_tokens": 10,
        "cache_creation_input_tokens": None,
        "cache_read_input_tokens": None,
        "output_tokens": 3,
    }

    assert parse(message)[1] == Usage(prompt_tokens=10, completion_tokens=3)


def test_a_message_without_usage_reports_none_rather_than_zero() -> None:
    message = fixture("messages_response.json")
    del message["usage"]

    body, usage = parse(message)

    assert usage is None and "usage" not in body
    validate_component("CreateChatCompletionResponse", body)


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("pause_turn", "stop"),
        ("refusal", "content_filter"),
        (None, "stop"),
        ("a_reason_added_later", "stop"),
    ],
)
def test_finish_reasons_follow_the_reference_table(stop_reason: str | None, finish_reason: str) -> None:
    message = fixture("messages_response.json")
    message["stop_reason"] = stop_reason

    body, _ = parse(message)

    assert body["choices"][0]["finish_reason"] == finish_reason
    validate_component("CreateChatCompletionResponse", body)


def test_the_table_covers_every_anthropic_stop_reason_of_the_reference() -> None:
    assert set(FINISH_REASONS) == {
        "end_turn",
        "stop_sequence",
        "max_tokens",
        "model_context_window_exceeded",
        "tool_use",
        "pause_turn",
        "refusal",
    }


def test_an_empty_message_has_empty_content_not_null() -> None:
    message = {**fixture("messages_response.json"), "content": [], "stop_reason": "max_tokens"}

    body, _ = parse(message)

    assert body["choices"][0]["message"]["content"] == ""
    validate_component("CreateChatCompletionResponse", body)


def test_without_a_model_in_the_message_the_requested_model_is_named() -> None:
    message = fixture("messages_response.json")
    del message["model"]

    assert parse(message)[0]["model"] == CALL.model


@pytest.mark.parametrize("raw", [b"<html>Bad gateway</html>", b'{"content": "nope"}', b""])
def test_a_success_body_that_is_not_a_message_is_refused(raw: bytes) -> None:
    with pytest.raises(UndecodableResponse):
        ADAPTER.parse_response(CALL, raw)
