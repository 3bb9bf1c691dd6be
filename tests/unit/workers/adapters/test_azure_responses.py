"""The Azure adapter's answers, streams and errors over the fixtures on disk (reference §7): OpenAI's
body passes byte for byte, Azure's empty first stream chunk is skipped, error codes map to the
failure vocabulary, and a missing deployment names what was not found."""

from __future__ import annotations

import json

import pytest

from keyrail_common.failures import FailureClass
from keyrail_common.messages import Dialect, Usage
from keyrail_common.registry import Operation
from keyrail_workers.adapters.azure import AzureAdapter
from keyrail_workers.adapters.base import AdapterCall, ParsedResponse, StreamTranslator, UpstreamRequest
from keyrail_workers.upstream_errors import upstream_failure
from tests.support.adapters import data_lines, feed, frames
from tests.support.contracts import FIXTURES
from tests.support.openai_schema import validate_component

ADAPTER = AzureAdapter()
AZURE = FIXTURES / "azure"
OPENAI = FIXTURES / "openai"
CALL = AdapterCall(
    operation=Operation.CHAT,
    dialect=Dialect.OPENAI,
    model="gpt-4o-mini",
    body=b"{}",
    stream=True,
    base_url="",
)
API_KEY = "azure-key-0123456789abcdef"
CREDENTIAL: dict[str, object] = {
    "api_key": API_KEY,
    "resource_name": "my-resource",
    "api_version": "2024-10-21",
    "deployments": {"gpt-4o-mini": "prod-gpt4o-mini"},
}
RAW = {p.name: p.read_bytes() for p in [*AZURE.iterdir(), *OPENAI.glob("*.sse"), *OPENAI.glob("tool_*.json")]}
STREAM = RAW["chat_stream.sse"]
AZURE_FIRST_CHUNK = data_lines(STREAM)[0]


def translator(client_wants_usage: bool = False) -> StreamTranslator:
    request = UpstreamRequest("POST", "https://x", {}, b"{}", client_wants_usage=client_wants_usage)
    return ADAPTER.stream_translator(CALL, request)


def parsed(body: bytes) -> ParsedResponse:
    result = ADAPTER.parse_response(CALL, body)
    assert isinstance(result, ParsedResponse)
    return result


# --- answers -------------------------------------------------------------------------------------------


def test_the_answer_passes_byte_for_byte_with_its_usage() -> None:
    body = RAW["chat_response.json"]

    result = parsed(body)

    assert result.body == body  # content-filter annotations included: extra fields OpenAI clients ignore
    assert result.usage == Usage(prompt_tokens=20, completion_tokens=9)
    validate_component("CreateChatCompletionResponse", json.loads(result.body))


def test_a_tool_call_answer_passes_with_its_usage() -> None:
    body = RAW["tool_calls_response.json"]

    result = parsed(body)

    assert result.body == body
    assert result.usage == Usage(prompt_tokens=81, completion_tokens=52)


@pytest.mark.parametrize("finish_reason", ["stop", "length", "tool_calls", "content_filter"])
def test_finish_reasons_are_openais_and_pass_unchanged(finish_reason: str) -> None:
    # §1.1: Azure's are OpenAI's; `content_filter` when Azure's filtering trimmed the output.
    answer = json.loads(RAW["chat_response.json"])
    answer["choices"][0]["finish_reason"] = finish_reason
    body = json.dumps(answer).encode()

    assert json.loads(parsed(body).body)["choices"][0]["finish_reason"] == finish_reason


# --- streams -------------------------------------------------------------------------------------------


async def test_the_first_chunk_with_only_prompt_filter_results_is_skipped() -> None:
    assert json.loads(AZURE_FIRST_CHUNK)["choices"] == []  # the fixture is what §7 describes

    steps = await feed(STREAM, translator())

    sent = frames(steps)
    assert sent == data_lines(STREAM)[1:-1]  # every other chunk byte for byte; [DONE] is the ingress's
    for frame in sent:
        validate_component("CreateChatCompletionStreamResponse", json.loads(frame))
    assert [s.content for s in steps] == [False, False, True, True, False, False]
    assert steps[-1].done and steps[-1].frames == []


