"""The Azure adapter's upstream request (reference §7): OpenAI's body at the deployment the
integration maps the model slug to, `api-key` auth, and a clear refusal when nothing is mapped."""

from __future__ import annotations

import json
from typing import Any

import pytest

from keyrail_common.failures import FailureClass
from keyrail_common.messages import Dialect
from keyrail_common.registry import Operation
from keyrail_workers.adapters.azure import AzureAdapter
from keyrail_workers.adapters.base import AdapterCall, UpstreamError, UpstreamRequest
from keyrail_workers.upstream_errors import refused_failure
from tests.support.contracts import FIXTURES

ADAPTER = AzureAdapter()
AZURE = FIXTURES / "azure"
API_KEY = "azure-key-0123456789abcdef0123456789ab"
CREDENTIAL: dict[str, Any] = {
    "api_key": API_KEY,
    "resource_name": "my-resource",
    "api_version": "2024-10-21",
    "deployments": {"gpt-4o-mini": "prod-gpt4o-mini"},
}


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((AZURE / name).read_bytes())
    return loaded


def call(
    body: dict[str, Any], *, model: str = "gpt-4o-mini", stream: bool = False, base_url: str = ""
) -> AdapterCall:
    return AdapterCall(
        operation=Operation.CHAT,
        dialect=Dialect.OPENAI,
        model=model,
        body=json.dumps({"model": f"azure-prod/{model}", **body}).encode(),
        stream=stream,
        base_url=base_url,
    )


def built(adapter_call: AdapterCall, credential: dict[str, Any] | None = None) -> UpstreamRequest:
    request = ADAPTER.build_request(adapter_call, CREDENTIAL if credential is None else credential)
    assert isinstance(request, UpstreamRequest), request
    return request


def refused(adapter_call: AdapterCall, credential: dict[str, Any]) -> UpstreamError:
    error = ADAPTER.build_request(adapter_call, credential)
    assert isinstance(error, UpstreamError), error
    return error


def test_the_deployment_api_request_is_the_fixture() -> None:
    request = built(call(fixture("chat_request.json")))

    assert request.method == "POST"
    assert request.url == (
        "https://my-resource.openai.azure.com/openai/deployments/prod-gpt4o-mini/chat/completions"
        "?api-version=2024-10-21"
    )
    assert json.loads(request.body) == fixture("chat_request.json")  # no `model`: the path names it
    assert request.headers == {
        "api-key": API_KEY,
        "Content-Type": "application/json",
        "Accept": "application/json",
    }


def test_the_v1_api_request_is_the_fixture() -> None:
    body = fixture("chat_request_v1.json")
    request = built(call(body), {**CREDENTIAL, "api_version": "v1"})

    assert request.url == "https://my-resource.openai.azure.com/openai/v1/chat/completions"
    assert json.loads(request.body) == body  # `model` is the deployment name
    assert json.loads(request.body)["model"] == "prod-gpt4o-mini"
    assert request.headers["api-key"] == API_KEY and "Authorization" not in request.headers


def test_the_targets_base_url_replaces_the_resource_endpoint() -> None:
    request = built(call(fixture("chat_request.json"), base_url="http://127.0.0.1:9900/"))

    assert request.url == (
        "http://127.0.0.1:9900/openai/deployments/prod-gpt4o-mini/chat/completions?api-version=2024-10-21"
    )


@pytest.mark.parametrize("client_asked", [True, False])
def test_streams_always_ask_for_usage_and_remember_whether_the_client_did(client_asked: bool) -> None:
    body = {**fixture("chat_request.json"), "stream": True, "stream_options": {"include_usage": client_asked}}

    request = built(call(body, stream=True))

    assert json.loads(request.body)["stream_options"] == {"include_usage": True}
    assert request.client_wants_usage is client_asked
    assert request.headers["Accept"] == "text/event-stream"


def test_tool_calls_and_tool_results_are_openais_body_unchanged() -> None:
    for name in ("tool_calls_request.json", "tool_result_followup_request.json"):
        body = json.loads((FIXTURES / "openai" / name).read_bytes())
        body.pop("model")

        assert json.loads(built(call(body)).body) == body, name


def test_custom_auth_headers_are_sent() -> None:
    adapter_call = AdapterCall(
        operation=Operation.CHAT,
        dialect=Dialect.OPENAI,
        model="gpt-4o-mini",
        body=b'{"messages": []}',
        stream=False,
        base_url="",
        custom_headers={"X-Org-Token": "org-tok-1"},
    )

    assert built(adapter_call).headers["X-Org-Token"] == "org-tok-1"


def test_deployment_names_and_api_versions_are_url_encoded() -> None:
    credential = {
        **CREDENTIAL,
        "api_version": "2025-04-01-preview&x=1",
        "deployments": {"gpt-4o-mini": "a/b c"},
    }

    request = built(call({"messages": []}), credential)

    assert request.url.endswith(
        "/openai/deployments/a%2Fb%20c/chat/completions?api-version=2025-04-01-preview%26x%3D1"
    )


def test_the_request_says_what_it_addressed_for_a_not_found_answer() -> None:
    hint = built(call({"messages": []})).not_found_hint

    assert "'prod-gpt4o-mini'" in hint and "'my-resource'" in hint and "'gpt-4o-mini'" in hint
    assert "2024-10-21" in hint and API_KEY not in hint


# --- refusals: no HTTP request at all ---------------------------------------------------------------


def test_a_model_without_a_deployment_is_refused_naming_resource_model_and_how_to_map_it() -> None:
    error = refused(call({"messages": []}, model="gpt-4o"), CREDENTIAL)

    assert error.failure_class is FailureClass.MODEL_ACCESS
    assert error.provider_code == "deployment_not_mapped"
    assert "Azure resource 'my-resource'" in error.message
    assert "no deployment mapped for model 'gpt-4o'" in error.message
    assert "maps 'gpt-4o-mini'" in error.message  # what is mapped, to spot a typo
    assert '"deployments": {"gpt-4o": "<deployment name>"}' in error.message
    client = refused_failure("azure-prod", error, [API_KEY])
    assert client.http_status == 502 and client.code == "deployment_not_mapped"
    assert client.message.startswith("Integration 'azure-prod' cannot send this request: Azure resource")
    assert "PUT /admin/v1/integrations/azure-prod/credentials" in client.message


@pytest.mark.parametrize("deployments", [{}, None, {"gpt-4o-mini": ""}])
def test_an_empty_or_missing_deployment_map_is_refused(deployments: object) -> None:
    error = refused(call({"messages": []}), {**CREDENTIAL, "deployments": deployments})

    assert error.provider_code == "deployment_not_mapped"


@pytest.mark.parametrize(
    "resource", ["evil.example.com/x?", "a b", "", "-lead", "res.openai.azure.com#", None, "x" * 65]
)
def test_a_resource_name_that_could_move_the_host_is_refused(resource: object) -> None:
    error = refused(call({"messages": []}), {**CREDENTIAL, "resource_name": resource})

    assert (error.failure_class, error.provider_code) == (FailureClass.MODEL_ACCESS, "invalid_resource_name")


def test_a_missing_api_version_is_refused() -> None:
    error = refused(call({"messages": []}), {**CREDENTIAL, "api_version": " "})

    assert error.provider_code == "missing_api_version"


def test_the_adapter_answers_openai_chat_and_embeddings() -> None:
    assert ADAPTER.name == "azure"
    assert ADAPTER.dialects == {Dialect.OPENAI}
    assert ADAPTER.operations == {Operation.CHAT, Operation.EMBEDDINGS}
