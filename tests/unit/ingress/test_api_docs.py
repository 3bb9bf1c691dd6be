"""The ingress's OpenAPI document and /docs page, built without any I/O (no NATS, no Vault).

The app is created as `keyrail ingress` creates it but its lifespan never runs, so only routes
that need no bus are called here; tests/integration/test_api_docs.py checks the running stack.
"""

from __future__ import annotations

import copy
import json
import re
import warnings
from html.parser import HTMLParser
from typing import Any

import msgspec
import pytest
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from openapi_spec_validator import OpenAPIV31SpecValidator
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
from starlette.responses import Response
from starlette.testclient import TestClient

from keyrail_common.clickhouse import ACTIVITY_COLUMNS
from keyrail_common.errors import openai_error_body
from keyrail_common.failures import error_type_for
from keyrail_common.settings import load_settings
from keyrail_ingress import admin_types, openapi
from keyrail_ingress.api_reference import render_html
from keyrail_ingress.app import DATA_PLANE, build_api, create_app, method_not_allowed_route
from keyrail_ingress.openapi import ApiDocs, ErrorResponse, build_document
from tests.support.api_docs import (
    documented_operations,
    pointer,
    served_routes,
    validate,
    validator,
)

JSON_MEDIA = ("application/json",)


@pytest.fixture(scope="module")
def api() -> FastAPI:
    return build_api()


@pytest.fixture(scope="module")
def document(api: FastAPI) -> dict[str, Any]:
    docs: ApiDocs = api.state.api_docs
    return docs.document


# --- the document is OpenAPI 3.1 ------------------------------------------------------------------


def test_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1.")
    OpenAPIV31SpecValidator(document).validate()


def test_the_validator_rejects_a_broken_document(document: dict[str, Any]) -> None:
    """The check above can fail: a response without its description, a parameter without `in`,
    a dangling $ref."""
    broken = copy.deepcopy(document)
    del broken["paths"]["/admin/v1/projects"]["post"]["responses"]["201"]["description"]
    with pytest.raises(OpenAPIValidationError):
        OpenAPIV31SpecValidator(broken).validate()
    broken = copy.deepcopy(document)
    del broken["paths"]["/admin/v1/activity"]["get"]["parameters"][0]["in"]
    with pytest.raises(OpenAPIValidationError):
        OpenAPIV31SpecValidator(broken).validate()
    dangling = copy.deepcopy(document)
    schema = dangling["paths"]["/admin/v1/projects"]["get"]["responses"]["200"]["content"]["application/json"]
    schema["schema"] = {"$ref": "#/components/schemas/NoSuchSchema"}
    with pytest.raises(Exception, match="NoSuchSchema"):
        OpenAPIV31SpecValidator(dangling).validate()


def test_document_is_the_one_the_app_serves_and_is_cached(api: FastAPI, document: dict[str, Any]) -> None:
    assert api.openapi() is document  # FastAPI's own generator is replaced, not merely hidden
    assert document == build_document()  # deterministic: the same types give the same document
    docs: ApiDocs = api.state.api_docs
    assert msgspec.json.decode(docs.json) == document


# --- every route is documented, method by method --------------------------------------------------


def test_every_served_route_is_documented_and_nothing_else(api: FastAPI, document: dict[str, Any]) -> None:
    served, hidden = served_routes(api, DATA_PLANE)
    documented = documented_operations(document)
    assert served - documented == set(), "routes served but not documented in openapi.OPERATIONS"
    assert documented - served == set(), "documented operations no route serves"
    # Only the data plane's 405 catch-alls may stay out of the schema.
    assert {(r.path, r.endpoint) for r in hidden} == {(p, method_not_allowed_route) for p in DATA_PLANE}


def test_an_undocumented_route_is_caught() -> None:
    """The comparison above fails for a new route nobody documented."""
    api = build_api()

    async def rotate(request: Any) -> Response:
        return Response()

    api.add_api_route("/admin/v1/integrations/{slug}/undocumented", rotate, methods=["PUT"])
    served, _ = served_routes(api, DATA_PLANE)
    missing = served - documented_operations(api.state.api_docs.document)
    assert missing == {("PUT", "/admin/v1/integrations/{slug}/undocumented")}


def test_create_app_serves_the_data_plane_paths_the_test_compares() -> None:
    app = create_app(load_settings())
    assert set(app._routes) == set(DATA_PLANE)  # the fast path's own table


def test_fastapi_generator_has_no_duplicate_operation_ids(api: FastAPI) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Duplicate Operation ID" is a UserWarning
        generated = get_openapi(title="Keyrail", version="0", routes=api.routes)
    ids = [op["operationId"] for item in generated["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    assert "/v1/chat/completions" not in generated["paths"]  # the 405 catch-alls are not operations


def test_operation_ids_are_unique(document: dict[str, Any]) -> None:
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids)) == len(openapi.OPERATIONS)