async def test_a_stream_without_a_usage_chunk_has_no_usage() -> None:
    reader = translator()
    await feed(STREAM, reader)

    assert reader.usage is None and reader.finish() is None


@pytest.mark.parametrize("client_wants_usage", [True, False])
async def test_stream_usage_is_read_and_forwarded_only_when_asked(client_wants_usage: bool) -> None:
    body = b"data: " + AZURE_FIRST_CHUNK + b"\n\n" + RAW["chat_stream_with_usage.sse"]
    reader = translator(client_wants_usage)

    sent = frames(await feed(body, reader))

    assert reader.usage == Usage(prompt_tokens=11, completion_tokens=9)
    usage_chunks = [f for f in sent if json.loads(f).get("usage")]
    assert len(usage_chunks) == (1 if client_wants_usage else 0)
    assert AZURE_FIRST_CHUNK not in sent


async def test_a_streamed_tool_call_is_content() -> None:
    steps = await feed(RAW["tool_calls_stream.sse"], translator())

    fragments = [
        step
        for step in steps
        if step.frames and any(c["delta"].get("tool_calls") for c in json.loads(step.frames[0])["choices"])
    ]
    assert len(fragments) > 2 and all(step.content for step in fragments)
    assert steps[-1].done


async def test_a_stream_cut_before_done_is_a_stream_cut() -> None:
    reader = translator()
    steps = await feed(STREAM[: STREAM.index(b"data: [DONE]")], reader)

    assert not any(s.done for s in steps)
    cut = reader.finish()
    assert cut is not None and cut.failure_class is FailureClass.STREAM_CUT


async def test_an_in_band_error_ends_the_stream_with_it() -> None:
    steps = await feed(RAW["stream_error_midstream.sse"], translator())

    assert steps[-1].error is not None
    assert "The server had an error" in steps[-1].error.message


# --- errors -------------------------------------------------------------------------------------------

F = FailureClass


@pytest.mark.parametrize(
    ("headers", "expected"),
    [({"retry-after-ms": "6500", "retry-after": "7"}, 6.5), ({"retry-after": "6"}, 6.0), ({}, 0.0)],
)
def test_a_429_carries_azures_retry_headers(headers: dict[str, str], expected: float) -> None:
    error = ADAPTER.classify_error(429, headers, RAW["error_429.json"])

    assert error.retry_after_s == expected


def test_a_content_filter_error_is_the_callers_400() -> None:
    client = upstream_failure(
        "azure-prod", ADAPTER.classify_error(400, {}, RAW["error_400_content_filter.json"]), []
    )

    assert (client.http_status, client.error_class) == (400, F.CONTENT_FILTER)


def test_a_missing_deployment_names_the_resource_the_deployment_and_the_model_slug() -> None:
    # The seed's failure mode: a bare 404. The request the adapter built says what was addressed.
    request = ADAPTER.build_request(
        AdapterCall(Operation.CHAT, Dialect.OPENAI, "gpt-4o-mini", b'{"messages": []}', False, ""), CREDENTIAL
    )
    assert isinstance(request, UpstreamRequest)
    error = ADAPTER.classify_error(404, {}, RAW["error_deployment_not_found.json"])

    client = upstream_failure("azure-prod", error, [API_KEY], request.not_found_hint)

    assert (client.http_status, client.error_class, client.provider_code) == (
        502,
        F.MODEL_ACCESS,
        "DeploymentNotFound",
    )
    message = client.message
    assert "The API deployment for this resource does not exist" in message  # Azure's own words
    assert "deployment 'prod-gpt4o-mini'" in message
    assert "Azure resource 'my-resource'" in message
    assert "model 'gpt-4o-mini'" in message
    assert "PUT /admin/v1/integrations/azure-prod/credentials" in message


def test_other_failures_do_not_carry_the_not_found_hint() -> None:
    error = ADAPTER.classify_error(429, {}, RAW["error_429.json"])

    client = upstream_failure("azure-prod", error, [], "The request addressed deployment 'x'")

    assert "addressed" not in client.message
