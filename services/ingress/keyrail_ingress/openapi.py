"""The ingress's OpenAPI 3.1 document, generated from the msgspec types the handlers use.

Request and response schemas come from `msgspec.json.schema_components` over the very Structs
the handlers decode and encode (admin_types.py, chat.ChatRequestHead, messages.SqlQuery) plus a
few Structs below that describe bodies built elsewhere (the OpenAI-shaped error, /healthz, the
upstream's chat completion); tests check those against the real bodies. Examples of errors are
produced by the same functions the handlers call.

`OPERATIONS` lists every route the ingress serves; a test compares it with the app's routes
method by method, so a new route without an entry here fails the suite. The document is built
once, when the app is created (app.py), never per request.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta
from prometheus_client import CONTENT_TYPE_LATEST

from keyrail_common.errors import openai_error_body
from keyrail_common.failures import error_type_for
from keyrail_common.messages import SqlQuery
from keyrail_ingress.admin_types import (
    ActivityEntry,
    ActivityList,
    ApiKeyCreated,
    CredentialsSet,
    Integration,
    IntegrationList,
    NewApiKey,
    NewCredentials,
    NewEnabledModels,
    NewIntegration,
    NewProject,
    Project,
    ProjectList,
    SqlResult,
)
from keyrail_ingress.api_reference import render_html
from keyrail_ingress.chat import ChatRequestHead
from keyrail_ingress.embeddings import EmbeddingsRequestHead
from keyrail_ingress.models import Model, ModelList
from keyrail_ingress.responses import bad_body

OPENAPI_VERSION = "3.1.0"
REF_TEMPLATE = "#/components/schemas/{name}"
OPENAI_CHAT_DOCS = "https://platform.openai.com/docs/api-reference/chat/create"


# --- Structs for bodies that are not built from a Struct ----------------------------------------


class Error(msgspec.Struct):
    """What went wrong, in OpenAI's error shape."""

    message: Annotated[str, Meta(description="What went wrong and, where possible, what to do.")]
    type: Annotated[
        str,
        Meta(
            description="`invalid_request_error` (400, 413), `authentication_error` (401), "
            "`permission_error` (403), `not_found_error` (404), `rate_limit_error` (429), "
            "`api_error` (5xx), or the upstream's own type."
        ),
    ]
    param: Annotated[str | None, Meta(description="The request field or header at fault, if any.")]
    code: Annotated[str | None, Meta(description="A stable machine-readable code, e.g. `invalid_api_key`.")]


class ErrorResponse(msgspec.Struct):
    """The body of every 4xx/5xx answer (keyrail_common.errors.error_body), as OpenAI sends it."""

    error: Error


class HealthOk(msgspec.Struct):
    """NATS is connected and every component answered a ping."""

    status: Literal["ok"]
    components: Annotated[list[str], Meta(examples=[["router", "audit", "worker.openai"]])]


class HealthUnavailable(msgspec.Struct):
    """NATS is down or some components did not answer within a second."""

    status: Literal["unavailable"]
    missing: Annotated[list[str], Meta(description="What did not answer.", examples=[["audit"]])]


class ChatCompletion(msgspec.Struct):
    """OpenAI's CreateChatCompletionResponse: the provider's answer, in OpenAI's format whatever
    the provider's own wire format is. Only its head is listed here; the full schema is
    OpenAI's."""

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[dict[str, Any]]
    usage: dict[str, Any] | None = None


class ChatCompletionChunk(msgspec.Struct):
    """OpenAI's CreateChatCompletionStreamResponse: one server-sent event of a stream, sent as
    `data: <chunk JSON>`; the stream ends with `data: [DONE]`. With
    `stream_options.include_usage` the last chunk has empty `choices` and the `usage`."""

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[dict[str, Any]]
    usage: dict[str, Any] | None = None


# --- the operation table ------------------------------------------------------------------------


@dataclass(frozen=True)
class Content:
    """One media type of a body: a msgspec type (schema generated) or a literal schema."""

    example: Any
    type: Any = None
    schema: Mapping[str, Any] | None = None
    media_type: str = "application/json"