# --- schemas, examples, security ------------------------------------------------------------------


def _contents(document: dict[str, Any]) -> list[tuple[str, Any]]:
    """(pointer to the schema, example) of every JSON body and parameter in the document."""
    found = []
    for path, item in document["paths"].items():
        for method, op in item.items():
            bodies: list[tuple[tuple[str, ...], Any]] = []
            if "requestBody" in op:
                bodies.append((("requestBody",), op["requestBody"]["content"]))
            for status, response in op["responses"].items():
                bodies.append((("responses", status), response.get("content", {})))
            for where, content in bodies:
                for media, body in content.items():
                    if media in JSON_MEDIA:
                        found.append(
                            (
                                pointer("paths", path, method, *where, "content", media, "schema"),
                                body["example"],
                            )
                        )
            for i, parameter in enumerate(op.get("parameters", [])):
                found.append(
                    (pointer("paths", path, method, "parameters", i, "schema"), parameter["example"])
                )
    for name, header in document["components"]["headers"].items():
        found.append((pointer("components", "headers", name, "schema"), header["example"]))
    return found


def test_every_example_matches_its_schema(document: dict[str, Any]) -> None:
    checked = _contents(document)
    assert len(checked) > 40
    for at, example in checked:
        validate(document, at, example)


def test_a_wrong_example_would_be_caught(document: dict[str, Any]) -> None:
    at = pointer(
        "paths", "/admin/v1/projects", "post", "responses", "201", "content", "application/json", "schema"
    )
    assert not validator(document, at).is_valid({"id": "proj_1", "name": "demo"})  # org_id missing
    at = pointer(
        "paths", "/admin/v1/projects", "post", "requestBody", "content", "application/json", "schema"
    )
    assert not validator(document, at).is_valid({"name": "demo", "nmae": "typo"})  # forbid_unknown_fields


def test_schemas_come_from_the_handlers_structs(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for struct in (
        admin_types.Project,
        admin_types.Integration,
        admin_types.ApiKeyCreated,
        admin_types.SqlResult,
    ):
        assert list(schemas[struct.__name__]["properties"]) == list(struct.__struct_fields__)
        assert set(schemas[struct.__name__]["required"]) == set(struct.__struct_fields__)
    assert schemas["NewIntegration"]["additionalProperties"] is False
    assert schemas["NewIntegration"]["required"] == ["name", "provider", "provider_slug", "credentials"]
    head = schemas["ChatRequestHead"]
    assert list(head["properties"]) == ["model", "messages", "stream", "stream_options", "metadata"]
    assert "additionalProperties" not in head  # everything else passes through
    ops = document["paths"]
    assert ops["/admin/v1/sql"]["post"]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SqlQuery"
    }


def test_every_error_response_is_openai_shaped(document: dict[str, Any]) -> None:
    statuses = set()
    for item in document["paths"].values():
        for op in item.values():
            if op["operationId"] == "healthz":
                continue  # its 503 is the health report, not an error body
            for status, response in op["responses"].items():
                if int(status) >= 400:
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (
                        op["operationId"],
                        status,
                    )
                    statuses.add(int(status))
    assert {400, 401, 403, 404, 409, 413, 429, 500, 502, 503, 504} <= statuses
    error = document["components"]["schemas"]["Error"]
    assert list(error["properties"]) == ["message", "type", "param", "code"]


@pytest.mark.parametrize("status", [400, 401, 404, 429, 502, 504])
@pytest.mark.parametrize("param", [None, "model"])
def test_error_response_struct_is_exactly_error_body(status: int, param: str | None) -> None:
    body = openai_error_body("what went wrong", error_type_for(status), param, "some_code")
    decoded = msgspec.json.decode(body, type=ErrorResponse)
    assert json.loads(msgspec.json.encode(decoded)) == json.loads(body)


def test_activity_entry_has_exactly_the_activity_columns() -> None:
    """The activity handler converts `SELECT *` rows into ActivityEntry."""
    assert admin_types.ActivityEntry.__struct_fields__ == ACTIVITY_COLUMNS


