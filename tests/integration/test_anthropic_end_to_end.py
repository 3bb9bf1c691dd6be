"""An Anthropic-format upstream through the whole stack, called with the official `openai` SDK.

ingress → router → the `anthropic` worker pool (started by `keyrail up` like every available
pool) → `keyrail mock-upstream` speaking Anthropic Messages → audit. Checked: plain and streamed
answers, tool calls (plain, streamed, and the tool-result round trip), finish reasons, usage and
cache accounting, activity rows, and the commit point of a stream: an `overloaded_error` inside
a 200 before any content falls back to the next target, after content it ends the client's stream.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from keyrail_cli.mock_upstream import DEFAULT_REPLY
from tests.integration.anthropic_support import (
    ANTHROPIC_KEY,
    MODEL,
    PRICES,
    Project,
    add_anthropic_integration,
    new_project,
)
from tests.support.openai_schema import validate_component
from tests.support.stack import KeyrailStack, MockUpstream

pytestmark = pytest.mark.integration

SLUG = "anthropic-test-mock"
PROMPT = "count these five words please"
SYSTEM = "Be brief."  # 2 words: the mock counts words as tokens
REPLY_TOKENS = len(DEFAULT_REPLY.split())
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather for a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]
WEATHER_QUESTION: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.fixture(scope="module")
def anthropic_upstream(workdir: Path) -> Iterator[str]:
    """`keyrail mock-upstream` requiring the Anthropic key; its base URL (Anthropic's has no `/v1`)."""
    mock = MockUpstream(ANTHROPIC_KEY, workdir / "mock-anthropic.log")
    mock.start()
    yield f"http://127.0.0.1:{mock.port}"
    mock.stop()


@pytest.fixture(scope="module")
def claude(stack: KeyrailStack, anthropic_upstream: str) -> Project:
    project = new_project(stack, "anthropic end to end")
    add_anthropic_integration(stack, project, SLUG, anthropic_upstream)
    return project


@pytest.fixture(scope="module")
def client(stack: KeyrailStack, claude: Project) -> openai.OpenAI:
    return claude.client(stack)


def cost(prompt: int, completion: int, cached: int = 0) -> Decimal:
    return (
        (prompt - cached) * PRICES["input"] + cached * PRICES["cached_input"] + completion * PRICES["output"]
    ) / 1_000_000


def check_rows(
    rows: list[dict[str, Any]], project: Project, stream: bool, prompt: int, completion: int, cached: int = 0
) -> None:
    kinds = {row["kind"]: row for row in rows}
    assert set(kinds) == {"request", "attempt"}
    for row in kinds.values():
        assert (row["provider"], row["provider_slug"], row["model"]) == ("anthropic", SLUG, MODEL)
        assert row["project_id"] == project.project_id
        assert (row["status"], row["http_status"], row["stream"]) == ("ok", 200, int(stream))
        assert (row["prompt_tokens"], row["completion_tokens"], row["cached_tokens"]) == (
            prompt,
            completion,
            cached,
        )
        assert Decimal(row["cost_usd"]) == cost(prompt, completion, cached)


def test_a_chat_completion_is_answered_by_the_anthropic_upstream(
    stack: KeyrailStack, claude: Project, client: openai.OpenAI
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=f"{SLUG}/{MODEL}",
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}],
    )

    completion = raw.parse()
    validate_component("CreateChatCompletionResponse", json.loads(raw.http_response.text))
    [choice] = completion.choices
    assert (choice.message.content, choice.finish_reason, choice.message.tool_calls) == (
        DEFAULT_REPLY,
        "stop",
        None,
    )
    assert completion.id.startswith("msg_mock_") and completion.model == MODEL
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (7, REPLY_TOKENS)
    assert (raw.headers["x-keyrail-provider-slug"], raw.headers["x-keyrail-model"]) == (SLUG, MODEL)
    check_rows(stack.activity_rows(raw.headers["x-keyrail-request-id"]), claude, False, 7, REPLY_TOKENS)


def test_a_stream_has_the_right_deltas_finish_reason_and_usage(
    stack: KeyrailStack, claude: Project, client: openai.OpenAI
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=f"{SLUG}/{MODEL}",
        messages=[{"role": "user", "content": PROMPT}],
        stream=True,
        stream_options={"include_usage": True},
    )

    chunks = list(raw.parse())
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert deltas[0].role == "assistant"
    assert [d.content for d in deltas[1:-1]] == [
        w if i == 0 else f" {w}" for i, w in enumerate(DEFAULT_REPLY.split())
    ]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    usage = [c.usage for c in chunks if c.usage is not None]
    assert len(usage) == 1 and (usage[0].prompt_tokens, usage[0].completion_tokens) == (5, REPLY_TOKENS)
    assert chunks[-1].choices == []  # the usage chunk is last
    check_rows(stack.activity_rows(raw.headers["x-keyrail-request-id"]), claude, True, 5, REPLY_TOKENS)


