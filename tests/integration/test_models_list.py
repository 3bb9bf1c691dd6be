"""`GET /v1/models` lists exactly what the key's project can route."""

from __future__ import annotations

import httpx
import openai
import pytest

from keyrail_common.catalog import Catalog
from tests.integration.conftest import MODEL, provision
from tests.support.openai_schema import validate_component
from tests.support.stack import KeyrailStack, MockUpstream

pytestmark = pytest.mark.integration


def test_models_list_is_the_projects_routable_models_and_nothing_else(
    stack: KeyrailStack, upstream: MockUpstream
) -> None:
    mine = provision(stack, upstream, "openai-models-mine")
    theirs = provision(stack, upstream, "openai-models-theirs")
    client = openai.OpenAI(base_url=f"{stack.url}/v1", api_key=mine.api_key, max_retries=0)

    raw = client.models.with_raw_response.list()
    validate_component("ListModelsResponse", raw.http_response.json())
    ids = [m.id for m in raw.parse()]

    assert f"{mine.slug}/{MODEL}" in ids and f"openai/{MODEL}" in ids
    assert not any(i.startswith(f"{theirs.slug}/") for i in ids)  # another project's integration
    # Integrations with project_scope "all" (from other tests) are routable too; nothing else is.
    visible = {i.split("/", 1)[0] for i in ids if not i.startswith("openai/")}
    for slug in visible:
        listed = stack.admin("GET", "/admin/v1/integrations").json()["data"]
        (integration,) = [i for i in listed if i["provider_slug"] == slug]
        assert integration["project_scope"] == "all" or mine.project_id in integration["project_scope"]
    # Every listed model string routes (the list never promises what the router refuses).
    reply = client.chat.completions.create(
        model=f"{mine.slug}/{MODEL}", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices


def test_the_list_follows_the_enabled_models(stack: KeyrailStack, upstream: MockUpstream) -> None:
    tenant = provision(stack, upstream, "openai-models-toggle")
    client = openai.OpenAI(base_url=f"{stack.url}/api/v1", api_key=tenant.api_key, max_retries=0)
    stack.change(
        "PUT",
        f"/admin/v1/integrations/{tenant.slug}/models",
        {"enabled_models": "all"},
        of=f"/admin/v1/integrations/{tenant.slug}",
    )
    everything = {m.id for m in client.models.list() if m.id.startswith(f"{tenant.slug}/")}
    # The catalog as configured now (the shipped one plus any owner entries other tests added).
    configured = stack.admin("GET", "/admin/v1/catalog?provider=openai").json()["data"]
    catalog = {f"{tenant.slug}/{m['model']}" for m in configured}
    assert everything == catalog
    assert catalog >= {f"{tenant.slug}/{m.model}" for m in Catalog.load_default().models_of("openai")}
    stack.change(
        "PUT",
        f"/admin/v1/integrations/{tenant.slug}/models",
        {"enabled_models": "none"},
        of=f"/admin/v1/integrations/{tenant.slug}",
    )
    assert not [m for m in client.models.list() if m.id.startswith(f"{tenant.slug}/")]


def test_models_list_without_a_key_is_401(stack: KeyrailStack) -> None:
    response = httpx.get(f"{stack.url}/v1/models")
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"
