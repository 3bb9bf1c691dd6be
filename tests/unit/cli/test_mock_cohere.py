"""The mock upstream speaks Cohere v2 chat at `/v2/chat` as the fixtures do: bodies, kebab-case
stream events, usage with `tokens` and `billed_units`, Bearer auth and Cohere's error bodies."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from keyrail_cli.mock_formats.cohere import TEMPLATE_TOKENS
from keyrail_cli.mock_upstream import DEFAULT_REPLY, FaultPlan, build_app
from tests.support.contracts import FIXTURES
from tests.unit.cli.test_mock_upstream import running

KEY = "co-mock-key-0123"
AUTH = {"Authorization": f"Bearer {KEY}"}
MESSAGES = [{"role": "user", "content": "say hi to me"}]  # 4 words
TOOLS = json.loads((FIXTURES / "cohere" / "tool_call_request.json").read_bytes())["tools"]


@pytest.fixture(scope="module")
async def base_url() -> AsyncIterator[str]:
    async with running(build_app(FaultPlan(), require_key=KEY)) as url:
        yield url


async def post(
    url: str, body: dict[str, Any], headers: dict[str, str] | None = None
) -> tuple[int, bytes, dict[str, str]]:
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{url}/v2/chat", json=body, headers=AUTH if headers is None else headers
        ) as response:
            return response.status, await response.read(), dict(response.headers)


def events(raw: bytes) -> list[tuple[str, Any]]:
    """(event name, decoded data) per SSE event; `[DONE]` as ("", "[DONE]")."""
    out = []
    for block in raw.decode().strip().split("\n\n"):
        name, data = "", ""
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
        out.append((name, data if data == "[DONE]" else json.loads(data)))
    return out


async def test_a_chat_answer_has_the_fixtures_shape(base_url: str) -> None:
    status, raw, _ = await post(base_url, {"model": "command-a-03-2025", "messages": MESSAGES})

    assert status == 200
    body = json.loads(raw)
    assert body["finish_reason"] == "COMPLETE"
    assert body["message"] == {"role": "assistant", "content": [{"type": "text", "text": DEFAULT_REPLY}]}
    words = len(DEFAULT_REPLY.split())
    assert body["usage"] == {
        "billed_units": {"input_tokens": 4, "output_tokens": words},
        "tokens": {"input_tokens": 4 + TEMPLATE_TOKENS, "output_tokens": words},
        "cached_tokens": 0,
    }


async def test_a_stream_is_cohere_events_ending_with_message_end_and_done(base_url: str) -> None:
    status, raw, headers = await post(base_url, {"model": "m", "messages": MESSAGES, "stream": True})

    assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
    seen = events(raw)
    assert seen[-1] == ("", "[DONE]")
    assert all(name == data["type"] for name, data in seen[:-1])  # event name = data.type
    assert [name for name, _ in seen[:2]] == ["message-start", "content-start"]
    text = "".join(d["delta"]["message"]["content"]["text"] for n, d in seen if n == "content-delta")
    assert text == DEFAULT_REPLY
    end = seen[-2][1]
    assert end["type"] == "message-end" and end["delta"]["finish_reason"] == "COMPLETE"
    assert end["delta"]["usage"]["tokens"]["input_tokens"] == 4 + TEMPLATE_TOKENS


async def test_tools_get_a_call_of_the_first_tool_until_a_tool_result_comes_back(base_url: str) -> None:
    status, raw, _ = await post(base_url, {"model": "m", "messages": MESSAGES, "tools": TOOLS})

    assert status == 200
    body = json.loads(raw)
    assert body["finish_reason"] == "TOOL_CALL"
    [call] = body["message"]["tool_calls"]
    assert call["function"] == {"name": "get_weather", "arguments": '{"location":"mock"}'}
    assert call["id"].startswith("get_weather_")

    follow_up = [
        *MESSAGES,
        {"role": "assistant", "tool_calls": [call]},
        {
            "role": "tool",
            "tool_call_id": call["id"],
            "content": [{"type": "document", "document": {"data": "20C"}}],
        },
    ]
    status, raw, _ = await post(base_url, {"model": "m", "messages": follow_up, "tools": TOOLS})
    assert status == 200 and json.loads(raw)["finish_reason"] == "COMPLETE"


async def test_a_streamed_tool_call_has_start_deltas_and_end(base_url: str) -> None:
    status, raw, _ = await post(
        base_url, {"model": "m", "messages": MESSAGES, "tools": TOOLS, "stream": True}
    )

    assert status == 200
    seen = events(raw)
    names = [name for name, _ in seen]
    assert names[:3] == ["message-start", "tool-plan-delta", "tool-call-start"]
    assert names[-4:] == ["tool-call-delta", "tool-call-end", "message-end", ""]
    arguments = "".join(
        d["delta"]["message"]["tool_calls"]["function"]["arguments"]
        for n, d in seen
        if n in ("tool-call-start", "tool-call-delta")
    )
    assert json.loads(arguments) == {"location": "mock"}
    assert seen[-2][1]["delta"]["finish_reason"] == "TOOL_CALL"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer presented-bad-key-9"}])
async def test_a_missing_or_wrong_key_is_cohere_401(base_url: str, headers: dict[str, str]) -> None:
    status, raw, _ = await post(base_url, {"model": "m", "messages": MESSAGES}, headers)

    assert status == 401
    body = json.loads(raw)
    assert body["message"] == "invalid api token" and set(body) == {"id", "message"}


async def test_faults_answer_in_cohere_shape(base_url: str) -> None:
    status, raw, headers = await post(
        base_url, {"model": "m", "messages": MESSAGES, "mock": {"status": 429, "retry_after": 2}}
    )

    assert status == 429 and headers["Retry-After"] == "2"
    assert "injected" in json.loads(raw)["message"]


async def test_a_bad_body_is_cohere_400(base_url: str) -> None:
    status, raw, _ = await post(base_url, {"messages": MESSAGES})  # no model

    assert status == 400 and json.loads(raw)["message"].startswith("invalid request")
