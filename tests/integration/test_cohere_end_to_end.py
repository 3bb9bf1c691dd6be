"""A Cohere-compatible custom host through the whole stack, with the official `openai` SDK as the client.

The integration is an `openai` provider record whose custom host (the mock upstream's `/v2/chat`)
declares `api_format: "cohere"`: the client speaks OpenAI, Keyrail speaks Cohere v2 to the host.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from keyrail_cli.mock_formats.cohere import TEMPLATE_TOKENS
from keyrail_cli.mock_upstream import DEFAULT_REPLY
from tests.integration.conftest import MODEL, Tenant
from tests.support.contracts import FIXTURES
from tests.support.openai_schema import validate_component
from tests.support.stack import KeyrailStack, MockUpstream

pytestmark = pytest.mark.integration

SLUG = "cohere-e2e"
PROMPT = "count these five words please"
TOOLS: Any = json.loads((FIXTURES / "cohere" / "tool_call_request.json").read_bytes())["tools"]


@pytest.fixture(scope="module")
def cohere_tenant(stack: KeyrailStack, upstream: MockUpstream) -> Tenant:
    project = stack.admin("POST", "/admin/v1/projects", {"name": "project for cohere"})
    assert project.status_code == 201, project.text
    project_id = project.json()["id"]
    key = stack.admin("POST", f"/admin/v1/projects/{project_id}/keys", {"name": "tests"})
    assert key.status_code == 201, key.text
    created = stack.admin(
        "POST",
        "/admin/v1/integrations",
        {
            "name": "Cohere-compatible host",
            "provider": "openai",
            "provider_slug": SLUG,
            "project_scope": [project_id],
            "credentials": {"api_key": upstream.api_key},
            "custom_host": upstream.url.removesuffix("/v1"),
            "api_format": "cohere",
            "allow_http": True,
            "enabled_models": [MODEL],
        },
    )
    assert created.status_code == 201, created.text
    return Tenant(project_id=project_id, api_key=key.json()["key"], slug=SLUG)


@pytest.fixture
def client(stack: KeyrailStack, cohere_tenant: Tenant) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stack.url}/v1", api_key=cohere_tenant.api_key, max_retries=0)


def test_an_answer_from_a_cohere_host(
    stack: KeyrailStack, cohere_tenant: Tenant, client: openai.OpenAI
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=cohere_tenant.model, messages=[{"role": "user", "content": PROMPT}]
    )

    completion = raw.parse()
    validate_component("CreateChatCompletionResponse", json.loads(raw.http_response.text))
    assert completion.choices[0].message.content == DEFAULT_REPLY
    assert completion.choices[0].finish_reason == "stop"
    # Cohere's `tokens` (the prompt and the chat template), not its smaller `billed_units`.
    assert completion.usage is not None and completion.usage.prompt_tokens == 5 + TEMPLATE_TOKENS
    assert raw.headers["x-keyrail-provider-slug"] == SLUG
    for row in stack.activity_rows(raw.headers["x-keyrail-request-id"]):
        assert (row["provider_slug"], row["status"]) == (SLUG, "ok")
        assert (row["prompt_tokens"], row["completion_tokens"]) == (
            5 + TEMPLATE_TOKENS,
            len(DEFAULT_REPLY.split()),
        )


def test_a_stream_from_a_cohere_host(cohere_tenant: Tenant, client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=cohere_tenant.model,
        messages=[{"role": "user", "content": PROMPT}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == DEFAULT_REPLY
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "stop"
    ]
    usage = [c.usage for c in chunks if c.usage is not None]
    assert len(usage) == 1 and usage[0].prompt_tokens == 5 + TEMPLATE_TOKENS


def test_every_stream_chunk_validates_against_openais_schema(
    stack: KeyrailStack, cohere_tenant: Tenant
) -> None:
    body = {"model": cohere_tenant.model, "messages": [{"role": "user", "content": PROMPT}], "stream": True}
    headers = {"Authorization": f"Bearer {cohere_tenant.api_key}"}
    with httpx.stream(
        "POST", f"{stack.url}/v1/chat/completions", json=body, headers=headers, timeout=30
    ) as response:
        assert response.status_code == 200
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]

    assert events[-1] == "[DONE]"
    for event in events[:-1]:
        validate_component("CreateChatCompletionStreamResponse", json.loads(event))


def test_a_tool_call_and_its_result(cohere_tenant: Tenant, client: openai.OpenAI) -> None:
    messages: list[Any] = [{"role": "user", "content": "What's the weather in Toronto?"}]

    first = client.chat.completions.create(model=cohere_tenant.model, messages=messages, tools=TOOLS)

    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    [call] = choice.message.tool_calls
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"location": "mock"}
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": "20C"}'},
    ]

    second = client.chat.completions.create(model=cohere_tenant.model, messages=messages, tools=TOOLS)

    assert second.choices[0].message.content == DEFAULT_REPLY


def test_a_streamed_tool_call(cohere_tenant: Tenant, client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=cohere_tenant.model,
        messages=[{"role": "user", "content": "What's the weather in Toronto?"}],
        tools=TOOLS,
        stream=True,
    )
    fragments = [c.choices[0].delta.tool_calls for c in stream if c.choices and c.choices[0].delta.tool_calls]

    assert fragments[0][0].id and fragments[0][0].function is not None
    assert fragments[0][0].function.name == "get_weather"
    arguments = "".join((f[0].function.arguments or "") if f[0].function else "" for f in fragments)
    assert json.loads(arguments) == {"location": "mock"}