@dataclass(frozen=True)
class Reply:
    description: str
    content: tuple[Content, ...] = ()
    headers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    tag: str
    summary: str
    auth: Literal["gateway", "admin", "none"]
    responses: Mapping[int, Reply]
    description: str = ""
    parameters: tuple[Mapping[str, Any], ...] = ()
    request: Content | None = None
    request_description: str = ""
    external_docs: str = ""
    extra_types: tuple[Any, ...] = field(default=())  # schemas referenced only from prose


def _error_example(status: int, message: str, code: str | None = None, param: str | None = None) -> Any:
    return json.loads(openai_error_body(message, error_type_for(status), param, code))


def _bad_body_example(kind: type, body: bytes) -> Any:
    """The 400 the admin API answers for `body`, produced by the handlers' own decoding."""
    try:
        msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        return json.loads(bytes(bad_body(exc).body))
    raise AssertionError(f"{body!r} is a valid {kind.__name__}")


def _is_default(f: msgspec.structs.FieldInfo, value: Any) -> bool:
    if f.default is not msgspec.NODEFAULT:
        return bool(value == f.default)
    if f.default_factory is not msgspec.NODEFAULT:
        return bool(value == f.default_factory())
    return False


def _request(body: msgspec.Struct) -> Content:
    """A request body example as a client would write it: fields left at their default omitted."""
    example = {}
    for f in msgspec.structs.fields(body):
        value = getattr(body, f.name)
        if not _is_default(f, value):
            example[f.encode_name] = msgspec.to_builtins(value)
    return Content(example, type(body))


def _error(description: str, example: Any, headers: tuple[str, ...] = ()) -> Reply:
    return Reply(description, (Content(example, ErrorResponse),), headers)


def _json(description: str, kind: Any, example: Any) -> Reply:
    return Reply(description, (Content(msgspec.to_builtins(example), kind),))


ADMIN_401 = _error(
    "No admin token, or not a valid one.",
    _error_example(
        401, "Invalid or missing admin token. Send 'Authorization: Bearer <admin token>'.", "invalid_token"
    ),
)
ADMIN_403 = _error(
    "The token's user is not an owner.",
    _error_example(403, "Role 'developer' may not do this; an owner can.", "forbidden"),
)
ERROR_500 = _error(
    "Keyrail itself failed; the error is logged.",
    _error_example(500, "Keyrail failed to handle this request; the error is logged.", "internal_error"),
)
AUDIT_503 = _error(
    "The audit service is not running.",
    _error_example(
        503, "The audit service is not answering; start it with: keyrail audit", "audit_unavailable"
    ),
)


def _admin_errors(**more: Reply) -> dict[int, Reply]:
    replies = {int(status.removeprefix("e")): reply for status, reply in more.items()}
    return dict(sorted({**replies, 401: ADMIN_401, 403: ADMIN_403, 500: ERROR_500}.items()))


