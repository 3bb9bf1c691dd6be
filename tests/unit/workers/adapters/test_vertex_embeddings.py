"""Vertex AI embeddings as pure functions: the `:predict` request for the text-embedding models and
gemini-embedding-001 (one instance per text, `task_type`, `outputDimensionality`), `:embedContent`
for the newer Gemini embedding models (one text only), and the answers read back as OpenAI's
CreateEmbeddingResponse with the usage from `statistics.token_count`."""

from __future__ import annotations

import base64
import json
from array import array
from typing import Any

import pytest

from keyrail_common.failures import FailureClass
from keyrail_common.messages import Dialect, Usage
from keyrail_common.registry import Operation
from keyrail_workers.adapters import ADAPTERS
from keyrail_workers.adapters.base import AdapterCall, UpstreamError, UpstreamRequest
from keyrail_workers.adapters.vertex.embeddings import embeddings_method
from tests.support.openai_schema import validate_component

ADAPTER = ADAPTERS["vertex"]
TOKEN = "ya29.c.unit-test-access-token-0123456789"
PROJECT = "fixture-project-000000"
PUBLISHER = (
    f"https://europe-west4-aiplatform.googleapis.com/v1/projects/{PROJECT}/locations/europe-west4"
    "/publishers/google"
)
CREDENTIAL = {
    "service_account_json": {"type": "service_account", "project_id": PROJECT},
    "region": "europe-west4",
}


def call(model: str, base_url: str = "", **body: Any) -> AdapterCall:
    return AdapterCall(
        operation=Operation.EMBEDDINGS,
        dialect=Dialect.OPENAI,
        model=model,
        body=json.dumps({"model": f"vertex-prod/{model}", **body}).encode(),
        stream=False,
        base_url=base_url,
        access_token=TOKEN,
    )


def built(the_call: AdapterCall) -> UpstreamRequest:
    request = ADAPTER.build_request(the_call, CREDENTIAL)
    assert isinstance(request, UpstreamRequest), request
    return request


def predictions(*vectors: list[float], tokens: list[float] | None = None) -> bytes:
    counts = tokens or [len(vectors)] * len(vectors)
    return json.dumps(
        {
            "predictions": [
                {"embeddings": {"values": v, "statistics": {"token_count": n, "truncated": False}}}
                for v, n in zip(vectors, counts, strict=True)
            ],
            "metadata": {"billableCharacterCount": 42},
        }
    ).encode()


@pytest.mark.parametrize(
    ("model", "method"),
    [
        ("text-embedding-005", "predict"),
        ("text-multilingual-embedding-002", "predict"),
        ("gemini-embedding-001", "predict"),  # Google's first Gemini embedding model is a predict one
        ("gemini-embedding-2", "embedContent"),
        ("gemini-embedding-2-preview", "embedContent"),
    ],
)
def test_the_method_is_the_one_python_genai_chooses_for_the_model(model: str, method: str) -> None:
    assert embeddings_method(model) == method