@pytest.mark.parametrize("include_usage", [True, False])
def test_every_chunk_validates_and_usage_is_forwarded_only_when_asked(
    stack: KeyrailStack, claude: Project, include_usage: bool
) -> None:
    body = {
        "model": f"{SLUG}/{MODEL}",
        "messages": [{"role": "user", "content": PROMPT}],
        "stream": True,
        "stream_options": {"include_usage": include_usage},
    }
    headers = {"Authorization": f"Bearer {claude.api_key}"}

    with httpx.stream(
        "POST", f"{stack.url}/v1/chat/completions", json=body, headers=headers, timeout=30
    ) as response:
        assert response.status_code == 200
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]

    assert events[-1] == "[DONE]"
    payloads = [json.loads(event) for event in events[:-1]]
    for payload in payloads:
        validate_component("CreateChatCompletionStreamResponse", payload)
    assert len([p for p in payloads if p.get("usage")]) == (1 if include_usage else 0)
    # Usage is recorded either way: the translator always reads Anthropic's.
    check_rows(stack.activity_rows(response.headers["x-keyrail-request-id"]), claude, True, 5, REPLY_TOKENS)


def test_a_tool_call_and_its_result_round_trip(
    stack: KeyrailStack, claude: Project, client: openai.OpenAI
) -> None:
    first = client.chat.completions.create(model=f"{SLUG}/{MODEL}", messages=WEATHER_QUESTION, tools=TOOLS)

    [choice] = first.choices
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me call get_weather."
    [call] = choice.message.tool_calls or []
    assert call.type == "function" and call.id.startswith("toolu_mock_")
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "mock"}  # the mock fills the required ones

    # The SDK's own assistant message and a tool answer: Anthropic gets tool_use and tool_result blocks.
    followup = client.chat.completions.with_raw_response.create(
        model=f"{SLUG}/{MODEL}",
        messages=[
            *WEATHER_QUESTION,
            choice.message.model_dump(exclude_none=True),  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": call.id, "content": "14C and light rain"},
        ],
        tools=TOOLS,
    )

    answer = followup.parse().choices[0]
    assert (answer.message.content, answer.finish_reason) == (DEFAULT_REPLY, "stop")
    # 6 words of the question and 4 of the assistant's text; the tool's answer is not a text block.
    rows = stack.activity_rows(followup.headers["x-keyrail-request-id"])
    check_rows(rows, claude, False, 10, REPLY_TOKENS)


def test_a_streamed_tool_call_is_read_by_the_sdk_into_the_call(client: openai.OpenAI) -> None:
    fragments: list[str] = []
    with client.chat.completions.stream(
        model=f"{SLUG}/{MODEL}", messages=WEATHER_QUESTION, tools=TOOLS
    ) as stream:
        for event in stream:
            if event.type == "tool_calls.function.arguments.delta":
                fragments.append(event.arguments_delta)
        final = stream.get_final_completion()

    assert len(fragments) > 1  # arguments arrive incrementally
    [choice] = final.choices
    assert choice.finish_reason == "tool_calls" and choice.message.content == "Let me call get_weather."
    [call] = choice.message.tool_calls or []
    assert call.function.name == "get_weather" and call.id.startswith("toolu_mock_")
    assert "".join(fragments) == call.function.arguments and json.loads(call.function.arguments) == {
        "city": "mock"
    }


def test_cached_prompt_parts_are_counted_and_priced_as_cache_reads(
    stack: KeyrailStack, claude: Project, client: openai.OpenAI
) -> None:
    # `cache_control` on a part is Anthropic's caching hint; the mock reports those words as cache reads.
    cached_system: Any = {
        "role": "system",
        "content": [
            {"type": "text", "text": "a long stable preamble", "cache_control": {"type": "ephemeral"}}
        ],
    }

    raw = client.chat.completions.with_raw_response.create(
        model=f"{SLUG}/{MODEL}", messages=[cached_system, {"role": "user", "content": PROMPT}]
    )

    usage = raw.parse().usage
    assert usage is not None and usage.prompt_tokens_details is not None
    assert (usage.prompt_tokens, usage.prompt_tokens_details.cached_tokens) == (9, 4)
    check_rows(
        stack.activity_rows(raw.headers["x-keyrail-request-id"]), claude, False, 9, REPLY_TOKENS, cached=4
    )