EXAMPLE_PROJECT = Project(id="proj_3f2a9c1d5e6b7a80", name="demo", org_id="org_0a1b2c3d4e5f6a7b")
EXAMPLE_INTEGRATION = Integration(
    id="int_5d4c3b2a19087f6e",
    name="Local mock",
    provider="openai",
    provider_slug="openai-dev-mock",
    description="",
    project_scope="all",
    enabled_models=["gpt-4o-mini"],
    custom_host="http://127.0.0.1:9900/v1",
    api_format="openai",
    allow_http=True,
    credential_version=1,
)
_SLUG_PARAMETER = {
    "name": "slug",
    "in": "path",
    "required": True,
    "description": "The integration's provider slug.",
    "schema": {"type": "string"},
    "example": EXAMPLE_INTEGRATION.provider_slug,
}
_INTEGRATION_404 = _error_example(
    404, "No integration 'openai-dev-mock'. List them with GET /admin/v1/integrations.", "not_found"
)
EXAMPLE_ACTIVITY = ActivityEntry(
    request_id="req_6f1d0c2b3a4e5f60718293a4",
    kind="request",
    attempt=1,
    ts="2026-12-01T19:41:05.123000+00:00",
    org_id=EXAMPLE_PROJECT.org_id,
    project_id=EXAMPLE_PROJECT.id,
    api_key_id="key_9b8c7d6e5f4a3b2c",
    provider="openai",
    provider_slug="openai-dev-mock",
    model="gpt-4o-mini",
    status="ok",
    http_status=200,
    error_class="",
    error_message="",
    latency_ms=3.412,
    ttft_ms=0.0,
    overhead_ms=0.912,
    prompt_tokens=9,
    completion_tokens=12,
    cached_tokens=0,
    reasoning_tokens=0,
    cost_usd=0.0000086,
    tags=["batch-eval"],
    fallback_position=0,
    stream=0,
    cache_write_tokens=0,
    usage_source="reported",
)
EXAMPLE_CHAT_REQUEST = {
    "model": "openai-dev-mock/gpt-4o-mini",
    "messages": [{"role": "user", "content": "Hello"}],
    "temperature": 0.2,
}
EXAMPLE_COMPLETION = {
    "id": "chatcmpl-AbC123",
    "object": "chat.completion",
    "created": 1764618065,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello! How can I help?", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 9, "completion_tokens": 7, "total_tokens": 16},
}
EXAMPLE_STREAM = (
    'data: {"id":"chatcmpl-AbC123","object":"chat.completion.chunk","created":1764618065,'
    '"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":{"role":"assistant",'
    '"content":"Hello"},"finish_reason":null}]}\n\n'
    'data: {"id":"chatcmpl-AbC123","object":"chat.completion.chunk","created":1764618065,'
    '"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    "data: [DONE]\n\n"
)

ROUTED_HEADERS = (
    "x-keyrail-request-id",
    "x-keyrail-provider-slug",
    "x-keyrail-model",
    "x-keyrail-attempts",
    "x-keyrail-overhead-ms",
)
RESPONSE_HEADERS: dict[str, dict[str, Any]] = {
    "x-keyrail-request-id": {
        "description": "The request's id in the activity log (`GET /admin/v1/activity?request_id=…`). "
        "On every data-plane answer, errors included.",
        "schema": {"type": "string"},
        "example": "req_6f1d0c2b3a4e5f60718293a4",
    },
    "x-keyrail-provider-slug": {
        "description": "The integration that answered (after any fallback).",
        "schema": {"type": "string"},
        "example": "openai-dev-mock",
    },
    "x-keyrail-model": {
        "description": "The model the upstream was asked for.",
        "schema": {"type": "string"},
        "example": "gpt-4o-mini",
    },
    "x-keyrail-attempts": {
        "description": "How many upstream calls were made (more than 1 after a fallback).",
        "schema": {"type": "integer"},
        "example": 1,
    },
    "x-keyrail-overhead-ms": {
        "description": "Milliseconds Keyrail added on top of the upstream's own time (for a stream: "
        "until the first byte). On every data-plane answer.",
        "schema": {"type": "number"},
        "example": 0.912,
    },
}


def _chat_error(description: str, example: Any) -> Reply:
    return _error(description, example, ROUTED_HEADERS)


_NO_GATEWAY_KEY = "No gateway key, or an unknown or revoked one."
_NO_GATEWAY_KEY_BODY = _error_example(
    401, "Invalid or missing API key. Send 'Authorization: Bearer kr-…'.", "invalid_api_key"
)
GATEWAY_401 = _chat_error(_NO_GATEWAY_KEY, _NO_GATEWAY_KEY_BODY)  # with the request-id headers