def test_texts_are_predict_instances_in_order_with_the_dimensions_as_a_parameter() -> None:
    request = built(call("text-embedding-005", input=["first", "second"], dimensions=256))

    assert request.url == f"{PUBLISHER}/models/text-embedding-005:predict"
    assert json.loads(request.body) == {
        "instances": [{"content": "first"}, {"content": "second"}],
        "parameters": {"outputDimensionality": 256},
    }
    assert request.headers == {
        "Authorization": f"Bearer {TOKEN}",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    assert "text-embedding-005" in request.not_found_hint and PROJECT in request.not_found_hint


def test_one_string_without_dimensions_is_one_instance_and_no_parameters() -> None:
    request = built(call("gemini-embedding-001", input="hello"))

    assert json.loads(request.body) == {"instances": [{"content": "hello"}]}


def test_the_clients_task_type_extension_goes_on_every_instance() -> None:
    request = built(call("text-multilingual-embedding-002", input=["a", "b"], task_type="RETRIEVAL_QUERY"))

    assert json.loads(request.body)["instances"] == [
        {"content": "a", "task_type": "RETRIEVAL_QUERY"},
        {"content": "b", "task_type": "RETRIEVAL_QUERY"},
    ]


def test_a_newer_gemini_embedding_model_gets_one_embed_content_request() -> None:
    request = built(
        call("gemini-embedding-2", input=["hello"], dimensions=8, task_type="SEMANTIC_SIMILARITY")
    )

    assert request.url == f"{PUBLISHER}/models/gemini-embedding-2:embedContent"
    assert json.loads(request.body) == {
        "content": {"parts": [{"text": "hello"}]},
        "embedContentConfig": {"taskType": "SEMANTIC_SIMILARITY", "outputDimensionality": 8},
    }


def test_several_texts_for_an_embed_content_model_are_refused_before_any_http() -> None:
    refused = ADAPTER.build_request(call("gemini-embedding-2", input=["a", "b"]), CREDENTIAL)

    assert isinstance(refused, UpstreamError)
    assert (refused.failure_class, refused.param) == (FailureClass.UNSUPPORTED, "input")
    assert "one text per request" in refused.message


@pytest.mark.parametrize(
    ("body", "failure_class", "param"),
    [
        ({"input": [1, 2, 3]}, FailureClass.UNSUPPORTED, "input"),  # OpenAI tokenizer ids
        ({"input": []}, FailureClass.CALLER_ERROR, "input"),
        ({"input": "x", "dimensions": 0}, FailureClass.CALLER_ERROR, "dimensions"),
    ],
)
def test_what_vertex_cannot_take_is_refused_naming_the_field(
    body: dict[str, Any], failure_class: FailureClass, param: str
) -> None:
    refused = ADAPTER.build_request(call("text-embedding-005", **body), CREDENTIAL)

    assert isinstance(refused, UpstreamError)
    assert (refused.failure_class, refused.param) == (failure_class, param)


def test_a_claude_model_has_no_embeddings_on_vertex() -> None:
    refused = ADAPTER.build_request(call("claude-sonnet-4-5@20250929", input="x"), CREDENTIAL)

    assert isinstance(refused, UpstreamError) and refused.failure_class is FailureClass.UNSUPPORTED
    assert "claude-sonnet-4-5@20250929" in refused.message


def test_predictions_become_openais_answer_with_the_summed_token_counts() -> None:
    the_call = call("text-embedding-005", input=["one two", "three"], encoding_format="float")

    parsed = ADAPTER.parse_response(the_call, predictions([0.5, 0.25], [-1.0, 0.0], tokens=[2.0, 1]))

    assert parsed.error is None and parsed.usage == Usage(prompt_tokens=3)
    body = json.loads(parsed.body)
    validate_component("CreateEmbeddingResponse", body)
    assert body == {
        "object": "list",
        "data": [
            {"object": "embedding", "index": 0, "embedding": [0.5, 0.25]},
            {"object": "embedding", "index": 1, "embedding": [-1.0, 0.0]},
        ],
        "model": "text-embedding-005",
        "usage": {"prompt_tokens": 3, "total_tokens": 3},
    }


def test_base64_is_little_endian_float32_as_openai_sends_it() -> None:
    the_call = call("text-embedding-005", input="one", encoding_format="base64")

    parsed = ADAPTER.parse_response(the_call, predictions([0.5, -0.25, 1.0]))

    encoded = json.loads(parsed.body)["data"][0]["embedding"]
    assert array("f", base64.b64decode(encoded)).tolist() == [0.5, -0.25, 1.0]


def test_predictions_without_statistics_have_missing_usage_not_zero() -> None:
    answer = json.dumps({"predictions": [{"embeddings": {"values": [0.5]}}]}).encode()

    parsed = ADAPTER.parse_response(call("text-embedding-005", input="x"), answer)

    assert parsed.error is None and parsed.usage is None
    assert json.loads(parsed.body)["usage"] == {"prompt_tokens": 0, "total_tokens": 0}


def test_an_embed_content_answer_is_read_with_its_usage_metadata() -> None:
    answer = {
        "embedding": {"values": [0.5, 0.25]},
        "usageMetadata": {"promptTokenCount": 4},
        "truncated": False,
    }

    parsed = ADAPTER.parse_response(call("gemini-embedding-2", input="x"), json.dumps(answer).encode())

    assert parsed.error is None and parsed.usage == Usage(prompt_tokens=4)
    assert json.loads(parsed.body)["data"][0]["embedding"] == [0.5, 0.25]


@pytest.mark.parametrize(
    "answer",
    [
        b"<html>oops</html>",
        b"{}",
        predictions([1.0]),  # one vector for two inputs
        b'{"predictions": [{"embeddings": {}}, {"embeddings": {}}]}',  # no values
    ],
)
def test_a_200_that_is_not_one_embedding_per_input_is_a_failed_attempt(answer: bytes) -> None:
    parsed = ADAPTER.parse_response(call("text-embedding-005", input=["a", "b"]), answer)

    assert parsed.error is not None and parsed.body == b""
    assert (parsed.error.failure_class, parsed.error.upstream_status) == (FailureClass.UPSTREAM_5XX, 200)
    assert parsed.error.message.startswith("Vertex AI answered with")
