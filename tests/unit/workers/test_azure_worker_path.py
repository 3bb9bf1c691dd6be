"""Azure through the real worker path: `AttemptRunner` + `UpstreamPool` against a local server that
records exactly what Keyrail sent (URL, headers, body) and answers with Azure's fixtures."""

from __future__ import annotations

import json
from typing import Any

from keyrail_common.failures import FailureClass
from keyrail_common.messages import Usage
from tests.support.adapters import data_lines
from tests.support.contracts import FIXTURES
from tests.support.worker_path import Answer, json_request_headers, local_upstream, provider_call, run_attempt

AZURE = FIXTURES / "azure"
API_KEY = "azure-key-WORKERPATH-0123456789abcdef"
SECRET: dict[str, object] = {
    "api_key": API_KEY,
    "resource_name": "my-resource",
    "api_version": "2024-10-21",
    "deployments": {"gpt-4o-mini": "prod-gpt4o-mini"},
}
REQUEST: dict[str, Any] = json.loads((AZURE / "chat_request.json").read_bytes())
RESPONSE = (AZURE / "chat_response.json").read_bytes()
STREAM = (AZURE / "chat_stream.sse").read_bytes()
SSE = {"Content-Type": "text/event-stream"}


def client_body(**extra: object) -> dict[str, object]:
    return {"model": "azure-test/gpt-4o-mini", **REQUEST, **extra}


async def test_an_answer_goes_to_the_deployment_with_the_api_key_and_comes_back_unchanged() -> None:
    async with local_upstream(Answer(body=RESPONSE)) as upstream:
        outcome = await run_attempt(
            provider_call("azure", "azure", "gpt-4o-mini", client_body(), upstream.url), SECRET
        )

    [sent] = upstream.sent
    assert sent.method == "POST"
    assert sent.path_qs == "/openai/deployments/prod-gpt4o-mini/chat/completions?api-version=2024-10-21"
    assert sent.headers == json_request_headers(upstream, sent, {"api-key": API_KEY})
    assert sent.body == json.dumps(REQUEST, separators=(",", ":")).encode()
    [result] = outcome.replies
    assert (result.ok, result.http_status, result.body) == (True, 200, RESPONSE)
    assert result.usage == Usage(prompt_tokens=20, completion_tokens=9)


async def test_a_stream_skips_azures_first_chunk_and_relays_the_rest_byte_for_byte() -> None:
    async with local_upstream(Answer(body=STREAM, headers=SSE)) as upstream:
        outcome = await run_attempt(
            provider_call(
                "azure", "azure", "gpt-4o-mini", client_body(stream=True), upstream.url, stream=True
            ),
            SECRET,
        )

    [sent] = upstream.sent
    assert json.loads(sent.body) == {**REQUEST, "stream": True, "stream_options": {"include_usage": True}}
    assert sent.headers["accept"] == "text/event-stream"
    assert outcome.chunks == data_lines(STREAM)[1:-1]
    assert outcome.end is not None and outcome.end.error is None
    assert [r.ok for r in outcome.replies] == [True]


async def test_a_missing_deployment_names_resource_deployment_and_model_slug() -> None:
    not_found = (AZURE / "error_deployment_not_found.json").read_bytes()
    async with local_upstream(Answer(status=404, body=not_found)) as upstream:
        outcome = await run_attempt(
            provider_call("azure", "azure", "gpt-4o-mini", client_body(), upstream.url), SECRET
        )

    [result] = outcome.replies
    assert result.error is not None
    assert (result.http_status, result.error.error_class) == (502, FailureClass.MODEL_ACCESS)
    message = result.error.message
    assert "deployment 'prod-gpt4o-mini'" in message
    assert "Azure resource 'my-resource'" in message  # not "[redacted]": the registry marks it non-secret
    assert "model 'gpt-4o-mini'" in message
    assert API_KEY not in message


async def test_a_model_without_a_deployment_never_reaches_azure() -> None:
    async with local_upstream(Answer(body=RESPONSE)) as upstream:
        outcome = await run_attempt(
            provider_call("azure", "azure", "gpt-4o", client_body(), upstream.url), SECRET
        )

    assert upstream.sent == []
    [result] = outcome.replies
    assert result.error is not None
    assert (result.error.error_class, result.error.code) == (
        FailureClass.MODEL_ACCESS,
        "deployment_not_mapped",
    )
    assert "Azure resource 'my-resource' has no deployment mapped for model 'gpt-4o'" in result.error.message
    assert outcome.attempt.row().error_class == "model_access"


async def test_azures_api_version_in_an_upstream_message_is_not_redacted() -> None:
    # Bug: every string credential was scrubbed from messages, so Azure's 429 read "API version [redacted]".
    rate_limited = (AZURE / "error_429.json").read_bytes()
    async with local_upstream(Answer(status=429, body=rate_limited)) as upstream:
        outcome = await run_attempt(
            provider_call("azure", "azure", "gpt-4o-mini", client_body(), upstream.url), SECRET
        )

    [result] = outcome.replies
    assert result.error is not None and result.error.error_class is FailureClass.RATE_LIMIT
    assert "Azure OpenAI API version 2024-10-21" in result.error.message


async def test_the_api_key_is_still_scrubbed_when_azure_echoes_it() -> None:
    echoed = json.dumps({"error": {"code": "401", "message": f"Access denied for key {API_KEY}."}}).encode()
    async with local_upstream(Answer(status=401, body=echoed)) as upstream:
        outcome = await run_attempt(
            provider_call("azure", "azure", "gpt-4o-mini", client_body(), upstream.url), SECRET
        )

    [result] = outcome.replies
    assert result.error is not None and result.error.error_class is FailureClass.CREDENTIAL
    assert API_KEY not in result.error.message and "[redacted]" in result.error.message