# --- the commit point: in-band errors ------------------------------------------------------------


@pytest.fixture(scope="module")
def failover(stack: KeyrailStack, anthropic_upstream: str) -> Project:
    """Two integrations serving the model (tried in slug order: -a first), and one that fails late.

    The fault rides on each integration's own custom header, so the same request meets a
    different upstream behaviour at each target.
    """
    project = new_project(stack, "anthropic failover")
    fault = {"custom_auth_headers": {"x-mock-fault": "inband_error=before"}}
    add_anthropic_integration(stack, project, "anthropic-fb-a", anthropic_upstream, **fault)
    add_anthropic_integration(stack, project, "anthropic-fb-b", anthropic_upstream)
    # Also a candidate of `anthropic/<model>`, but last in slug order: -b answers before it is tried.
    late = {"custom_auth_headers": {"x-mock-fault": "inband_error=after"}}
    add_anthropic_integration(stack, project, "anthropic-fb-late", anthropic_upstream, **late)
    return project


def test_an_overload_inside_a_200_before_content_falls_back_to_the_next_target(
    stack: KeyrailStack, failover: Project
) -> None:
    raw = failover.client(stack).chat.completions.with_raw_response.create(
        model=f"anthropic/{MODEL}",
        messages=[{"role": "user", "content": PROMPT}],
        stream=True,
        stream_options={"include_usage": True},
    )

    chunks = list(raw.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == DEFAULT_REPLY
    assert (raw.headers["x-keyrail-provider-slug"], raw.headers["x-keyrail-attempts"]) == (
        "anthropic-fb-b",
        "2",
    )
    rows = stack.activity_rows(raw.headers["x-keyrail-request-id"], expected=3)
    attempts = sorted((r for r in rows if r["kind"] == "attempt"), key=lambda r: r["attempt"])
    assert [
        (r["provider_slug"], r["status"], r["error_class"], r["fallback_position"]) for r in attempts
    ] == [
        ("anthropic-fb-a", "error", "overloaded", 0),
        ("anthropic-fb-b", "ok", "", 1),
    ]
    assert "Overloaded" in attempts[0]["error_message"] and "anthropic-fb-a" in attempts[0]["error_message"]
    (request_row,) = [r for r in rows if r["kind"] == "request"]
    assert (request_row["provider_slug"], request_row["status"], request_row["attempt"]) == (
        "anthropic-fb-b",
        "ok",
        2,
    )
    assert request_row["completion_tokens"] == REPLY_TOKENS


def test_an_overload_after_content_ends_the_clients_stream_with_an_error(
    stack: KeyrailStack, failover: Project
) -> None:
    received: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in failover.client(stack).chat.completions.create(
            model=f"anthropic-fb-late/{MODEL}", messages=[{"role": "user", "content": PROMPT}], stream=True
        ):
            received.extend(c.delta.content or "" for c in chunk.choices)

    assert "".join(received) == DEFAULT_REPLY.split()[0]  # the content before the error reached the client
    assert "Overloaded" in caught.value.message and "anthropic-fb-late" in caught.value.message


def test_the_raw_stream_of_a_late_overload_ends_with_an_error_event_and_the_rows_say_so(
    stack: KeyrailStack, failover: Project
) -> None:
    body = {
        "model": f"anthropic-fb-late/{MODEL}",
        "messages": [{"role": "user", "content": PROMPT}],
        "stream": True,
    }
    headers = {"Authorization": f"Bearer {failover.api_key}"}

    with httpx.stream(
        "POST", f"{stack.url}/v1/chat/completions", json=body, headers=headers, timeout=30
    ) as response:
        assert response.status_code == 200  # the stream had begun: the status was already sent
        events = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]

    assert "[DONE]" not in events
    *chunks, last = events
    assert [c["choices"][0]["delta"] for c in chunks] == [
        {"role": "assistant", "content": ""},
        {"content": DEFAULT_REPLY.split()[0]},
    ]
    assert last["error"]["code"] == "upstream_stream_error" and "Overloaded" in last["error"]["message"]
    rows = stack.activity_rows(response.headers["x-keyrail-request-id"])
    (attempt,) = [r for r in rows if r["kind"] == "attempt"]
    assert (attempt["provider_slug"], attempt["status"], attempt["error_class"]) == (
        "anthropic-fb-late",
        "error",
        "overloaded",
    )
    (request_row,) = [r for r in rows if r["kind"] == "request"]
    assert (request_row["status"], request_row["error_class"], request_row["http_status"]) == (
        "error",
        "overloaded",
        503,
    )
