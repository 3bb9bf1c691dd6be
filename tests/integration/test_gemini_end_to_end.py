"""Gemini through the whole stack: the official `openai` SDK → ingress → router → the gemini worker
pool → a Gemini-format upstream (`keyrail mock-upstream`, its own process) → audit.

The integrations name provider `gemini` without a custom host: the session's registry override
points Gemini's base URL at the mock (conftest.py). The mock refuses an API key in the URL, so
every answer here also shows the key travelled in `x-goog-api-key` only.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest

from keyrail_cli.mock_formats.gemini import THOUGHT_TOKENS
from keyrail_cli.mock_upstream import DEFAULT_REPLY
from tests.integration.conftest import GEMINI_KEY, PROVIDER_KEY
from tests.support.control_plane import api_key, project
from tests.support.openai_schema import validate_component
from tests.support.sdk import sdk_client, sdk_stream
from tests.support.stack import KeyrailStack

pytestmark = pytest.mark.integration

MODEL = "gemini-2.5-flash"
PROMPT = "count these five words please"
REPLY_TOKENS = len(DEFAULT_REPLY.split())
PRICES = (
    Decimal("0.3"),
    Decimal("2.5"),
)  # the catalog's gemini-2.5-flash input and output, USD per 1M tokens
WRONG_KEY = "AIzaSy-wrong-gemini-key-5d7e9f1a3b"
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather for a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]
SECRETS = (GEMINI_KEY, WRONG_KEY, PROVIDER_KEY)
REQUEST_IDS: list[str] = []  # every request of this module, for the last test's search


class Gemini:
    """One project with its API key; integrations of provider gemini are added per test."""

    def __init__(self, stack: KeyrailStack, name: str) -> None:
        self.stack = stack
        self.project_id = project(stack, name)
        self.api_key = str(api_key(stack, self.project_id)["key"])
        self.client = sdk_client(stack, self.api_key)

    def integration(self, slug: str, api_key: str = GEMINI_KEY, fault: str = "") -> str:
        body: dict[str, Any] = {
            "name": slug,
            "provider": "gemini",
            "provider_slug": slug,
            "project_scope": [self.project_id],
            "credentials": {"api_key": api_key},
            "enabled_models": [MODEL],
        }
        if fault:  # sent as a header the mock reads its faults from
            body["custom_auth_headers"] = {"x-mock-fault": fault}
        created = self.stack.admin("POST", "/admin/v1/integrations", body)
        assert created.status_code == 201, created.text
        assert created.json()["custom_host"] is None and created.json()["api_format"] == "gemini"
        return slug

    def rows(self, request_id: str, expected: int = 2) -> list[dict[str, Any]]:
        REQUEST_IDS.append(request_id)
        return self.stack.activity_rows(request_id, expected)


@pytest.fixture(scope="module")
def gemini(stack: KeyrailStack) -> Gemini:
    tenant = Gemini(stack, "gemini end to end")
    tenant.integration("gemini-e2e")
    return tenant


def cost(prompt: int, completion: int) -> Decimal:
    return (prompt * PRICES[0] + completion * PRICES[1]) / 1_000_000


def check_rows(rows: list[dict[str, Any]], slug: str, stream: bool, completion: int = REPLY_TOKENS) -> None:
    completion_tokens = completion + THOUGHT_TOKENS  # Gemini's thoughts are completion tokens
    kinds = {row["kind"]: row for row in rows}
    assert set(kinds) == {"request", "attempt"}
    for row in kinds.values():
        assert (row["provider"], row["provider_slug"], row["model"]) == ("gemini", slug, MODEL)
        assert row["status"] == "ok" and row["http_status"] == 200 and row["stream"] == int(stream)
        assert (row["prompt_tokens"], row["completion_tokens"]) == (5, completion_tokens)
        assert Decimal(row["cost_usd"]) == cost(5, completion_tokens)
    assert kinds["attempt"]["reasoning_tokens"] == THOUGHT_TOKENS


def test_a_completion_through_the_sdk(gemini: Gemini) -> None:
    raw = gemini.client.chat.completions.with_raw_response.create(
        model=f"gemini-e2e/{MODEL}", messages=[{"role": "user", "content": PROMPT}]
    )
    completion = raw.parse()

    validate_component("CreateChatCompletionResponse", json.loads(raw.http_response.text))
    assert completion.choices[0].message.content == DEFAULT_REPLY
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == MODEL and completion.id.startswith("mock-")
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (
        5,
        REPLY_TOKENS + THOUGHT_TOKENS,
    )
    assert completion.usage.completion_tokens_details is not None
    assert completion.usage.completion_tokens_details.reasoning_tokens == THOUGHT_TOKENS
    assert raw.headers["x-keyrail-provider-slug"] == "gemini-e2e"
    check_rows(gemini.rows(raw.headers["x-keyrail-request-id"]), "gemini-e2e", stream=False)


def test_a_stream_through_the_sdk(gemini: Gemini) -> None:
    chunks, request_id = sdk_stream(gemini.client, f"gemini-e2e/{MODEL}", PROMPT)

    choices = [c.choices[0] for c in chunks if c.choices]
    assert choices[0].delta.role == "assistant" and choices[0].delta.content == ""
    deltas = [c.delta.content for c in choices[1:-1]]
    assert deltas == re.findall(r"\s*\S+", DEFAULT_REPLY)  # one chunk per Gemini text part, as sent
    assert [c.finish_reason for c in choices] == [None] * (len(choices) - 1) + ["stop"]
    usage = [c.usage for c in chunks if c.usage is not None]
    assert len(usage) == 1 and chunks[-1].choices == []
    assert (usage[0].prompt_tokens, usage[0].completion_tokens) == (5, REPLY_TOKENS + THOUGHT_TOKENS)
    check_rows(gemini.rows(request_id), "gemini-e2e", stream=True)


@pytest.mark.parametrize("include_usage", [True, False])
def test_every_stream_chunk_validates_against_openai_schema(
    stack: KeyrailStack, gemini: Gemini, include_usage: bool
) -> None:
    body = {
        "model": f"gemini-e2e/{MODEL}",
        "messages": [{"role": "user", "content": PROMPT}],
        "stream": True,
        "stream_options": {"include_usage": include_usage},
    }
    headers = {"Authorization": f"Bearer {gemini.api_key}"}
    with httpx.stream(
        "POST", f"{stack.url}/v1/chat/completions", json=body, headers=headers, timeout=30
    ) as response:
        assert response.status_code == 200
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    payloads = [json.loads(e) for e in events[:-1]]
    for payload in payloads:
        validate_component("CreateChatCompletionStreamResponse", payload)
    assert len([p for p in payloads if p.get("usage")]) == (1 if include_usage else 0)
    check_rows(gemini.rows(response.headers["x-keyrail-request-id"]), "gemini-e2e", stream=True)


def test_a_tool_call_and_its_follow_up_through_the_sdk(gemini: Gemini) -> None:
    messages: list[Any] = [{"role": "user", "content": "What's the weather in Paris?"}]
    raw = gemini.client.chat.completions.with_raw_response.create(
        model=f"gemini-e2e/{MODEL}", messages=messages, tools=TOOLS, tool_choice="auto"
    )
    completion = raw.parse()

    validate_component("CreateChatCompletionResponse", json.loads(raw.http_response.text))
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    [call] = choice.message.tool_calls or []
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "mock"}
    assert "~" in call.id  # the thought signature rides in the id
    rows = gemini.rows(raw.headers["x-keyrail-request-id"])
    assert {(r["provider"], r["completion_tokens"]) for r in rows} == {("gemini", 2 + THOUGHT_TOKENS)}
    # The follow-up replays the call: the mock, like Gemini 3, refuses it without its signature.
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 14}'},
    ]
    answer = gemini.client.chat.completions.create(
        model=f"gemini-e2e/{MODEL}", messages=messages, tools=TOOLS
    )
    assert answer.choices[0].message.content == DEFAULT_REPLY
    assert answer.choices[0].finish_reason == "stop"


def test_a_streamed_tool_call_through_the_sdk(gemini: Gemini) -> None:
    raw = gemini.client.chat.completions.with_raw_response.create(
        model=f"gemini-e2e/{MODEL}",
        messages=[{"role": "user", "content": "What's the weather in Paris?"}],
        tools=TOOLS,
        stream=True,
    )
    chunks = list(raw.parse())

    calls = [t for c in chunks if c.choices for t in c.choices[0].delta.tool_calls or []]
    [call] = calls
    assert call.index == 0 and call.type == "function" and call.id and "~" in call.id
    assert call.function is not None and call.function.name == "get_weather"
    assert json.loads(call.function.arguments or "") == {"city": "mock"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    rows = gemini.rows(raw.headers["x-keyrail-request-id"])
    assert {(r["provider_slug"], r["completion_tokens"], r["stream"]) for r in rows} == {
        ("gemini-e2e", 2 + THOUGHT_TOKENS, 1)
    }


@pytest.fixture(scope="module")
def filtered(stack: KeyrailStack) -> Gemini:
    """`gemini/<model>` tries gemini-filter-a first (slug order), whose prompts are all blocked."""
    tenant = Gemini(stack, "gemini content filter")
    tenant.integration("gemini-filter-a", fault="blocked=SAFETY")
    tenant.integration("gemini-filter-b")
    return tenant


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_a_blocked_prompt_is_a_400_content_filter_error_and_does_not_fall_back(
    filtered: Gemini, stream: bool
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        filtered.client.chat.completions.create(
            model=f"gemini/{MODEL}", messages=[{"role": "user", "content": PROMPT}], stream=stream
        )  # a stream fails before it starts: nothing reached the client

    error = caught.value
    assert error.status_code == 400
    body: dict[str, Any] = error.body  # type: ignore[assignment]
    assert "content filter blocked the prompt" in body["message"] and "SAFETY" in body["message"]
    assert "'gemini-filter-a'" in body["message"]
    headers = error.response.headers
    assert headers["x-keyrail-provider-slug"] == "gemini-filter-a" and headers["x-keyrail-attempts"] == "1"
    rows = filtered.rows(headers["x-keyrail-request-id"])
    attempts = [r for r in rows if r["kind"] == "attempt"]
    assert [(r["provider_slug"], r["error_class"], r["http_status"]) for r in attempts] == [
        ("gemini-filter-a", "content_filter", 400)  # gemini-filter-b was never tried
    ]
    (request_row,) = [r for r in rows if r["kind"] == "request"]
    assert (request_row["error_class"], request_row["http_status"]) == ("content_filter", 400)


def test_an_overloaded_gemini_falls_back_unlike_a_blocked_prompt(stack: KeyrailStack) -> None:
    tenant = Gemini(stack, "gemini overloaded")
    tenant.integration("gemini-busy-a", fault="status=503")
    tenant.integration("gemini-busy-b")

    raw = tenant.client.chat.completions.with_raw_response.create(
        model=f"gemini/{MODEL}", messages=[{"role": "user", "content": PROMPT}]
    )

    assert raw.parse().choices[0].message.content == DEFAULT_REPLY
    assert raw.headers["x-keyrail-provider-slug"] == "gemini-busy-b"
    rows = tenant.rows(raw.headers["x-keyrail-request-id"], expected=3)
    attempts = sorted(
        (r["fallback_position"], r["provider_slug"], r["error_class"]) for r in rows if r["kind"] == "attempt"
    )
    assert attempts == [(0, "gemini-busy-a", "overloaded"), (1, "gemini-busy-b", "")]


@pytest.fixture(scope="module")
def wrong_key(stack: KeyrailStack) -> Gemini:
    tenant = Gemini(stack, "gemini wrong key")
    tenant.integration("gemini-wrong-key", api_key=WRONG_KEY)
    return tenant


def test_a_rejected_key_is_a_stored_credential_error_without_the_key(wrong_key: Gemini) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        wrong_key.client.chat.completions.create(
            model=f"gemini-wrong-key/{MODEL}", messages=[{"role": "user", "content": "hi"}]
        )

    error = caught.value
    assert (
        error.status_code == 502
    )  # Gemini's 400 API_KEY_INVALID: the gateway's key, not the caller's request
    text = error.response.text
    assert "rejected the stored credential" in text and "API key not valid" in text
    assert not any(secret in text for secret in SECRETS)
    (attempt,) = [
        r for r in wrong_key.rows(error.response.headers["x-keyrail-request-id"]) if r["kind"] == "attempt"
    ]
    assert attempt["error_class"] == "credential"


def test_no_activity_row_nor_the_stack_log_holds_a_credential(stack: KeyrailStack) -> None:
    assert len(REQUEST_IDS) >= 8, "runs last, after the tests above recorded their requests"
    for request_id in REQUEST_IDS:
        text = json.dumps(stack.activity_rows(request_id, expected=2))
        assert not any(secret in text for secret in SECRETS), request_id
    log = stack.log_path.read_text(errors="replace")
    assert not any(secret in log for secret in SECRETS)
