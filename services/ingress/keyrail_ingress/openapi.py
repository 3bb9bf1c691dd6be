"""The ingress's OpenAPI 3.1 document, generated from the msgspec types the handlers use.

Request and response schemas come from `msgspec.json.schema_components` over the very Structs
the handlers decode and encode (admin_types.py, chat.ChatRequestHead, messages.SqlQuery) plus a
few Structs that describe bodies built elsewhere (the OpenAI-shaped error in openapi_parts.py,
/healthz below, the upstream's chat completion in openapi_data_plane.py); tests check those
against the real bodies. Examples of errors are produced by the same functions the handlers call.

The operations are kept beside what they describe: the data plane's in openapi_data_plane.py,
the admin API's in openapi_admin.py, the service routes here; the building blocks in
openapi_parts.py. `OPERATIONS` joins them: every route the ingress serves; a test compares it
with the app's routes method by method, so a new route without an entry fails the suite. The
document is built once, when the app is created (app.py), never per request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta
from prometheus_client import CONTENT_TYPE_LATEST

from keyrail_ingress import rbac
from keyrail_ingress.api_reference import render_html
from keyrail_ingress.openapi_admin import PROJECT_OPERATIONS, USER_OPERATIONS
from keyrail_ingress.openapi_admin_integrations import ACTIVITY_OPERATIONS, INTEGRATION_OPERATIONS
from keyrail_ingress.openapi_admin_models import CATALOG_OPERATIONS, CUSTOM_MODEL_OPERATIONS
from keyrail_ingress.openapi_admin_routing import ROUTING_OPERATIONS
from keyrail_ingress.openapi_data_plane import (
    DATA_PLANE_OPERATIONS,
    RESPONSE_HEADERS,
    ChatCompletion,
    ChatCompletionChunk,
    Embeddings,
)
from keyrail_ingress.openapi_parts import Content, ErrorResponse, Operation, Reply, json_reply

__all__ = [
    "OPERATIONS",
    "ApiDocs",
    "ChatCompletion",
    "ChatCompletionChunk",
    "Embeddings",
    "ErrorResponse",
    "HealthOk",
    "HealthUnavailable",
    "build_document",
]

OPENAPI_VERSION = "3.1.0"
REF_TEMPLATE = "#/components/schemas/{name}"


HealthDetail = Annotated[
    dict[str, dict[str, Any]],
    Meta(
        description="What components report about themselves, never a reason to be unready: "
        "`audit` has `backlog` (activity messages in JetStream not yet in ClickHouse) and `store` "
        "(`ok`; `unavailable` while ClickHouse cannot be opened, `failing` while inserts fail: the "
        "rows wait in JetStream and are written once it is back).",
        examples=[{"audit": {"backlog": 0, "store": "ok"}}],
    ),
]


class HealthOk(msgspec.Struct):
    """NATS is connected and every component answered a ping."""

    status: Literal["ok"]
    components: Annotated[list[str], Meta(examples=[["router", "audit", "worker.openai"]])]
    detail: HealthDetail


class HealthUnavailable(msgspec.Struct):
    """NATS is down or some components did not answer within a second."""

    status: Literal["unavailable"]
    missing: Annotated[list[str], Meta(description="What did not answer.", examples=[["audit"]])]
    detail: HealthDetail


SERVICE_OPERATIONS: tuple[Operation, ...] = (
    Operation(
        method="GET",
        path="/healthz",
        operation_id="healthz",
        tag="Service",
        summary="Health of the gateway",
        description="200 only when NATS is connected and the router, the audit service and every "
        "configured worker pool answer a ping within a second.",
        auth="none",
        responses={
            200: json_reply(
                "Everything answers.",
                HealthOk,
                HealthOk(
                    status="ok",
                    components=["router", "audit"],
                    detail={"audit": {"backlog": 0, "store": "ok"}},
                ),
            ),
            503: json_reply(
                "Something is missing.",
                HealthUnavailable,
                HealthUnavailable(status="unavailable", missing=["audit"], detail={}),
            ),
        },
    ),
    Operation(
        method="GET",
        path="/metrics",
        operation_id="metrics",
        tag="Service",
        summary="Prometheus metrics of the ingress",
        description="The other services expose theirs on `KEYRAIL_METRICS_BASE_PORT` and up.",
        auth="none",
        responses={
            200: Reply(
                "Prometheus text exposition format.",
                (
                    Content(
                        "# TYPE keyrail_ingress_requests_total counter\n"
                        'keyrail_ingress_requests_total{provider_slug="openai-dev-mock",status="200"} 42.0\n',
                        schema={"type": "string"},
                        media_type=CONTENT_TYPE_LATEST,
                    ),
                ),
            )
        },
    ),
    Operation(
        method="GET",
        path="/openapi.json",
        operation_id="getOpenApiDocument",
        tag="Service",
        summary="This OpenAPI document",
        auth="none",
        responses={
            200: Reply(
                "The OpenAPI 3.1 document of this API.",
                (
                    Content(
                        {"openapi": OPENAPI_VERSION, "info": {"title": "Keyrail"}, "paths": {}},
                        schema={"type": "object"},
                    ),
                ),
            )
        },
    ),
    Operation(
        method="GET",
        path="/docs",
        operation_id="getApiReference",
        tag="Service",
        summary="This API reference as a web page",
        description="Rendered from the OpenAPI document when the ingress starts; the page loads "
        "nothing from anywhere else.",
        auth="none",
        responses={
            200: Reply(
                "A self-contained HTML page.",
                (Content("<!doctype html>…", schema={"type": "string"}, media_type="text/html"),),
            )
        },
    ),
)

ADMIN_OPERATIONS = (
    PROJECT_OPERATIONS
    + INTEGRATION_OPERATIONS
    + CUSTOM_MODEL_OPERATIONS
    + CATALOG_OPERATIONS
    + ROUTING_OPERATIONS
    + USER_OPERATIONS
    + ACTIVITY_OPERATIONS
)
OPERATIONS: tuple[Operation, ...] = DATA_PLANE_OPERATIONS + ADMIN_OPERATIONS + SERVICE_OPERATIONS

TAGS = (
    {"name": "Chat", "description": "The data plane: OpenAI-compatible, authenticated with a gateway key."},
    {"name": "Projects", "description": "Projects and their gateway API keys."},
    {"name": "Integrations", "description": "Provider accounts and endpoints (credentials go to Vault)."},
    {
        "name": "Custom models",
        "description": "Models an integration serves beyond the catalog, with their prices.",
    },
    {
        "name": "Catalog",
        "description": "The routable catalog models and list prices: shipped, plus the owners'.",
    },
    {
        "name": "Routing",
        "description": "Virtual models (aliases) and gateway configs (fallback, loadbalance, conditional).",
    },
    {"name": "Users", "description": "Users, their roles, and their personal admin tokens."},
    {
        "name": "Activity",
        "description": "The activity log (one row per request and per attempt) and the change history.",
    },
    {"name": "Service", "description": "Health, metrics and this documentation; no authentication."},
)

SECURITY_SCHEMES = {
    "gatewayKey": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "kr-…",
        "description": "A gateway API key (`kr-…`) from `POST /admin/v1/projects/{project_id}/keys`, "
        "sent as `Authorization: Bearer kr-…` (the `api_key` of the OpenAI SDKs).",
    },
    "adminToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "kra-…",
        "description": "A personal admin token, sent as `Authorization: Bearer <admin token>`; it acts "
        "with its user's roles. The first owner's token is printed once by `keyrail up` on first "
        "start (or set with `KEYRAIL_BOOTSTRAP_TOKEN`); more come from "
        "`POST /admin/v1/users/{user_id}/tokens`.",
    },
}
_SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "gateway": [{"gatewayKey": []}],
    "admin": [{"adminToken": []}],
    "none": [],
}

API_DESCRIPTION = """\
Keyrail is a self-hosted BYOK LLM gateway: one OpenAI-compatible endpoint in front of your own
provider accounts, with routing, fallback, project-scoped governance and an activity log.