def test_security_per_plane(document: dict[str, Any]) -> None:
    for path, item in document["paths"].items():
        for op in item.values():
            if path.startswith("/admin/"):
                assert op["security"] == [{"adminToken": []}], path
            elif path.endswith(("/chat/completions", "/embeddings", "/models")):
                assert op["security"] == [{"gatewayKey": []}], path
            else:
                assert op["security"] == [], path
    chat = document["paths"]["/v1/chat/completions"]["post"]
    assert [p["name"] for p in chat["parameters"]] == [
        "x-keyrail-provider",
        "x-keyrail-config",
        "x-keyrail-tags",
        "x-keyrail-timeout-ms",
    ]
    assert set(chat["responses"]["200"]["headers"]) == {
        "x-keyrail-request-id",
        "x-keyrail-provider-slug",
        "x-keyrail-model",
        "x-keyrail-attempts",
        "x-keyrail-overhead-ms",
    }
    assert set(chat["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}


# --- the HTML page --------------------------------------------------------------------------------

VOID = {"meta", "br", "hr", "img", "input", "link", "wbr"}


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.tags: set[str] = set()
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.sources: list[str] = []
        self.problems: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        values = dict(attrs)
        if values.get("id"):
            assert values["id"] not in self.ids, f"duplicate id {values['id']}"
            self.ids.add(values["id"] or "")
        if values.get("href"):
            self.hrefs.append(values["href"] or "")
        if values.get("src"):
            self.sources.append(values["src"] or "")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:]}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    return page


def test_reference_page_is_self_contained_and_well_formed(api: FastAPI, document: dict[str, Any]) -> None:
    html = api.state.api_docs.html.decode()
    page = _parse(html)
    assert page.problems == [] and page.stack == []
    assert page.sources == []  # no script, image, font or frame from anywhere
    assert not {"script", "link", "iframe", "object", "embed", "img"} & page.tags
    assert not re.search(r"@import|url\(", html)
    for href in page.hrefs:
        if href.startswith("#"):
            assert href[1:] in page.ids, f"broken link {href}"
        else:  # only plain links out (the OpenAI reference) and to /openapi.json
            assert href == "/openapi.json" or href.startswith("https://platform.openai.com/"), href


def test_reference_page_shows_every_operation_and_schema(api: FastAPI, document: dict[str, Any]) -> None:
    page = _parse(api.state.api_docs.html.decode())
    text = " ".join(page.text)
    for path, item in document["paths"].items():
        for op in item.values():
            assert f"op-{op['operationId']}" in page.ids
            assert path in text and op["summary"] in text
            for status in op["responses"]:
                assert status in text
            for parameter in op.get("parameters", []):
                assert parameter["name"] in text
    for name, schema in document["components"]["schemas"].items():
        assert f"schema-{name}" in page.ids
        for field in schema.get("properties", {}):
            assert field in text
    for header in document["components"]["headers"]:
        assert header in text
    assert "Authorization: Bearer kr-…" in text
    assert '"sk-my-upstream-key"' in text  # the request example of POST /admin/v1/integrations


def test_reference_page_escapes_document_text() -> None:
    document = build_document()
    document["info"]["description"] = "<script>alert(1)</script> and `code`"
    html = render_html(document)
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; and <code>code</code>" in html


# --- serving, without any I/O ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def http() -> TestClient:
    # No `with`: the lifespan (NATS, Vault) never runs; these routes need none of it.
    return TestClient(create_app(load_settings()), raise_server_exceptions=False)  # type: ignore[arg-type]


def test_openapi_json_and_docs_are_served_from_the_cache(
    http: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_rebuild(*args: Any) -> Any:
        raise AssertionError("the document is built per request")

    monkeypatch.setattr(openapi, "build_document", no_rebuild)
    monkeypatch.setattr(ApiDocs, "build", no_rebuild)
    spec = http.get("/openapi.json")
    assert spec.status_code == 200 and spec.headers["content-type"] == "application/json"
    assert spec.json() == build_document()  # the original function, imported before the patch
    assert spec.json()["paths"]["/v1/chat/completions"]["post"]["operationId"] == "createChatCompletion"
    docs = http.get("/docs")
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in docs.headers["content-security-policy"]
    assert "<h1 id='overview'>Keyrail API reference</h1>" in docs.text
    assert http.get("/redoc").status_code == 404  # FastAPI's own pages stay off


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/v1/chat/completions"])
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_on_the_data_plane_are_an_openai_shaped_405(
    http: TestClient, path: str, method: str
) -> None:
    response = http.request(method, path)
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    msgspec.json.decode(response.content, type=ErrorResponse)


def test_unknown_path_and_method_are_openai_shaped(http: TestClient) -> None:
    missing = http.get("/v2/nothing")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong = http.delete("/admin/v1/projects")
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"
    assert http.post("/openapi.json").status_code == 405


def test_an_unhandled_admin_error_is_an_openai_shaped_500(http: TestClient) -> None:
    # Without the lifespan there is no context: the handler fails, as on any unexpected bug.
    response = http.get("/admin/v1/projects", headers={"Authorization": "Bearer kra-x"})
    assert response.status_code == 500
    error = msgspec.json.decode(response.content, type=ErrorResponse).error
    assert (error.type, error.code) == ("api_error", "internal_error")
