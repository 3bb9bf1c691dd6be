"""The Cohere adapter's upstream request (reference §8): an OpenAI chat request becomes exactly the
Cohere v2 bodies of the fixtures; what Cohere cannot express is refused before any HTTP."""

from __future__ import annotations

import json
from typing import Any

import pytest

from keyrail_common.failures import FailureClass
from keyrail_common.messages import Dialect
from keyrail_common.registry import Operation
from keyrail_workers.adapters.base import AdapterCall, UpstreamError, UpstreamRequest
from keyrail_workers.adapters.cohere import CohereAdapter
from tests.support.contracts import FIXTURES

ADAPTER = CohereAdapter()
COHERE = FIXTURES / "cohere"
API_KEY = "co-test-0123456789abcdefghij"
BASE_URL = "https://cohere.internal.example"
MODEL = "command-a-03-2025"
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string", "description": "City name"}},
            "required": ["location"],
        },
    },
}


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((COHERE / name).read_bytes())
    return loaded


def call(body: dict[str, Any], *, stream: bool = False, base_url: str = BASE_URL) -> AdapterCall:
    return AdapterCall(
        operation=Operation.CHAT,
        dialect=Dialect.OPENAI,
        model=MODEL,
        body=json.dumps({"model": f"cohere-host/{MODEL}", **body}).encode(),
        stream=stream,
        base_url=base_url,
        custom_headers={"X-Client-Name": "keyrail-tests"},
    )


def built(body: dict[str, Any], **kwargs: Any) -> UpstreamRequest:
    request = ADAPTER.build_request(call(body, **kwargs), {"api_key": API_KEY})
    assert isinstance(request, UpstreamRequest), request
    return request


def sent(body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(built(body, **kwargs).body)
    return decoded


def refused(body: dict[str, Any]) -> UpstreamError:
    error = ADAPTER.build_request(call(body), {"api_key": API_KEY})
    assert isinstance(error, UpstreamError), error
    return error


# --- the fixtures --------------------------------------------------------------------------------------


def test_a_chat_request_becomes_the_fixture() -> None:
    openai_request = {
        "messages": fixture("chat_request.json")["messages"],  # a system string, user text parts
        "max_tokens": 200,
        "temperature": 0.3,
        "top_p": 0.9,
        "top_k": 40,
        "stop": "\n\n",
        "seed": 42,
    }

    request = built(openai_request)

    assert request.method == "POST"
    assert request.url == f"{BASE_URL}/v2/chat"
    assert json.loads(request.body) == fixture("chat_request.json")
    assert request.headers == {
        "X-Client-Name": "keyrail-tests",
        "Authorization": f"Bearer {API_KEY}",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }


def test_a_tool_call_request_becomes_the_fixture() -> None:
    openai_request = {
        "messages": [{"role": "user", "content": "What's the weather in Toronto?"}],
        "tools": [WEATHER_TOOL],
        "tool_choice": "required",
    }

    assert sent(openai_request) == {**fixture("tool_call_request.json"), "stream": False}


def test_a_tool_result_follow_up_becomes_the_fixture() -> None:
    tool = {**WEATHER_TOOL, "function": {**WEATHER_TOOL["function"]}}
    tool["function"]["parameters"] = {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
    }
    call_id = "get_weather_1byjy32y4hvq"
    openai_request = {
        "messages": [
            {"role": "user", "content": "What's the weather in Toronto?"},
            {
                "role": "assistant",
                "content": "I will look up the weather in Toronto.",  # Cohere's tool_plan
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"location":"Toronto"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": call_id, "content": '{"temperature": "20C"}'},
        ],
        "tools": [tool],
    }

    assert sent(openai_request) == {**fixture("tool_result_followup_request.json"), "stream": False}


# --- the mapping, field by field -----------------------------------------------------------------------


def test_a_stream_asks_for_events_and_remembers_whether_the_client_wants_usage() -> None:
    body = {
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }

    request = built(body, stream=True)

    assert json.loads(request.body) == {
        "model": MODEL,
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
    }
    assert request.headers["Accept"] == "text/event-stream"
    assert request.client_wants_usage is True
    assert built({**body, "stream_options": None}, stream=True).client_wants_usage is False


def test_developer_messages_are_system_messages_and_assistant_text_stays_content() -> None:
    messages = [
        {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Hello."},
    ]

    assert sent({"messages": messages})["messages"] == [
        {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Hello."},
    ]


def test_images_pass_in_user_messages() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}}
    content = [{"type": "text", "text": "What is this?"}, image]

    assert sent({"messages": [{"role": "user", "content": content}]})["messages"][0]["content"] == content


def test_tool_results_in_parts_become_one_document() -> None:
    tool_message = {
        "role": "tool",
        "tool_call_id": "c1",
        "content": [{"type": "text", "text": "20"}, {"type": "text", "text": "C"}],
    }

    assert sent({"messages": [tool_message]})["messages"] == [
        {"role": "tool", "tool_call_id": "c1", "content": [{"type": "document", "document": {"data": "20C"}}]}
    ]


def test_an_assistant_tool_call_turn_without_text_has_no_content_and_no_plan() -> None:
    assistant = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
    }

    assert sent({"messages": [assistant]})["messages"] == [
        {
            "role": "assistant",
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
        }
    ]


@pytest.mark.parametrize(
    ("choice", "expected"), [("none", "NONE"), ("required", "REQUIRED"), ("auto", None), (None, None)]
)
def test_tool_choice(choice: str | None, expected: str | None) -> None:
    body = sent(
        {"messages": [{"role": "user", "content": "hi"}], "tools": [WEATHER_TOOL], "tool_choice": choice}
    )

    assert body.get("tool_choice") == expected


def test_forcing_one_function_is_required_with_only_that_tool() -> None:
    other = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}
    choice = {"type": "function", "function": {"name": "get_weather"}}

    body = sent(
        {
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [other, WEATHER_TOOL],
            "tool_choice": choice,
        }
    )

    assert body["tool_choice"] == "REQUIRED"
    assert [t["function"]["name"] for t in body["tools"]] == ["get_weather"]


