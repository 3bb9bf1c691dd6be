"""The mock upstream answers embeddings in every format that has them: Gemini's `embedContent`
and `batchEmbedContents` (each request naming the URL's model), Azure's deployment `/embeddings`
and Cohere's `/v2/embed` (an `input_type` required), each vector `mock_embedding` of its text."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from keyrail_cli.mock_upstream import FaultPlan, build_app, mock_embedding
from tests.unit.cli.test_mock_upstream import running

KEY = "mock-embed-key-0123"


@pytest.fixture(scope="module")
async def base_url() -> AsyncIterator[str]:
    async with running(build_app(FaultPlan(), require_key=KEY)) as url:
        yield url


async def post(url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json=body, headers=headers) as response:
            return response.status, await response.json(content_type=None)


def gemini_request(text: str, model: str = "models/gemini-embedding-2") -> dict[str, Any]:
    return {"model": model, "content": {"parts": [{"text": text}]}}


async def test_gemini_embed_content_and_batch(base_url: str) -> None:
    url = f"{base_url}/v1beta/models/gemini-embedding-2"
    headers = {"x-goog-api-key": KEY}

    one = await post(f"{url}:embedContent", gemini_request("hello there"), headers)
    batch = await post(
        f"{url}:batchEmbedContents", {"requests": [gemini_request("a"), gemini_request("b c")]}, headers
    )

    assert one == (200, {"embedding": {"values": mock_embedding("hello there")}})
    assert batch == (
        200,
        {"embeddings": [{"values": mock_embedding("a")}, {"values": mock_embedding("b c")}]},
    )


async def test_gemini_refuses_a_request_naming_another_model(base_url: str) -> None:
    url = f"{base_url}/v1beta/models/gemini-embedding-2:batchEmbedContents"
    body = {"requests": [gemini_request("a", model="models/other")]}

    status, answer = await post(url, body, {"x-goog-api-key": KEY})

    assert status == 400 and "requests[0].model" in answer["error"]["message"]


async def test_azure_embeds_at_a_known_deployment_only(base_url: str) -> None:
    url = f"{base_url}/openai/deployments/{{}}/embeddings?api-version=2024-10-21"
    headers = {"api-key": KEY}

    status, answer = await post(url.format("prod-embed-small"), {"input": ["x y"]}, headers)
    missing, error = await post(url.format("nope"), {"input": ["x y"]}, headers)

    assert status == 200 and answer["model"] == "text-embedding-3-small"
    assert answer["data"][0]["embedding"] == mock_embedding("x y") and answer["usage"]["prompt_tokens"] == 2
    assert (missing, error["error"]["code"]) == (404, "DeploymentNotFound")


async def test_cohere_embed_bills_a_token_per_word_and_requires_an_input_type(base_url: str) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    body = {"model": "embed-v4.0", "texts": ["one two", "three"], "input_type": "search_query"}

    status, answer = await post(f"{base_url}/v2/embed", body, headers)
    refused, _ = await post(f"{base_url}/v2/embed", {"model": "m", "texts": ["x"]}, headers)

    assert status == 200
    assert answer["embeddings"]["float"] == [mock_embedding("one two"), mock_embedding("three")]
    assert answer["meta"]["billed_units"] == {"input_tokens": 3}
    assert refused == 400