**Authentication.** The data plane (`/v1/chat/completions`) takes a gateway key,
`Authorization: Bearer kr-…`; the admin API (`/admin/v1/…`) an admin token. `/healthz`,
`/metrics`, `/openapi.json` and `/docs` need none.

**Errors.** Every 4xx/5xx answer has OpenAI's error body,
`{"error": {"message", "type", "param", "code"}}` (ErrorResponse), and says what to do; `param`
names the field or header at fault. An unknown path is a 404 (`not_found`) and a method a path
does not take is a 405 (`method_not_allowed`), in the same shape.

**Admin bodies** are decoded strictly: an unknown field is a 400 naming it.

**Roles.** `owner` holds for the whole organisation; `project_admin` and `developer` are held per
project, and a user may hold different roles in different projects. Each admin operation says who
may call it; the whole table (resource x action x role) is under Access control below and in
`x-keyrail-rbac`. A caller without the role gets a 403 that names the role it would need. No
operation returns a credential, to anyone.

**Versions.** Every user, token, project, key and integration has a `version` (the stream
sequence of its last change). A change names the version it was decided on (`If-Match: "42"` or
`"version": 42`): without one it is a 428, and if something else changed the resource since, a
409 and nothing is applied."""


def api_version() -> str:
    try:
        return metadata.version("keyrail")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def _content(content: Content, schemas: Mapping[Any, Any]) -> dict[str, Any]:
    schema = dict(content.schema if content.schema is not None else schemas[content.type])
    return {content.media_type: {"schema": schema, "example": content.example}}


def _operation(op: Operation, schemas: Mapping[Any, Any]) -> dict[str, Any]:
    built: dict[str, Any] = {
        "operationId": op.operation_id,
        "tags": [op.tag],
        "summary": op.summary,
    }
    if op.description:
        built["description"] = op.description
    if op.external_docs:
        built["externalDocs"] = {"url": op.external_docs, "description": "OpenAI's API reference"}
    built["security"] = _SECURITY[op.auth]
    if op.permission:
        built["x-keyrail-permission"] = op.permission
    if op.parameters:
        built["parameters"] = [dict(p) for p in op.parameters]
    if op.request is not None:
        body: dict[str, Any] = {"required": True, "content": _content(op.request, schemas)}
        if op.request_description:
            body["description"] = op.request_description
        built["requestBody"] = body
    responses: dict[str, Any] = {}
    for status, reply in op.responses.items():
        response: dict[str, Any] = {"description": reply.description}
        if reply.headers:
            response["headers"] = {name: {"$ref": f"#/components/headers/{name}"} for name in reply.headers}
        content: dict[str, Any] = {}
        for item in reply.content:
            content.update(_content(item, schemas))
        if content:
            response["content"] = content
        responses[str(status)] = response
    built["responses"] = responses
    return built


def build_document(operations: tuple[Operation, ...] = OPERATIONS) -> dict[str, Any]:
    """The OpenAPI document: pure, no I/O; app.py builds it once at startup."""
    types: list[Any] = [ErrorResponse]
    for op in operations:
        bodies = [op.request] if op.request is not None else []
        bodies += [c for reply in op.responses.values() for c in reply.content]
        for kind in [c.type for c in bodies if c.type is not None] + list(op.extra_types):
            if kind not in types:
                types.append(kind)
    refs, components = msgspec.json.schema_components(types, ref_template=REF_TEMPLATE)
    schemas = dict(zip(types, refs, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, schemas)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Keyrail",
            "version": api_version(),
            "summary": "Self-hosted BYOK LLM gateway: OpenAI-compatible data plane and admin API.",
            "description": API_DESCRIPTION,
        },
        "tags": list(TAGS),
        "x-keyrail-rbac": rbac.document_table(),
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.items())),
            "headers": RESPONSE_HEADERS,
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


@dataclass(frozen=True)
class ApiDocs:
    """The document and its two renderings, computed once."""

    document: dict[str, Any]
    json: bytes
    html: bytes

    @classmethod
    def build(cls) -> ApiDocs:
        document = build_document()
        return cls(document, msgspec.json.encode(document), render_html(document).encode())