CHAT_DESCRIPTION = f"""\
OpenAI's chat completions API: the official `openai` SDKs work unchanged with
`base_url="http://<host>:<port>/v1"` and a gateway key as `api_key`.

Keyrail reads only the head of the body (`ChatRequestHead`: `model`, `messages`, `stream`,
`stream_options`, `metadata`); every other field of OpenAI's CreateChatCompletionRequest passes
through to the provider untouched, and the answer is OpenAI's CreateChatCompletionResponse, or
with `"stream": true` server-sent events of CreateChatCompletionStreamResponse chunks ending
with `data: [DONE]` ({OPENAI_CHAT_DOCS}). Providers with another wire format are translated.

An error before the stream starts is an ordinary JSON error answer; an error mid-stream is sent
as a last `data:` event with the same error body."""

CHAT_PARAMETERS: tuple[Mapping[str, Any], ...] = (
    {
        "name": "x-keyrail-provider",
        "in": "header",
        "required": False,
        "description": "Pin one integration by its provider slug; the body's `model` may then be "
        "`<model>`, `<provider-slug>/<model>` or `<provider>/<model>`.",
        "schema": {"type": "string"},
        "example": "openai-dev-mock",
    },
    {
        "name": "x-keyrail-tags",
        "in": "header",
        "required": False,
        "description": "Comma-separated tags recorded on the request's activity rows (added to "
        "`metadata.tags`, if any).",
        "schema": {"type": "string"},
        "example": "batch-eval,team-search",
    },
    {
        "name": "x-keyrail-timeout-ms",
        "in": "header",
        "required": False,
        "description": "This request's budget in milliseconds, streams included (at most the "
        "deployment's KEYRAIL_REQUEST_TIMEOUT_S, 600 s by default). When a target hangs, the next one "
        "is tried within the budget: attempts without their own timeout share what is left of it.",
        "schema": {"type": "integer", "minimum": 1},
        "example": 30000,
    },
)


def _chat_operation(path: str, operation_id: str, summary: str, description: str) -> Operation:
    return Operation(
        method="POST",
        path=path,
        operation_id=operation_id,
        tag="Chat",
        summary=summary,
        description=description,
        auth="gateway",
        parameters=CHAT_PARAMETERS,
        request=Content(EXAMPLE_CHAT_REQUEST, ChatRequestHead),
        request_description="OpenAI's CreateChatCompletionRequest; Keyrail reads the fields listed.",
        external_docs=OPENAI_CHAT_DOCS,
        extra_types=(ChatCompletionChunk,),
        responses={
            200: Reply(
                "The completion (`application/json`), or with `stream: true` the stream of chunks "
                "(`text/event-stream`, see ChatCompletionChunk).",
                (
                    Content(EXAMPLE_COMPLETION, ChatCompletion),
                    Content(
                        EXAMPLE_STREAM,
                        schema={
                            "type": "string",
                            "description": "Server-sent events: `data: <ChatCompletionChunk JSON>` "
                            "per chunk, then `data: [DONE]`.",
                        },
                        media_type="text/event-stream",
                    ),
                ),
                ROUTED_HEADERS,
            ),
            400: _chat_error(
                "The body is not JSON, a field has the wrong type or `messages` is empty (`param` "
                "names the field), or the upstream rejected the body (`upstream_400`, its message).",
                _error_example(400, "'messages' must contain at least one message.", param="messages"),
            ),
            401: GATEWAY_401,
            403: _chat_error(
                "The model is in the catalog but no integration in the key's project scope serves it.",
                _error_example(
                    403,
                    "'openai/gpt-4o-mini' is in the catalog, but no integration in this project's scope "
                    "serves it. Create an integration for provider 'openai' with this model enabled, "
                    "or widen its project_scope.",
                    "no_integration_in_scope",
                    "model",
                ),
            ),
            404: _chat_error(
                "Unknown model string or provider slug; the message says how to register it.",
                _error_example(
                    404,
                    "No integration with provider slug 'nobody'.",
                    "provider_not_found",
                    "x-keyrail-provider",
                ),
            ),
            413: _chat_error(
                "The body is larger than the bus accepts (NATS max_payload less the envelope).",
                _error_example(
                    413,
                    "Request body is 1048600 bytes; this deployment accepts at most 983040 (the NATS "
                    "max_payload less the envelope). Raise max_payload on the NATS servers.",
                    "request_too_large",
                ),
            ),
            422: _chat_error(
                "The upstream could not process the body (its own message).",
                _error_example(
                    422, "Upstream 'openai-dev-mock' answered HTTP 422: Invalid 'tools'.", "upstream_422"
                ),
            ),
            429: _chat_error(
                "The upstream rate-limited the request or its quota is used up (its own message).",
                _error_example(
                    429,
                    "Upstream 'openai-dev-mock' answered HTTP 429: Rate limit reached for gpt-4o-mini.",
                    "upstream_429",
                ),
            ),
            500: _chat_error(
                "Keyrail itself failed; the error is logged.",
                _error_example(
                    500, "Keyrail failed to handle this request; the error is logged.", "internal_error"
                ),
            ),
            502: _chat_error(
                "Every upstream attempt failed: unreachable, upstream 5xx, the upstream refused "
                "the integration's credentials (`upstream_401`), or they could not be read from Vault.",
                _error_example(
                    502, "Could not reach upstream 'openai-dev-mock': ConnectError", "upstream_unreachable"
                ),
            ),
            503: _chat_error(
                "No router, or no worker of the target's pool, is running (answered at once, naming "
                "the pool); or the upstream is overloaded (its 503/529).",
                _error_example(
                    503,
                    "No 'openai' provider worker is running for 'openai-dev-mock'. "
                    "Start one with: keyrail worker --providers openai",
                    "worker_pool_unavailable",
                ),
            ),
            504: _chat_error(
                "The upstream, or the gateway as a whole, did not answer within the timeout.",
                _error_example(
                    504,
                    "Upstream 'openai-dev-mock' did not answer within 30.0s (this attempt's share of the "
                    "request's deadline).",
                    "upstream_timeout",
                ),
            ),
        },
    )


