"""An Azure OpenAI integration through the whole stack, with the official `openai` SDK as the client.

The mock upstream serves Azure's routes (`/openai/deployments/{deployment}/chat/completions`);
conftest points the registry's (empty) Azure base URL at it, standing in for
`https://<resource>.openai.azure.com`. The mock knows the deployments `my-deployment` and
`prod-gpt4o-mini`; any other name is Azure's 404 `DeploymentNotFound`.
"""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from keyrail_cli.mock_upstream import DEFAULT_REPLY
from tests.integration.conftest import AZURE_PROVIDER, Tenant, provision
from tests.support.openai_schema import validate_component
from tests.support.stack import KeyrailStack, MockUpstream

pytestmark = pytest.mark.integration

SLUG = "azure-e2e"
PROMPT = "count these five words please"


@pytest.fixture(scope="module")
def azure_tenant(stack: KeyrailStack, upstream: MockUpstream) -> Tenant:
    """A project whose Azure integration maps gpt-4o-mini to a deployment the resource has, and
    gpt-4o to one it does not."""
    project = provision(stack, upstream, "azure-e2e-project-openai")
    created = stack.admin(
        "POST",
        "/admin/v1/integrations",
        {
            "name": "Azure e2e",
            "provider": AZURE_PROVIDER,
            "provider_slug": SLUG,
            "project_scope": [project.project_id],
            "credentials": {
                "api_key": upstream.api_key,
                "resource_name": "my-resource",
                "api_version": "2024-10-21",
                "deployments": {"gpt-4o-mini": "my-deployment", "gpt-4o": "gpt4o-typo"},
            },
            "enabled_models": ["gpt-4o-mini", "gpt-4o"],
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["api_format"] == "azure" and created.json()["custom_host"] is None
    return Tenant(project_id=project.project_id, api_key=project.api_key, slug=SLUG)


@pytest.fixture
def client(stack: KeyrailStack, azure_tenant: Tenant) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stack.url}/v1", api_key=azure_tenant.api_key, max_retries=0)


def test_an_answer_from_an_azure_deployment(
    stack: KeyrailStack, azure_tenant: Tenant, client: openai.OpenAI
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=f"{SLUG}/gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}]
    )

    completion = raw.parse()
    validate_component("CreateChatCompletionResponse", json.loads(raw.http_response.text))
    assert completion.choices[0].message.content == DEFAULT_REPLY
    assert completion.model == "gpt-4o-mini-2024-07-18"  # Azure reports the deployment's model
    assert raw.headers["x-keyrail-provider-slug"] == SLUG
    rows = stack.activity_rows(raw.headers["x-keyrail-request-id"])
    for row in rows:
        assert (row["provider"], row["provider_slug"], row["model"]) == ("azure", SLUG, "gpt-4o-mini")
        assert row["status"] == "ok" and row["prompt_tokens"] == 5
        assert row["completion_tokens"] == len(DEFAULT_REPLY.split())


def test_a_stream_from_an_azure_deployment(
    stack: KeyrailStack, azure_tenant: Tenant, client: openai.OpenAI
) -> None:
    stream = client.chat.completions.create(
        model=f"{SLUG}/gpt-4o-mini",
        messages=[{"role": "user", "content": PROMPT}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == DEFAULT_REPLY
    assert all(c.id for c in chunks)  # Azure's empty prompt_filter_results chunk was skipped
    usage = [c.usage for c in chunks if c.usage is not None]
    assert len(usage) == 1 and usage[0].prompt_tokens == 5


def test_every_azure_stream_chunk_validates_against_openais_schema(
    stack: KeyrailStack, azure_tenant: Tenant
) -> None:
    body = {"model": f"{SLUG}/gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}], "stream": True}
    headers = {"Authorization": f"Bearer {azure_tenant.api_key}"}
    with httpx.stream(
        "POST", f"{stack.url}/v1/chat/completions", json=body, headers=headers, timeout=30
    ) as response:
        assert response.status_code == 200
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]

    assert events[-1] == "[DONE]"
    for event in events[:-1]:
        validate_component("CreateChatCompletionStreamResponse", json.loads(event))


def test_a_wrong_deployment_names_the_resource_the_deployment_and_the_model(
    stack: KeyrailStack, azure_tenant: Tenant, client: openai.OpenAI
) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=f"{SLUG}/gpt-4o", messages=[{"role": "user", "content": "hi"}])

    error = caught.value
    assert error.status_code == 502  # the caller's request was fine: the integration's mapping is not
    message = error.body["message"]  # type: ignore[index]
    assert "deployment 'gpt4o-typo'" in message
    assert "Azure resource 'my-resource'" in message
    assert "model 'gpt-4o'" in message
    assert f"PUT /admin/v1/integrations/{SLUG}/credentials" in message
    assert error.body["code"] == "upstream_404"  # type: ignore[index]
    (attempt,) = [
        r
        for r in stack.activity_rows(error.response.headers["x-keyrail-request-id"])
        if r["kind"] == "attempt"
    ]
    assert attempt["error_class"] == "model_access" and "gpt4o-typo" in attempt["error_message"]


def test_an_azure_integration_behind_a_custom_host_speaks_azure_there(
    stack: KeyrailStack, upstream: MockUpstream
) -> None:
    """Regression (Azure custom host silently on the OpenAI adapter): a gateway in front of Azure
    (APIM, Foundry) gets Azure's deployment routes and `api-key` header, not OpenAI's."""
    project = provision(stack, upstream, "azure-e2e-custom-host-project")
    slug = "azure-e2e-custom-host"
    created = stack.admin(
        "POST",
        "/admin/v1/integrations",
        {
            "name": "Azure behind a gateway",
            "provider": AZURE_PROVIDER,
            "provider_slug": slug,
            "project_scope": [project.project_id],
            "credentials": {
                "api_key": upstream.api_key,
                "resource_name": "my-resource",
                "api_version": "2024-10-21",
                "deployments": {"gpt-4o-mini": "my-deployment"},
            },
            "custom_host": upstream.url.removesuffix("/v1"),
            "allow_http": True,
            "enabled_models": ["gpt-4o-mini"],
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["api_format"] == "azure"
    client = openai.OpenAI(base_url=f"{stack.url}/v1", api_key=project.api_key, max_retries=0)

    completion = client.chat.completions.create(
        model=f"{slug}/gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}]
    )

    assert completion.choices[0].message.content == DEFAULT_REPLY
    assert completion.model == "gpt-4o-mini-2024-07-18"  # the mock's Azure deployment answered
    refused = stack.admin(
        "POST",
        "/admin/v1/integrations",
        {**json.loads(created.request.content), "provider_slug": f"{slug}-openai", "api_format": "openai"},
    )
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "api_format", refused.text
