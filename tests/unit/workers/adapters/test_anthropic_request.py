"""OpenAI chat request → Anthropic Messages request (reference §4, §4.1).

The golden tests build the OpenAI body that means what each Anthropic request fixture says and
check the adapter sends exactly that fixture; every translated body is also checked against the
official Anthropic SDK's own request types.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from keyrail_workers.adapters.anthropic.request import (
    DEFAULT_MAX_TOKENS,
    JSON_OBJECT_INSTRUCTION,
    MIN_THINKING_BUDGET,
    THINKING_BUDGETS,
)
from tests.unit.workers.adapters.anthropic_support import (
    ADAPTER,
    API_KEY,
    MODEL,
    OPENAI,
    OPENAI_MESSAGES_REQUEST,
    PNG,
    assert_valid_anthropic_request,
    call,
    fixture,
)

WEATHER_PARAMETERS = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
    "required": ["city"],
}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city.",
        "parameters": WEATHER_PARAMETERS,
    },
}
HI = [{"role": "user", "content": "hi"}]


def translated(body: dict[str, Any], model: str = MODEL, stream: bool = False) -> dict[str, Any]:
    request = ADAPTER.build_request(call(body, stream=stream, model=model), {"api_key": API_KEY})
    payload: dict[str, Any] = json.loads(request.body)
    return payload


# --- golden: the Anthropic fixtures ------------------------------------------------------------------


def test_system_with_cache_control_images_sampling_stop_and_user_become_the_messages_fixture() -> None:
    # OPENAI_MESSAGES_REQUEST also carries the OpenAI parameters Anthropic lacks: they are dropped.
    assert translated(OPENAI_MESSAGES_REQUEST) == fixture("messages_request.json")


def test_tools_with_auto_choice_and_parallel_calls_become_the_tool_use_fixture() -> None:
    parameters = json.loads(json.dumps(WEATHER_PARAMETERS))
    parameters["properties"]["city"]["description"] = "City name"
    body = {
        "model": "anthropic/claude-sonnet-4-5",
        "messages": [{"role": "user", "content": "What's the weather in Paris?"}],
        "tools": [{"type": "function", "function": {**WEATHER["function"], "parameters": parameters}}],  # type: ignore[dict-item]
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "max_completion_tokens": 1024,
    }

    assert translated(body) == {**fixture("tool_use_request.json"), "stream": False}


def test_assistant_tool_calls_and_tool_answers_become_the_tool_result_fixture() -> None:
    body = {
        "model": "anthropic/claude-sonnet-4-5",
        "max_tokens": 1024,
        "tools": [WEATHER],
        "messages": [
            {"role": "user", "content": "What's the weather in Paris?"},
            {
                "role": "assistant",
                "content": "I'll check the current weather in Paris.",
                "tool_calls": [
                    {
                        "id": "toolu_01A09q90qw90lq917835lq9",
                        "type": "function",
                        "function": {
                            "name": "get_weather",
                            "arguments": '{"city": "Paris", "unit": "celsius"}',
                        },
                    }
                ],
            },
            {
                "role": "tool",
                "tool_call_id": "toolu_01A09q90qw90lq917835lq9",
                "content": '{"temp_c":14,"conditions":"light rain"}',
            },
        ],
    }

    assert translated(body) == {**fixture("tool_result_followup_request.json"), "stream": False}


@pytest.mark.parametrize("name", sorted(p.name for p in OPENAI.glob("*request.json")))
def test_every_openai_request_fixture_translates_to_a_body_the_sdk_types_accept(name: str) -> None:
    body = json.loads((OPENAI / name).read_bytes())

    payload = translated(body)

    assert_valid_anthropic_request(payload)
    assert payload["model"] == MODEL
    assert not any(m["role"] == "system" for m in payload["messages"])


def test_the_openai_chat_fixture_keeps_what_anthropic_has_and_drops_the_rest() -> None:
    payload = translated(json.loads((OPENAI / "chat_request.json").read_bytes()))

    assert payload["system"] == [{"type": "text", "text": "You are a concise assistant."}]
    [turn] = payload["messages"]
    assert turn["content"][1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
    }
    assert (payload["max_tokens"], payload["temperature"], payload["top_p"]) == (256, 0.2, 1)
    assert payload["stop_sequences"] == ["\n\n"]
    assert not {"n", "seed", "stop", "max_completion_tokens"} & set(payload)


def test_the_openai_tool_fixtures_keep_strict_schemas_and_parallel_calls() -> None:
    payload = translated(json.loads((OPENAI / "tool_calls_request.json").read_bytes()))

    [tool] = payload["tools"]
    assert tool["strict"] is True and tool["input_schema"]["additionalProperties"] is False
    assert payload["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": False}


# --- URL, headers, usage flag ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "url"),
    [
        ("https://api.anthropic.com", "https://api.anthropic.com/v1/messages"),
        ("https://api.anthropic.com/", "https://api.anthropic.com/v1/messages"),
        ("https://api.anthropic.com/v1", "https://api.anthropic.com/v1/messages"),  # not doubled
        ("http://127.0.0.1:9900/claude-proxy", "http://127.0.0.1:9900/claude-proxy/v1/messages"),
    ],
)
def test_the_url_is_the_base_url_with_v1_messages(base_url: str, url: str) -> None:
    assert ADAPTER.build_request(call({"messages": HI}, base_url=base_url), {"api_key": API_KEY}).url == url


@pytest.mark.parametrize("stream", [False, True])
def test_headers_are_the_key_the_version_and_the_content_type(stream: bool) -> None:
    request = ADAPTER.build_request(call({"messages": HI}, stream=stream), {"api_key": API_KEY})

    assert request.method == "POST"
    assert request.headers == {
        "x-api-key": API_KEY,
        "anthropic-version": "2023-06-01",
        "content-type": "application/json",
        "accept": "text/event-stream" if stream else "application/json",
    }
    assert json.loads(request.body)["stream"] is stream


def test_custom_headers_are_kept_but_cannot_replace_the_credential_or_double_a_header() -> None:
    custom = {
        "anthropic-beta": "prompt-caching-2024-07-31",
        "Anthropic-Version": "2024-01-01",
        "X-Org-Token": "org-tok-1",
        "X-Api-Key": "sk-not-this-one",
        "Content-Type": "text/plain",
    }

    request = ADAPTER.build_request(call({"messages": HI}, custom_headers=custom), {"api_key": API_KEY})

    assert request.headers == {
        "anthropic-version": "2024-01-01",  # a custom host's own version wins
        "anthropic-beta": "prompt-caching-2024-07-31",
        "x-org-token": "org-tok-1",
        "x-api-key": API_KEY,
        "content-type": "application/json",
        "accept": "application/json",
    }


def test_without_an_api_key_a_custom_bearer_token_authenticates() -> None:
    request = ADAPTER.build_request(
        call({"messages": HI}, custom_headers={"Authorization": "Bearer oauth-tok"}), {}
    )

    assert request.headers["authorization"] == "Bearer oauth-tok"
    assert "x-api-key" not in request.headers


@pytest.mark.parametrize(
    ("stream", "options", "wants"),
    [
        (True, {"include_usage": True}, True),
        (True, {"include_usage": False}, False),
        (True, None, False),
        (False, {"include_usage": True}, False),
    ],
)
def test_the_client_wants_usage_only_on_a_stream_that_asked(stream: bool, options: Any, wants: bool) -> None:
    body: dict[str, Any] = {"messages": HI, "stream": stream}
    if options is not None:
        body["stream_options"] = options

    request = ADAPTER.build_request(call(body, stream=stream), {"api_key": API_KEY})

    assert request.client_wants_usage is wants
    assert "stream_options" not in json.loads(request.body)  # Anthropic always streams its usage


# --- max_tokens and thinking ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "max_tokens"),
    [
        ({}, DEFAULT_MAX_TOKENS),
        ({"max_tokens": 100}, 100),
        ({"max_completion_tokens": 200}, 200),
        ({"max_completion_tokens": 200, "max_tokens": 100}, 200),  # the newer field wins
        ({"max_tokens": 0}, DEFAULT_MAX_TOKENS),
        ({"max_tokens": "many"}, DEFAULT_MAX_TOKENS),
        ({"max_tokens": True}, DEFAULT_MAX_TOKENS),
    ],
)
def test_max_tokens_is_always_sent(limits: dict[str, Any], max_tokens: int) -> None:
    assert translated({"messages": HI, **limits})["max_tokens"] == max_tokens


@pytest.mark.parametrize("effort", ["none", "minimal"])
def test_no_or_minimal_reasoning_leaves_thinking_off(effort: str) -> None:
    payload = translated({"messages": HI, "reasoning_effort": effort, "temperature": 0.5})

    assert "thinking" not in payload
    assert payload["temperature"] == 0.5 and payload["max_tokens"] == DEFAULT_MAX_TOKENS


@pytest.mark.parametrize("effort", sorted(THINKING_BUDGETS))
def test_reasoning_effort_is_a_thinking_budget_on_top_of_the_default_answer(effort: str) -> None:
    payload = translated(
        {"messages": HI, "reasoning_effort": effort, "temperature": 0.5, "top_p": 0.5, "top_k": 5}
    )

    budget = THINKING_BUDGETS[effort]
    assert payload["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert payload["max_tokens"] == DEFAULT_MAX_TOKENS + budget
    # Anthropic refuses these with thinking on.
    assert not {"temperature", "top_p", "top_k"} & set(payload)
    assert_valid_anthropic_request(payload)


def test_under_a_client_limit_thinking_takes_at_most_half_of_it() -> None:
    payload = translated({"messages": HI, "reasoning_effort": "high", "max_completion_tokens": 10000})

    assert payload["thinking"] == {"type": "enabled", "budget_tokens": 5000}
    assert payload["max_tokens"] == 10000


def test_a_client_limit_too_small_for_the_minimum_budget_leaves_thinking_off() -> None:
    payload = translated(
        {"messages": HI, "reasoning_effort": "low", "max_tokens": 2 * MIN_THINKING_BUDGET - 2}
    )

    assert "thinking" not in payload and payload["max_tokens"] == 2 * MIN_THINKING_BUDGET - 2


@pytest.mark.parametrize(
    ("thinking", "max_tokens", "sampling"),
    [
        ({"type": "adaptive", "display": "summarized"}, DEFAULT_MAX_TOKENS, False),
        ({"type": "enabled", "budget_tokens": 2048}, DEFAULT_MAX_TOKENS + 2048, False),
        ({"type": "enabled", "budget_tokens": "lots"}, DEFAULT_MAX_TOKENS, False),  # Anthropic's 400 names it
        ({"type": "disabled"}, DEFAULT_MAX_TOKENS, True),
    ],
)
def test_anthropics_own_thinking_parameter_is_kept(
    thinking: dict[str, Any], max_tokens: int, sampling: bool
) -> None:
    payload = translated(
        {"messages": HI, "thinking": thinking, "reasoning_effort": "low", "temperature": 0.5}
    )

    assert payload["thinking"] == thinking and payload["max_tokens"] == max_tokens
    assert ("temperature" in payload) is sampling


# --- messages ------------------------------------------------------------------------------------


def test_system_and_developer_messages_become_the_system_blocks_in_order() -> None:
    payload = translated(
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "hi"},
                {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
                {"role": "user", "content": "again"},
            ]
        }
    )

    assert payload["system"] == [
        {"type": "text", "text": "Be brief."},
        {"type": "text", "text": "Use French."},
    ]
    # The two user turns are now consecutive: merged, as Anthropic wants alternating turns.
    assert payload["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": "again"}]}
    ]


def test_no_system_message_means_no_system_field() -> None:
    assert "system" not in translated({"messages": HI})


def test_consecutive_assistant_turns_are_merged_and_an_empty_one_is_dropped() -> None:
    payload = translated(
        {
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "Hello."},
                {"role": "assistant", "content": None},
                {"role": "assistant", "content": [{"type": "text", "text": "Anything else?"}]},
                {"role": "user", "content": "no"},
            ]
        }
    )

    assert payload["messages"] == [
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "Hello."}, {"type": "text", "text": "Anything else?"}],
        },
        {"role": "user", "content": "no"},
    ]


def test_tool_answers_are_grouped_in_one_user_turn_with_the_tool_results_first() -> None:
    payload = translated(
        {
            "messages": [
                {"role": "user", "content": "weather in Paris and Tokyo?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "w", "arguments": '{"c":"P"}'},
                        },
                        {"id": "call_2", "type": "function", "function": {"name": "w", "arguments": ""}},
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "14C"},
                {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "9C"}]},
                {"role": "user", "content": "and in Rome?"},
            ],
            "tools": [WEATHER],
        }
    )

    assert payload["messages"][1:] == [
        {
            "role": "assistant",  # no text block for a null content
            "content": [
                {"type": "tool_use", "id": "call_1", "name": "w", "input": {"c": "P"}},
                {"type": "tool_use", "id": "call_2", "name": "w", "input": {}},  # no arguments
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "14C"},
                {"type": "tool_result", "tool_use_id": "call_2", "content": [{"type": "text", "text": "9C"}]},
                {"type": "text", "text": "and in Rome?"},
            ],
        },
    ]
    assert_valid_anthropic_request(payload)


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]", '"text"'])
def test_arguments_that_are_not_a_json_object_are_sent_as_they_are_for_anthropic_to_refuse(
    arguments: str,
) -> None:
    tool_call = {"id": "call_1", "type": "function", "function": {"name": "w", "arguments": arguments}}
    messages = [*HI, {"role": "assistant", "content": None, "tool_calls": [tool_call]}]

    [block] = translated({"messages": messages})["messages"][1]["content"]

    assert block["input"] == arguments


@pytest.mark.parametrize(
    ("image_url", "source"),
    [
        ({"url": "https://example.com/cat.png"}, {"type": "url", "url": "https://example.com/cat.png"}),
        ("http://example.com/cat.png", {"type": "url", "url": "http://example.com/cat.png"}),
        (
            {"url": "data:image/jpeg;base64,/9j/4AAQ", "detail": "low"},
            {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"},
        ),
        (
            {"url": "data:image/webp;base64,UklGR"},
            {"type": "base64", "media_type": "image/webp", "data": "UklGR"},
        ),
    ],
    ids=["https", "bare-string", "jpeg-data-url", "webp-data-url"],
)
def test_image_parts_become_image_blocks(image_url: Any, source: dict[str, Any]) -> None:
    messages = [{"role": "user", "content": [{"type": "image_url", "image_url": image_url}]}]

    [block] = translated({"messages": messages})["messages"][0]["content"]

    assert block == {"type": "image", "source": source}


def test_a_pdf_file_part_becomes_a_document_block() -> None:
    part = {
        "type": "file",
        "file": {"file_data": "data:application/pdf;base64,JVBERi0x", "filename": "a.pdf"},
    }
    bare = {"type": "file", "file": {"file_data": "JVBERi0x"}}

    blocks = translated({"messages": [{"role": "user", "content": [part, bare]}]})["messages"][0]["content"]

    source = {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"}
    assert blocks == [
        {"type": "document", "source": source, "title": "a.pdf"},
        {"type": "document", "source": source},
    ]


@pytest.mark.parametrize(
    "part",
    [
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
        {"type": "file", "file": {"file_id": "file-abc"}},
    ],
    ids=["audio", "file-id"],
)
def test_a_part_anthropic_has_no_equivalent_for_is_sent_as_it_is_for_anthropic_to_name(
    part: dict[str, Any],
) -> None:
    [block] = translated({"messages": [{"role": "user", "content": [part]}]})["messages"][0]["content"]

    assert block == part


# --- tools, response format, sampling, the rest --------------------------------------------------


@pytest.mark.parametrize(
    ("tool_choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("none", None, {"type": "none"}),
        ("required", None, {"type": "any"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            None,
            {"type": "tool", "name": "get_weather"},
        ),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        ("none", False, {"type": "none"}),  # nothing to run in parallel
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        (None, None, None),
    ],
)
def test_tool_choice_and_parallel_tool_calls(tool_choice: Any, parallel: Any, expected: Any) -> None:
    body: dict[str, Any] = {"messages": HI, "tools": [WEATHER]}
    if tool_choice is not None:
        body["tool_choice"] = tool_choice
    if parallel is not None:
        body["parallel_tool_calls"] = parallel

    payload = translated(body)

    assert payload.get("tool_choice") == expected
    assert payload["tools"] == [
        {
            "name": "get_weather",
            "description": "Get the current weather for a city.",
            "input_schema": WEATHER_PARAMETERS,
        }
    ]
    assert_valid_anthropic_request(payload)


def test_a_tool_choice_without_tools_is_not_sent() -> None:
    payload = translated({"messages": HI, "tool_choice": "required", "parallel_tool_calls": False})

    assert "tool_choice" not in payload and "tools" not in payload


def test_a_function_without_parameters_takes_an_empty_object() -> None:
    tool = {"type": "function", "function": {"name": "now"}}

    assert translated({"messages": HI, "tools": [tool]})["tools"] == [
        {"name": "now", "input_schema": {"type": "object", "properties": {}}}
    ]


def test_json_schema_response_format_is_a_structured_output() -> None:
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}
    response_format = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema, "strict": True}}

    payload = translated({"messages": HI, "response_format": response_format})

    assert payload["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    assert_valid_anthropic_request(payload)


def test_json_object_response_format_is_asked_for_in_the_system_prompt() -> None:
    messages = [{"role": "system", "content": "Be brief."}, *HI]

    payload = translated({"messages": messages, "response_format": {"type": "json_object"}})

    assert payload["system"] == [
        {"type": "text", "text": "Be brief."},
        {"type": "text", "text": JSON_OBJECT_INSTRUCTION},
    ]
    assert "output_config" not in payload


@pytest.mark.parametrize(("temperature", "sent"), [(0, 0), (0.7, 0.7), (1.0, 1.0), (1.7, 1.0), (2, 1.0)])
def test_temperature_is_clamped_to_anthropics_range(temperature: float, sent: float) -> None:
    assert translated({"messages": HI, "temperature": temperature})["temperature"] == sent


@pytest.mark.parametrize(("stop", "sequences"), [("END", ["END"]), (["a", "b"], ["a", "b"])])
def test_stop_becomes_stop_sequences(stop: Any, sequences: list[str]) -> None:
    payload = translated({"messages": HI, "stop": stop})

    assert payload["stop_sequences"] == sequences and "stop" not in payload


def test_safety_identifier_or_user_is_the_metadata_user_id() -> None:
    assert translated({"messages": HI, "user": "u1"})["metadata"] == {"user_id": "u1"}
    assert translated({"messages": HI, "user": "u1", "safety_identifier": "s1"})["metadata"] == {
        "user_id": "s1"
    }


@pytest.mark.parametrize(("tier", "sent"), [("auto", "auto"), ("default", "standard_only"), ("flex", None)])
def test_service_tier(tier: str, sent: str | None) -> None:
    assert translated({"messages": HI, "service_tier": tier}).get("service_tier") == sent


def test_n_above_one_is_sent_for_anthropic_to_refuse_rather_than_silently_answering_once() -> None:
    assert translated({"messages": HI, "n": 3})["n"] == 3
    assert "n" not in translated({"messages": HI, "n": 1})


def test_a_model_that_takes_no_sampling_parameters_gets_none() -> None:
    payload = translated({"messages": HI, "temperature": 0.3, "top_p": 0.5}, model="claude-haiku-5-5")

    assert not {"temperature", "top_p", "top_k"} & set(payload)


@pytest.mark.parametrize(
    ("tool_choice", "instruction"),
    [
        ("required", "You must call one of the tools in your answer."),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            "You must call the tool `get_weather` in your answer.",
        ),
    ],
)
def test_a_model_that_refuses_forced_tool_use_is_asked_in_words(tool_choice: Any, instruction: str) -> None:
    payload = translated(
        {"messages": HI, "tools": [WEATHER], "tool_choice": tool_choice}, model="claude-opus-5-5"
    )

    assert payload["tool_choice"] == {"type": "auto"}
    assert payload["system"] == [{"type": "text", "text": instruction}]


@pytest.mark.parametrize(
    "body",
    [
        {"messages": ["not a message", 3]},
        {"messages": [{"role": "user", "content": 42}]},
        {"messages": [{"role": "user", "content": [1, "two", None]}]},
        {"messages": [{"role": "narrator", "content": "x"}]},
        {"messages": [{"role": "assistant", "tool_calls": ["x", {"id": 1}]}]},
        {"messages": [{"role": "tool"}]},
        {"messages": HI, "tools": "all", "tool_choice": 7, "response_format": "json", "stop": 3},
        {"messages": HI, "tools": [3, {"type": "function", "function": "x"}], "tool_choice": {"function": 1}},
        {
            "messages": HI,
            "reasoning_effort": ["high"],
            "service_tier": {"a": 1},
            "user": 5,
            "temperature": "hot",
        },
        {"messages": HI, "response_format": {"type": "json_schema", "json_schema": "x"}},
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": 3}}]}]},
    ],
)
def test_odd_bodies_are_translated_without_raising(body: dict[str, Any]) -> None:
    # The ingress checks only that `messages` is a list of objects: whatever else comes is sent as
    # it is, for Anthropic's 400 to name it, rather than failing the worker.
    payload = translated(body)

    assert payload["model"] == MODEL and isinstance(payload["messages"], list)