class Embeddings(msgspec.Struct):
    """OpenAI's CreateEmbeddingResponse, as the provider answered it. Only its head is listed here;
    the full schema is OpenAI's."""

    object: Literal["list"]
    data: list[dict[str, Any]]
    model: str
    usage: dict[str, Any]


EXAMPLE_EMBEDDINGS_REQUEST = {"model": "openai-dev-mock/text-embedding-3-small", "input": "Hello"}
EXAMPLE_EMBEDDINGS = {
    "object": "list",
    "data": [{"object": "embedding", "index": 0, "embedding": [0.0023, -0.0093, 0.0158]}],
    "model": "text-embedding-3-small",
    "usage": {"prompt_tokens": 1, "total_tokens": 1},
}


def _embeddings_operation(path: str, operation_id: str, summary: str, description: str) -> Operation:
    return Operation(
        method="POST",
        path=path,
        operation_id=operation_id,
        tag="Embeddings",
        summary=summary,
        description=description,
        auth="gateway",
        parameters=CHAT_PARAMETERS,
        request=Content(EXAMPLE_EMBEDDINGS_REQUEST, EmbeddingsRequestHead),
        request_description="OpenAI's CreateEmbeddingRequest; Keyrail reads the fields listed.",
        responses={
            200: Reply("The embeddings.", (Content(EXAMPLE_EMBEDDINGS, Embeddings),), ROUTED_HEADERS),
            400: _chat_error(
                "The body is not JSON, a field has the wrong type or `input` is empty (`param` names "
                "the field); the provider offers no embeddings; or the upstream rejected the body.",
                _error_example(400, "'input' must not be empty.", param="input"),
            ),
            401: GATEWAY_401,
            404: _chat_error(
                "Unknown model string or provider slug.",
                _error_example(404, "No integration with provider slug 'nobody'.", "provider_not_found"),
            ),
            502: _chat_error(
                "Every upstream attempt failed.",
                _error_example(
                    502, "Could not reach upstream 'openai-dev-mock': ConnectError", "upstream_unreachable"
                ),
            ),
        },
    )