def test_strict_functions_make_strict_tools() -> None:
    strict = {**WEATHER_TOOL, "function": {**WEATHER_TOOL["function"], "strict": True}}

    body = sent({"messages": [{"role": "user", "content": "hi"}], "tools": [strict]})

    assert body["strict_tools"] is True
    assert body["tools"] == [WEATHER_TOOL]  # `strict` is not a Cohere function field


@pytest.mark.parametrize(
    ("response_format", "expected"),
    [
        ({"type": "text"}, {"type": "text"}),
        ({"type": "json_object"}, {"type": "json_object"}),
        (
            {
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": {"type": "object"}, "strict": True},
            },
            {"type": "json_object", "json_schema": {"type": "object"}},
        ),
    ],
)
def test_response_format(response_format: dict[str, Any], expected: dict[str, Any]) -> None:
    body = sent({"messages": [{"role": "user", "content": "hi"}], "response_format": response_format})

    assert body["response_format"] == expected


def test_parameters_are_renamed_and_the_unknown_ones_dropped() -> None:
    body = sent(
        {
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 10,
            "max_completion_tokens": 20,  # the newer name wins
            "stop": ["END", "STOP"],
            "frequency_penalty": 0.5,
            "presence_penalty": 0.25,
            "reasoning_effort": "none",
            "n": 1,
            "user": "u-1",
            "store": True,
            "logprobs": True,
            "parallel_tool_calls": False,
            "metadata": {"tags": "x"},
        }
    )

    assert body == {
        "model": MODEL,
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 20,
        "stop_sequences": ["END", "STOP"],
        "frequency_penalty": 0.5,
        "presence_penalty": 0.25,
        "thinking": {"type": "disabled"},
        "stream": False,
    }


def test_a_reasoning_effort_enables_thinking() -> None:
    body = sent({"messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "high"})

    assert body["thinking"] == {"type": "enabled"}


def test_the_base_url_may_end_with_a_slash() -> None:
    assert built({"messages": []}, base_url=BASE_URL + "/").url == f"{BASE_URL}/v2/chat"


# --- refusals ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"messages": [{"role": "user", "content": "hi"}], "n": 2}, "n=2"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "input_audio", "input_audio": {"data": "AA", "format": "wav"}}],
                    }
                ]
            },
            "'input_audio'",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}]},
            "'file'",
        ),
        (
            {"messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
            "'image_url'",
        ),
        ({"messages": [{"role": "function", "name": "f", "content": "x"}]}, "'function' role"),
    ],
    ids=["n", "audio", "file", "system-image", "function-role"],
)
def test_what_cohere_cannot_do_is_refused_so_another_target_may_serve_it(
    body: dict[str, Any], said: str
) -> None:
    error = refused(body)

    assert (error.failure_class, error.provider_code) == (FailureClass.UNSUPPORTED, "unsupported_for_cohere")
    assert said in error.message


@pytest.mark.parametrize(
    "body",
    [
        {"messages": "hello"},
        {
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [WEATHER_TOOL],
            "tool_choice": {"type": "function", "function": {"name": "nope"}},
        },
    ],
    ids=["not-a-chat-request", "forced-function-not-in-tools"],
)
def test_a_request_no_upstream_would_take_is_the_callers_error(body: dict[str, Any]) -> None:
    error = refused(body)

    assert (error.failure_class, error.provider_code) == (FailureClass.CALLER_ERROR, "invalid_request")


def test_the_adapter_answers_openai_chat_and_embeddings() -> None:
    assert ADAPTER.name == "cohere"
    assert ADAPTER.dialects == {Dialect.OPENAI}
    assert ADAPTER.operations == {Operation.CHAT, Operation.EMBEDDINGS}
