"""Embeddings through every adapter that offers them, on the real worker path against a local
server: the exact URL, headers and body each upstream format received, and the OpenAI
`CreateEmbeddingResponse` (validated against the OpenAI schema) with normalised usage that came back.

One table row per adapter; an adapter that gains embeddings joins with a row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from keyrail_common.messages import Usage
from keyrail_common.registry import Operation
from keyrail_workers.adapters import ADAPTERS
from tests.support.openai_schema import validate_component
from tests.support.worker_path import Answer, local_upstream, provider_call, run_attempt

KEY = "embed-key-WORKERPATH-0123456789abcdef"
TEXTS = ["the first text", "another one"]
VECTORS = [[0.25, -0.5, 0.125], [1.0, 0.0, -1.0]]
# What OpenAI and Azure (the same wire format) answer with VECTORS.
OPENAI_ANSWER = {
    "object": "list",
    "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(VECTORS)],
    "model": "text-embedding-3-small",
    "usage": {"prompt_tokens": 5, "total_tokens": 5},
}


@dataclass(frozen=True)
class Case:
    adapter: str
    provider: str
    model: str
    secret: dict[str, object]
    path_qs: str  # what the upstream was asked, for TEXTS
    auth: tuple[str, str]  # header name (lower case), value
    sent: dict[str, Any]  # the upstream body, for TEXTS with dimensions=3
    answer: dict[str, Any]  # the upstream's answer with VECTORS
    usage: Usage | None


CASES = [
    Case(
        "openai",
        "openai",
        "text-embedding-3-small",
        {"api_key": KEY},
        "/embeddings",
        ("authorization", f"Bearer {KEY}"),
        {"model": "text-embedding-3-small", "input": TEXTS, "dimensions": 3, "encoding_format": "float"},
        OPENAI_ANSWER,
        Usage(prompt_tokens=5),
    ),
    Case(
        "azure",
        "azure",
        "text-embedding-3-small",
        {
            "api_key": KEY,
            "resource_name": "my-resource",
            "api_version": "2024-10-21",
            "deployments": {"text-embedding-3-small": "prod-embed-small"},
        },
        "/openai/deployments/prod-embed-small/embeddings?api-version=2024-10-21",
        ("api-key", KEY),
        {"input": TEXTS, "dimensions": 3, "encoding_format": "float"},  # the path names the deployment
        OPENAI_ANSWER,
        Usage(prompt_tokens=5),
    ),
    Case(
        "gemini",
        "gemini",
        "gemini-embedding-2",
        {"api_key": KEY},
        "/models/gemini-embedding-2:batchEmbedContents",
        ("x-goog-api-key", KEY),
        {
            "requests": [
                {
                    "model": "models/gemini-embedding-2",
                    "content": {"parts": [{"text": t}]},
                    "outputDimensionality": 3,
                }
                for t in TEXTS
            ]
        },
        {"embeddings": [{"values": v} for v in VECTORS]},
        None,  # AI Studio reports no token counts for embeddings: the usage is missing, not zero
    ),
    Case(
        "cohere",
        "openai",  # a custom host with api_format "cohere"
        "embed-v4.0",
        {"api_key": KEY},
        "/v2/embed",
        ("authorization", f"Bearer {KEY}"),
        {
            "model": "embed-v4.0",
            "texts": TEXTS,
            "input_type": "search_document",
            "embedding_types": ["float"],
            "output_dimension": 3,
        },
        {
            "id": "e1",
            "embeddings": {"float": VECTORS},
            "texts": TEXTS,
            "meta": {"billed_units": {"input_tokens": 5}},
            "response_type": "embeddings_by_type",
        },
        Usage(prompt_tokens=5),
    ),
]


# Vertex exchanges its service account for a token first: its embeddings on the worker path are
# in test_vertex_worker_path.py, against the mock's Vertex format (token endpoint and `:predict`).
EXCHANGING_A_TOKEN_FIRST = {"vertex"}


def test_every_adapter_offering_embeddings_has_a_case() -> None:
    offering = {name for name, adapter in ADAPTERS.items() if Operation.EMBEDDINGS in adapter.operations}
    assert offering == {case.adapter for case in CASES} | EXCHANGING_A_TOKEN_FIRST


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.adapter)
async def test_embeddings_reach_the_upstream_in_its_format_and_come_back_as_openais(case: Case) -> None:
    body = {
        "model": f"{case.provider}-test/{case.model}",
        "input": TEXTS,
        "dimensions": 3,
        "encoding_format": "float",
    }
    async with local_upstream(Answer(body=json.dumps(case.answer).encode())) as upstream:
        call = provider_call(
            case.provider, case.adapter, case.model, body, upstream.url, operation=Operation.EMBEDDINGS
        )
        outcome = await run_attempt(call, case.secret)

    [sent] = upstream.sent
    assert (sent.method, sent.path_qs) == ("POST", case.path_qs)
    assert sent.headers[case.auth[0]] == case.auth[1]
    assert (sent.headers["content-type"], sent.headers["accept"]) == ("application/json", "application/json")
    assert json.loads(sent.body) == case.sent
    [result] = outcome.replies
    assert result.ok, result.error
    answer = json.loads(result.body)
    validate_component("CreateEmbeddingResponse", answer)
    assert [d["embedding"] for d in answer["data"]] == VECTORS
    assert [d["index"] for d in answer["data"]] == [0, 1]
    assert result.usage == case.usage
    assert answer["usage"]["prompt_tokens"] == (case.usage.prompt_tokens if case.usage else 0)
