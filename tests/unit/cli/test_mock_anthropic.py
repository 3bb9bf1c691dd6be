"""The mock upstream speaks Anthropic Messages well enough for the official `anthropic` SDK, and
its faults (including the in-band stream error) behave as documented."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import pytest

from keyrail_cli.mock_upstream import DEFAULT_REPLY, FaultPlan, build_app
from tests.unit.cli.test_mock_upstream import raw_post, running

KEY = "sk-ant-mock-0123456789"
MODEL = "claude-sonnet-4-6"
HELLO: list[Any] = [{"role": "user", "content": "Say hello to the mock"}]  # 5 words
WEATHER: list[Any] = [
    {
        "name": "get_weather",
        "description": "Weather of a city.",
        "input_schema": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer"},
            },
            "required": ["city", "unit"],
        },
    }
]
HEADERS = {"x-api-key": KEY, "anthropic-version": "2023-06-01", "content-type": "application/json"}


@pytest.fixture(scope="module")
async def base_url() -> AsyncIterator[str]:
    async with running(build_app(FaultPlan(), require_key=KEY)) as url:
        yield url


@pytest.fixture
async def client(base_url: str) -> AsyncIterator[anthropic.AsyncAnthropic]:
    sdk = anthropic.AsyncAnthropic(base_url=base_url, api_key=KEY, max_retries=0)
    yield sdk
    await sdk.close()


def events_of(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) of a named-event SSE body, checking each data repeats its event name."""
    found = []
    for block in raw.decode().split("\n\n"):
        if not block.strip():
            continue
        name_line, data_line = block.split("\n")
        name, data = name_line.removeprefix("event: "), json.loads(data_line.removeprefix("data: "))
        assert data["type"] == name
        found.append((name, data))
    return found


async def test_a_message_is_the_reply_with_its_usage(client: anthropic.AsyncAnthropic) -> None:
    message = await client.messages.create(model=MODEL, max_tokens=100, system="Be brief.", messages=HELLO)

    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == DEFAULT_REPLY  # type: ignore[union-attr]
    assert (message.model, message.stop_reason, message.role) == (MODEL, "end_turn", "assistant")
    assert message.id.startswith("msg_")
    assert (message.usage.input_tokens, message.usage.output_tokens) == (7, len(DEFAULT_REPLY.split()))
    assert message.usage.cache_read_input_tokens == 0


async def test_blocks_marked_for_caching_are_reported_as_cache_reads(
    client: anthropic.AsyncAnthropic,
) -> None:
    system: Any = [
        {"type": "text", "text": "A long cached preamble here", "cache_control": {"type": "ephemeral"}}
    ]

    message = await client.messages.create(model=MODEL, max_tokens=100, system=system, messages=HELLO)

    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens) == (5, 5)


async def test_a_stream_is_anthropics_event_sequence(client: anthropic.AsyncAnthropic) -> None:
    async with client.messages.stream(model=MODEL, max_tokens=100, messages=HELLO) as stream:
        texts = [event.delta.text async for event in stream if event.type == "content_block_delta"]  # type: ignore[union-attr]
        final = await stream.get_final_message()

    assert "".join(texts) == DEFAULT_REPLY and len(texts) == len(DEFAULT_REPLY.split())
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == len(texts)
    assert final.usage.input_tokens == 5


async def test_a_raw_stream_has_every_event_type_once_in_order(base_url: str) -> None:
    status, raw = await raw_post(
        f"{base_url}/v1/messages",
        {"model": MODEL, "max_tokens": 9, "messages": HELLO, "stream": True},
        **HEADERS,
    )

    assert status == 200
    names = [name for name, _ in events_of(raw)]
    assert names == [
        "message_start",
        "ping",
        "content_block_start",
        *["content_block_delta"] * len(DEFAULT_REPLY.split()),
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


async def test_tools_get_a_tool_use_with_a_value_for_each_required_property(
    client: anthropic.AsyncAnthropic,
) -> None:
    message = await client.messages.create(model=MODEL, max_tokens=100, messages=HELLO, tools=WEATHER)

    assert message.stop_reason == "tool_use"
    text, tool_use = message.content
    assert text.type == "text" and text.text == "Let me call get_weather."
    assert tool_use.type == "tool_use" and tool_use.name == "get_weather"
    assert tool_use.input == {"city": "mock", "unit": "celsius"}
    assert tool_use.id.startswith("toolu_")


async def test_a_streamed_tool_use_arrives_as_input_json_fragments(client: anthropic.AsyncAnthropic) -> None:
    async with client.messages.stream(model=MODEL, max_tokens=100, messages=HELLO, tools=WEATHER) as stream:
        fragments = [
            event.delta.partial_json
            async for event in stream
            if event.type == "content_block_delta" and event.delta.type == "input_json_delta"
        ]
        final = await stream.get_final_message()

    assert fragments[0] == "" and len(fragments) > 2
    assert json.loads("".join(fragments)) == {"city": "mock", "unit": "celsius"}
    assert final.stop_reason == "tool_use" and final.content[1].input == {"city": "mock", "unit": "celsius"}  # type: ignore[union-attr]


async def test_a_named_tool_choice_calls_that_tool(client: anthropic.AsyncAnthropic) -> None:
    tools: Any = [*WEATHER, {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}]

    message = await client.messages.create(
        model=MODEL,
        max_tokens=9,
        messages=HELLO,
        tools=tools,
        tool_choice={"type": "tool", "name": "get_time"},
    )

    assert message.content[1].name == "get_time" and message.content[1].input == {}  # type: ignore[union-attr]


@pytest.mark.parametrize("case", ["tool_result_last", "tool_choice_none"])
async def test_text_when_the_last_turn_answers_a_tool_or_tools_are_off(
    client: anthropic.AsyncAnthropic, case: str
) -> None:
    messages: Any = HELLO
    extra: dict[str, Any] = {}
    if case == "tool_result_last":
        messages = [
            *HELLO,
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "14C"}],
            },
        ]
    else:
        extra["tool_choice"] = {"type": "none"}

    message = await client.messages.create(
        model=MODEL, max_tokens=9, messages=messages, tools=WEATHER, **extra
    )

    assert message.stop_reason == "end_turn" and message.content[0].text == DEFAULT_REPLY