def _models_operation(path: str, operation_id: str, summary: str, description: str) -> Operation:
    example = ModelList(
        data=[
            Model(id="openai-dev-mock/gpt-4o-mini", owned_by="openai-dev-mock"),
            Model(id="openai/gpt-4o-mini", owned_by="openai"),
        ]
    )
    return Operation(
        method="GET",
        path=path,
        operation_id=operation_id,
        tag="Models",
        summary=summary,
        description=description,
        auth="gateway",
        responses={
            200: _json("Every model string the key's project can route.", ModelList, example),
            401: _error(_NO_GATEWAY_KEY, _NO_GATEWAY_KEY_BODY),
        },
    )


def _query(name: str, description: str, schema: Mapping[str, Any], example: Any) -> Mapping[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": dict(schema),
        "example": example,
    }


OPERATIONS: tuple[Operation, ...] = (
    _chat_operation(
        "/v1/chat/completions",
        "createChatCompletion",
        "Create a chat completion (OpenAI-compatible)",
        CHAT_DESCRIPTION,
    ),
    _chat_operation(
        "/api/v1/chat/completions",
        "createChatCompletionApiAlias",
        "Create a chat completion (alias)",
        "The same operation as `POST /v1/chat/completions`, for clients whose base URL ends in `/api/v1`.",
    ),
    _models_operation(
        "/v1/models",
        "listModels",
        "List the models this key can route (OpenAI-compatible)",
        "Every enabled catalog model of every integration in the key's project scope, as "
        "`<provider-slug>/<model>` (pins that integration), then once each as `<provider>/<model>` "
        "(any in-scope integration of that provider). The `openai` SDK's `client.models.list()` works.",
    ),
    _models_operation(
        "/api/v1/models",
        "listModelsApiAlias",
        "List the models this key can route (alias)",
        "The same operation as `GET /v1/models`, for clients whose base URL ends in `/api/v1`.",
    ),
    _embeddings_operation(
        "/v1/embeddings",
        "createEmbeddings",
        "Create embeddings (OpenAI-compatible)",
        "Routed like chat completions, to an integration whose provider offers embeddings; the "
        "answer is the provider's, with its usage and cost on the activity rows.",
    ),
    _embeddings_operation(
        "/api/v1/embeddings",
        "createEmbeddingsApiAlias",
        "Create embeddings (alias)",
        "The same operation as `POST /v1/embeddings`, for clients whose base URL ends in `/api/v1`.",
    ),
    Operation(
        method="POST",
        path="/admin/v1/projects",
        operation_id="createProject",
        tag="Projects",
        summary="Create a project",
        auth="admin",
        request=_request(NewProject(name="demo")),
        responses={
            201: _json("The new project.", Project, EXAMPLE_PROJECT),
            **_admin_errors(
                e400=_error(
                    "Invalid body (unknown or missing field, blank name); `param` names the field.",
                    _bad_body_example(NewProject, b'{"nmae": "demo"}'),
                )
            ),
        },
    ),
    Operation(
        method="GET",
        path="/admin/v1/projects",
        operation_id="listProjects",
        tag="Projects",
        summary="List projects",
        auth="admin",
        responses={
            200: _json("Every project.", ProjectList, ProjectList(data=[EXAMPLE_PROJECT], next_cursor=None)),
            **_admin_errors(),
        },
    ),
    Operation(
        method="POST",
        path="/admin/v1/projects/{project_id}/keys",
        operation_id="createApiKey",
        tag="Projects",
        summary="Create a gateway API key",
        description="The secret `key` is in this response only; Keyrail keeps its hash. Send it as "
        "`Authorization: Bearer kr-…` to the data plane.",
        auth="admin",
        parameters=(
            {
                "name": "project_id",
                "in": "path",
                "required": True,
                "description": "The project the key belongs to.",
                "schema": {"type": "string"},
                "example": EXAMPLE_PROJECT.id,
            },
        ),
        request=_request(NewApiKey(name="laptop")),
        responses={
            201: _json(
                "The new key, with its secret.",
                ApiKeyCreated,
                ApiKeyCreated(
                    id="key_9b8c7d6e5f4a3b2c",
                    name="laptop",
                    project_id=EXAMPLE_PROJECT.id,
                    prefix="kr-Qx3v",
                    key="kr-Qx3v…",
                ),
            ),
            **_admin_errors(
                e400=_error(
                    "Invalid body; `param` names the field.",
                    _bad_body_example(NewApiKey, b'{"name": 7}'),
                ),
                e404=_error(
                    "No such project.",
                    _error_example(
                        404,
                        f"No project '{EXAMPLE_PROJECT.id}'. List projects with GET /admin/v1/projects.",
                        "not_found",
                    ),
                ),
            ),
        },
    ),
    Operation(
        method="POST",
        path="/admin/v1/integrations",
        operation_id="createIntegration",
        tag="Integrations",
        summary="Create an integration",
        description="Attaches a provider account or an OpenAI-compatible endpoint. The credentials "
        "are written to Vault/OpenBao first, then the integration is published; they are never "
        "returned.",
        auth="admin",
        request=_request(
            NewIntegration(
                name="Local mock",
                provider="openai",
                provider_slug="openai-dev-mock",
                credentials={"api_key": "sk-my-upstream-key"},
                project_scope="all",
                enabled_models=["gpt-4o-mini"],
                custom_host="http://127.0.0.1:9900/v1",
                allow_http=True,
            )
        ),
        responses={
            201: _json("The new integration (without its credentials).", Integration, EXAMPLE_INTEGRATION),
            **_admin_errors(
                e400=_error(
                    "Invalid body or value (slug pattern, api_format, unknown provider or project, "
                    "missing credentials.api_key, rejected custom_host); `param` names the field.",
                    _error_example(
                        400, "credentials.api_key is required.", "invalid_value", "credentials.api_key"
                    ),
                ),
                e409=_error(
                    "The provider_slug is taken.",
                    _error_example(
                        409, "provider_slug 'openai-dev-mock' is already taken.", "conflict", "provider_slug"
                    ),
                ),
            ),
        },
    ),
    Operation(
        method="GET",
        path="/admin/v1/integrations",
        operation_id="listIntegrations",
        tag="Integrations",
        summary="List integrations",
        auth="admin",
        responses={
            200: _json(
                "Every integration (without credentials).",
                IntegrationList,
                IntegrationList(data=[EXAMPLE_INTEGRATION], next_cursor=None),
            ),
            **_admin_errors(),
        },
    ),
    Operation(
        method="PUT",
        path="/admin/v1/integrations/{slug}/credentials",
        operation_id="rotateCredentials",
        tag="Integrations",
        summary="Rotate an integration's credentials",
        description="Writes the replacement to Vault/OpenBao as a new version; workers use it from the "
        "next request on. Rotate at the provider first, then here, then send a request to verify. "
        "The credential is never returned, only its version.",
        auth="admin",
        parameters=(_SLUG_PARAMETER,),
        request=_request(NewCredentials(credentials={"api_key": "sk-my-new-upstream-key"})),
        responses={
            200: _json(
                "The stored credential's new version.",
                CredentialsSet,
                CredentialsSet(set=True, version=2, updated_at="2026-12-01T19:30:00Z"),
            ),
            **_admin_errors(
                e400=_error(
                    "Invalid body or credential fields (the provider's); `param` names the field.",
                    _error_example(
                        400,
                        "credentials.api_key is required for 'openai'.",
                        "invalid_value",
                        "credentials.api_key",
                    ),
                ),
                e404=_error("No such integration.", _INTEGRATION_404),
            ),
        },
    ),
    Operation(
        method="PUT",
        path="/admin/v1/integrations/{slug}/models",
        operation_id="setEnabledModels",
        tag="Integrations",
        summary="Set an integration's enabled models",
        description='A list of catalog models of the integration\'s provider, `"all"` or `"none"`. '
        "Routing follows from the next request on.",
        auth="admin",
        parameters=(_SLUG_PARAMETER,),
        request=_request(NewEnabledModels(enabled_models=["gpt-4o-mini", "gpt-4o"])),
        responses={
            200: _json("The integration as it is now.", Integration, EXAMPLE_INTEGRATION),
            **_admin_errors(
                e400=_error(
                    "A model that is not in the provider's catalog, or an invalid body.",
                    _error_example(
                        400,
                        "Not in the catalog for provider 'openai': gpt-unknown.",
                        "invalid_value",
                        "enabled_models",
                    ),
                ),
                e404=_error("No such integration.", _INTEGRATION_404),
            ),
        },
    ),
    Operation(
        method="GET",
        path="/admin/v1/activity",
        operation_id="listActivity",
        tag="Activity",
        summary="Read the activity log",
        description="Rows of the organisation's activity log, newest first: one `request` row per "
        "client request and one `attempt` row per upstream call. Rows appear once the audit "
        "service has written them (usually within a second).",
        auth="admin",
        parameters=(
            _query(
                "request_id",
                "Only the rows of this request (its `x-keyrail-request-id`).",
                {"type": "string"},
                EXAMPLE_ACTIVITY.request_id,
            ),
            _query(
                "project", "Only this project's rows (a project id).", {"type": "string"}, EXAMPLE_PROJECT.id
            ),
            _query(
                "slug",
                "Only this integration's rows (a provider slug).",
                {"type": "string"},
                "openai-dev-mock",
            ),
            _query(
                "limit",
                "At most this many rows; values outside 1 to 1000 are clamped.",
                {"type": "integer", "default": 100},
                100,
            ),
        ),
        responses={
            200: _json(
                "The matching rows.", ActivityList, ActivityList(data=[EXAMPLE_ACTIVITY], next_cursor=None)
            ),
            **_admin_errors(
                e400=_error(
                    "`limit` is not an integer.",
                    _error_example(400, "'limit' must be an integer.", "invalid_value", "limit"),
                ),
                e503=AUDIT_503,
            ),
        },
    ),
    Operation(
        method="POST",
        path="/admin/v1/sql",
        operation_id="runSql",
        tag="Activity",
        summary="Run read-only SQL over the activity log",
        description="What `keyrail sql` calls. The query runs with ClickHouse's `readonly` setting; "
        "the table is `keyrail.activity` (use `FINAL`).",
        auth="admin",
        request=_request(
            SqlQuery(
                sql="SELECT provider_slug, count(), sum(cost_usd) FROM keyrail.activity FINAL "
                "GROUP BY provider_slug"
            )
        ),
        responses={
            200: _json(
                "The columns and rows.",
                SqlResult,
                SqlResult(
                    columns=["provider_slug", "count()", "sum(cost_usd)"],
                    rows=[["openai-dev-mock", 42, 0.00036]],
                    elapsed_ms=4.21,
                ),
            ),
            **_admin_errors(
                e400=_error(
                    "Invalid body, or the query failed (syntax, unknown column, not read-only).",
                    _error_example(400, "Code: 62. DB::Exception: Syntax error: …", "query_failed"),
                ),
                e503=AUDIT_503,
            ),
        },
    ),
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
            200: _json(
                "Everything answers.", HealthOk, HealthOk(status="ok", components=["router", "audit"])
            ),
            503: _json(
                "Something is missing.",
                HealthUnavailable,
                HealthUnavailable(status="unavailable", missing=["audit"]),
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

TAGS = (
    {"name": "Chat", "description": "The data plane: OpenAI-compatible, authenticated with a gateway key."},
    {"name": "Projects", "description": "Projects and their gateway API keys."},
    {"name": "Integrations", "description": "Provider accounts and endpoints (credentials go to Vault)."},
    {"name": "Activity", "description": "The activity log: one row per request and per attempt."},
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
        "description": "An admin token, sent as `Authorization: Bearer <admin token>`: the owner's "
        "token is printed once by `keyrail up` on first start (or set with "
        "`KEYRAIL_BOOTSTRAP_TOKEN`).",
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

**Admin bodies** are decoded strictly: an unknown field is a 400 naming it."""


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
