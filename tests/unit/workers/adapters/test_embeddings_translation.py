"""Embeddings translation as pure functions: what the worker-path table does not spell out (one
string vs a batch, base64 answers, token arrays, Cohere's input_type, Azure's v1 API, bad answers)."""

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
from tests.support.openai_schema import validate_component

KEY = {"api_key": "k-0123456789"}
AZURE_KEY = {
    "api_key": "k-0123456789",
    "resource_name": "my-resource",
    "api_version": "v1",
    "deployments": {"text-embedding-3-small": "prod-embed-small"},
}


def call(model: str, base_url: str = "http://up.test", **body: Any) -> AdapterCall:
    return AdapterCall(
        operation=Operation.EMBEDDINGS,
        dialect=Dialect.OPENAI,
        model=model,
        body=json.dumps({"model": f"x/{model}", **body}).encode(),
        stream=False,
        base_url=base_url,
    )


def built(adapter: str, the_call: AdapterCall, credential: dict[str, Any] = KEY) -> UpstreamRequest:
    request = ADAPTERS[adapter].build_request(the_call, credential)
    assert isinstance(request, UpstreamRequest), request
    return request


def test_one_gemini_string_is_one_embed_content_without_dimensions() -> None:
    request = built("gemini", call("gemini-embedding-2", input="hello"))

    assert request.url == "http://up.test/models/gemini-embedding-2:embedContent"
    assert json.loads(request.body) == {
        "model": "models/gemini-embedding-2",
        "content": {"parts": [{"text": "hello"}]},
    }


def test_a_gemini_embed_content_answer_with_usage_metadata_is_read() -> None:
    the_call = call("gemini-embedding-2", input="hello")
    answer = {"embedding": {"values": [0.5, 0.25]}, "usageMetadata": {"promptTokenCount": 3}}

    parsed = ADAPTERS["gemini"].parse_response(the_call, json.dumps(answer).encode())

    assert parsed.error is None and parsed.usage == Usage(prompt_tokens=3)
    body = json.loads(parsed.body)
    validate_component("CreateEmbeddingResponse", body)
    assert body["data"] == [{"object": "embedding", "index": 0, "embedding": [0.5, 0.25]}]
    assert body["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    assert body["model"] == "gemini-embedding-2"


@pytest.mark.parametrize(
    ("adapter", "answer"),
    [
        ("gemini", {"embeddings": [{"values": [0.5, -0.25, 1.0]}]}),
        (
            "cohere",
            {"embeddings": {"float": [[0.5, -0.25, 1.0]]}, "meta": {"billed_units": {"input_tokens": 1}}},
        ),
    ],
)
def test_base64_is_little_endian_float32_as_openai_sends_it(adapter: str, answer: dict[str, Any]) -> None:
    # The openai SDK asks for base64 unless told otherwise, and decodes it itself.
    the_call = call("m", input=["one"], encoding_format="base64")

    parsed = ADAPTERS[adapter].parse_response(the_call, json.dumps(answer).encode())

    encoded = json.loads(parsed.body)["data"][0]["embedding"]
    assert isinstance(encoded, str)
    assert array("f", base64.b64decode(encoded)).tolist() == [0.5, -0.25, 1.0]


@pytest.mark.parametrize("adapter", ["gemini", "cohere"])
@pytest.mark.parametrize("tokens", [[1, 2, 3], [[1, 2], [3]]], ids=["token-array", "token-arrays"])
def test_token_arrays_are_refused_before_any_http_as_unsupported(adapter: str, tokens: list[Any]) -> None:
    refused = ADAPTERS[adapter].build_request(call("m", input=tokens), KEY)

    assert isinstance(refused, UpstreamError)
    assert (refused.failure_class, refused.param) == (FailureClass.UNSUPPORTED, "input")
    assert "token arrays" in refused.message


@pytest.mark.parametrize("adapter", ["gemini", "cohere"])
def test_non_positive_dimensions_are_the_callers_error(adapter: str) -> None:
    refused = ADAPTERS[adapter].build_request(call("m", input="x", dimensions=0), KEY)

    assert isinstance(refused, UpstreamError)
    assert (refused.failure_class, refused.param) == (FailureClass.CALLER_ERROR, "dimensions")


@pytest.mark.parametrize(
    ("adapter", "answer"),
    [
        ("gemini", b"<html>oops</html>"),
        ("gemini", b'{"embeddings": [{"values": [1.0]}]}'),  # one vector for two inputs
        ("gemini", b"{}"),
        ("cohere", b'{"embeddings": {"int8": [[1], [2]]}}'),  # not the float type asked for
        ("cohere", b"not json"),
    ],
)
def test_a_200_that_is_not_one_embedding_per_input_is_a_failed_attempt(adapter: str, answer: bytes) -> None:
    parsed = ADAPTERS[adapter].parse_response(call("m", input=["a", "b"]), answer)

    assert parsed.error is not None and parsed.body == b""
    assert (parsed.error.failure_class, parsed.error.upstream_status) == (FailureClass.UPSTREAM_5XX, 200)


def test_cohere_takes_the_clients_input_type_extension() -> None:
    request = built("cohere", call("embed-v4.0", input="find me", input_type="search_query"))

    assert request.url == "http://up.test/v2/embed"
    assert json.loads(request.body) == {
        "model": "embed-v4.0",
        "texts": ["find me"],
        "input_type": "search_query",
        "embedding_types": ["float"],
    }


def test_azure_v1_api_names_the_deployment_as_the_model() -> None:
    request = built("azure", call("text-embedding-3-small", base_url="", input="hi"), AZURE_KEY)

    assert request.url == "https://my-resource.openai.azure.com/openai/v1/embeddings"
    assert json.loads(request.body) == {"model": "prod-embed-small", "input": "hi"}
    assert request.headers["api-key"] == AZURE_KEY["api_key"] and "Authorization" not in request.headers


def test_azure_embeddings_of_an_unmapped_model_name_the_resource_and_the_mapped_models() -> None:
    refused = ADAPTERS["azure"].build_request(call("text-embedding-3-large", input="hi"), AZURE_KEY)

    assert isinstance(refused, UpstreamError) and refused.failure_class is FailureClass.MODEL_ACCESS
    assert "'my-resource'" in refused.message and "'text-embedding-3-large'" in refused.message
    assert "'text-embedding-3-small'" in refused.message
