"""The OpenAI-compatible family end to end with the official `openai` SDK: for every provider the
registry serves with the OpenAI adapter, an integration without a custom host reaches the registry's
base URL (pointed at the mock by conftest), plain and streaming, with its catalog model sent upstream
and its provider, tokens and catalog price on the activity rows."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import openai
import pytest

from keyrail_cli.mock_upstream import DEFAULT_REPLY
from keyrail_common.catalog import Catalog
from keyrail_common.cost import attempt_cost
from keyrail_common.messages import Usage
from keyrail_common.registry import Operation
from tests.integration.conftest import OPENAI_COMPATIBLE_FAMILY
from tests.support.stack import KeyrailStack, MockUpstream

pytestmark = pytest.mark.integration

CATALOG = Catalog.load_default()


def first_chat_model(provider: str) -> str:
    return next(m.model for m in CATALOG.models_of(provider) if m.operation is Operation.CHAT)


def expected_cost(provider: str, model: str, row: dict[str, Any]) -> Decimal | None:
    """The row's exact cost at the catalog's prices; None (unpriced, never $0) without them."""
    entry = CATALOG.get(provider, model)
    assert entry is not None
    usage = Usage(prompt_tokens=row["prompt_tokens"], completion_tokens=row["completion_tokens"])
    return attempt_cost(entry.prices, usage)


@pytest.fixture(scope="module", params=OPENAI_COMPATIBLE_FAMILY)
def family_client(
    request: pytest.FixtureRequest, stack: KeyrailStack, upstream: MockUpstream
) -> tuple[openai.OpenAI, str, str, str]:
    provider: str = request.param
    model = first_chat_model(provider)
    project = stack.admin("POST", "/admin/v1/projects", {"name": f"family {provider}"})
    assert project.status_code == 201, project.text
    key = stack.admin("POST", f"/admin/v1/projects/{project.json()['id']}/keys", {"name": "tests"})
    assert key.status_code == 201, key.text
    slug = f"{provider}-family"
    created = stack.admin(
        "POST",
        "/admin/v1/integrations",
        {
            "name": f"{provider} without a custom host",
            "provider": provider,
            "provider_slug": slug,
            "project_scope": [project.json()["id"]],
            "credentials": {"api_key": upstream.api_key},
            "enabled_models": [model],
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["custom_host"] is None and created.json()["api_format"] == "openai"
    client = openai.OpenAI(base_url=f"{stack.url}/v1", api_key=key.json()["key"], max_retries=0)
    return client, provider, slug, model


def test_an_answer_comes_from_the_registry_base_url_with_the_catalog_model(
    stack: KeyrailStack, family_client: tuple[openai.OpenAI, str, str, str]
) -> None:
    client, provider, slug, model = family_client

    raw = client.chat.completions.with_raw_response.create(
        model=f"{slug}/{model}", messages=[{"role": "user", "content": "say hello to the family"}]
    )

    completion = raw.parse()
    assert completion.choices[0].message.content == DEFAULT_REPLY
    assert completion.model == model  # the mock echoes the model it was sent: the catalog's upstream id
    assert raw.headers["x-keyrail-provider-slug"] == slug
    assert completion.usage is not None
    rows = stack.activity_rows(raw.headers["x-keyrail-request-id"])
    assert {r["kind"] for r in rows} == {"attempt", "request"}
    for row in rows:
        assert (row["provider"], row["provider_slug"], row["model"]) == (provider, slug, model)
        assert (row["prompt_tokens"], row["completion_tokens"]) == (
            completion.usage.prompt_tokens,
            completion.usage.completion_tokens,
        )
        expected = expected_cost(provider, model, row)
        assert row["cost_usd"] == (None if expected is None else format(expected.normalize(), "f"))
        assert row["cost_status"] == ("unpriced" if expected is None else "priced")


def test_a_stream_has_the_reply_as_deltas_and_the_usage_chunk_when_asked(
    stack: KeyrailStack, family_client: tuple[openai.OpenAI, str, str, str]
) -> None:
    client, provider, slug, model = family_client

    with client.chat.completions.with_streaming_response.create(
        model=f"{slug}/{model}",
        messages=[{"role": "user", "content": "stream it"}],
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        request_id = response.headers["x-keyrail-request-id"]
        chunks = list(response.parse())

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == DEFAULT_REPLY
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    (attempt,) = [r for r in stack.activity_rows(request_id) if r["kind"] == "attempt"]
    assert (attempt["provider"], attempt["stream"]) == (provider, 1)
    assert attempt["completion_tokens"] == chunks[-1].usage.completion_tokens > 0
