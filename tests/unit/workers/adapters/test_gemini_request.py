"""The Gemini adapter's `build_request`: OpenAI chat requests → the Gemini request fixtures on disk.

Each golden test writes the OpenAI request a client would send for the situation a fixture
shows and expects exactly the fixture's body (fields OpenAI cannot express are named where
they are left out), the AI Studio URL and the key in `x-goog-api-key`, never in the URL.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from keyrail_common.failures import FailureClass
from keyrail_common.messages import Dialect
from keyrail_common.registry import Operation, load_registry
from keyrail_workers.adapters import ADAPTERS
from keyrail_workers.adapters.base import AdapterCall, UpstreamError, UpstreamRequest
from tests.support.contracts import FIXTURES

ADAPTER = ADAPTERS["gemini"]
GEMINI = FIXTURES / "gemini"
BASE_URL = load_registry().get("gemini").base_url  # type: ignore[union-attr]
API_KEY = "AIzaSyFIXTURE-gemini-request-test-0123456789"
PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((GEMINI / name).read_text())
    return loaded


def call(
    body: dict[str, Any], stream: bool = False, model: str = "gemini-2.5-flash", **extra: Any
) -> AdapterCall:
    return AdapterCall(
        operation=Operation.CHAT,
        dialect=Dialect.OPENAI,
        model=model,
        body=json.dumps({"model": f"gemini-prod/{model}", **body}).encode(),
        stream=stream,
        base_url=BASE_URL,
        **extra,
    )


def request_of(built: UpstreamRequest | UpstreamError) -> UpstreamRequest:
    assert isinstance(built, UpstreamRequest), f"refused: {built}"
    return built


def build(body: dict[str, Any], **kwargs: Any) -> UpstreamRequest:
    return request_of(ADAPTER.build_request(call(body, **kwargs), {"api_key": API_KEY}))


def sent(body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(build(body, **kwargs).body)
    return payload


def refusal(body: dict[str, Any]) -> UpstreamError:
    """What build_request returns instead of a request: no HTTP call is made."""
    refused = ADAPTER.build_request(call(body), {"api_key": API_KEY})
    assert isinstance(refused, UpstreamError), f"not refused: {refused}"
    assert refused.provider_code == "untranslatable_request"
    return refused


def test_the_registry_base_url_is_the_references() -> None:
    assert BASE_URL == "https://generativelanguage.googleapis.com/v1beta"


def test_chat_request_becomes_the_generate_content_fixture() -> None:
    openai_request = {
        "messages": [
            {"role": "system", "content": "You are a concise assistant."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this picture? One sentence."},
                    {
                        "type": "image_url",
                        "image_url": {"url": f"data:image/png;base64,{PIXEL}", "detail": "low"},
                    },
                ],
            },
        ],
        "temperature": 0.2,
        "top_p": 0.95,
        "max_completion_tokens": 512,
        "stop": ["\n\n"],
        "n": 1,
        "seed": 42,
        "stream": False,
    }
    expected = fixture("generate_content_request.json")
    # No OpenAI parameter says "thinking budget 128" or "safety settings": the fixture's extras.
    del expected["generationConfig"]["thinkingConfig"], expected["safetySettings"]

    request = build(openai_request)

    assert json.loads(request.body) == expected
    assert (request.method, request.url) == (
        "POST",
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent",
    )
    assert request.headers == {
        "x-goog-api-key": API_KEY,
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    assert API_KEY not in request.url and "key=" not in request.url


def test_a_stream_goes_to_stream_generate_content_with_alt_sse() -> None:
    request = build({"messages": [{"role": "user", "content": "hi"}], "stream": True}, stream=True)

    assert request.url == (
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    )
    assert request.headers["Accept"] == "text/event-stream"
    assert request.headers["x-goog-api-key"] == API_KEY and API_KEY not in request.url
    assert request.client_wants_usage is False
    assert "stream" not in json.loads(request.body)  # the URL says it; Gemini's body has no such field


@pytest.mark.parametrize("include_usage", [True, False, None])
def test_stream_usage_is_forwarded_only_when_asked(include_usage: bool | None) -> None:
    body = {
        "messages": [{"role": "user", "content": "hi"}],
        "stream_options": {"include_usage": include_usage},
    }

    assert build(body, stream=True).client_wants_usage is bool(include_usage)


def test_json_schema_response_format_becomes_the_json_mode_fixture() -> None:
    expected = fixture("generate_content_json_mode_request.json")
    schema = expected["generationConfig"]["responseJsonSchema"]
    openai_request = {
        "messages": [{"role": "user", "content": "List two primary colors as JSON."}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "colors", "schema": schema, "strict": True},
        },
    }

    assert sent(openai_request) == expected


@pytest.mark.parametrize(
    ("response_format", "config"),
    [
        ({"type": "json_object"}, {"responseMimeType": "application/json"}),
        ({"type": "text"}, None),
    ],
)
def test_other_response_formats(response_format: dict[str, Any], config: dict[str, Any] | None) -> None:
    payload = sent({"messages": [{"role": "user", "content": "hi"}], "response_format": response_format})

    assert payload.get("generationConfig") == config


def test_tools_and_tool_choice_become_the_function_call_fixture() -> None:
    openai_request = {
        "messages": [{"role": "user", "content": "What's the weather in Paris?"}],
        "tools": [WEATHER_TOOL],
        "tool_choice": "auto",
        "parallel_tool_calls": True,  # Gemini has no such switch: left out
    }

    assert sent(openai_request) == fixture("function_call_request.json")


@pytest.mark.parametrize(
    ("tool_choice", "config"),
    [
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"mode": "ANY", "allowedFunctionNames": ["get_weather"]},
        ),
    ],
)
def test_tool_choice_modes(tool_choice: Any, config: dict[str, Any]) -> None:
    body = {
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [WEATHER_TOOL],
        "tool_choice": tool_choice,
    }

    assert sent(body)["toolConfig"] == {"functionCallingConfig": config}


def test_the_tool_call_round_trip_replays_the_thought_signature() -> None:
    # The client sends back the assistant message Keyrail answered (tool call id and all) and
    # the tool's result: Gemini must get the fixture's follow-up, signature included.
    answer = json.loads(
        ADAPTER.parse_response(call({}), (GEMINI / "function_call_response.json").read_bytes()).body
    )
    assistant = answer["choices"][0]["message"]
    tool = {**WEATHER_TOOL, "function": {**WEATHER_TOOL["function"]}}
    tool["function"]["parameters"] = {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    }
    followup = {
        "messages": [
            {"role": "user", "content": "What's the weather in Paris?"},
            assistant,
            {
                "role": "tool",
                "tool_call_id": assistant["tool_calls"][0]["id"],
                "content": '{"temp_c": 14, "conditions": "light rain"}',
            },
        ],
        "tools": [tool],
    }

    assert sent(followup) == fixture("function_response_followup_request.json")


def test_parallel_tool_results_answer_in_one_user_turn_named_after_their_calls() -> None:
    # OpenAI's own follow-up fixture: foreign call ids, no signatures, two tool messages.
    openai_followup = json.loads((FIXTURES / "openai" / "tool_result_followup_request.json").read_text())

    payload = sent(openai_followup)

    assert [c["role"] for c in payload["contents"]] == ["user", "model", "user"]
    assert payload["contents"][1]["parts"] == [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris", "unit": "celsius"}}},
        {"functionCall": {"name": "get_weather", "args": {"city": "Tokyo", "unit": "celsius"}}},
    ]
    assert payload["contents"][2]["parts"] == [
        {"functionResponse": {"name": "get_weather", "response": {"temp_c": 14, "conditions": "light rain"}}},
        {"functionResponse": {"name": "get_weather", "response": {"temp_c": 9, "conditions": "clear"}}},
    ]


def test_a_tool_result_that_is_not_a_json_object_is_wrapped() -> None:
    body = {
        "messages": [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": ""}}],
            },
            {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "sunny"}]},
        ]
    }

    contents = sent(body)["contents"]

    assert contents[1]["parts"] == [{"functionCall": {"name": "f", "args": {}}}]
    assert contents[2]["parts"] == [{"functionResponse": {"name": "f", "response": {"result": "sunny"}}}]


def test_roles_map_to_user_and_model_and_consecutive_turns_merge() -> None:
    body = {
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": "one"},
            {"role": "user", "content": [{"type": "text", "text": "two"}, {"type": "text", "text": ""}]},
            {"role": "assistant", "content": [{"type": "text", "text": "three"}]},
            {
                "role": "system",
                "content": [{"type": "text", "text": "Also "}, {"type": "text", "text": "kind."}],
            },
            {"role": "user", "content": "four"},
        ]
    }

    payload = sent(body)

    assert payload["systemInstruction"] == {"parts": [{"text": "Be brief."}, {"text": "Also kind."}]}
    assert payload["contents"] == [
        {"role": "user", "parts": [{"text": "one"}, {"text": "two"}]},
        {"role": "model", "parts": [{"text": "three"}]},
        {"role": "user", "parts": [{"text": "four"}]},
    ]


def test_media_parts() -> None:
    content = [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg?size=large"}},
        {
            "type": "image_url",
            "image_url": {"url": "https://generativelanguage.googleapis.com/v1beta/files/abc"},
        },
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERg==", "filename": "a.pdf"}},
    ]

    parts = sent({"messages": [{"role": "user", "content": content}]})["contents"][0]["parts"]

    assert parts == [
        {"fileData": {"fileUri": "https://example.com/cat.jpg?size=large", "mimeType": "image/jpeg"}},
        {"fileData": {"fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc"}},
        {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERg=="}},
    ]


def test_sampling_parameters() -> None:
    body = {
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 100,  # the deprecated spelling still counts
        "stop": "END",
        "n": 2,
        "presence_penalty": 0.5,
        "frequency_penalty": -0.5,
        "user": "u-1",  # no Gemini counterpart
    }

    assert sent(body)["generationConfig"] == {
        "maxOutputTokens": 100,
        "stopSequences": ["END"],
        "candidateCount": 2,
        "presencePenalty": 0.5,
        "frequencyPenalty": -0.5,
    }
    assert build(body).candidates == 2  # type: ignore[attr-defined]


def test_max_completion_tokens_wins_over_max_tokens() -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 100, "max_completion_tokens": 50}

    assert sent(body)["generationConfig"] == {"maxOutputTokens": 50}


@pytest.mark.parametrize(
    ("model", "effort", "thinking"),
    [
        ("gemini-2.5-flash", "none", {"thinkingBudget": 0}),
        ("gemini-2.5-flash", "low", {"thinkingBudget": 1024}),
        ("gemini-2.5-pro", "medium", {"thinkingBudget": 8192}),
        ("gemini-2.5-pro", "high", {"thinkingBudget": 24576}),
        ("gemini-3.5-flash", "minimal", {"thinkingLevel": "MINIMAL"}),
        ("gemini-3.5-flash", "medium", {"thinkingLevel": "MEDIUM"}),
        ("gemini-3.1-pro-preview", "xhigh", {"thinkingLevel": "HIGH"}),
    ],
)
def test_reasoning_effort_is_a_budget_on_gemini_2_and_a_level_later(
    model: str, effort: str, thinking: dict[str, Any]
) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], "reasoning_effort": effort}

    assert sent(body, model=model)["generationConfig"] == {"thinkingConfig": thinking}


def test_custom_headers_are_sent_and_the_key_header_is_ours() -> None:
    request = request_of(
        ADAPTER.build_request(
            call(
                {"messages": [{"role": "user", "content": "hi"}]},
                custom_headers={"X-Org": "o-1", "x-goog-api-key": "x"},
            ),
            {"api_key": API_KEY},
        )
    )

    assert request.headers["X-Org"] == "o-1"
    assert request.headers["x-goog-api-key"] == API_KEY


def test_without_a_key_no_auth_header_is_sent() -> None:
    request = request_of(ADAPTER.build_request(call({"messages": [{"role": "user", "content": "hi"}]}), {}))

    assert "x-goog-api-key" not in request.headers


def test_a_model_id_with_the_models_prefix_is_not_doubled() -> None:
    request = request_of(
        ADAPTER.build_request(
            call(
                {"messages": [{"role": "user", "content": "hi"}], "model": "x"},
                model="models/gemini-2.5-flash",
            ),
            {},
        )
    )

    assert request.url.endswith("/v1beta/models/gemini-2.5-flash:generateContent")


# --- what cannot be translated is refused, naming the field ------------------------------------------


@pytest.mark.parametrize(
    ("body", "param", "failure_class"),
    [
        (
            {
                "messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "tool", "tool_call_id": "nope", "content": "x"},
                ]
            },
            "messages[1].tool_call_id",
            FailureClass.CALLER_ERROR,
        ),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1"}}
                        ],
                    }
                ]
            },
            "messages[0].tool_calls[0].function.arguments",
            FailureClass.CALLER_ERROR,
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-abc"}}]}]},
            "messages[0].content[0].file",
            FailureClass.UNSUPPORTED,
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "data:image/png,raw"}}],
                    }
                ]
            },
            "messages[0].content[0].image_url.url",
            FailureClass.CALLER_ERROR,
        ),
        (
            {
                "messages": [
                    {
                        "role": "system",
                        "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}],
                    }
                ]
            },
            "messages[0].content[0]",
            FailureClass.CALLER_ERROR,
        ),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role", FailureClass.CALLER_ERROR),
        ({"messages": [{"role": 7, "content": "hi"}]}, "messages[0].role", FailureClass.CALLER_ERROR),
        (
            {"messages": [{"role": "user", "content": [{"type": "video", "video": {}}]}]},
            "messages[0].content[0].type",
            FailureClass.CALLER_ERROR,
        ),
        (
            {"messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "custom", "custom": {}}]},
            "tools[0].type",
            FailureClass.UNSUPPORTED,
        ),
        (
            {"messages": [{"role": "user", "content": "hi"}], "tool_choice": "sometimes"},
            "tool_choice",
            FailureClass.CALLER_ERROR,
        ),
        (
            {"messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "yaml"}},
            "response_format",
            FailureClass.CALLER_ERROR,
        ),
        (
            {"messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "extreme"},
            "reasoning_effort",
            FailureClass.CALLER_ERROR,
        ),
        (
            {"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"},
            "temperature",
            FailureClass.CALLER_ERROR,
        ),
    ],
)
def test_untranslatable_requests_are_refused_naming_the_field(
    body: dict[str, Any], param: str, failure_class: FailureClass
) -> None:
    error = refusal(body)

    assert (error.param, error.failure_class) == (param, failure_class)
    assert param.split("[")[0] in error.message