async def test_the_key_is_required_and_never_echoed(base_url: str) -> None:
    body = {"model": MODEL, "max_tokens": 9, "messages": HELLO}
    missing = {k: v for k, v in HEADERS.items() if k != "x-api-key"}

    for headers, message in [
        (missing, "x-api-key header is required"),
        ({**HEADERS, "x-api-key": "sk-ant-wrong-key-42"}, "invalid x-api-key"),
    ]:
        status, raw = await raw_post(f"{base_url}/v1/messages", body, **headers)
        assert status == 401
        error = json.loads(raw)
        assert error["type"] == "error" and error["error"] == {
            "type": "authentication_error",
            "message": message,
        }
        assert b"sk-ant-wrong-key-42" not in raw


@pytest.mark.parametrize(
    ("drop", "message"),
    [("anthropic-version", "anthropic-version: header is required"), ("max_tokens", "max_tokens")],
)
async def test_what_anthropic_requires_is_required(base_url: str, drop: str, message: str) -> None:
    body = {k: v for k, v in {"model": MODEL, "max_tokens": 9, "messages": HELLO}.items() if k != drop}
    headers = {k: v for k, v in HEADERS.items() if k != drop}

    status, raw = await raw_post(f"{base_url}/v1/messages", body, **headers)

    assert status == 400
    error = json.loads(raw)["error"]
    assert error["type"] == "invalid_request_error" and message in error["message"]


@pytest.mark.parametrize(
    ("status", "error_type", "sdk_error"),
    [
        (400, "invalid_request_error", anthropic.BadRequestError),
        (401, "authentication_error", anthropic.AuthenticationError),
        (402, "billing_error", anthropic.APIStatusError),
        (403, "permission_error", anthropic.PermissionDeniedError),
        (404, "not_found_error", anthropic.NotFoundError),
        (413, "request_too_large", anthropic.APIStatusError),
        (429, "rate_limit_error", anthropic.RateLimitError),
        (500, "api_error", anthropic.InternalServerError),
        (529, "overloaded_error", anthropic.APIStatusError),
    ],
)
async def test_a_status_fault_is_anthropics_error_of_that_status(
    client: anthropic.AsyncAnthropic, status: int, error_type: str, sdk_error: type[Exception]
) -> None:
    with pytest.raises(sdk_error) as caught:
        await client.messages.create(
            model=MODEL,
            max_tokens=9,
            messages=HELLO,
            extra_headers={"x-mock-fault": f"status={status};retry_after=3"},
        )

    error = caught.value
    assert isinstance(error, anthropic.APIStatusError) and error.status_code == status
    assert error.body["error"]["type"] == error_type  # type: ignore[index]
    assert error.response.headers["retry-after"] == "3" and error.response.headers["request-id"].startswith(
        "req_"
    )


async def test_an_inband_error_before_content_is_an_overload_inside_a_200(base_url: str) -> None:
    body = {
        "model": MODEL,
        "max_tokens": 9,
        "messages": HELLO,
        "stream": True,
        "mock": {"inband_error": "before"},
    }

    status, raw = await raw_post(f"{base_url}/v1/messages", body, **HEADERS)

    assert status == 200
    events = events_of(raw)
    assert [name for name, _ in events] == ["message_start", "ping", "error"]
    assert events[2][1] == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


async def test_an_inband_error_after_content_follows_the_first_text_delta(
    client: anthropic.AsyncAnthropic,
) -> None:
    texts = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        async with client.messages.stream(
            model=MODEL, max_tokens=9, messages=HELLO, extra_headers={"x-mock-fault": "inband_error=after"}
        ) as stream:
            async for event in stream:
                if event.type == "content_block_delta":
                    texts.append(event.delta.text)  # type: ignore[union-attr]

    assert texts == [DEFAULT_REPLY.split()[0]]
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }


async def test_drop_midstream_ends_the_body_after_the_first_delta_without_message_stop(base_url: str) -> None:
    body = {"model": MODEL, "max_tokens": 9, "messages": HELLO, "stream": True, "mock": {"drop": "midstream"}}
    received = b""

    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base_url}/v1/messages", json=body, headers=HEADERS) as response:
            assert response.status == 200
            with pytest.raises(aiohttp.ClientPayloadError):  # the chunked body never ends properly
                async for piece in response.content.iter_any():
                    received += piece

    names = [name for name, _ in events_of(received)]
    assert names == ["message_start", "ping", "content_block_start", "content_block_delta"]


async def test_a_bad_fault_is_a_bad_request(base_url: str) -> None:
    body = {"model": MODEL, "max_tokens": 9, "messages": HELLO, "mock": {"inband_error": "sometimes"}}

    status, raw = await raw_post(f"{base_url}/v1/messages", body, **HEADERS)

    assert status == 400 and "inband_error" in json.loads(raw)["error"]["message"]
