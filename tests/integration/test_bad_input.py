"""Bad input of every kind gets a clear OpenAI-shaped error, and the gateway keeps serving."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from keyrail_cli.mock_upstream import DEFAULT_REPLY
from tests.integration.conftest import MODEL, Tenant, provision
from tests.support.openai_schema import validate_component
from tests.support.stack import KeyrailStack, MockUpstream

pytestmark = pytest.mark.integration


def _post(stack: KeyrailStack, key: str, content: bytes | str) -> httpx.Response:
    return httpx.post(
        f"{stack.url}/v1/chat/completions",
        content=content,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        timeout=30,
    )


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    validate_component("ErrorResponse", body)
    assert response.headers["x-keyrail-request-id"].startswith("req_")
    return body["error"]


def _still_serving(client: openai.OpenAI, tenant: Tenant) -> None:
    completion = client.chat.completions.create(
        model=tenant.model, messages=[{"role": "user", "content": "ok?"}]
    )
    assert completion.choices[0].message.content == DEFAULT_REPLY


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"{not json", None),
        (b"", None),
        (json.dumps({"model": "x/y"}), "messages"),
        (json.dumps({"messages": [{"role": "user", "content": "hi"}]}), "model"),
        (json.dumps({"model": "x/y", "messages": "hello"}), "messages"),
        (json.dumps({"model": "x/y", "messages": []}), "messages"),
        (json.dumps({"model": 42, "messages": [{"role": "user", "content": "hi"}]}), "model"),
        (json.dumps(["not", "an", "object"]), None),
    ],
)
def test_invalid_body_is_400_naming_the_field(
    stack: KeyrailStack, tenant: Tenant, client: openai.OpenAI, body: bytes | str, param: str | None
) -> None:
    error = _error(_post(stack, tenant.api_key, body), 400)
    assert error["type"] == "invalid_request_error"
    if param is not None:
        assert error["param"] == param
        assert param in error["message"]
    _still_serving(client, tenant)


def test_unknown_api_key_is_401(stack: KeyrailStack, tenant: Tenant, client: openai.OpenAI) -> None:
    body = json.dumps({"model": tenant.model, "messages": [{"role": "user", "content": "hi"}]})
    error = _error(_post(stack, "kr-not-a-real-key", body), 401)
    assert error["code"] == "invalid_api_key"
    missing = httpx.post(f"{stack.url}/v1/chat/completions", content=body, timeout=10)
    _error(missing, 401)
    wrong_sdk = openai.OpenAI(base_url=f"{stack.url}/v1", api_key="kr-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong_sdk.chat.completions.create(model=tenant.model, messages=[{"role": "user", "content": "hi"}])
    _still_serving(client, tenant)


@pytest.mark.parametrize("model", ["no-such-model", "openai-test-mock/gpt-unknown-9", "nobody/gpt-4o"])
def test_unknown_model_is_404_saying_how_to_fix_it(
    stack: KeyrailStack, tenant: Tenant, client: openai.OpenAI, model: str
) -> None:
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]})
    error = _error(_post(stack, tenant.api_key, body), 404)
    assert error["code"] == "model_not_found" and error["param"] == "model"
    assert "custom" in error["message"] or "<provider-slug>/<model>" in error["message"]
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    _still_serving(client, tenant)


def test_integration_outside_the_keys_project_is_403(
    stack: KeyrailStack, upstream: MockUpstream, tenant: Tenant, client: openai.OpenAI
) -> None:
    other = provision(stack, upstream, "openai-other-project")
    body = json.dumps({"model": tenant.model, "messages": [{"role": "user", "content": "hi"}]})
    error = _error(_post(stack, other.api_key, body), 403)
    assert error["code"] == "integration_out_of_scope"
    assert tenant.slug in error["message"] and other.project_id in error["message"]
    disabled = json.dumps({"model": f"{tenant.slug}/gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
    assert _error(_post(stack, tenant.api_key, disabled), 403)["code"] == "model_not_enabled"
    _still_serving(client, tenant)


@pytest.mark.parametrize(("fault", "status"), [(503, 503), (500, 502), (429, 429), (400, 400)])
def test_upstream_errors_reach_the_client_with_the_slug_and_are_logged(
    stack: KeyrailStack, tenant: Tenant, client: openai.OpenAI, fault: int, status: int
) -> None:
    body = json.dumps(
        {"model": tenant.model, "messages": [{"role": "user", "content": "hi"}], "mock": {"status": fault}}
    )
    response = _post(stack, tenant.api_key, body)
    error = _error(response, status)
    assert tenant.slug in error["message"] and f"HTTP {fault}" in error["message"]
    rows = stack.activity_rows(response.headers["x-keyrail-request-id"])
    assert {r["kind"] for r in rows} == {"request", "attempt"}
    assert all(r["status"] == "error" and r["http_status"] == status for r in rows)
    _still_serving(client, tenant)


def test_upstream_connection_dropped_is_502(
    stack: KeyrailStack, tenant: Tenant, client: openai.OpenAI
) -> None:
    body = json.dumps(
        {"model": tenant.model, "messages": [{"role": "user", "content": "hi"}], "mock": {"drop": "before"}}
    )
    error = _error(_post(stack, tenant.api_key, body), 502)
    assert error["code"] == "upstream_unreachable"
    _still_serving(client, tenant)


def test_stream_cut_midway_ends_with_an_error_event(
    stack: KeyrailStack, tenant: Tenant, client: openai.OpenAI
) -> None:
    with pytest.raises(openai.APIError):
        stream = client.chat.completions.create(
            model=tenant.model,
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            extra_body={"mock": {"drop": "midstream"}},
        )
        for _ in stream:
            pass
    _still_serving(client, tenant)


def test_stream_that_fails_before_any_chunk_is_a_plain_error_response(
    stack: KeyrailStack, tenant: Tenant, client: openai.OpenAI
) -> None:
    body = json.dumps(
        {
            "model": tenant.model,
            "messages": [{"role": "user", "content": "hi"}],
            "stream": True,
            "mock": {"status": 503},
        }
    )
    _error(_post(stack, tenant.api_key, body), 503)
    _still_serving(client, tenant)


def test_admin_rejects_bad_integrations_without_applying_anything(
    stack: KeyrailStack, upstream: MockUpstream, tenant: Tenant
) -> None:
    good = {
        "name": "x",
        "provider": "openai",
        "provider_slug": "openai-never-created",
        "credentials": {"api_key": "sk-x"},
        "custom_host": upstream.url,
        "allow_http": True,
        "enabled_models": [MODEL],
    }
    cases = [
        ({**good, "provider_slug": "Bad Slug!"}, "provider_slug"),
        ({**good, "allow_http": False}, "custom_host"),
        ({**good, "custom_host": "http://169.254.169.254/latest", "allow_http": True}, "custom_host"),
        ({**good, "credentials": {}}, "credentials.api_key"),
        ({**good, "surprise": 1}, "surprise"),
        ({**good, "project_scope": ["proj_missing"]}, "project_scope"),
        ({**good, "provider": "nonesuch", "custom_host": ""}, "provider"),
    ]
    for payload, param in cases:
        response = stack.admin("POST", "/admin/v1/integrations", payload)
        assert response.status_code == 400, (param, response.text)
        assert response.json()["error"]["param"] == param
    duplicate = stack.admin("POST", "/admin/v1/integrations", {**good, "provider_slug": tenant.slug})
    assert duplicate.status_code == 409
    slugs = [i["provider_slug"] for i in stack.admin("GET", "/admin/v1/integrations").json()["data"]]
    assert "openai-never-created" not in slugs
    assert stack.admin("POST", "/admin/v1/projects", {"name": "x"}, token="kra-wrong").status_code == 401
    assert stack.admin("POST", "/admin/v1/projects", {"nom": "x"}).status_code == 400
    assert stack.admin("POST", "/admin/v1/projects/proj_missing/keys", {"name": "x"}).status_code == 404


def test_sql_is_read_only(stack: KeyrailStack) -> None:
    response = stack.admin("POST", "/admin/v1/sql", {"sql": "DROP TABLE keyrail.activity"})
    assert response.status_code == 400
    assert "readonly" in response.json()["error"]["message"].lower()
    count = stack.admin("POST", "/admin/v1/sql", {"sql": "SELECT count() FROM keyrail.activity"})
    assert count.status_code == 200 and count.json()["rows"][0][0] >= 0


def test_readonly_sql_does_not_make_the_activity_log_read_only_regression(
    stack: KeyrailStack, tenant: Tenant, client: openai.OpenAI
) -> None:
    """Regression: chDB kept a query's readonly setting for the session, so inserts failed afterwards."""
    assert stack.admin("POST", "/admin/v1/sql", {"sql": "SELECT 1"}).status_code == 200
    raw = client.chat.completions.with_raw_response.create(
        model=tenant.model, messages=[{"role": "user", "content": "after sql"}]
    )
    rows = stack.activity_rows(raw.headers["x-keyrail-request-id"])
    assert {r["kind"] for r in rows} == {"request", "attempt"}


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/v1/chat/completions", 405), ("POST", "/v1/no-such-endpoint", 404), ("GET", "/v2/models", 404)],
)
def test_unknown_routes_and_methods_get_openai_shaped_errors(
    stack: KeyrailStack, tenant: Tenant, method: str, path: str, status: int
) -> None:
    response = httpx.request(
        method, f"{stack.url}{path}", headers={"Authorization": f"Bearer {tenant.api_key}"}
    )
    assert response.status_code == status
    validate_component("ErrorResponse", response.json())


def test_large_bodies_cross_the_bus_and_oversized_ones_are_413(
    stack: KeyrailStack, tenant: Tenant, client: openai.OpenAI
) -> None:
    big = "x" * (3 * 1024 * 1024)  # an inline image is easily this large; NATS' default limit is 1 MiB
    completion = client.chat.completions.create(
        model=tenant.model, messages=[{"role": "user", "content": big}]
    )
    assert completion.choices[0].message.content == DEFAULT_REPLY
    huge = json.dumps(
        {"model": tenant.model, "messages": [{"role": "user", "content": "x" * (17 * 1024 * 1024)}]}
    )
    error = _error(_post(stack, tenant.api_key, huge), 413)
    assert error["code"] == "request_too_large" and "max_payload" in error["message"]
    _still_serving(client, tenant)
