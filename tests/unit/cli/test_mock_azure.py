"""The mock upstream speaks Azure OpenAI well enough for the official SDK's `AzureOpenAI` client:
deployment and v1 routes, `api-key` auth, `api-version`, and Azure's 404 for an unknown deployment."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import openai
import pytest

from keyrail_cli.mock_upstream import DEFAULT_REPLY, FaultPlan, build_app
from tests.unit.cli.test_mock_upstream import running

KEY = "azure-mock-key-0123"
MESSAGES: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "say hi"}]


@pytest.fixture(scope="module")
async def base_url() -> AsyncIterator[str]:
    async with running(build_app(FaultPlan(), require_key=KEY)) as url:
        yield url


def azure(base_url: str, api_key: str = KEY) -> openai.AsyncAzureOpenAI:
    return openai.AsyncAzureOpenAI(
        azure_endpoint=base_url, api_key=api_key, api_version="2024-10-21", max_retries=0
    )


async def test_the_azure_sdk_gets_an_answer_from_a_known_deployment(base_url: str) -> None:
    completion = await azure(base_url).chat.completions.create(model="my-deployment", messages=MESSAGES)

    assert completion.choices[0].message.content == DEFAULT_REPLY
    assert completion.model == "gpt-4o-mini-2024-07-18"


async def test_the_azure_sdk_streams_past_the_prompt_filter_chunk(base_url: str) -> None:
    stream = await azure(base_url).chat.completions.create(
        model="my-deployment", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]

    assert chunks[0].choices == [] and chunks[0].id == ""  # Azure's prompt_filter_results chunk
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == DEFAULT_REPLY
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == len(DEFAULT_REPLY.split())


async def test_an_unknown_deployment_is_azures_deployment_not_found(base_url: str) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await azure(base_url).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert caught.value.code == "DeploymentNotFound"


async def test_a_wrong_key_is_azures_401(base_url: str) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        await azure(base_url, api_key="presented-bad-key-77").chat.completions.create(
            model="my-deployment", messages=MESSAGES
        )

    assert caught.value.code == "401" and "presented-bad-key-77" not in caught.value.message


async def test_the_deployment_api_needs_an_api_version(base_url: str) -> None:
    url = f"{base_url}/openai/deployments/my-deployment/chat/completions"
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json={"messages": MESSAGES}, headers={"api-key": KEY}) as response:
            assert response.status == 404
            assert json.loads(await response.read())["error"] == {
                "code": "404",
                "message": "Resource not found",
            }


async def test_the_v1_api_takes_the_deployment_as_model(base_url: str) -> None:
    client = openai.AsyncOpenAI(
        base_url=f"{base_url}/openai/v1", api_key="unused", default_headers={"api-key": KEY}, max_retries=0
    )

    completion = await client.chat.completions.create(model="prod-gpt4o-mini", messages=MESSAGES)

    assert completion.choices[0].message.content == DEFAULT_REPLY
    with pytest.raises(openai.NotFoundError):
        await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


async def test_faults_work_as_on_the_openai_routes(base_url: str) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        await azure(base_url).chat.completions.create(
            model="my-deployment", messages=MESSAGES, extra_body={"mock": {"status": 429, "retry_after": 3}}
        )

    assert caught.value.response.headers["retry-after"] == "3"
