"""The admin API's checks of catalog entries and custom models (pure: each answers the 400 that
names the field, or the normalised value)."""

from __future__ import annotations

import json

import pytest
from starlette.responses import Response

from keyrail_common.catalog import seed_models
from keyrail_common.registry import load_registry
from keyrail_ingress.admin.catalog import MODEL_NAME
from keyrail_ingress.admin.custom_models import MODEL_SLUG, check_model, spoken_schemas
from keyrail_ingress.admin.integration_checks import check_endpoint, check_models
from tests.unit.router.test_resolve import integration, state_with

REGISTRY = load_registry()


def refusal(result: object) -> tuple[int, str, str]:
    assert isinstance(result, Response), f"expected a refusal, got {result!r}"
    error = json.loads(bytes(result.body))["error"]
    return result.status_code, error["param"], error["message"]


@pytest.mark.parametrize("slug", ["ft-classifier-v3", "Meta-Llama-3.1-8B-Instruct", "m", "qwen2.5:7b", "a@1"])
def test_well_formed_model_slugs(slug: str) -> None:
    assert MODEL_SLUG.match(slug)


@pytest.mark.parametrize("slug", ["", "-x", "a..b", "a.", "a/b", "a b", "a*", "a>", "x" * 129, "é"])
def test_malformed_model_slugs(slug: str) -> None:
    assert not MODEL_SLUG.match(slug)


def test_every_shipped_model_name_is_well_formed_for_the_catalog_api() -> None:
    assert [m.id for m in seed_models() if not MODEL_NAME.match(m.model)] == []
    assert MODEL_NAME.match("openai/gpt-oss-120b") and not MODEL_NAME.match("gpt..4")


def test_an_unknown_base_model_is_refused_naming_base_model() -> None:
    state = state_with(integration("openai-prod"))
    status, param, message = refusal(
        check_model(state, REGISTRY, state.integrations["openai-prod"], "openai/nope", "")
    )
    assert (status, param) == (400, "base_model") and "GET /admin/v1/catalog" in message


def test_a_base_model_of_a_schema_the_integration_does_not_speak_is_refused() -> None:
    state = state_with(integration("openai-prod"))
    result = check_model(
        state, REGISTRY, state.integrations["openai-prod"], "anthropic/claude-sonnet-4-6", ""
    )
    status, param, message = refusal(result)
    assert (status, param) == (400, "base_model") and "'anthropic'" in message and "custom_host" in message


def test_azure_speaks_openais_schema_and_a_custom_host_speaks_its_format() -> None:
    state = state_with(
        integration("azure-prod", provider="azure"),
        integration("gw", custom_host="https://gw.example.com/v1", api_format="anthropic"),
    )
    assert "openai" in spoken_schemas(state, REGISTRY, state.integrations["azure-prod"])
    assert check_model(state, REGISTRY, state.integrations["azure-prod"], "openai/gpt-4o-mini", "") == ""
    assert spoken_schemas(state, REGISTRY, state.integrations["gw"]) == {"anthropic"}


def test_a_custom_models_own_host_is_checked_like_an_integrations() -> None:
    state = state_with(integration("openai-prod"))
    prod = state.integrations["openai-prod"]
    assert check_model(state, REGISTRY, prod, "openai/gpt-4o-mini", "https://ft.example.com/v1/") == (
        "https://ft.example.com/v1"
    )
    for host in ("http://ft.example.com/v1", "https://169.254.169.254/v1", "ftp://x"):
        status, param, _ = refusal(check_model(state, REGISTRY, prod, "openai/gpt-4o-mini", host))
        assert (status, param) == (400, "custom_host"), host
    # Gemini's schema is no custom host format.
    status, param, _ = refusal(
        check_model(state, REGISTRY, prod, "gemini/gemini-2.5-flash", "https://x.example/v1")
    )
    assert (status, param) == (400, "base_model")


def test_plain_http_is_allowed_where_the_integration_allows_it() -> None:
    state = state_with(integration("local", custom_host="http://127.0.0.1:9/v1", allow_http=True))
    host = check_model(
        state, REGISTRY, state.integrations["local"], "openai/gpt-4o-mini", "http://127.0.0.1:8/v1"
    )
    assert host == "http://127.0.0.1:8/v1"


def test_a_model_outside_the_catalog_in_enabled_models_says_how_to_register_it() -> None:
    state = state_with()
    _, param, message = refusal(check_models(state.catalog, "openai", ["my-ft"], "openai-prod"))
    assert param == "enabled_models" and "POST /admin/v1/integrations/openai-prod/custom-models" in message
    _, _, creating = refusal(check_models(state.catalog, "openai", ["my-ft"]))
    assert "/custom-models once the integration exists" in creating


def test_a_vertex_custom_host_speaks_vertex_by_default_and_nothing_else() -> None:
    vertex = REGISTRY.get("vertex")
    assert vertex is not None
    psc = "https://us-central1-aiplatform-psc.p.googleapis.com/"
    assert check_endpoint(REGISTRY, vertex, psc, "", False) == (psc.rstrip("/"), "vertex")
    assert check_endpoint(REGISTRY, vertex, psc, "vertex", False) == (psc.rstrip("/"), "vertex")
    # Vertex's service account is no OpenAI key: an OpenAI-format custom host could not use it.
    status, param, message = refusal(check_endpoint(REGISTRY, vertex, psc, "openai", False))
    assert (status, param) == (400, "api_format")
    assert "speaks 'vertex' only" in message and "leave api_format out" in message


def test_a_vertex_custom_host_speaks_what_vertex_itself_speaks_for_custom_models() -> None:
    state = state_with(
        integration("vertex-psc", provider="vertex", custom_host="https://psc.example", api_format="vertex")
    )
    psc = state.integrations["vertex-psc"]
    assert {"vertex", "gemini", "anthropic"} <= spoken_schemas(state, REGISTRY, psc)
    assert check_model(state, REGISTRY, psc, "vertex/gemini-2.5-flash", "") == ""
