"""/openapi.json and /docs on the running stack, and every documented response checked against
what the real handlers return: each body is validated with JSON Schema against the served
document and, for the admin API, decoded with the Struct the document was generated from and
re-encoded to the very same JSON (no field missing, none extra)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import msgspec
import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator

from keyrail_ingress import admin_model_types, admin_types
from keyrail_ingress.models import ModelList
from keyrail_ingress.openapi import ChatCompletion, Embeddings, ErrorResponse, HealthOk, build_document
from tests.integration.conftest import MODEL
from tests.support.api_docs import documented_operations, pointer, response_schema_pointer, validate
from tests.support.stack import OWNER_TOKEN, KeyrailStack, MockUpstream

pytestmark = pytest.mark.integration

SLUG = "openai-docs-mock"


@pytest.fixture(scope="module")
def document(stack: KeyrailStack) -> dict[str, Any]:
    response = httpx.get(f"{stack.url}/openapi.json", timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    served: dict[str, Any] = response.json()
    return served


class Checker:
    """Checks real responses against the document and remembers which (method, path, status)."""

    def __init__(self, stack: KeyrailStack, document: dict[str, Any]) -> None:
        self.stack = stack
        self.document = document
        self.seen: set[tuple[str, str, int]] = set()

    def check(
        self, response: httpx.Response, method: str, path: str, struct: type | None = None, exact: bool = True
    ) -> httpx.Response:
        """`exact`: the body is the Struct, field for field (the admin API builds it from one);
        otherwise it only decodes as the Struct (the chat completion passes through)."""
        status = response.status_code
        responses = self.document["paths"][path][method.lower()]["responses"]
        assert str(status) in responses, f"{method} {path} answered an undocumented {status}: {response.text}"
        documented = responses[str(status)]
        media = response.headers["content-type"].split(";")[0].strip()
        media_types = {m.split(";")[0].strip(): m for m in documented.get("content", {})}
        assert media in media_types, f"{method} {path} {status}: {media} not in {list(media_types)}"
        if media == "application/json":
            validate(
                self.document,
                response_schema_pointer(method, path, status, media_types[media]),
                response.json(),
            )
        if status < 400:
            missing = set(documented.get("headers", {})) - set(response.headers)
            assert not missing, f"{method} {path}: documented headers missing: {missing}"
        if struct is not None:
            decoded: Any = msgspec.json.decode(response.content, type=struct)
            if exact:
                assert json.loads(msgspec.json.encode(decoded)) == response.json()
        self.seen.add((method, path, status))
        return response

    def admin(
        self,
        method: str,
        path: str,
        template: str,
        struct: type | None,
        body: Any = None,
        token: str = OWNER_TOKEN,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        response = self.stack.admin(method, path, body, token=token, headers=headers)
        return self.check(response, method, template, struct)


def test_openapi_json_and_docs_answer_on_the_stack(stack: KeyrailStack, document: dict[str, Any]) -> None:
    OpenAPIV31SpecValidator(document).validate()
    assert document == build_document()  # the running ingress serves what the code generates
    docs = httpx.get(f"{stack.url}/docs", timeout=10)
    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in docs.headers["content-security-policy"]
    for path, item in document["paths"].items():
        assert f"<code>{path}</code>" in docs.text
        for op in item.values():
            assert f"id='op-{op['operationId']}'" in docs.text


def test_every_documented_operation_answers_as_documented(
    stack: KeyrailStack, upstream: MockUpstream, document: dict[str, Any]
) -> None:
    c = Checker(stack, document)

    # --- admin API: every success response, decoded with its Struct -----------------------------
    t = admin_types
    project = c.admin("POST", "/admin/v1/projects", "/admin/v1/projects", t.Project, {"name": "docs"})
    project_id = project.json()["id"]
    listed = c.admin("GET", "/admin/v1/projects", "/admin/v1/projects", t.ProjectList)
    assert project_id in [p["id"] for p in listed.json()["data"]]
    one = "/admin/v1/projects/{project_id}"
    c.admin("GET", f"/admin/v1/projects/{project_id}", one, t.Project)
    renamed = c.admin(
        "PATCH",
        f"/admin/v1/projects/{project_id}",
        one,
        t.Project,
        {"name": "docs renamed", "version": project.json()["version"]},
    )
    assert renamed.json()["name"] == "docs renamed"
    keys = f"/admin/v1/projects/{project_id}/keys"
    template = "/admin/v1/projects/{project_id}/keys"
    key = c.admin("POST", keys, template, t.ApiKeyCreated, {"name": "docs"}).json()["key"]
    spare = c.admin("POST", keys, template, t.ApiKeyCreated, {"name": "spare"}).json()
    assert key not in c.admin("GET", keys, template, t.ApiKeyList).text
    spare_version = {"If-Match": str(stack.admin("GET", keys).json()["data"][1]["version"])}
    revoked = c.admin(
        "DELETE", f"{keys}/{spare['id']}", template + "/{key_id}", t.ApiKey, headers=spare_version
    )
    assert revoked.json()["revoked"] is True

    user = c.admin(
        "POST",
        "/admin/v1/users",
        "/admin/v1/users",
        t.User,
        {"name": "Docs dev", "project_roles": {project_id: "developer"}},
    ).json()
    c.admin("GET", "/admin/v1/users", "/admin/v1/users", t.UserList)
    user_path, user_template = f"/admin/v1/users/{user['id']}", "/admin/v1/users/{user_id}"
    c.admin("GET", user_path, user_template, t.User)
    patched = c.admin(
        "PATCH", user_path, user_template, t.User, {"email": "dev@example.com", "version": user["version"]}
    )
    token = c.admin(
        "POST",
        f"{user_path}/tokens",
        user_template + "/tokens",
        t.AdminTokenCreated,
        {"name": "docs", "expires_at": "2099-01-01T00:00:00Z"},
    ).json()
    tokens = c.admin("GET", f"{user_path}/tokens", user_template + "/tokens", t.AdminTokenList)
    assert token["token"] not in tokens.text
    assert stack.admin("GET", f"/admin/v1/projects/{project_id}", token=token["token"]).status_code == 200
    c.admin(
        "DELETE",
        f"{user_path}/tokens/{token['id']}",
        user_template + "/tokens/{token_id}",
        t.AdminToken,
        headers={"If-Match": str(tokens.json()["data"][0]["version"])},
    )
    c.admin("DELETE", user_path, user_template, t.User, headers={"If-Match": str(patched.json()["version"])})

    integration = {
        "name": "Docs mock",
        "provider": "openai",
        "provider_slug": SLUG,
        "project_scope": [project_id],
        "credentials": {"api_key": upstream.api_key},
        "custom_host": upstream.url,
        "allow_http": True,
        "enabled_models": [MODEL],
    }
    created = c.admin("POST", "/admin/v1/integrations", "/admin/v1/integrations", t.Integration, integration)
    assert created.json()["custom_host"] == upstream.url and "credentials" not in created.json()
    c.admin("GET", "/admin/v1/integrations", "/admin/v1/integrations", t.IntegrationList)
    slug_path, slug_template = f"/admin/v1/integrations/{SLUG}", "/admin/v1/integrations/{slug}"
    version = c.admin("GET", slug_path, slug_template, t.Integration).json()["version"]
    circuits = c.admin("GET", f"{slug_path}/health", slug_template + "/health", t.IntegrationHealth)
    assert circuits.json()["provider_slug"] == SLUG
    patched_integration = c.admin(
        "PATCH", slug_path, slug_template, t.Integration, {"description": "docs", "version": version}
    )
    version = patched_integration.json()["version"]
    models = c.admin(
        "PUT",
        f"{slug_path}/models",
        slug_template + "/models",
        t.Integration,
        {"enabled_models": [MODEL], "version": version},
    )
    assert models.json()["enabled_models"] == [MODEL]
    rotated = c.admin(
        "PUT",
        f"{slug_path}/credentials",
        slug_template + "/credentials",
        t.CredentialsSet,
        {"credentials": {"api_key": upstream.api_key}, "version": models.json()["version"]},
    )
    assert rotated.json()["version"] == created.json()["credential_version"] + 1
    assert upstream.api_key and upstream.api_key not in rotated.text
    history = c.admin(
        "GET", f"/admin/v1/events?aggregate=integration/{SLUG}", "/admin/v1/events", t.ChangeList
    ).json()["data"]
    assert [e["type"] for e in history] == [
        "CredentialsRotated",
        "IntegrationModelsSet",
        "IntegrationUpdated",
        "IntegrationCreated",
    ]
    assert upstream.api_key not in json.dumps(history)

    # --- virtual models and gateway configs -----------------------------------------------------
    config = {
        "id": "docs-chain",
        "project_scope": [project_id],
        "strategy": "fallback",
        "targets": [{"provider_slug": SLUG, "model": MODEL, "retry": {"attempts": 1}}],
    }
    configs, config_path, config_template = (
        "/admin/v1/configs",
        "/admin/v1/configs/docs-chain",
        ("/admin/v1/configs/{config_id}"),
    )
    made = c.admin("POST", configs, configs, t.GatewayConfig, config).json()
    c.admin("GET", configs, configs, t.GatewayConfigList)
    c.admin("GET", config_path, config_template, t.GatewayConfig)
    replaced = c.admin(
        "PUT",
        config_path,
        config_template,
        t.GatewayConfig,
        {**{k: v for k, v in config.items() if k != "id"}, "fallback_on": [503], "version": made["version"]},
    ).json()
    aliases, alias_path, alias_template = (
        "/admin/v1/virtual-models",
        "/admin/v1/virtual-models/docs",
        ("/admin/v1/virtual-models/{alias}"),
    )
    alias = {"alias": "docs", "project_scope": [project_id], "target": {"config": "docs-chain"}}
    vm = c.admin("POST", aliases, aliases, t.VirtualModel, alias).json()
    c.admin("GET", aliases, aliases, t.VirtualModelList)
    c.admin("GET", alias_path, alias_template, t.VirtualModel)
    c.admin(
        "DELETE", config_path, config_template, ErrorResponse, headers={"If-Match": str(replaced["version"])}
    )
    vm = c.admin(
        "PUT",
        alias_path,
        alias_template,
        t.VirtualModel,
        {
            "project_scope": [project_id],
            "target": {"provider_slug": SLUG, "model": MODEL},
            "version": vm["version"],
        },
    ).json()
    c.admin("DELETE", alias_path, alias_template, t.VirtualModel, headers={"If-Match": str(vm["version"])})
    c.admin(
        "POST",
        configs,
        configs,
        ErrorResponse,
        {**config, "id": "docs-self", "targets": [{"config": "docs-self"}]},
    )  # cycle
    c.admin("POST", configs, configs, ErrorResponse, config)  # taken: 409
    c.admin("GET", "/admin/v1/configs/nope", config_template, ErrorResponse)
    c.admin(
        "DELETE",
        config_path,
        config_template,
        t.GatewayConfig,
        headers={"If-Match": str(replaced["version"])},
    )

    # --- the data plane, both paths, JSON and stream ---------------------------------------------
    chat_body = {"model": f"{SLUG}/{MODEL}", "messages": [{"role": "user", "content": "hello"}]}
    auth = {"Authorization": f"Bearer {key}", "x-keyrail-tags": "docs"}
    request_id = ""
    for path in ("/v1/chat/completions", "/api/v1/chat/completions"):
        answer = httpx.post(f"{stack.url}{path}", json=chat_body, headers=auth, timeout=30)
        c.check(answer, "POST", path, ChatCompletion, exact=False)
        request_id = answer.headers["x-keyrail-request-id"]
    with httpx.stream(
        "POST",
        f"{stack.url}/v1/chat/completions",
        json={**chat_body, "stream": True},
        headers=auth,
        timeout=30,
    ) as streamed:
        streamed.read()
    c.check(streamed, "POST", "/v1/chat/completions")
    datas = [line[len("data: ") :] for line in streamed.text.splitlines() if line.startswith("data: ")]
    assert datas[-1] == "[DONE]" and len(datas) > 1
    for data in datas[:-1]:
        validate(document, pointer("components", "schemas", "ChatCompletionChunk"), json.loads(data))

    embeddings_body = {"model": f"{SLUG}/text-embedding-3-small", "input": "hello"}
    c.check(
        stack.change(
            "PUT", f"{slug_path}/models", {"enabled_models": [MODEL, "text-embedding-3-small"]}, of=slug_path
        ),
        "PUT",
        slug_template + "/models",
        admin_types.Integration,
    )
    for path in ("/v1/embeddings", "/api/v1/embeddings"):
        answer = httpx.post(f"{stack.url}{path}", json=embeddings_body, headers=auth, timeout=30)
        c.check(answer, "POST", path, Embeddings, exact=False)
    gateway = {"Authorization": f"Bearer {key}"}
    for path in ("/v1/models", "/api/v1/models"):
        listed = c.check(httpx.get(f"{stack.url}{path}", headers=gateway, timeout=10), "GET", path, ModelList)
        assert f"{SLUG}/{MODEL}" in [m["id"] for m in listed.json()["data"]]

    # --- custom models and the catalog -----------------------------------------------------------
    m = admin_model_types
    models_path, models_template = f"{slug_path}/custom-models", slug_template + "/custom-models"
    custom = {"model_slug": "ft-docs", "base_model": f"openai/{MODEL}", "input_price_per_mtok": 0.3}
    c.admin("POST", models_path, models_template, m.CustomModel, custom)
    c.admin("POST", models_path, models_template, ErrorResponse, custom)  # taken: 409
    c.admin("POST", models_path, models_template, ErrorResponse, {**custom, "model_slug": "a..b"})  # 400
    c.admin("GET", models_path, models_template, m.CustomModelList)
    one_model, one_template = f"{models_path}/ft-docs", models_template + "/{model_slug}"
    read_model = c.admin("GET", one_model, one_template, m.CustomModel).json()
    c.admin("GET", f"{models_path}/nope", one_template, ErrorResponse)  # 404
    patched = c.admin(
        "PATCH",
        one_model,
        one_template,
        m.CustomModel,
        {"output_price_per_mtok": 1.2, "version": read_model["version"]},
    ).json()
    c.admin("DELETE", one_model, one_template, m.CustomModel, headers={"If-Match": str(patched["version"])})
    catalog = c.admin("GET", "/admin/v1/catalog?provider=openai", "/admin/v1/catalog", m.CatalogList).json()
    assert catalog["data"] and {e["provider"] for e in catalog["data"]} == {"openai"}
    c.admin("GET", "/admin/v1/catalog?provider=nope", "/admin/v1/catalog", ErrorResponse)  # 400
    entry_path, entry_template = (
        "/admin/v1/catalog/openai/gpt-docs-added",
        "/admin/v1/catalog/{provider}/{model}",
    )
    entry = {"schema": "openai", "context_window": 4096, "prices": {"input": 1.0, "output": 2.0}}
    added = c.admin("PUT", entry_path, entry_template, m.CatalogEntry, entry).json()
    c.admin("PUT", entry_path, entry_template, ErrorResponse, {**entry, "schema": "openia"})  # 400
    c.admin("DELETE", "/admin/v1/catalog/openai/gpt-nope", entry_template, ErrorResponse)  # 404
    c.admin(
        "DELETE", entry_path, entry_template, m.CatalogRemoval, headers={"If-Match": str(added["version"])}
    )

    # --- activity and SQL ------------------------------------------------------------------------
    stack.activity_rows(request_id, expected=2)
    rows = c.admin(
        "GET", f"/admin/v1/activity?request_id={request_id}", "/admin/v1/activity", admin_types.ActivityList
    ).json()["data"]
    assert {r["kind"] for r in rows} == {"request", "attempt"} and rows[0]["tags"] == ["docs"]
    costs = c.admin("GET", "/admin/v1/costs?group_by=slug", "/admin/v1/costs", admin_types.CostReport).json()[
        "data"
    ]
    assert any(g["key"] == SLUG and g["requests"] >= 1 for g in costs)
    sql = {
        "sql": "SELECT kind, attempt, cost_usd, ts FROM keyrail.activity FINAL "
        f"WHERE request_id = '{request_id}'"
    }
    result = c.admin("POST", "/admin/v1/sql", "/admin/v1/sql", admin_types.SqlResult, sql).json()
    assert result["columns"] == ["kind", "attempt", "cost_usd", "ts"] and len(result["rows"]) == 2

    # --- an integration disabled: requests naming it are refused, its activity stays -------------
    disabled = c.check(
        stack.change("DELETE", slug_path, of=slug_path), "DELETE", slug_template, admin_types.Integration
    )
    assert disabled.json()["disabled"] is True
    refused = httpx.post(f"{stack.url}/v1/chat/completions", json=chat_body, headers=auth, timeout=30)
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "integration_disabled"
    assert stack.admin("GET", f"/admin/v1/activity?provider_slug={SLUG}").json()["data"]

    # --- service routes --------------------------------------------------------------------------
    for path, struct in (
        ("/healthz", HealthOk),
        ("/metrics", None),
        ("/openapi.json", None),
        ("/docs", None),
    ):
        c.check(httpx.get(f"{stack.url}{path}", timeout=10), "GET", path, struct)

    # --- errors: the OpenAI-shaped body, as documented per operation -----------------------------
    e = ErrorResponse
    c.admin("POST", "/admin/v1/projects", "/admin/v1/projects", e, {"nmae": "typo"})
    c.admin("GET", "/admin/v1/projects", "/admin/v1/projects", e, token="kra-not-a-token")
    c.admin("POST", "/admin/v1/projects/proj_nope/keys", template, e, {"name": "x"})
    c.admin("POST", "/admin/v1/users", "/admin/v1/users", e, {"name": "x"}, token=key)  # a gateway key
    c.admin("PATCH", f"/admin/v1/projects/{project_id}", one, e, {"name": "no version"})  # 428
    c.admin("PATCH", f"/admin/v1/projects/{project_id}", one, e, {"name": "stale", "version": 1})  # 409
    c.admin("POST", "/admin/v1/integrations", "/admin/v1/integrations", e, integration)  # slug taken: 409
    c.admin(
        "POST", "/admin/v1/integrations", "/admin/v1/integrations", e, {**integration, "provider_slug": "X"}
    )
    c.admin("GET", "/admin/v1/activity?limit=lots", "/admin/v1/activity", e)
    c.admin("GET", "/admin/v1/costs?group_by=provider", "/admin/v1/costs", e)
    c.admin("POST", "/admin/v1/sql", "/admin/v1/sql", e, {"sql": "SELEKT nothing"})
    wrong_key = {"Authorization": "Bearer kr-not-a-key"}
    c.check(
        httpx.post(f"{stack.url}/v1/chat/completions", json=chat_body, headers=wrong_key),
        "POST",
        "/v1/chat/completions",
        e,
    )
    unknown = {**chat_body, "model": "openai/gpt-no-such-model"}
    c.check(
        httpx.post(f"{stack.url}/v1/chat/completions", json=unknown, headers=auth),
        "POST",
        "/v1/chat/completions",
        e,
    )
    for status in (400, 401, 404, 409, 428):
        assert status in {s for m, p, s in c.seen if p.startswith("/admin/")}

    # Every operation of the document had its success answer checked on the real stack.
    succeeded = {(m, p) for m, p, s in c.seen if s < 300}
    assert succeeded == documented_operations(document)
