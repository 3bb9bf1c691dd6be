"""`POST /v1/embeddings` through the whole stack with the official `openai` SDK, through every
adapter offering embeddings (each upstream a mock speaking that format)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import httpx
import openai
import pytest

from keyrail_cli.mock_upstream import mock_embedding
from keyrail_common.catalog import Catalog
from keyrail_common.cost import price_decimal
from tests.integration.conftest import GEMINI_KEY, MODEL, provision
from tests.support.openai_schema import validate_component
from tests.support.stack import KeyrailStack, MockUpstream

pytestmark = pytest.mark.integration

EMBEDDING_MODEL = "text-embedding-3-small"
TEXTS = ["the first text", "another one"]  # five words: the mocks count a token per word


@dataclass(frozen=True)
class Embedder:
    client: openai.OpenAI
    slug: str
    provider: str  # whose catalog entry prices the model
    model: str
    usage_reported: bool  # AI Studio's Gemini reports no token counts for embeddings
    adapter: str = "openai"
    project_id: str = ""


@pytest.fixture(scope="module")
def embedder(stack: KeyrailStack, upstream: MockUpstream) -> Embedder:
    tenant = provision(stack, upstream, "openai-embeddings")
    models = stack.change(
        "PUT",
        f"/admin/v1/integrations/{tenant.slug}/models",
        {"enabled_models": [MODEL, EMBEDDING_MODEL]},
        of=f"/admin/v1/integrations/{tenant.slug}",
    )
    assert models.status_code == 200, models.text
    client = openai.OpenAI(base_url=f"{stack.url}/v1", api_key=tenant.api_key, max_retries=0)
    return Embedder(client, tenant.slug, "openai", EMBEDDING_MODEL, usage_reported=True)


def _integration_fields(adapter: str, upstream: MockUpstream) -> tuple[str, str, bool, dict[str, object]]:
    """(provider, model, usage reported, integration fields) of an upstream speaking `adapter`."""
    if adapter == "azure":  # conftest points the registry's Azure base URL at the mock's root
        credentials = {
            "api_key": upstream.api_key,
            "resource_name": "my-resource",
            "api_version": "2024-10-21",
            "deployments": {EMBEDDING_MODEL: "prod-embed-small"},
        }
        return "azure", EMBEDDING_MODEL, True, {"credentials": credentials}
    if adapter == "gemini":  # and Gemini's at its own mock
        return "gemini", "gemini-embedding-2", False, {"credentials": {"api_key": GEMINI_KEY}}
    # A custom host speaking OpenAI's format, or declaring Cohere's (serving OpenAI's catalog model).
    fields = {
        "credentials": {"api_key": upstream.api_key},
        "custom_host": upstream.url if adapter == "openai" else upstream.url.removesuffix("/v1"),
        "api_format": adapter,
        "allow_http": True,
    }
    return "openai", EMBEDDING_MODEL, True, fields


def _add_integration(
    stack: KeyrailStack, upstream: MockUpstream, adapter: str, project_id: str, slug: str, **extra: object
) -> tuple[str, str, bool]:
    """(provider, model, usage reported) of a new integration whose upstream speaks `adapter`."""
    provider, model, reported, fields = _integration_fields(adapter, upstream)
    created = stack.admin(
        "POST",
        "/admin/v1/integrations",
        {
            "name": slug,
            "provider": provider,
            "provider_slug": slug,
            "project_scope": [project_id],
            "enabled_models": [model],
            **fields,
            **extra,
        },
    )
    assert created.status_code == 201, created.text
    return provider, model, reported


@pytest.fixture(scope="module", params=["openai", "azure", "gemini", "cohere"])
def any_embedder(request: pytest.FixtureRequest, stack: KeyrailStack, upstream: MockUpstream) -> Embedder:
    """An embeddings integration per adapter offering them, each upstream in its own format."""
    adapter: str = request.param
    tenant = provision(stack, upstream, f"openai-for-{adapter}-embeddings")
    slug = f"{adapter}-embedder"
    provider, model, reported = _add_integration(stack, upstream, adapter, tenant.project_id, slug)
    client = openai.OpenAI(base_url=f"{stack.url}/v1", api_key=tenant.api_key, max_retries=0)
    return Embedder(client, slug, provider, model, reported, adapter, tenant.project_id)


def test_embeddings_answer_validates_and_is_priced_on_the_activity_rows(
    stack: KeyrailStack, any_embedder: Embedder
) -> None:
    e = any_embedder
    raw = e.client.embeddings.with_raw_response.create(
        model=f"{e.slug}/{e.model}", input=TEXTS, encoding_format="float"
    )
    validate_component("CreateEmbeddingResponse", raw.http_response.json())
    response = raw.parse()
    assert [d.index for d in response.data] == [0, 1] and len(response.data[0].embedding) == 8
    assert response.data[0].embedding == mock_embedding(TEXTS[0])
    assert raw.headers["x-keyrail-provider-slug"] == e.slug
    rows = stack.activity_rows(raw.headers["x-keyrail-request-id"])
    (request_row,) = [r for r in rows if r["kind"] == "request"]
    (attempt_row,) = [r for r in rows if r["kind"] == "attempt"]
    price = Catalog.load_default().get(e.provider, e.model)
    assert price is not None
    tokens = 5 if e.usage_reported else 0
    assert response.usage.prompt_tokens == tokens
    for row in (request_row, attempt_row):
        assert row["prompt_tokens"] == tokens and row["completion_tokens"] == 0
        if e.usage_reported and price.input_price_per_mtok is not None:
            expected = tokens * price_decimal(price.input_price_per_mtok) / 1_000_000
            assert (Decimal(row["cost_usd"]), row["cost_status"]) == (expected, "priced")
        else:  # no usage, or no price: unpriced, never $0
            assert (row["cost_usd"], row["cost_status"]) == (None, "unpriced")
    assert attempt_row["usage_source"] == ("reported" if e.usage_reported else "missing")
    assert request_row["provider_slug"] == e.slug and request_row["stream"] == 0


def test_the_sdks_default_base64_answer_decodes_to_the_same_vectors(any_embedder: Embedder) -> None:
    e = any_embedder
    # Without encoding_format the openai SDK asks for base64 (float32) and decodes it itself.
    response = e.client.embeddings.create(model=f"{e.slug}/{e.model}", input="the first text")
    assert response.data[0].embedding == pytest.approx(mock_embedding("the first text"), rel=1e-6)


def test_an_upstream_failure_reaches_the_client_with_the_slug(
    stack: KeyrailStack, upstream: MockUpstream, any_embedder: Embedder
) -> None:
    e = any_embedder
    slug = f"{e.adapter}-embedder-failing"
    # The mocks read faults from a header: sent as the integration's custom header.
    fault = {"custom_auth_headers": {"x-mock-fault": "status=503"}}
    _add_integration(stack, upstream, e.adapter, e.project_id, slug, **fault)
    with pytest.raises(openai.APIStatusError) as caught:
        e.client.embeddings.create(model=f"{slug}/{e.model}", input="hello")
    assert caught.value.status_code == 503 and slug in caught.value.body["message"]  # type: ignore[index]


def test_the_api_v1_alias_routes_embeddings_too(stack: KeyrailStack, embedder: Embedder) -> None:
    client, slug = embedder.client, embedder.slug
    alias = openai.OpenAI(base_url=f"{stack.url}/api/v1", api_key=client.api_key, max_retries=0)
    reply = alias.embeddings.create(model=f"{slug}/{EMBEDDING_MODEL}", input="hello")
    assert len(reply.data) == 1


def test_a_model_of_the_other_kind_is_400_naming_the_right_endpoint(
    stack: KeyrailStack, embedder: Embedder
) -> None:
    client, slug = embedder.client, embedder.slug
    with pytest.raises(openai.BadRequestError) as chat_model:
        client.embeddings.create(model=f"{slug}/{MODEL}", input="hello")
    assert "POST /v1/chat/completions" in chat_model.value.body["message"]  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as embeddings_model:
        client.chat.completions.create(
            model=f"{slug}/{EMBEDDING_MODEL}", messages=[{"role": "user", "content": "hi"}]
        )
    assert "POST /v1/embeddings" in embeddings_model.value.body["message"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("body", "param"),
    [({"model": "x/y"}, "input"), ({"model": "x/y", "input": []}, "input"), ({"input": "hi"}, "model")],
)
def test_invalid_embeddings_bodies_are_400_naming_the_field(
    stack: KeyrailStack, embedder: Embedder, body: dict[str, object], param: str
) -> None:
    response = httpx.post(
        f"{stack.url}/v1/embeddings",
        json=body,
        headers={"Authorization": f"Bearer {embedder.client.api_key}"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
