"""`POST /v1/embeddings` through the whole stack with the official `openai` SDK."""

from __future__ import annotations

from decimal import Decimal

import httpx
import openai
import pytest

from keyrail_common.catalog import Catalog
from keyrail_common.cost import price_decimal
from tests.integration.conftest import MODEL, provision
from tests.support.openai_schema import validate_component
from tests.support.stack import KeyrailStack, MockUpstream

pytestmark = pytest.mark.integration

EMBEDDING_MODEL = "text-embedding-3-small"


@pytest.fixture(scope="module")
def embedder(stack: KeyrailStack, upstream: MockUpstream) -> tuple[openai.OpenAI, str]:
    tenant = provision(stack, upstream, "openai-embeddings")
    models = stack.change(
        "PUT",
        f"/admin/v1/integrations/{tenant.slug}/models",
        {"enabled_models": [MODEL, EMBEDDING_MODEL]},
        of=f"/admin/v1/integrations/{tenant.slug}",
    )
    assert models.status_code == 200, models.text
    client = openai.OpenAI(base_url=f"{stack.url}/v1", api_key=tenant.api_key, max_retries=0)
    return client, tenant.slug


def test_embeddings_answer_validates_and_is_priced_on_the_activity_rows(
    stack: KeyrailStack, embedder: tuple[openai.OpenAI, str]
) -> None:
    client, slug = embedder
    raw = client.embeddings.with_raw_response.create(
        model=f"{slug}/{EMBEDDING_MODEL}", input=["the first text", "another one"]
    )
    validate_component("CreateEmbeddingResponse", raw.http_response.json())
    response = raw.parse()
    assert [d.index for d in response.data] == [0, 1] and len(response.data[0].embedding) == 8
    assert raw.headers["x-keyrail-provider-slug"] == slug
    rows = stack.activity_rows(raw.headers["x-keyrail-request-id"])
    (request_row,) = [r for r in rows if r["kind"] == "request"]
    (attempt_row,) = [r for r in rows if r["kind"] == "attempt"]
    price = Catalog.load_default().get("openai", EMBEDDING_MODEL)
    assert price is not None
    for row in (request_row, attempt_row):
        assert row["prompt_tokens"] == 5 and row["completion_tokens"] == 0
        assert Decimal(row["cost_usd"]) == 5 * price_decimal(price.input_price_per_mtok) / 1_000_000
    assert request_row["provider_slug"] == slug and request_row["stream"] == 0


def test_the_api_v1_alias_routes_embeddings_too(
    stack: KeyrailStack, embedder: tuple[openai.OpenAI, str]
) -> None:
    client, slug = embedder
    alias = openai.OpenAI(base_url=f"{stack.url}/api/v1", api_key=client.api_key, max_retries=0)
    reply = alias.embeddings.create(model=f"{slug}/{EMBEDDING_MODEL}", input="hello")
    assert len(reply.data) == 1


def test_a_model_of_the_other_kind_is_400_naming_the_right_endpoint(
    stack: KeyrailStack, embedder: tuple[openai.OpenAI, str]
) -> None:
    client, slug = embedder
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
    stack: KeyrailStack, embedder: tuple[openai.OpenAI, str], body: dict[str, object], param: str
) -> None:
    client, _ = embedder
    response = httpx.post(
        f"{stack.url}/v1/embeddings", json=body, headers={"Authorization": f"Bearer {client.api_key}"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_an_upstream_failure_reaches_the_client_with_the_slug(
    embedder: tuple[openai.OpenAI, str],
) -> None:
    client, slug = embedder
    with pytest.raises(openai.APIStatusError) as caught:
        client.embeddings.create(
            model=f"{slug}/{EMBEDDING_MODEL}", input="hello", extra_body={"mock": {"status": 503}}
        )
    assert caught.value.status_code == 503 and slug in caught.value.body["message"]  # type: ignore[index]
